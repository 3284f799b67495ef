package policies

import (
	"context"
	"errors"
	"testing"

	"github.com/airlockhq/airlock/gcp"
	"github.com/airlockhq/airlock/identity"
)

// FuzzLoad loads arbitrary policy text. It must never panic; a set that
// loads must evaluate without panicking and Evaluate must agree with
// Explain. Run with: go test -fuzz=FuzzLoad ./policies/
func FuzzLoad(f *testing.F) {
	f.Add([]byte(threeRules))
	f.Add([]byte("name: p\nmatch: request.host.endsWith(\".googleapis.com\")\ndefault: approve\napprovers: [group:sre]\nttl: 5m\n"))
	f.Add([]byte("name: p\ndefault: deny\nrules:\n  - name: r\n    when: |\n      gcp.method in [\"a\", \"b\"] &&\n        identity.claims.x > 1\n    action: deny\n"))
	f.Add([]byte("name: p\ndefault: allow\nmasking:\n  - name: m\n    when: gcp.service == \"iam\"\n    fields: [\"**.privateKeyData\"]\n    detectors: [d]\ndetectors:\n  - name: d\n    regex: 'k_[0-9a-f]{8}'\n    entropy: 3\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("---\n---\nname: p\ndefault: deny\n---\nname: q\ndefault: allow\n"))
	in := Input{
		Request:  Request{Method: "GET", Host: "compute.googleapis.com", Path: "/compute/v1/projects/p", Body: map[string]any{"a": 1.0}},
		Identity: identity.Identity{Subject: "s", Groups: []string{"ai-agents"}, Claims: map[string]any{"x": 2.0}},
		GCP:      gcp.Operation{Service: "compute", Method: "a", Project: "acme-prod"},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := LoadSources(LoadOptions{}, Source{Name: "f.yaml", Data: data})
		if err != nil {
			var le *LoadError
			if !errors.As(err, &le) || len(le.Problems) == 0 {
				t.Fatalf("error %v is not a *LoadError with problems", err)
			}
			return
		}
		fast := set.Evaluate(context.Background(), in)
		full := set.Explain(context.Background(), in)
		if fast.Action != full.Action || fast.Policy != full.Policy || fast.Rule != full.Rule {
			t.Fatalf("evaluate %s %s/%s, explain %s %s/%s", fast.Action, fast.Policy, fast.Rule, full.Action, full.Policy, full.Rule)
		}
		set.RunTests(context.Background(), func(context.Context, TestCase) (Input, error) { return in, nil })
	})
}
