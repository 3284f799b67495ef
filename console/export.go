package console

import (
	"html/template"
	"io"
	"strings"
	"time"

	"github.com/airlockhq/airlock/recorder"
)

// Verification marks of an event in a session shown to an auditor.
const (
	// MarkAltered: a problem names this event or its chunk.
	MarkAltered = "ALTERED"
	// MarkUnverified: the event's segment failed verification elsewhere,
	// so its chain cannot vouch for it.
	MarkUnverified = "UNVERIFIED"
)

// Marks says which events verification puts in doubt: MarkAltered for the
// event a problem names (or every event of the chunk it names, when it
// names no event), MarkUnverified for the rest of a failed segment; an
// event without a mark is verified.
func Marks(s *recorder.Session, v *recorder.VerifyResult) map[*recorder.Event]string {
	if v == nil || v.OK() {
		return nil
	}
	marks := map[*recorder.Event]string{}
	badSeg := map[string]bool{}
	for _, p := range v.Problems {
		badSeg[p.Segment] = true
	}
	for _, e := range s.Events {
		for _, p := range v.Problems {
			if p.Segment != e.Segment {
				continue
			}
			if p.Seq >= 0 && p.Seq == e.Seq || p.Seq < 0 && p.Chunk != "" && p.Chunk == s.Chunks[e] {
				marks[e] = MarkAltered
			}
		}
		if marks[e] == "" && badSeg[e.Segment] {
			marks[e] = MarkUnverified
		}
	}
	return marks
}

// Who renders a recorded caller: subject <email> via actor.
func Who(subject, email, actor string) string {
	who := subject
	if email != "" && email != subject {
		who += " <" + email + ">"
	}
	if actor != "" {
		who += " via " + actor
	}
	if who == "" {
		return "(unauthenticated)"
	}
	return who
}

var sessionHTML = template.Must(template.New("session").Funcs(template.FuncMap{
	"upper": strings.ToUpper,
	"ts":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000") },
	"who":   Who,
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>airlock session {{.S.ID}}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.3em} table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #ddd;padding:4px 8px;vertical-align:top;text-align:left}
th{background:#f4f4f4} .k{font-weight:600} code,pre{font:12px ui-monospace,monospace;white-space:pre-wrap;word-break:break-all;margin:0}
.allow{color:#176b2c}.deny,.unauthenticated,.unavailable{color:#a4161a}.approve,.approval_required{color:#9a6700}
.ok{background:#e6f4ea;padding:6px}.bad{background:#fde7e9;padding:6px;border:3px solid #a4161a}
tr.altered td{background:#fde7e9;border-left:4px solid #a4161a}tr.unverified td{background:#fff4e5;border-left:4px dashed #9a6700}
.mark{font-weight:700;white-space:nowrap}
</style></head><body>
<h1>airlock session <code>{{.S.ID}}</code></h1>
<p>{{len .S.Events}} events{{if .S.Events}}, {{ts (index .S.Events 0).Time}} to {{ts .Last}} UTC{{end}}.</p>
{{if .V}}{{if .V.OK}}<p class="ok">Verified: {{.V.Events}} events in {{.V.Chunks}} chunks, hash chains intact.</p>
{{else}}<div class="bad"><p><strong>⚠ VERIFICATION FAILED:</strong> this session was altered or cut short. Rows marked ⚠ ALTERED or UNVERIFIED cannot be trusted.</p><ul>{{range .V.Problems}}<li>{{.String}}</li>{{end}}</ul></div>{{end}}{{end}}
<table><thead><tr><th>time (UTC)</th><th>event</th><th>details</th></tr></thead><tbody>
{{range .Rows}}{{$m := .Mark}}{{with .E}}<tr{{if eq $m "ALTERED"}} class="altered"{{else if $m}} class="unverified"{{end}}><td>{{if eq $m "ALTERED"}}<span class="mark">⚠ ALTERED</span><br>{{else if $m}}<span class="mark">UNVERIFIED</span><br>{{end}}{{ts .Time}}</td><td class="k">{{upper .Kind}}</td><td>
{{with .Decision}}<span class="{{.Decision}} k">{{upper .Decision}}</span> <code>{{.Method}} {{.Host}}{{.Path}}{{if .Query}}?{{.Query}}{{end}}</code>{{if .GCPMethod}} [{{.GCPMethod}}]{{end}}<br>
who: {{who .Subject .Email .Actor}}{{if .Rules}} · rules: {{range $i, $r := .Rules}}{{if $i}}, {{end}}{{$r}}{{end}}{{else if .Rule}} · rule: {{.Policy}}/{{.Rule}}{{end}}{{if .ApprovalID}} · approval {{.ApprovalID}}{{end}}
{{if .Message}}<br>{{.Message}}{{end}}{{if .BodyExcerpt}}<pre>{{.BodyExcerpt}}</pre>{{end}}{{end}}
{{with .Request}}<code>{{.Method}} {{.Host}}{{.Path}}</code>{{if .BodyExcerpt}}<pre>{{.BodyExcerpt}}</pre>{{end}}{{end}}
{{with .Response}}status {{.Status}}, {{.TotalBytes}} bytes{{if .BodyExcerpt}}<pre>{{.BodyExcerpt}}</pre>{{end}}{{end}}
{{with .Vote}}<span class="k">{{upper .Vote}}</span> by {{.Approver}} on approval {{.ApprovalID}}{{if .Reason}}: “{{.Reason}}”{{end}}{{if .State}} (now {{.State}}){{end}}{{end}}
{{if eq .Kind "close"}}segment {{.Segment}} closed: {{.Reason}}{{end}}
{{if .RequestID}}<br><small>request {{.RequestID}}</small>{{end}}
</td></tr>{{end}}
{{end}}</tbody></table>
</body></html>
`))

// WriteHTML writes a self-contained report of a session: no script, no
// external resource, each event's verification marked in words and colour.
func WriteHTML(w io.Writer, s *recorder.Session, v *recorder.VerifyResult) error {
	type row struct {
		E    *recorder.Event
		Mark string
	}
	marks := Marks(s, v)
	rows := make([]row, len(s.Events))
	for i, e := range s.Events {
		rows[i] = row{e, marks[e]}
	}
	data := struct {
		S    *recorder.Session
		V    *recorder.VerifyResult
		Rows []row
		Last time.Time
	}{S: s, V: v, Rows: rows}
	if len(s.Events) > 0 {
		data.Last = s.Events[len(s.Events)-1].Time
	}
	return sessionHTML.Execute(w, data)
}
