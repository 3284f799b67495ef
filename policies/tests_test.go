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
		{false, "expected allow, got deny by policy p rule deletes"},
		{false, "expected allow by rule deletes, got allow by policy p rule reads"},
		{false, `policies: 00.yaml:25: policy p test "builder fails": build input: cannot recognise`},
	}
	for i, w := range want {
		if res[i].Passed != w.passed || res[i].Failure() != w.failure {
			t.Errorf("result %d (%s): passed %v failure %q, want %v %q", i, res[i].Case.Name, res[i].Passed, res[i].Failure(), w.passed, w.failure)
		}
	}
}
