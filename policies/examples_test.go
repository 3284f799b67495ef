package policies_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/authz"
	"github.com/airlockhq/airlock/gcp"
	"github.com/airlockhq/airlock/identity"
	"github.com/airlockhq/airlock/policies"
	"github.com/airlockhq/airlock/policies/examples"
)

// build is the input builder of `airlock policy test`: the real recogniser
// and the gateway's refusal before policy.
var build = authz.TestInputBuilder(gcp.NewRecognizer(gcp.DefaultCatalog(), nil))

func loadExamples(t *testing.T) *policies.Set {
	t.Helper()
	set, err := policies.LoadFS(policies.LoadOptions{}, examples.FS, ".")
	if err != nil {
		t.Fatalf("load examples: %v", err)
	}
	return set
}

func TestExamplesLoadAndPassTheirTests(t *testing.T) {
	set := loadExamples(t)
	if got, want := set.Names(), []string{"gcp-baseline"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("names = %v, want %v", got, want)
	}
	results := set.RunTests(context.Background(), build)
	if len(results) < 30 {
		t.Fatalf("only %d example tests", len(results))
	}
	invalid := 0
	for _, r := range results {
		if !r.Passed {
			t.Errorf("%s: %s", r.Case, r.Failure())
		}
		if r.Case.ExpectInvalid {
			invalid++
		}
	}
	if invalid < 3 {
		t.Errorf("only %d example tests expect a refusal before policy", invalid)
	}
	// Every rule of the examples is the deciding rule of some test, but
	// unknown-operation: requests it would decide are refused before policy
	// unless authz.unrecognised is policy (TestBaselineUnrecognisedToPolicy).
	covered := map[string]bool{}
	for _, r := range results {
		covered[r.Got.Policy+"/"+r.Got.Rule] = true
	}
	for _, name := range []string{
		"gcp-baseline/no-prod-instance-delete", "gcp-baseline/no-bucket-delete",
		"gcp-baseline/no-sql-instance-delete", "gcp-baseline/no-project-delete", "gcp-baseline/no-cluster-delete",
		"gcp-baseline/no-run-service-delete", "gcp-baseline/no-prod-iam-policy-change", "gcp-baseline/no-service-account-keys",
		"gcp-baseline/secret-access-needs-security", "gcp-baseline/prod-writes-need-sre",
		"gcp-baseline/agents-may-read", "gcp-baseline/agents-may-change-non-production", "gcp-baseline/unknown-caller",
	} {
		if !covered[name] {
			t.Errorf("no example test is decided by %s", name)
		}
	}
}

// TestBaselineUnrecognisedToPolicy: with authz.unrecognised: policy the
// baseline's unknown-operation rule denies what airlock cannot recognise.
func TestBaselineUnrecognisedToPolicy(t *testing.T) {
	set := loadExamples(t)
	b := authz.TestInputBuilderFor(gcp.NewRecognizer(gcp.DefaultCatalog(), nil), authz.UnrecognisedToPolicy)
	agent := identity.Identity{Subject: "bot-1", Groups: []string{"ai-agents"}}
	for _, tc := range []policies.TestCase{
		{Method: "GET", URL: "https://compute.googleapis.com/compute/v1/no/such/thing", Identity: agent},
		{Method: "POST", URL: "https://storage.googleapis.com/google.storage.v2.Storage/DeleteObject", Headers: map[string]string{"content-type": "application/grpc"}, Identity: agent},
		{Method: "GET", URL: "https://newthing.googleapis.com/v1/things", Identity: agent},
	} {
		in, err := b(context.Background(), tc)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.Method, tc.URL, err)
		}
		d := set.Evaluate(context.Background(), in)
		if d.Action != policies.Deny || d.Rule != "unknown-operation" {
			t.Errorf("%s %s: %s by %q, want deny by unknown-operation", tc.Method, tc.URL, d.Action, d.Rule)
		}
	}
}

func TestExamplesMaskSecrets(t *testing.T) {
	set := loadExamples(t)
	in, err := build(context.Background(), policies.TestCase{Method: "GET", URL: "https://secretmanager.googleapis.com/v1/projects/acme-dev/secrets/db/versions/1:access",
		Identity: identity.Identity{Subject: "bot-1", Groups: []string{"ai-agents"}}})
	if err != nil {
		t.Fatal(err)
	}
	d := set.Evaluate(context.Background(), in)
	var names []string
	for _, m := range d.Masking {
		names = append(names, m.Policy+"/"+m.Name)
	}
	if got, want := strings.Join(names, ","), "gcp-baseline/secret-payloads,gcp-baseline/internal-tokens"; got != want {
		t.Errorf("masking = %s, want %s", got, want)
	}
	if d.Action != policies.Approve || d.Approval == nil || d.Approval.Approvers[0] != "group:security" || d.Approval.TTL != 15*time.Minute {
		t.Errorf("decision = %+v, approval %+v", d, d.Approval)
	}
	dets := set.Detectors()
	if len(dets) != 1 || dets[0].Name != "acme_internal_token" || dets[0].Entropy != 3.5 {
		t.Errorf("detectors = %+v", dets)
	}
}

// A policy author adds acme-guardrails.yaml (default deny) beside the
// baseline. Every baseline test whose outcome the guardrail does not
// change still passes with its rule: a rule that decided is reported over
// another policy's default.
func TestBaselineBesideAGuardrail(t *testing.T) {
	var srcs []policies.Source
	for _, name := range []string{"gcp-baseline.yaml"} {
		data, err := examples.FS.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, policies.Source{Name: name, Data: data})
	}
	guardrails := policies.Source{Name: "acme-guardrails.yaml", Data: []byte(`name: acme-guardrails
match: request.host.endsWith(".googleapis.com")
default: deny
rules:
  - name: break-glass
    when: identity.subject == "break-glass"
    action: allow
`)}
	// The guardrail first: file order must not let its default hide the
	// baseline's rules.
	set, err := policies.LoadSources(policies.LoadOptions{}, append([]policies.Source{guardrails}, srcs...)...)
	if err != nil {
		t.Fatal(err)
	}
	results := set.RunTests(context.Background(), build)
	denies := 0
	for _, r := range results {
		if r.Case.Expect == policies.Deny && r.Case.ExpectRule != "" {
			denies++
			if !r.Passed {
				t.Errorf("%s: %s", r.Case, r.Failure())
			}
		}
	}
	if denies < 10 {
		t.Fatalf("only %d deny tests with a rule", denies)
	}
}
