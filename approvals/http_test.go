package approvals_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airlockhq/airlock/approvals"
	"github.com/airlockhq/airlock/identity"
)

// fakeVerifier maps tokens to identities.
type fakeVerifier map[string]identity.Identity

func (f fakeVerifier) Verify(_ context.Context, raw string) (identity.Identity, error) {
	if id, ok := f[raw]; ok {
		return id, nil
	}
	return identity.Identity{}, &identity.Error{Kind: identity.BadSignature, Msg: "signature does not verify"}
}

var tokens = fakeVerifier{"tok-agent": requester, "tok-sre1": sre1, "tok-sre2": sre2, "tok-out": outsider}

func call(t *testing.T, h http.Handler, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var m map[string]any
	if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
			t.Fatalf("%s %s: bad JSON %q", method, path, rec.Body.String())
		}
	}
	return rec.Code, m
}

func errStatus(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	s, _ := e["status"].(string)
	return s
}

func TestHandler(t *testing.T) {
	s := newService(t, approvals.NewMemoryStore(), approvals.Options{})
	h := approvals.NewHandler(s, tokens, quietLogger())
	id := gate(t, s, request("api")).Approval.ID
	decided := gate(t, s, request("api-decided")).Approval.ID
	if _, err := s.Vote(context.Background(), decided, sre1, false, "no"); err != nil {
		t.Fatal(err)
	}

	code, m := call(t, h, "GET", "/v1/approvals?state=pending", "tok-sre1", "")
	list, _ := m["approvals"].([]any)
	if code != 200 || len(list) != 1 {
		t.Fatalf("list = %d %v", code, m)
	}
	first := list[0].(map[string]any)
	for _, k := range []string{"id", "state", "requester", "actor", "operation", "method", "url", "rule", "votes", "expires_at", "approvers", "resource"} {
		if _, ok := first[k]; !ok {
			t.Errorf("approval JSON lacks %q: %v", k, first)
		}
	}
	if first["id"] != id || first["state"] != "pending" || first["requester"] != "bot@example.com" {
		t.Errorf("approval JSON = %v", first)
	}

	tests := []struct {
		name, method, path, token, body string
		code                            int
		status                          string
	}{
		{"no token", "GET", "/v1/approvals", "", "", 401, "UNAUTHENTICATED"},
		{"bad token", "GET", "/v1/approvals", "nope", "", 401, "UNAUTHENTICATED"},
		{"bad state", "GET", "/v1/approvals?state=weird", "tok-sre1", "", 400, "INVALID_ARGUMENT"},
		{"show", "GET", "/v1/approvals/" + id, "tok-sre1", "", 200, ""},
		{"show to requester", "GET", "/v1/approvals/" + id, "tok-agent", "", 200, ""},
		{"show to outsider", "GET", "/v1/approvals/" + id, "tok-out", "", 403, "PERMISSION_DENIED"},
		{"malformed id", "GET", "/v1/approvals/xyz", "tok-sre1", "", 400, "INVALID_ARGUMENT"},
		{"unknown id", "GET", "/v1/approvals/" + approvals.NewID(), "tok-sre1", "", 404, "NOT_FOUND"},
		{"unknown verb", "POST", "/v1/approvals/" + id + ":maybe", "tok-sre1", "", 404, "NOT_FOUND"},
		{"bad body", "POST", "/v1/approvals/" + id + ":approve", "tok-sre1", `{"reason": 3}`, 400, "INVALID_ARGUMENT"},
		{"unknown field", "POST", "/v1/approvals/" + id + ":approve", "tok-sre1", `{"why": "x"}`, 400, "INVALID_ARGUMENT"},
		{"oversized reason", "POST", "/v1/approvals/" + id + ":approve", "tok-sre1", `{"reason": "` + strings.Repeat("x", 2000) + `"}`, 400, "INVALID_ARGUMENT"},
		{"oversized body", "POST", "/v1/approvals/" + id + ":approve", "tok-sre1", `{"reason": "` + strings.Repeat("x", 20000) + `"}`, 413, "INVALID_ARGUMENT"},
		{"self-approval", "POST", "/v1/approvals/" + id + ":approve", "tok-agent", `{}`, 403, "PERMISSION_DENIED"},
		{"not an approver", "POST", "/v1/approvals/" + id + ":approve", "tok-out", `{}`, 403, "PERMISSION_DENIED"},
		{"already decided", "POST", "/v1/approvals/" + decided + ":approve", "tok-sre2", `{}`, 409, "ABORTED"},
		{"deny without reason", "POST", "/v1/approvals/" + id + ":deny", "tok-sre1", ``, 400, "INVALID_ARGUMENT"},
		{"approve", "POST", "/v1/approvals/" + id + ":approve", "tok-sre1", `{"reason": "ok"}`, 200, ""},
		{"approve again", "POST", "/v1/approvals/" + id + ":approve", "tok-sre2", `{"reason": "ok"}`, 409, "ABORTED"},
	}
	for _, tc := range tests {
		code, m := call(t, h, tc.method, tc.path, tc.token, tc.body)
		if code != tc.code || errStatus(m) != tc.status {
			t.Errorf("%s: %d %q, want %d %q (%v)", tc.name, code, errStatus(m), tc.code, tc.status, m)
		}
		if code >= 400 {
			e, _ := m["error"].(map[string]any)
			if msg, _ := e["message"].(string); msg == "" || e["code"] != float64(code) {
				t.Errorf("%s: error body %v lacks message or code", tc.name, m)
			}
		}
	}
	_, m = call(t, h, "GET", "/v1/approvals/"+id, "tok-sre1", "")
	votes, _ := m["votes"].([]any)
	if m["state"] != "approved" || len(votes) != 1 || votes[0].(map[string]any)["reason"] != "ok" || votes[0].(map[string]any)["email"] != sre1.Email {
		t.Fatalf("after approve: %v", m)
	}

	if _, m := call(t, h, "GET", "/v1/approvals", "tok-out", ""); len(m["approvals"].([]any)) != 0 {
		t.Errorf("outsider sees approvals: %v", m)
	}
}

func TestHandlerExpired(t *testing.T) {
	now := time.Now()
	var mu sync.Mutex
	clock := now
	s := newService(t, approvals.NewMemoryStore(), approvals.Options{Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }})
	h := approvals.NewHandler(s, tokens, quietLogger())
	id := gate(t, s, request("exp")).Approval.ID
	mu.Lock()
	clock = now.Add(time.Hour)
	mu.Unlock()
	code, m := call(t, h, "POST", "/v1/approvals/"+id+":approve", "tok-sre1", `{"reason":"late"}`)
	if code != 409 || errStatus(m) != "FAILED_PRECONDITION" || !strings.Contains(m["error"].(map[string]any)["message"].(string), "expired") {
		t.Fatalf("vote on expired = %d %v", code, m)
	}
	_, m = call(t, h, "GET", "/v1/approvals/"+id, "tok-sre1", "")
	if m["state"] != "expired" {
		t.Fatalf("state = %v", m["state"])
	}
}

func TestWebhook(t *testing.T) {
	var mu sync.Mutex
	var got []map[string]any
	fails := 1
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if fails > 0 { // the first delivery fails: it must be retried
			fails--
			w.WriteHeader(500)
			return
		}
		var m map[string]any
		_ = json.NewDecoder(r.Body).Decode(&m)
		got = append(got, m)
	}))
	defer srv.Close()
	dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }))
	defer dead.Close()
	s := newService(t, approvals.NewMemoryStore(), approvals.Options{Webhooks: []string{srv.URL}})
	id := gate(t, s, request("hook")).Approval.ID
	start := time.Now()
	if _, err := s.Vote(context.Background(), id, sre1, false, "freeze"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("vote blocked on the webhook for %v", d)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook got %d posts, want 2", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if got[0]["event"] != "pending" || !strings.Contains(got[0]["text"].(string), "Approval needed") || got[0]["approval"].(map[string]any)["id"] != id {
		t.Errorf("pending post = %v", got[0])
	}
	if got[1]["event"] != "denied" || !strings.Contains(got[1]["text"].(string), "freeze") {
		t.Errorf("decision post = %v", got[1])
	}
}

func TestWebhookQueueBounded(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	defer srv.Close()
	defer close(block)
	s := approvals.NewService(approvals.NewMemoryStore(), approvals.Options{Webhooks: []string{srv.URL}, Logger: quietLogger(), MaxPendingPerSubject: -1})
	start := time.Now()
	for i := 0; i < 400; i++ {
		gate(t, s, request(strings.Repeat("q", 1)+string(rune('a'+i%26))+string(rune('a'+i/26))))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("400 gates took %v with a stuck webhook", d)
	}
	if s.WebhookDrops() == 0 {
		t.Fatal("no drops counted with a stuck webhook and a full queue")
	}
}

// listAll follows next_page_token and returns every approval id seen.
func listAll(t *testing.T, h http.Handler, query, token string) ([]string, int) {
	t.Helper()
	var ids []string
	pages := 0
	next := ""
	for {
		q := query
		if next != "" {
			q += "&page_token=" + url.QueryEscape(next)
		}
		code, m := call(t, h, "GET", "/v1/approvals?"+q, token, "")
		if code != 200 {
			t.Fatalf("list %s: %d %v", q, code, m)
		}
		pages++
		for _, a := range m["approvals"].([]any) {
			ids = append(ids, a.(map[string]any)["id"].(string))
		}
		n, _ := m["next_page_token"].(string)
		if n == "" {
			return ids, pages
		}
		if pages > 100 {
			t.Fatal("list does not end")
		}
		next = n
	}
}

// TestListPagesPastTheNewest500: every approval is reachable by paging,
// none twice, newest first; filtering by caller and state still applies.
func TestListPagesPastTheNewest500(t *testing.T) {
	now := time.Now()
	var tick atomic.Int64
	s := newService(t, approvals.NewMemoryStore(), approvals.Options{MaxPendingPerSubject: -1, Now: func() time.Time {
		return now.Add(time.Duration(tick.Add(1)) * time.Millisecond)
	}})
	h := approvals.NewHandler(s, tokens, quietLogger())
	want := map[string]bool{}
	var oldest string
	for i := 0; i < 620; i++ {
		id := gate(t, s, request(fmt.Sprint("many-", i))).Approval.ID
		want[id] = true
		if i == 0 {
			oldest = id
		}
	}
	decided := gate(t, s, request("decided")).Approval.ID
	if _, err := s.Vote(context.Background(), decided, sre1, false, "no"); err != nil {
		t.Fatal(err)
	}
	for _, size := range []string{"", "page_size=500", "page_size=7"} {
		ids, pages := listAll(t, h, "state=pending&"+size, "tok-sre1")
		if len(ids) != len(want) {
			t.Fatalf("%s: %d approvals in %d pages, want %d", size, len(ids), pages, len(want))
		}
		seen := map[string]bool{}
		for _, id := range ids {
			if !want[id] || seen[id] {
				t.Fatalf("%s: %s unexpected or repeated", size, id)
			}
			seen[id] = true
		}
		if ids[len(ids)-1] != oldest {
			t.Fatalf("%s: the oldest approval is not last", size)
		}
	}
	if ids, _ := listAll(t, h, "state=denied", "tok-sre1"); len(ids) != 1 || ids[0] != decided {
		t.Fatalf("denied = %v", ids)
	}
	if ids, _ := listAll(t, h, "state=pending", "tok-out"); len(ids) != 0 {
		t.Fatalf("an outsider sees %d approvals", len(ids))
	}
	code, m := call(t, h, "GET", "/v1/approvals?state=pending&page_size=2", "tok-sre1", "")
	tok, _ := m["next_page_token"].(string)
	if code != 200 || len(m["approvals"].([]any)) != 2 || tok == "" {
		t.Fatalf("first page = %d %v", code, m)
	}
	for name, q := range map[string]string{
		"page_size 0":         "page_size=0",
		"page_size 501":       "page_size=501",
		"page_size text":      "page_size=ten",
		"forged token":        "page_token=" + url.QueryEscape(tok[:len(tok)-2]+"xx"),
		"garbage token":       "page_token=%00%01",
		"token of a state":    "state=approved&page_token=" + url.QueryEscape(tok),
		"token without state": "page_token=" + url.QueryEscape(tok),
	} {
		if code, m := call(t, h, "GET", "/v1/approvals?"+q, "tok-sre1", ""); code != 400 || errStatus(m) != "INVALID_ARGUMENT" {
			t.Errorf("%s: %d %v", name, code, m)
		}
	}
}

func TestUnverifiedEmailCannotReadOrVote(t *testing.T) {
	s := newService(t, approvals.NewMemoryStore(), approvals.Options{})
	v := fakeVerifier{
		"tok-carol-unverified": identity.Identity{Subject: "mallory", Email: "carol@example.com"},
		"tok-carol-subject":    identity.Identity{Subject: "carol@example.com"},
		"tok-carol":            identity.Identity{Subject: "carol-1", Email: "carol@example.com", EmailVerified: true},
		"tok-delegated":        identity.Identity{Subject: "sre-1", Email: "ann@example.com", Groups: []string{"sre"}, Actor: "agent-1"},
	}
	h := approvals.NewHandler(s, v, quietLogger())
	id := gate(t, s, request("email", func(r *approvals.Request) { r.Approvers = []string{"user:carol@example.com", "group:sre"} })).Approval.ID
	for _, tok := range []string{"tok-carol-unverified", "tok-carol-subject"} {
		if code, _ := call(t, h, "GET", "/v1/approvals/"+id, tok, ""); code != 403 {
			t.Errorf("%s reads the approval: %d", tok, code)
		}
		if ids, _ := listAll(t, h, "state=pending", tok); len(ids) != 0 {
			t.Errorf("%s lists %d approvals", tok, len(ids))
		}
		if code, _ := call(t, h, "POST", "/v1/approvals/"+id+":approve", tok, `{"reason":"ok"}`); code != 403 {
			t.Errorf("%s votes: %d", tok, code)
		}
	}
	code, m := call(t, h, "POST", "/v1/approvals/"+id+":approve", "tok-delegated", `{"reason":"ok"}`)
	if msg, _ := m["error"].(map[string]any)["message"].(string); code != 403 || errStatus(m) != "PERMISSION_DENIED" || !strings.Contains(msg, "approving is a human act") {
		t.Errorf("a delegated vote: %d %v", code, m)
	}
	if code, m := call(t, h, "POST", "/v1/approvals/"+id+":approve", "tok-carol", `{"reason":"ok"}`); code != 200 || m["state"] != "approved" {
		t.Errorf("a verified e-mail's vote: %d %v", code, m)
	}
}
