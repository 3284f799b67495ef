package approvals_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
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
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/approvals", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "/v1/approvals?state=pending") {
		t.Fatalf("page = %d", rec.Code)
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
