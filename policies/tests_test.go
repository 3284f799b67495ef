package policies

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/gcp"
)

func TestRunTests(t *testing.T) {
	set := mustLoad(t, `name: p
default: deny
rules:
  - name: reads
    when: gcp.readonly && "ai-agents" in identity.groups
    action: allow
  - name: deletes
    when: request.method == "DELETE"
    action: deny
tests:
  - name: read
    request: {method: GET, url: "https://compute.googleapis.com/compute/v1/projects/p/zones/z/instances/i"}
    identity: {subject: bot, groups: [ai-agents]}
    expect: allow
    rule: reads
  - name: wrong expectation
    request: {method: DELETE, url: "https://compute.googleapis.com/compute/v1/projects/p/zones/z/instances/i"}
    identity: {subject: bot, groups: [ai-agents]}
    expect: allow
  - name: wrong rule
    request: {method: GET, url: "https://compute.googleapis.com/compute/v1/projects/p/zones/z/instances/i"}
    identity: {subject: bot, groups: [ai-agents]}
    expect: allow
    rule: deletes
  - name: builder fails
    request: {method: GET, url: "https://broken.googleapis.com/"}
    expect: deny
`)
	build := func(_ context.Context, tc TestCase) (Input, error) {
		if strings.Contains(tc.URL, "broken") {
			return Input{}, errors.New("cannot recognise")
		}
		return Input{
			Request:  Request{Method: tc.Method, Host: "compute.googleapis.com"},
			Identity: tc.Identity,
			GCP:      gcp.Operation{Method: "compute.instances.x", ReadOnly: tc.Method == "GET"},
		}, nil
	}
	res := set.RunTests(context.Background(), build)
	if len(res) != 4 {
		t.Fatalf("%d results", len(res))
	}
	want := []struct {
		passed  bool
		failure string
	}{
		{true, ""},
		{false, "expected allow, got deny by rule deletes of policy p"},
		{false, "expected allow by rule deletes, got allow by rule reads of policy p"},
		{false, `policies: 00.yaml:25: policy p test "builder fails": build input: cannot recognise`},
	}
	for i, w := range want {
		if res[i].Passed != w.passed || res[i].Failure() != w.failure {
			t.Errorf("result %d (%s): passed %v failure %q, want %v %q", i, res[i].Case.Name, res[i].Passed, res[i].Failure(), w.passed, w.failure)
		}
	}
}

// A policy author adds a guardrail policy with default deny beside a
// baseline: the baseline's tests still pass, since the rule that denied is
// among those that decided, and a test may name it policy/rule.
func TestTestsNameDecidingRulesAcrossPolicies(t *testing.T) {
	baseline := `name: baseline
default: deny
rules:
  - name: no-deletes
    when: request.method == "DELETE"
    action: deny
  - name: reads
    when: request.method == "GET"
    action: allow
tests:
  - name: delete denied
    request: {method: DELETE, url: "https://compute.googleapis.com/compute/v1/projects/p/zones/z/instances/i"}
    expect: deny
    rule: no-deletes
  - name: delete denied, qualified
    request: {method: DELETE, url: "https://compute.googleapis.com/compute/v1/projects/p/zones/z/instances/i"}
    expect: deny
    rule: baseline/no-deletes
`
	guardrails := `name: acme-guardrails
default: deny
rules:
  - name: only-acme
    when: request.host.endsWith(".googleapis.com") && false
    action: allow
tests:
  - name: wrong policy qualified
    request: {method: DELETE, url: "https://compute.googleapis.com/compute/v1/projects/p/zones/z/instances/i"}
    expect: deny
    rule: acme-guardrails/only-acme
`
	set := mustLoad(t, guardrails, baseline)
	plainInput := func(_ context.Context, tc TestCase) (Input, error) {
		return Input{Request: Request{Method: tc.Method, Host: "compute.googleapis.com"}, Identity: tc.Identity}, nil
	}
	results := set.RunTests(context.Background(), plainInput)
	if len(results) != 3 {
		t.Fatalf("%d results", len(results))
	}
	for _, r := range results[1:] {
		if !r.Passed {
			t.Errorf("%s: %s", r.Case.Name, r.Failure())
		}
	}
	if results[0].Passed || !strings.Contains(results[0].Failure(), "expected deny by rule acme-guardrails/only-acme, got deny by rule no-deletes of policy baseline") {
		t.Errorf("qualified expectation of a rule that did not decide: passed %v, %q", results[0].Passed, results[0].Failure())
	}
}
