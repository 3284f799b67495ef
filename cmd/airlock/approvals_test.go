package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/approvals"
	"github.com/airlockhq/airlock/approvals/storetest"
	"github.com/airlockhq/airlock/identity"
)

type approvalsFakeVerifier map[string]identity.Identity

func (f approvalsFakeVerifier) Verify(_ context.Context, raw string) (identity.Identity, error) {
	if id, ok := f[raw]; ok {
		return id, nil
	}
	return identity.Identity{}, &identity.Error{Kind: identity.BadSignature, Msg: "signature does not verify"}
}

func TestRunApprovals(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := approvals.NewService(approvals.NewMemoryStore(), approvals.Options{Logger: log})
	defer svc.Close()
	srv := httptest.NewServer(approvals.NewHandler(svc, approvalsFakeVerifier{
		"tok-sre": {Subject: "sre-1", Email: "ann@example.com", Groups: []string{"sre"}},
		"tok-dev": {Subject: "dev-1", Email: "dev@example.com"},
	}, log))
	defer srv.Close()
	ctx := context.Background()
	mk := func(name string) string {
		o, err := svc.Gate(ctx, approvals.Request{
			Fingerprint: storetest.FP(name),
			Subject:     "agent", Email: "bot@example.com", Operation: "compute.instances.delete",
			Method: "DELETE", URL: "https://compute.googleapis.com/" + name, Rule: "prod-writes",
			Approvers: []string{"group:sre"}, TTL: time.Minute,
		}, 0)
		if err != nil {
			t.Fatal(err)
		}
		return o.Approval.ID
	}
	id1, id2 := mk("a"), mk("b")
	page, err := svc.List(ctx, approvals.ListOptions{State: approvals.StatePending, PageSize: 1})
	if err != nil || len(page.Approvals) != 1 || page.NextPageToken == "" {
		t.Fatalf("first page = %+v, %v", page, err)
	}
	firstToken := page.NextPageToken
	// The approval on the second page (created in the same millisecond,
	// the id orders them).
	older := id1
	if page.Approvals[0].ID == id1 {
		older = id2
	}
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := runApprovals(ctx, append([]string{args[0], "--server", srv.URL}, args[1:]...), &out, &errb)
		return code, out.String(), errb.String()
	}
	t.Setenv("AIRLOCK_TOKEN", "tok-sre")

	tests := []struct {
		name       string
		args       []string
		code       int
		out, errIn string
	}{
		{"list", []string{"list"}, 0, id1, ""},
		{"list follows pages", []string{"list", "--page-size", "1"}, 0, older, ""},
		{"list follows pages json", []string{"list", "--page-size", "1", "--json"}, 0, older, ""},
		{"list one page", []string{"list", "--page-size", "1", "--page-token", firstToken}, 0, older, ""},
		{"list bad page token", []string{"list", "--page-token", "zz"}, 1, "", "page_token"},
		{"list bad page size", []string{"list", "--page-size", "501"}, 2, "", "--page-size"},
		{"show", []string{"show", id1}, 0, "compute.instances.delete", ""},
		{"show malformed", []string{"show", "nope"}, 2, "", "not an approval ID"},
		{"show unknown", []string{"show", approvals.NewID()}, 1, "", "not found"},
		{"deny needs reason", []string{"deny", id2}, 2, "", "--reason is required"},
		{"non-approver", []string{"approve", id1, "--token", "tok-dev"}, 1, "", "not an approver"},
		{"bad token", []string{"list", "--token", "forged"}, 1, "", "token refused"},
		{"approve", []string{"approve", id1, "--reason", "ok"}, 0, "now approved", ""},
		{"deny", []string{"deny", "--reason", "freeze", id2}, 0, "now denied", ""},
		{"approve decided", []string{"approve", id2}, 1, "", "already decided"},
		{"list pending empty", []string{"list"}, 0, "no approvals", ""},
		{"list denied json", []string{"list", "--state", "denied", "--json"}, 0, `"reason": "freeze"`, ""},
		{"unknown command", []string{"frobnicate"}, 2, "", "unknown command"},
		{"bad server", []string{"list", "--server", "ftp://x"}, 2, "", "--server"},
	}
	for _, tc := range tests {
		code, out, errs := run(tc.args...)
		if code != tc.code || !strings.Contains(out, tc.out) || !strings.Contains(errs, tc.errIn) {
			t.Errorf("%s: code %d out %q err %q; want code %d, out with %q, err with %q", tc.name, code, out, errs, tc.code, tc.out, tc.errIn)
		}
	}
	t.Setenv("AIRLOCK_TOKEN", "")
	if code, _, errs := run("list"); code != 2 || !strings.Contains(errs, "AIRLOCK_TOKEN") {
		t.Errorf("no token: %d %q", code, errs)
	}
}
