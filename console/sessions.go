package console

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/airlockhq/airlock/approvals"
	"github.com/airlockhq/airlock/handoff"
	"github.com/airlockhq/airlock/identity"
	"github.com/airlockhq/airlock/recorder"
)

// Paging of the sessions list.
const (
	defaultSessionPage = 50
	maxSessionPage     = 200
	// maxEventsShown bounds the events one session page carries.
	maxEventsShown = 20000
	// readTimeout bounds one read of the sink.
	readTimeout = 60 * time.Second
)

type sessionJSON struct {
	ID        string           `json:"id"`
	First     time.Time        `json:"first"`
	Last      time.Time        `json:"last"`
	Events    int64            `json:"events"`
	Requests  int64            `json:"requests"`
	Subjects  []string         `json:"subjects"`
	Actors    []string         `json:"actors"`
	Methods   []string         `json:"methods"`
	Decisions map[string]int64 `json:"decisions"`
	Segments  int              `json:"segments"`
	Broken    []string         `json:"broken,omitempty"`
}

type sessionPageToken struct {
	Offset int    `json:"o"`
	Filter string `json:"f"`
}

// listSessions is GET /v1/sessions: auditors only.
func (c *Console) listSessions(w http.ResponseWriter, r *http.Request) {
	caller, ok := c.caller(w, r)
	if !ok {
		return
	}
	if c.o.Sessions == nil {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "console: recording is off on this server (recorder.enabled), so there are no sessions to browse")
		return
	}
	if !c.IsAuditor(caller) {
		writeError(w, http.StatusForbidden, "PERMISSION_DENIED", "console: only auditors (console.auditors) browse sessions; an approver opens the session of an approval from the approval's page")
		return
	}
	q := r.URL.Query()
	var f recorder.Filter
	var err error
	if f.Since, err = parseTime(q.Get("since")); err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "console: since: "+err.Error())
		return
	}
	if f.Until, err = parseTime(q.Get("until")); err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "console: until: "+err.Error())
		return
	}
	f.Subject, f.Actor, f.Method, f.Decision = q.Get("subject"), q.Get("actor"), q.Get("method"), q.Get("decision")
	text := strings.ToLower(strings.TrimSpace(q.Get("q")))
	size := defaultSessionPage
	if v := q.Get("page_size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxSessionPage {
			writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", fmt.Sprintf("console: page_size must be between 1 and %d", maxSessionPage))
			return
		}
		size = n
	}
	filterKey := strings.Join([]string{q.Get("since"), q.Get("until"), f.Subject, f.Actor, f.Method, f.Decision, text}, "\x00")
	offset := 0
	if tok := q.Get("page_token"); tok != "" {
		var pt sessionPageToken
		b, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil || len(tok) > 4096 || json.Unmarshal(b, &pt) != nil || pt.Offset < 0 || pt.Filter != filterKey {
			writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "console: page_token is not one this list returned with the same filters; start again without it")
			return
		}
		offset = pt.Offset
	}
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	list, err := c.o.Sessions.List(ctx, f, nil)
	if err != nil {
		c.log.Warn("console: listing sessions failed", "err", err)
		writeError(w, http.StatusServiceUnavailable, "UNAVAILABLE", "console: the session store (recorder.sink) could not be read; retry shortly")
		return
	}
	var matched []*recorder.SessionInfo
	for _, s := range list {
		if text == "" || matchesText(s, text) {
			matched = append(matched, s)
		}
	}
	out := []sessionJSON{}
	for i := offset; i < len(matched) && len(out) < size; i++ {
		s := matched[i]
		out = append(out, sessionJSON{ID: s.ID, First: s.Summary.First, Last: s.Summary.Last, Events: s.Events, Requests: s.Summary.Requests,
			Subjects: nonNil(s.Summary.Subjects), Actors: nonNil(s.Summary.Actors), Methods: nonNil(s.Summary.Methods),
			Decisions: s.Summary.Decisions, Segments: len(s.Segments), Broken: s.Broken})
	}
	body := map[string]any{"sessions": out, "total": len(matched)}
	if next := offset + len(out); next < len(matched) {
		b, _ := json.Marshal(sessionPageToken{Offset: next, Filter: filterKey})
		body["next_page_token"] = base64.RawURLEncoding.EncodeToString(b)
	}
	writeJSON(w, http.StatusOK, body)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func matchesText(s *recorder.SessionInfo, text string) bool {
	fields := append([]string{s.ID}, s.Summary.Subjects...)
	fields = append(fields, s.Summary.Actors...)
	fields = append(fields, s.Summary.Methods...)
	for _, f := range fields {
		if strings.Contains(strings.ToLower(f), text) {
			return true
		}
	}
	return false
}

// parseTime reads RFC 3339 or YYYY-MM-DD ("" is no bound).
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a YYYY-MM-DD date", clip(s, 40))
}

// mayRead decides whether caller may read session id: an auditor may read
// any; an approver may read the session of an approval they may decide,
// named by ?approval=ID. It writes the refusal itself.
func (c *Console) mayRead(w http.ResponseWriter, r *http.Request, caller identity.Identity, id string) (approvalID string, ok bool) {
	if c.o.Sessions == nil {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "console: recording is off on this server (recorder.enabled)")
		return "", false
	}
	if !handoff.ValidSessionID(id) {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "console: "+strconv.Quote(clip(id, 80))+" is not a session id")
		return "", false
	}
	if c.IsAuditor(caller) {
		return r.URL.Query().Get("approval"), true
	}
	aid := r.URL.Query().Get("approval")
	if aid == "" {
		writeError(w, http.StatusForbidden, "PERMISSION_DENIED", "console: only auditors (console.auditors) read any session; an approver reads the session of an approval they decide, from its page")
		return "", false
	}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	a, err := c.o.Approvals.Get(ctx, aid)
	switch {
	case errors.Is(err, approvals.ErrInvalid), errors.Is(err, approvals.ErrNotFound):
		writeError(w, http.StatusForbidden, "PERMISSION_DENIED", "console: no approval "+strconv.Quote(clip(aid, 40))+" leads to this session")
		return "", false
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, "UNAVAILABLE", "console: the approval store is unavailable; retry shortly")
		return "", false
	}
	if !approvals.IsApprover(a.Request.Approvers, caller) || a.Request.SessionID != id {
		writeError(w, http.StatusForbidden, "PERMISSION_DENIED", "console: you are not an approver of an approval in this session")
		return "", false
	}
	return aid, true
}

// audit records the read before anything is shown; without the trace,
// nothing is shown.
func (c *Console) audit(w http.ResponseWriter, r *http.Request, a Access) bool {
	a.Time = c.now().UTC()
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	if err := c.o.Audit(ctx, a); err != nil {
		c.log.Error("console: an auditor's read could not be recorded; refused", "session", a.Session, "viewer", a.Viewer.Subject, "err", err)
		writeError(w, http.StatusServiceUnavailable, "UNAVAILABLE", "console: your access to this session could not be recorded, so it is not shown; retry shortly")
		return false
	}
	c.log.Info("console session read", "session", a.Session, "action", a.Action, "viewer", a.Viewer.Subject, "email", a.Viewer.Email, "approval", a.Approval)
	return true
}

type verificationJSON struct {
	OK          bool          `json:"ok"`
	Events      int64         `json:"events"`
	Chunks      int           `json:"chunks"`
	Segments    int           `json:"segments"`
	Signed      int           `json:"signed"`
	Checkpoints int           `json:"checkpoints"`
	Problems    []problemJSON `json:"problems"`
	Warnings    []string      `json:"warnings"`
}

type problemJSON struct {
	Segment string `json:"segment,omitempty"`
	Chunk   string `json:"chunk,omitempty"`
	Seq     int64  `json:"seq"`
	Message string `json:"message"`
	Text    string `json:"text"`
}

type eventJSON struct {
	// Verification is verified, altered or unverified.
	Verification string          `json:"verification"`
	Chunk        string          `json:"chunk,omitempty"`
	Event        *recorder.Event `json:"event"`
}

// load reads and verifies a session for a person allowed to read it.
func (c *Console) load(w http.ResponseWriter, r *http.Request, id string) (*recorder.Session, *recorder.VerifyResult, bool) {
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	s, v, err := c.o.Sessions.LoadVerified(ctx, id, c.o.Verify, nil)
	if errors.Is(err, recorder.ErrNotExist) {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "console: no session "+id+" in the recordings (a session being recorded reaches the sink within a minute)")
		return nil, nil, false
	}
	if err != nil {
		c.log.Warn("console: reading a session failed", "session", id, "err", err)
		writeError(w, http.StatusServiceUnavailable, "UNAVAILABLE", "console: the session store (recorder.sink) could not be read; retry shortly")
		return nil, nil, false
	}
	return s, v, true
}

// getSession is GET /v1/sessions/{id}: the timeline with each event's
// verification.
func (c *Console) getSession(w http.ResponseWriter, r *http.Request) {
	caller, ok := c.caller(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	aid, ok := c.mayRead(w, r, caller, id)
	if !ok || !c.audit(w, r, Access{Viewer: caller, Session: id, Action: "view", Approval: aid}) {
		return
	}
	s, v, ok := c.load(w, r, id)
	if !ok {
		return
	}
	marks := Marks(s, v)
	vj := verificationJSON{OK: v.OK(), Events: v.Events, Chunks: v.Chunks, Segments: v.Segments, Signed: v.Signed,
		Checkpoints: v.Checkpoints, Problems: []problemJSON{}, Warnings: nonNil(v.Warnings)}
	for _, p := range v.Problems {
		vj.Problems = append(vj.Problems, problemJSON{Segment: p.Segment, Chunk: p.Chunk, Seq: p.Seq, Message: p.Message, Text: p.String()})
	}
	events := make([]eventJSON, 0, min(len(s.Events), maxEventsShown))
	for i, e := range s.Events {
		if i == maxEventsShown {
			break
		}
		state := "verified"
		switch marks[e] {
		case MarkAltered:
			state = "altered"
		case MarkUnverified:
			state = "unverified"
		}
		events = append(events, eventJSON{Verification: state, Chunk: s.Chunks[e], Event: e})
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id": s.ID, "verification": vj, "warnings": nonNil(s.Warnings), "events": events,
		"total_events": len(s.Events), "truncated": len(s.Events) > maxEventsShown,
	})
}

// downloadSession is GET /v1/sessions/{id}/download?format=jsonl|html.
func (c *Console) downloadSession(w http.ResponseWriter, r *http.Request) {
	caller, ok := c.caller(w, r)
	if !ok {
		return
	}
	format := r.URL.Query().Get("format")
	if format != "jsonl" && format != "html" {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "console: format must be jsonl or html")
		return
	}
	id := r.PathValue("id")
	aid, ok := c.mayRead(w, r, caller, id)
	if !ok || !c.audit(w, r, Access{Viewer: caller, Session: id, Action: "export", Format: format, Approval: aid}) {
		return
	}
	s, v, ok := c.load(w, r, id)
	if !ok {
		return
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	h.Set("X-Airlock-Verified", strconv.FormatBool(v.OK()))
	if format == "jsonl" {
		h.Set("Content-Type", "application/x-ndjson")
		h.Set("Content-Disposition", `attachment; filename="airlock-session-`+s.ID+`.jsonl"`)
		enc := json.NewEncoder(w)
		for _, e := range s.Events {
			if err := enc.Encode(e); err != nil {
				return
			}
		}
		return
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="airlock-session-`+s.ID+`.html"`)
	_ = WriteHTML(w, s, v)
}
