package approvals_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/approvals"
	"github.com/airlockhq/airlock/identity"
)

// The API says what each caller may do with an approval, by the rules a
// vote must pass: the requester is told to wait for others, an approver
// may vote until they did, an outsider sees nothing.
func TestViewerFollowsTheVoteRules(t *testing.T) {
	s := newService(t, approvals.NewMemoryStore(), approvals.Options{})
	h := approvals.NewHandler(s, tokens, quietLogger())
	id := gate(t, s, request("viewer", func(r *approvals.Request) {
		r.Message = "Production changes need an SRE."
		r.MinApprovals = 2
	})).Approval.ID

	viewer := func(tok string) map[string]any {
		t.Helper()
		code, m := call(t, h, "GET", "/v1/approvals/"+id, tok, "")
		if code != 200 {
			t.Fatalf("%s: GET = %d %v", tok, code, m)
		}
		if m["message"] != "Production changes need an SRE." {
			t.Errorf("the rule's message is missing: %v", m["message"])
		}
		v, _ := m["viewer"].(map[string]any)
		return v
	}
	if v := viewer("tok-agent"); v["can_vote"] != false || v["is_requester"] != true || !strings.Contains(v["why_not"].(string), "own request") {
		t.Errorf("requester's viewer = %v", v)
	}
	if v := viewer("tok-sre1"); v["can_vote"] != true || v["is_requester"] != false || v["voted"] != false {
		t.Errorf("approver's viewer = %v", v)
	}
	if code, _ := call(t, h, "POST", "/v1/approvals/"+id+":approve", "tok-sre1", `{"reason":"ok"}`); code != 200 {
		t.Fatalf("vote = %d", code)
	}
	if v := viewer("tok-sre1"); v["can_vote"] != false || v["voted"] != true || !strings.Contains(v["why_not"].(string), "already voted") {
		t.Errorf("after voting, viewer = %v", v)
	}
	_, m := call(t, h, "GET", "/v1/approvals?state=pending", "tok-sre2", "")
	list, _ := m["approvals"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["viewer"].(map[string]any)["can_vote"] != true {
		t.Errorf("list viewer = %v", m)
	}
	if got := s.ApproveURL(id); got != "https://airlock.example.com/approvals/"+id {
		t.Errorf("approve_url = %q, want the console's /approvals/ID", got)
	}
}

// A console sign-in stands for a bearer token; its refusal (a failed CSRF
// check) is a 403 that no vote gets past; a bearer token wins over it.
func TestHandlerSession(t *testing.T) {
	s := newService(t, approvals.NewMemoryStore(), approvals.Options{})
	errCSRF := errors.New("cross-site request refused")
	h := approvals.NewHandlerWith(s, tokens, quietLogger(), approvals.HandlerOptions{
		Session: func(r *http.Request) (identity.Identity, bool, error) {
			c, err := r.Cookie("s")
			if err != nil {
				return identity.Identity{}, false, nil
			}
			if r.Method == http.MethodPost && r.Header.Get("X-CSRF") != "ok" {
				return identity.Identity{}, false, errCSRF
			}
			id, ok := map[string]identity.Identity{"sre1": sre1, "agent": requester}[c.Value]
			return id, ok, nil
		},
		PolicyDiff: func(_ context.Context, a approvals.Approval) (any, error) {
			return map[string]string{"for": a.ID}, nil
		},
	})
	id := gate(t, s, request("session")).Approval.ID
	do := func(method, path, cookie, csrf, bearer string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(`{"reason":"fine"}`))
		if cookie != "" {
			req.AddCookie(&http.Cookie{Name: "s", Value: cookie})
		}
		if csrf != "" {
			req.Header.Set("X-CSRF", csrf)
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	if rec := do("GET", "/v1/approvals/"+id, "sre1", "", ""); rec.Code != 200 || !strings.Contains(rec.Body.String(), `"can_vote": true`) {
		t.Fatalf("signed-in GET = %d %s", rec.Code, rec.Body)
	}
	if rec := do("POST", "/v1/approvals/"+id+":approve", "sre1", "", ""); rec.Code != 403 || !strings.Contains(rec.Body.String(), "cross-site request refused") {
		t.Fatalf("POST without CSRF = %d %s", rec.Code, rec.Body)
	}
	if a, _ := s.Get(context.Background(), id); len(a.Votes) != 0 {
		t.Fatal("a vote without CSRF landed")
	}
	if rec := do("GET", "/v1/approvals/"+id, "nobody", "", ""); rec.Code != 401 {
		t.Fatalf("unknown sign-in = %d", rec.Code)
	}
	// The bearer token decides when both are sent: the agent's token with
	// an approver's cookie is still the agent.
	if rec := do("POST", "/v1/approvals/"+id+":approve", "sre1", "ok", "tok-agent"); rec.Code != 403 || !strings.Contains(rec.Body.String(), "own request") {
		t.Fatalf("bearer plus cookie = %d %s", rec.Code, rec.Body)
	}
	if rec := do("GET", "/v1/approvals/"+id+":policyDiff", "agent", "", ""); rec.Code != 200 || !strings.Contains(rec.Body.String(), id) {
		t.Fatalf("policy diff for the requester = %d %s", rec.Code, rec.Body)
	}
	if rec := do("GET", "/v1/approvals/"+id+":policyDiff", "", "", "tok-out"); rec.Code != 403 {
		t.Fatalf("policy diff for an outsider = %d %s", rec.Code, rec.Body)
	}
	if rec := do("POST", "/v1/approvals/"+id+":approve", "sre1", "ok", ""); rec.Code != 200 || !strings.Contains(rec.Body.String(), `"state": "approved"`) {
		t.Fatalf("signed-in vote = %d %s", rec.Code, rec.Body)
	}
}
