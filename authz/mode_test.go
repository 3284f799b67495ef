package authz

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/approvals"
	"github.com/airlockhq/airlock/masking"
)

// A dry run asks for nothing; asking ahead opens the approval the real
// request then meets, with the justification masked; asking again for an
// approved once grant does not spend it.
func TestDryRunAndRequestApproval(t *testing.T) {
	e, svc := approvalEngine(t, approvalPolicy, approvals.Options{DefaultTTL: 10 * time.Minute, PublicURL: "https://airlock.example"}, withMCP(Options{
		MaskBody: func(b []byte, _ []masking.Rule) []byte {
			return []byte(strings.ReplaceAll(string(b), "AIzaSyA1234567890abcdefghijklmnopqrstuv", "[MASKED:gcp_api_key]"))
		},
	}))
	const stop = "https://compute.googleapis.com/compute/v1/projects/acme-prod/zones/us-east1-b/instances/web-1/stop"
	dry := send("POST", stop, "")
	dry.Mode = ModeDryRun
	res := e.Decide(context.Background(), dry)
	if res.Outcome != ApprovalRequired || res.Approval != nil || !strings.Contains(res.Refusal.Message, "dry run: nothing was asked") {
		t.Fatalf("dry run: %s %+v", res.Outcome, res.Refusal)
	}
	if list, _ := svc.List(context.Background(), approvals.ListOptions{}); len(list.Approvals) != 0 {
		t.Fatalf("a dry run opened %d approvals", len(list.Approvals))
	}
	ask := send("POST", stop, "")
	ask.Mode, ask.Justification = ModeRequestApproval, "restart after the config push (key AIzaSyA1234567890abcdefghijklmnopqrstuv)"
	res = e.Decide(context.Background(), ask)
	id := pendingID(t, res)
	a, err := svc.Get(context.Background(), id)
	if err != nil || !strings.Contains(a.Request.Justification, "restart after the config push") || strings.Contains(a.Request.Justification, "AIza") {
		t.Fatalf("justification %q (%v)", a.Request.Justification, err)
	}
	// The real request meets the same approval.
	if got := pendingID(t, e.Decide(context.Background(), send("POST", stop, ""))); got != id {
		t.Fatalf("the request met %s, not %s", got, id)
	}
	// Approved once: asking again finds it and leaves it unspent.
	once := strings.Replace(approvalPolicy, "grant: window", "grant: once", 1)
	e2, svc2 := approvalEngine(t, once, approvals.Options{DefaultTTL: 10 * time.Minute}, withMCP(Options{}))
	id2 := approve(t, e2, svc2, send("POST", stop, ""))
	ask.Justification = ""
	if res := e2.Decide(context.Background(), ask); res.Outcome != Allowed || res.Approval == nil || res.Approval.ID != id2 {
		t.Fatalf("ask again: %s %+v", res.Outcome, res.Refusal)
	}
	if res := e2.Decide(context.Background(), send("POST", stop, "")); res.Outcome != Allowed {
		t.Fatalf("asking ahead spent the once grant: %s", res.Outcome)
	}
	if res := e2.Decide(context.Background(), send("POST", stop, "")); res.Outcome != ApprovalRequired {
		t.Fatalf("the once grant admitted twice: %s", res.Outcome)
	}
}
