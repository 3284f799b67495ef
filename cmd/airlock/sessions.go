package main

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/airlockhq/airlock/config"
	"github.com/airlockhq/airlock/console"
	"github.com/airlockhq/airlock/handoff"
	"github.com/airlockhq/airlock/recorder"
)

const sessionsUsage = `usage: airlock sessions COMMAND [flags]

Read the sessions recorded by airlock.

commands:
  list                 list sessions (--since, --until, --subject, --actor, --method, --decision, --json)
  show ID              a readable timeline of one session
  replay ID            play a session back at its own pace (--speed, --max-gap)
  verify ID|--all      check hash chains, chunks, manifests, checkpoints and the links between
                       segments (--key PUBLIC.pem); exits 1 when altered or cut short
  export ID            write the session as --format jsonl or html (-o FILE)
  prune                delete file:// recordings older than --older-than (e.g. 90d)

ID is a session id, or the name an agent gave in x-airlock-session (NAME
finds NAME~TAG when one subject used it, and lists the candidates when
several did). show, replay and export verify what they read: a banner says
what failed, altered events are marked, and they exit 1.

common flags:
  --sink gs://BUCKET/PREFIX | file://DIR   (default: recorder.sink of --config, else the embedded default)
  --config FILE                             airlock.yaml to read recorder.sink from
  --endpoint URL                            a Cloud Storage emulator (STORAGE_EMULATOR_HOST is honoured too)

Exit status: 0 done, 1 a failed check, an altered or missing session, or
another error, 2 usage error.
`

// runSessions is `airlock sessions ...`: the auditor's tools. It returns
// the process exit code: 0 success, 1 a failed check or missing session,
// 2 a usage error.
func runSessions(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if code, done := groupUsage(args, sessionsUsage, stdout, stderr); done {
		return code
	}
	cmd, rest := args[0], args[1:]
	fs := newFlagSet("sessions "+cmd, sessionsUsage, stderr)
	c := &sessionsCmd{stdout: stdout, stderr: stderr}
	fs.StringVar(&c.sink, "sink", "", "gs://BUCKET/PREFIX or file://DIR")
	fs.StringVar(&c.config, "config", "", "airlock.yaml whose recorder.sink is the default")
	fs.StringVar(&c.endpoint, "endpoint", "", "Cloud Storage endpoint (emulator)")
	var run func(ctx context.Context, fs *flag.FlagSet) int
	switch cmd {
	case "list":
		fs.StringVar(&c.since, "since", "", "sessions active after: RFC 3339 time, YYYY-MM-DD, or a duration ago (24h, 7d)")
		fs.StringVar(&c.until, "until", "", "sessions active before (same forms as --since)")
		fs.StringVar(&c.filter.Subject, "subject", "", "identity subject")
		fs.StringVar(&c.filter.Actor, "actor", "", "acting agent (act.sub)")
		fs.StringVar(&c.filter.Method, "method", "", "GCP method id, e.g. compute.instances.delete")
		fs.StringVar(&c.filter.Decision, "decision", "", "allowed, policy_denied, approval_required, approval_denied, unauthenticated, unavailable or invalid")
		fs.BoolVar(&c.json, "json", false, "print JSON lines")
		run = c.list
	case "show":
		fs.IntVar(&c.bodyChars, "body", 160, "characters of masked bodies to show (0: none)")
		c.keyFlag(fs)
		run = c.show
	case "replay":
		fs.Float64Var(&c.speed, "speed", 1, "playback speed: 2 is twice as fast; 0 plays without pauses")
		fs.DurationVar(&c.maxGap, "max-gap", 3*time.Second, "longest pause between two events")
		fs.IntVar(&c.bodyChars, "body", 160, "characters of masked bodies to show (0: none)")
		c.keyFlag(fs)
		run = c.replay
	case "verify":
		fs.BoolVar(&c.all, "all", false, "verify every session")
		c.keyFlag(fs)
		run = c.verify
	case "export":
		fs.StringVar(&c.format, "format", "jsonl", "jsonl or html")
		fs.StringVar(&c.out, "o", "", "output file (default: standard output)")
		c.keyFlag(fs)
		run = c.export
	case "prune":
		fs.StringVar(&c.olderThan, "older-than", "", "delete days older than this (e.g. 90d, 2160h); required")
		fs.BoolVar(&c.dryRun, "dry-run", false, "only count what would be deleted")
		run = c.prune
	default:
		fmt.Fprintf(stderr, "airlock sessions: unknown command %q\n\n%s", cmd, sessionsUsage)
		return 2
	}
	if _, code, ok := parseFlags(fs, rest, stdout); !ok {
		return code
	}
	return run(ctx, fs)
}

type sessionsCmd struct {
	stdout, stderr io.Writer

	sink, config, endpoint string
	since, until           string
	filter                 recorder.Filter
	json, all, dryRun      bool
	bodyChars              int
	speed                  float64
	maxGap                 time.Duration
	key, format, out       string
	olderThan              string
}

func (c *sessionsCmd) fail(format string, args ...any) int {
	errorf(c.stderr, "sessions", format, args...)
	return exitFail
}

func (c *sessionsCmd) usage(format string, args ...any) int {
	errorf(c.stderr, "sessions", format, args...)
	return exitUsage
}

func (c *sessionsCmd) keyFlag(fs *flag.FlagSet) {
	fs.StringVar(&c.key, "key", "", "PEM Ed25519 key (public, or the signing key) that must have signed every manifest and checkpoint")
}

// sinkURL is --sink, or the recorder.sink of --config, or the embedded
// default.
func (c *sessionsCmd) sinkURL() (string, error) {
	cfg, err := c.configFile()
	if err != nil {
		return "", err
	}
	if c.sink != "" {
		return c.sink, nil
	}
	return cfg.Recorder.Sink, nil
}

// configFile is --config, or the embedded defaults.
func (c *sessionsCmd) configFile() (*config.Config, error) {
	if c.config == "" {
		return config.Dev(), nil
	}
	return config.Load(c.config)
}

// verifyOptions are --key and the idle gap of --config (for manifests
// that do not carry their writer's).
func (c *sessionsCmd) verifyOptions() (recorder.VerifyOptions, int) {
	var opts recorder.VerifyOptions
	if c.key != "" {
		pub, err := recorder.LoadPublicKey(c.key)
		if err != nil {
			return opts, c.usage("--key: %v", err)
		}
		opts.PublicKey = ed25519.PublicKey(pub)
	}
	if cfg, err := c.configFile(); err == nil {
		opts.IdleGap = cfg.Recorder.IdleGap
	}
	return opts, 0
}

// resolve turns the session argument into a session id: itself when such
// a session exists, else the one NAME~TAG session of an agent-given name.
// Several candidates are listed (with their subjects and times) and the
// auditor is asked for one: ok is false and code is the exit code.
func (c *sessionsCmd) resolve(ctx context.Context, rd *recorder.Reader, name string) (id string, code int, ok bool) {
	if !handoff.ValidSessionID(name) {
		return "", c.usage("%q is not a session id (see airlock sessions list)", termSafe(name)), false
	}
	list, err := rd.Resolve(ctx, name)
	if err != nil {
		return "", c.fail("%v", err), false
	}
	for _, s := range list {
		if s.ID == name {
			return name, 0, true
		}
	}
	switch len(list) {
	case 0:
		return name, 0, true
	case 1:
		fmt.Fprintf(c.stderr, "airlock sessions: %s is session %s\n", termSafe(name), termSafe(list[0].ID))
		return list[0].ID, 0, true
	}
	fmt.Fprintf(c.stderr, "airlock sessions: %d sessions are named %s, one per subject that used the name; give one of these ids:\n", len(list), termSafe(name))
	tw := tabwriter.NewWriter(c.stderr, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  SESSION\tSTARTED\tLAST\tREQUESTS\tSUBJECT\tACTOR")
	for _, s := range list {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%s\t%s\n", termSafe(s.ID), s.Summary.First.UTC().Format("2006-01-02 15:04:05"),
			s.Summary.Last.UTC().Format("2006-01-02 15:04:05"), s.Summary.Requests, sessionsJoin(s.Summary.Subjects), sessionsJoin(s.Summary.Actors))
	}
	tw.Flush()
	return "", 2, false
}

// reader opens the sink named by --sink, --config or the embedded default.
func (c *sessionsCmd) reader(ctx context.Context) (*recorder.Reader, recorder.Sink, error) {
	url, err := c.sinkURL()
	if err != nil {
		return nil, nil, err
	}
	sink, err := recorder.OpenSink(ctx, url, recorder.SinkOptions{Endpoint: c.endpoint})
	if err != nil {
		return nil, nil, err
	}
	return recorder.NewReader(sink), sink, nil
}

// oneID returns the single session id argument.
func (c *sessionsCmd) oneID(fs *flag.FlagSet) (string, bool) {
	if fs.NArg() != 1 {
		return "", false
	}
	return fs.Arg(0), true
}

// sessionsParseTime reads RFC 3339, YYYY-MM-DD, or a duration before now
// ("24h", "7d").
func sessionsParseTime(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	if d, err := sessionsParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time, a YYYY-MM-DD date nor a duration like 24h or 7d", s)
}

// sessionsParseDuration is time.ParseDuration plus a "d" (days) unit.
func sessionsParseDuration(s string) (time.Duration, error) {
	if strings.HasSuffix(s, "d") {
		n, err := strconv.ParseFloat(strings.TrimSuffix(s, "d"), 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%q is not a number of days", s)
		}
		return time.Duration(n * float64(24*time.Hour)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration", s)
	}
	return d, nil
}

// sessionsProgress draws a progress bar on stderr when it is a terminal.
func sessionsProgress(w io.Writer, label string) (recorder.Progress, func()) {
	f, ok := w.(*os.File)
	if !ok {
		return nil, func() {}
	}
	st, err := f.Stat()
	if err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return nil, func() {}
	}
	last := time.Time{}
	drawn := false
	p := func(done, total int) {
		if total < 20 {
			return
		}
		if now := time.Now(); done < total && now.Sub(last) < 100*time.Millisecond {
			return
		} else {
			last = now
		}
		const width = 30
		n := width * done / total
		fmt.Fprintf(f, "\r%s [%s%s] %d/%d", label, strings.Repeat("#", n), strings.Repeat(".", width-n), done, total)
		drawn = true
	}
	return p, func() {
		if drawn {
			fmt.Fprint(f, "\r\033[K")
		}
	}
}

func (c *sessionsCmd) list(ctx context.Context, fs *flag.FlagSet) int {
	if fs.NArg() != 0 {
		return c.usage("list takes no arguments, got %q", fs.Args())
	}
	now := time.Now()
	var err error
	if c.filter.Since, err = sessionsParseTime(c.since, now); err != nil {
		return c.usage("--since: %v", err)
	}
	if c.filter.Until, err = sessionsParseTime(c.until, now); err != nil {
		return c.usage("--until: %v", err)
	}
	rd, _, err := c.reader(ctx)
	if err != nil {
		return c.fail("%v", err)
	}
	progress, done := sessionsProgress(c.stderr, "listing")
	list, err := rd.List(ctx, c.filter, progress)
	done()
	if err != nil {
		return c.fail("%v", err)
	}
	if c.json {
		enc := json.NewEncoder(c.stdout)
		for _, s := range list {
			enc.Encode(map[string]any{"id": s.ID, "first": s.Summary.First, "last": s.Summary.Last, "events": s.Events,
				"requests": s.Summary.Requests, "subjects": s.Summary.Subjects, "actors": s.Summary.Actors,
				"methods": s.Summary.Methods, "decisions": s.Summary.Decisions, "segments": len(s.Segments)})
		}
		return 0
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SESSION\tSTARTED\tDURATION\tREQUESTS\tSUBJECT\tACTOR\tDECISIONS")
	for _, s := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", termSafe(s.ID), s.Summary.First.UTC().Format("2006-01-02 15:04:05"),
			s.Summary.Last.Sub(s.Summary.First).Round(time.Second), s.Summary.Requests,
			sessionsJoin(s.Summary.Subjects), sessionsJoin(s.Summary.Actors), sessionsDecisions(s.Summary.Decisions))
	}
	tw.Flush()
	if len(list) == 0 {
		fmt.Fprintln(c.stderr, "no session matches")
	}
	return 0
}

func sessionsJoin(list []string) string {
	if len(list) == 0 {
		return "-"
	}
	return termSafe(strings.Join(list, ","))
}

func sessionsDecisions(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return sessionsJoin(parts)
}

// load reads one session named by the single argument and verifies it
// from the same reads.
func (c *sessionsCmd) load(ctx context.Context, fs *flag.FlagSet) (*recorder.Session, *recorder.VerifyResult, int) {
	name, ok := c.oneID(fs)
	if !ok {
		return nil, nil, c.usage("give one session id (see airlock sessions list)")
	}
	opts, code := c.verifyOptions()
	if code != 0 {
		return nil, nil, code
	}
	rd, _, err := c.reader(ctx)
	if err != nil {
		return nil, nil, c.fail("%v", err)
	}
	id, code, ok := c.resolve(ctx, rd, name)
	if !ok {
		return nil, nil, code
	}
	progress, done := sessionsProgress(c.stderr, "reading")
	s, v, err := rd.LoadVerified(ctx, id, opts, progress)
	done()
	if err != nil {
		return nil, nil, c.fail("%v", err)
	}
	for _, w := range s.Warnings {
		fmt.Fprintf(c.stderr, "warning: %s\n", termSafe(w))
	}
	return s, v, 0
}

// banner says, above what is shown, that verification failed and why.
func (c *sessionsCmd) banner(w io.Writer, v *recorder.VerifyResult) {
	if v.OK() {
		return
	}
	fmt.Fprintln(w, "!! VERIFICATION FAILED: this session was altered or cut short; events marked ALTERED or UNVERIFIED cannot be trusted.")
	for _, p := range v.Problems {
		fmt.Fprintf(w, "!!   %s\n", termSafe(p.String()))
	}
	fmt.Fprintln(w)
}

// failed ends show, replay and export: exit 1 when verification failed.
func (c *sessionsCmd) failed(v *recorder.VerifyResult) int {
	if v.OK() {
		return 0
	}
	fmt.Fprintf(c.stderr, "airlock sessions: session %s failed verification (%d problems); run airlock sessions verify %s\n", termSafe(v.Session), len(v.Problems), termSafe(v.Session))
	return 1
}

// eventMarks says which events verification puts in doubt (ALTERED,
// UNVERIFIED), as the console shows them.
func eventMarks(s *recorder.Session, v *recorder.VerifyResult) map[*recorder.Event]string {
	return console.Marks(s, v)
}

func (c *sessionsCmd) show(ctx context.Context, fs *flag.FlagSet) int {
	s, v, code := c.load(ctx, fs)
	if s == nil {
		return code
	}
	c.banner(c.stdout, v)
	c.header(s)
	marks := eventMarks(s, v)
	for _, e := range s.Events {
		fmt.Fprint(c.stdout, markLine(marks[e], sessionsLine(e, c.bodyChars)))
	}
	if !v.OK() {
		fmt.Fprintln(c.stdout)
		c.banner(c.stdout, v)
	}
	return c.failed(v)
}

// markLine puts an event's mark before its first line.
func markLine(mark, line string) string {
	if mark == "" {
		return line
	}
	return "!! " + mark + "  " + line
}

func (c *sessionsCmd) header(s *recorder.Session) {
	var sum recorder.Summary
	for _, m := range s.Manifests {
		sessionsMerge(&sum, &m.Summary)
	}
	fmt.Fprintf(c.stdout, "session %s\n", termSafe(s.ID))
	if len(s.Events) > 0 {
		first, last := s.Events[0].Time, s.Events[len(s.Events)-1].Time
		fmt.Fprintf(c.stdout, "  from %s to %s (%s), %d events, %d segments\n", first.Format(time.RFC3339), last.Format(time.RFC3339), last.Sub(first).Round(time.Second), len(s.Events), len(s.Manifests))
	}
	fmt.Fprintf(c.stdout, "  subjects: %s  actors: %s\n\n", sessionsJoin(sum.Subjects), sessionsJoin(sum.Actors))
}

func sessionsMerge(dst, s *recorder.Summary) {
	for _, v := range s.Subjects {
		if !sessionsContains(dst.Subjects, v) {
			dst.Subjects = append(dst.Subjects, v)
		}
	}
	for _, v := range s.Actors {
		if !sessionsContains(dst.Actors, v) {
			dst.Actors = append(dst.Actors, v)
		}
	}
}

func sessionsContains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// sessionsLine renders one event for the terminal.
func sessionsLine(e *recorder.Event, bodyChars int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s  %-9s ", e.Time.UTC().Format("15:04:05.000"), termSafe(strings.ToUpper(e.Kind)))
	switch {
	case e.Decision != nil:
		d := e.Decision
		fmt.Fprintf(&b, "%s  %s %s", termSafe(strings.ToUpper(d.Decision)), termSafe(d.Method), sessionsURL(d.Host, d.Path, d.Query))
		if d.Mode != "" {
			fmt.Fprintf(&b, "  (%s)", termSafe(strings.ReplaceAll(d.Mode, "_", " ")))
		}
		if d.GCPMethod != "" {
			fmt.Fprintf(&b, "  [%s]", termSafe(d.GCPMethod))
		}
		fmt.Fprintf(&b, "\n%25s who: %s", "", sessionsWho(d.Subject, d.Email, d.Actor))
		if d.Rule != "" || d.Policy != "" || len(d.Rules) > 0 {
			rules := strings.Join(d.Rules, ", ")
			if rules == "" {
				rules = d.Policy + "/" + d.Rule
			}
			fmt.Fprintf(&b, "  rule: %s", termSafe(rules))
		}
		if d.ApprovalID != "" {
			fmt.Fprintf(&b, "  approval: %s", termSafe(d.ApprovalID))
		}
		if d.Message != "" {
			fmt.Fprintf(&b, "\n%25s %s", "", termSafe(d.Message))
		}
		sessionsBody(&b, d.BodyExcerpt, bodyChars)
	case e.Request != nil:
		q := e.Request
		fmt.Fprintf(&b, "%s %s", termSafe(q.Method), sessionsURL(q.Host, q.Path, ""))
		sessionsBody(&b, q.BodyExcerpt, bodyChars)
	case e.Response != nil:
		p := e.Response
		fmt.Fprintf(&b, "status %d, %d bytes", p.Status, p.TotalBytes)
		sessionsBody(&b, p.BodyExcerpt, bodyChars)
	case e.Vote != nil:
		v := e.Vote
		fmt.Fprintf(&b, "%s by %s on approval %s", termSafe(strings.ToUpper(v.Vote)), termSafe(v.Approver), termSafe(v.ApprovalID))
		if v.Reason != "" {
			fmt.Fprintf(&b, ": %q", v.Reason)
		}
		if v.State != "" {
			fmt.Fprintf(&b, " (now %s)", termSafe(v.State))
		}
	case e.ToolCall != nil:
		c := e.ToolCall
		fmt.Fprintf(&b, "%s/%s", termSafe(c.Server), termSafe(c.Tool))
		if c.GCPMethod != "" {
			fmt.Fprintf(&b, "  [%s]", termSafe(c.GCPMethod))
		}
		if c.IsError {
			b.WriteString("  (error)")
		}
		sessionsField(&b, "arguments", c.Arguments, bodyChars)
		sessionsField(&b, "result", c.Result, bodyChars)
		if c.ResultBytes > int64(len(c.Result)) {
			fmt.Fprintf(&b, " (%d bytes in all)", c.ResultBytes)
		}
	case e.Kind == recorder.KindClose:
		fmt.Fprintf(&b, "segment %s closed: %s", termSafe(e.Segment), termSafe(e.Reason))
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, "\n%25s request %s", "", termSafe(e.RequestID))
	}
	b.WriteString("\n")
	return b.String()
}

func sessionsWho(subject, email, actor string) string {
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
	return termSafe(who)
}

// sessionsURL renders a recorded request's host, path and (masked) query.
func sessionsURL(host, path, query string) string {
	u := host + path
	if query != "" {
		u += "?" + query
	}
	return termSafe(u)
}

func sessionsBody(b *strings.Builder, body string, n int) {
	sessionsField(b, "body", body, n)
}

// sessionsField writes one labelled text on its own line, its white space
// folded and cut to n runes.
func sessionsField(b *strings.Builder, label, text string, n int) {
	if text == "" || n <= 0 {
		return
	}
	text = strings.Join(strings.Fields(text), " ")
	if r := []rune(text); len(r) > n {
		text = string(r[:n]) + "…"
	}
	fmt.Fprintf(b, "\n%25s %s: %s", "", label, termSafe(text))
}

func (c *sessionsCmd) replay(ctx context.Context, fs *flag.FlagSet) int {
	if c.speed < 0 {
		return c.usage("--speed must not be negative")
	}
	s, v, code := c.load(ctx, fs)
	if s == nil {
		return code
	}
	c.banner(c.stdout, v)
	c.header(s)
	marks := eventMarks(s, v)
	for i, e := range s.Events {
		if i > 0 && c.speed > 0 {
			gap := time.Duration(float64(e.Time.Sub(s.Events[i-1].Time)) / c.speed)
			gap = min(max(gap, 0), c.maxGap)
			select {
			case <-ctx.Done():
				return c.fail("replay interrupted")
			case <-time.After(gap):
			}
		}
		fmt.Fprint(c.stdout, markLine(marks[e], sessionsLine(e, c.bodyChars)))
	}
	if !v.OK() {
		fmt.Fprintln(c.stdout)
		c.banner(c.stdout, v)
	}
	return c.failed(v)
}

func (c *sessionsCmd) verify(ctx context.Context, fs *flag.FlagSet) int {
	var ids []string
	switch {
	case c.all && fs.NArg() == 0:
	case !c.all && fs.NArg() == 1:
		ids = []string{fs.Arg(0)}
	default:
		return c.usage("give one session id or --all")
	}
	opts, code := c.verifyOptions()
	if code != 0 {
		return code
	}
	rd, sink, err := c.reader(ctx)
	if err != nil {
		return c.fail("%v", err)
	}
	c.retention(ctx, sink)
	if c.all {
		list, err := rd.List(ctx, recorder.Filter{}, nil)
		if err != nil {
			return c.fail("%v", err)
		}
		for _, s := range list {
			ids = append(ids, s.ID)
		}
		sort.Strings(ids)
	} else {
		id, code, ok := c.resolve(ctx, rd, ids[0])
		if !ok {
			return code
		}
		ids[0] = id
	}
	progress, done := sessionsProgress(c.stderr, "verifying")
	bad := 0
	for i, id := range ids {
		if progress != nil {
			progress(i, len(ids))
		}
		res, err := rd.Verify(ctx, id, opts)
		if err != nil {
			done()
			return c.fail("%v", err)
		}
		if res.OK() {
			signed := ""
			if opts.PublicKey != nil {
				signed = fmt.Sprintf(", %d signed manifests", res.Signed)
			}
			fmt.Fprintf(c.stdout, "OK    %s: %d events in %d chunks, %d segments%s\n", termSafe(id), res.Events, res.Chunks, res.Segments, signed)
		} else {
			bad++
			fmt.Fprintf(c.stdout, "FAIL  %s\n", termSafe(id))
			for _, p := range res.Problems {
				fmt.Fprintf(c.stdout, "      %s\n", termSafe(p.String()))
			}
		}
		for _, w := range res.Warnings {
			fmt.Fprintf(c.stdout, "      note: %s\n", termSafe(w))
		}
	}
	done()
	total := len(ids)
	if c.all {
		// Sessions of which nothing is left, but that a checkpoint lists.
		present := map[string]bool{}
		for _, id := range ids {
			present[id] = true
		}
		problems, err := rd.MissingSessions(ctx, func(id string) bool { return present[id] }, opts)
		if err != nil {
			return c.fail("%v", err)
		}
		seen := map[string]bool{}
		for _, p := range problems {
			if !seen[p.Session] {
				seen[p.Session] = true
				bad++
				total++
				fmt.Fprintf(c.stdout, "FAIL  %s\n", termSafe(cmp.Or(p.Session, "(checkpoints)")))
			}
			fmt.Fprintf(c.stdout, "      %s\n", termSafe(p.String()))
		}
	}
	if bad > 0 {
		fmt.Fprintf(c.stderr, "airlock sessions: %d of %d sessions failed verification\n", bad, total)
		return 1
	}
	if len(ids) == 0 {
		fmt.Fprintln(c.stderr, "no sessions")
	}
	return 0
}

// retention warns when a Cloud Storage sink's bucket has no locked
// retention policy: without one, whoever may delete objects can also
// delete the newest checkpoints, and a rollback is then not evident.
func (c *sessionsCmd) retention(ctx context.Context, sink recorder.Sink) {
	ret, ok, err := recorder.RetentionOf(ctx, sink)
	switch {
	case !ok:
	case err != nil:
		fmt.Fprintf(c.stderr, "warning: the retention policy of %s cannot be read (%v); without a locked one (Bucket Lock), deleted recordings may leave no trace\n", termSafe(sink.String()), err)
	case ret.Period == 0:
		fmt.Fprintf(c.stderr, "warning: the bucket of %s has no retention policy: anyone allowed to delete its objects can remove recordings and checkpoints; lock one (Bucket Lock, see the recorder documentation)\n", termSafe(sink.String()))
	case !ret.Locked:
		fmt.Fprintf(c.stderr, "warning: the retention policy of %s (%s) is not locked: it can still be removed\n", termSafe(sink.String()), ret.Period)
	}
}

func (c *sessionsCmd) export(ctx context.Context, fs *flag.FlagSet) int {
	if c.format != "jsonl" && c.format != "html" {
		return c.usage("--format must be jsonl or html, not %q", c.format)
	}
	s, v, code := c.load(ctx, fs)
	if s == nil {
		return code
	}
	c.banner(c.stderr, v)
	w := c.stdout
	if c.out != "" {
		f, err := os.Create(c.out)
		if err != nil {
			return c.fail("%v", err)
		}
		defer f.Close()
		w = f
	}
	var err error
	if c.format == "jsonl" {
		enc := json.NewEncoder(w)
		for _, e := range s.Events {
			if err = enc.Encode(e); err != nil {
				break
			}
		}
	} else {
		err = sessionsHTML(w, s, v)
	}
	if err != nil {
		return c.fail("export: %v", err)
	}
	return c.failed(v)
}

// sessionsHTML writes a self-contained report: no script, no external
// resource; the console's download is the same report.
func sessionsHTML(w io.Writer, s *recorder.Session, v *recorder.VerifyResult) error {
	return console.WriteHTML(w, s, v)
}

func (c *sessionsCmd) prune(ctx context.Context, fs *flag.FlagSet) int {
	if fs.NArg() != 0 {
		return c.usage("prune takes no arguments")
	}
	if c.olderThan == "" {
		return c.usage("--older-than is required, e.g. --older-than 90d")
	}
	age, err := sessionsParseDuration(c.olderThan)
	if err != nil || age < 24*time.Hour {
		return c.usage("--older-than: want at least 1d, got %q", c.olderThan)
	}
	url, err := c.sinkURL()
	if err != nil {
		return c.fail("%v", err)
	}
	if !strings.HasPrefix(url, "file://") {
		return c.usage("prune works on file:// sinks; for %s set the bucket lifecycle rule (see the recorder documentation)", url)
	}
	rd, _, err := c.reader(ctx)
	if err != nil {
		return c.fail("%v", err)
	}
	cutoff := time.Now().Add(-age)
	if c.dryRun {
		days, err := rd.Days(ctx)
		if err != nil {
			return c.fail("%v", err)
		}
		n := 0
		for _, d := range days {
			if t, err := time.Parse("2006/01/02", d); err == nil && !t.Add(24*time.Hour).After(cutoff) {
				n++
				fmt.Fprintf(c.stdout, "would delete %s\n", d)
			}
		}
		fmt.Fprintf(c.stdout, "%d days older than %s\n", n, cutoff.Format("2006-01-02"))
		return 0
	}
	progress, done := sessionsProgress(c.stderr, "pruning")
	n, err := rd.Prune(ctx, cutoff, progress)
	done()
	if err != nil {
		return c.fail("prune: %v (deleted %d objects)", err, n)
	}
	fmt.Fprintf(c.stdout, "deleted %d objects recorded before %s\n", n, cutoff.Format("2006-01-02"))
	return 0
}
