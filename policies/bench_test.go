package policies_test

import (
	"context"
	"testing"
	"time"

	"github.com/airlockhq/airlock/gcp"
	"github.com/airlockhq/airlock/identity"
	"github.com/airlockhq/airlock/policies"
	"github.com/airlockhq/airlock/policies/policiestest"
)

func bench50(tb testing.TB) *policies.Set {
	tb.Helper()
	set, err := policies.LoadSources(policies.LoadOptions{}, policies.Source{Name: "bench.yaml", Data: []byte(policiestest.BenchmarkPolicy50())})
	if err != nil {
		tb.Fatal(err)
	}
	return set
}

func benchInput(method string, readonly bool, project string) policies.Input {
	return policies.Input{
		Request: policies.Request{
			Method:  "GET",
			Host:    "compute.googleapis.com",
			Path:    "/compute/v1/projects/" + project + "/zones/us-east1-b/instances/web-1",
			Headers: map[string]string{"user-agent": "google-cloud-sdk gcloud/500.0.0"},
		},
		Identity: identity.Identity{Subject: "bot-1", Email: "bot-1@example.com", Issuer: "https://issuer.example.com",
			Groups: []string{"ai-agents", "eng"}},
		GCP: gcp.Operation{Service: "compute", Version: "v1", Method: method, Project: project, Location: "us-east1-b",
			Resource: "projects/" + project + "/zones/us-east1-b/instances/web-1", ReadOnly: readonly},
		SessionID: "s-1",
		Now:       time.Unix(1_800_000_000, 0),
	}
}

func TestBenchmarkPolicy50(t *testing.T) {
	set := bench50(t)
	tests := []struct {
		in         policies.Input
		action     policies.Action
		rule       string
		allocLimit float64
	}{
		{benchInput("compute.instances.get", true, "acme-prod"), policies.Allow, "compute-reads", 15},
		{benchInput("compute.instances.delete", false, "acme-prod"), policies.Deny, "deny-00-compute-instances-delete", 15},
		{benchInput("compute.instances.stop", false, "acme-prod"), policies.Approve, "approve-prod-writes-compute", 15},
		{benchInput("compute.instances.stop", false, "acme-dev"), policies.Allow, "agents-non-prod-writes", 15},
	}
	for _, tt := range tests {
		d := set.Evaluate(context.Background(), tt.in)
		if d.Action != tt.action || d.Rule != tt.rule {
			t.Errorf("%s: got %s by %s, want %s by %s", tt.in.GCP.Method, d.Action, d.Rule, tt.action, tt.rule)
		}
		if e := set.Explain(context.Background(), tt.in); e.Action != d.Action || e.Rule != d.Rule {
			t.Errorf("%s: explain %s by %s", tt.in.GCP.Method, e.Action, e.Rule)
		}
		allocs := testing.AllocsPerRun(100, func() { set.Evaluate(context.Background(), tt.in) })
		if allocs > tt.allocLimit {
			t.Errorf("%s: %v allocs per Evaluate, want at most %v", tt.in.GCP.Method, allocs, tt.allocLimit)
		}
	}
	if set.Len() != 1 {
		t.Fatal("want one policy")
	}
}

// BenchmarkEvaluate50Rules evaluates a read allowed by a 50-rule policy: the
// common case, which passes the deny and approve rules before it is allowed.
func BenchmarkEvaluate50Rules(b *testing.B) {
	set := bench50(b)
	ctx := context.Background()
	cases := []struct {
		name string
		in   policies.Input
	}{
		{"read-allowed", benchInput("compute.instances.get", true, "acme-prod")},
		{"delete-denied", benchInput("compute.instances.delete", false, "acme-prod")},
		{"prod-write-approve", benchInput("compute.instances.stop", false, "acme-prod")},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				set.Evaluate(ctx, c.in)
			}
		})
	}
}

// BenchmarkExplain50Rules evaluates every rule of the 50-rule policy.
func BenchmarkExplain50Rules(b *testing.B) {
	set := bench50(b)
	ctx := context.Background()
	in := benchInput("compute.instances.get", true, "acme-prod")
	b.ReportAllocs()
	for b.Loop() {
		set.Explain(ctx, in)
	}
}

// BenchmarkLoad50Rules compiles the 50-rule policy.
func BenchmarkLoad50Rules(b *testing.B) {
	src := []byte(policiestest.BenchmarkPolicy50())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := policies.LoadSources(policies.LoadOptions{}, policies.Source{Name: "bench.yaml", Data: src}); err != nil {
			b.Fatal(err)
		}
	}
}
