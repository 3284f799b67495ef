package policies_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/gcp"
	"github.com/airlockhq/airlock/identity"
	"github.com/airlockhq/airlock/policies"
	"github.com/airlockhq/airlock/policies/examples"
)

// fakeOps is a hand-written stand-in for the gcp recogniser, covering the
// requests of the example tests.
var fakeOps = []struct {
	method, host string
	path         *regexp.Regexp
	id           string
	readonly     bool
}{
	{"DELETE", "compute.googleapis.com", regexp.MustCompile(`^/compute/v1/projects/([^/]+)/zones/([^/]+)/instances/[^/]+$`), "compute.instances.delete", false},
	{"GET", "compute.googleapis.com", regexp.MustCompile(`^/compute/v1/projects/([^/]+)/zones/([^/]+)/instances$`), "compute.instances.list", true},
	{"GET", "compute.googleapis.com", regexp.MustCompile(`^/compute/v1/projects/([^/]+)/zones/([^/]+)/instances/[^/]+$`), "compute.instances.get", true},
	{"GET", "compute.googleapis.com", regexp.MustCompile(`^/compute/v1/projects/([^/]+)/zones/([^/]+)/instances/[^/]+/serialPort$`), "compute.instances.getSerialPortOutput", true},
	{"POST", "compute.googleapis.com", regexp.MustCompile(`^/compute/v1/projects/([^/]+)/zones/([^/]+)/instances/[^/]+/stop$`), "compute.instances.stop", false},
	{"DELETE", "storage.googleapis.com", regexp.MustCompile(`^/storage/v1/b/[^/]+$`), "storage.buckets.delete", false},
	{"DELETE", "sqladmin.googleapis.com", regexp.MustCompile(`^/v1/projects/([^/]+)/instances/[^/]+$`), "sql.instances.delete", false},
	{"DELETE", "cloudresourcemanager.googleapis.com", regexp.MustCompile(`^/v3/projects/([^/:]+)$`), "cloudresourcemanager.projects.delete", false},
	{"POST", "cloudresourcemanager.googleapis.com", regexp.MustCompile(`^/v3/projects/([^/:]+):setIamPolicy$`), "cloudresourcemanager.projects.setIamPolicy", false},
	{"DELETE", "container.googleapis.com", regexp.MustCompile(`^/v1/projects/([^/]+)/locations/([^/]+)/clusters/[^/]+$`), "container.projects.locations.clusters.delete", false},
	{"DELETE", "run.googleapis.com", regexp.MustCompile(`^/v2/projects/([^/]+)/locations/([^/]+)/services/[^/]+$`), "run.projects.locations.services.delete", false},
	{"POST", "iam.googleapis.com", regexp.MustCompile(`^/v1/projects/([^/]+)/serviceAccounts/[^/]+/keys$`), "iam.projects.serviceAccounts.keys.create", false},
	{"GET", "secretmanager.googleapis.com", regexp.MustCompile(`^/v1/projects/([^/]+)/secrets/[^/]+/versions/[^/:]+:access$`), "secretmanager.projects.secrets.versions.access", true},
}

// fakeBuild builds an Input the way the request pipeline would, for the
// operations in fakeOps; other requests are unknown operations.
func fakeBuild(_ context.Context, tc policies.TestCase) (policies.Input, error) {
	u, err := url.Parse(tc.URL)
	if err != nil {
		return policies.Input{}, err
	}
	in := policies.Input{
		Request: policies.Request{
			Method:  tc.Method,
			Host:    strings.ToLower(u.Hostname()),
			Path:    u.Path,
			Query:   u.Query(),
			Headers: tc.Headers,
		},
		Identity:  tc.Identity,
		SessionID: tc.Session,
		Now:       time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
	if tc.Body != "" {
		if err := json.Unmarshal([]byte(tc.Body), &in.Request.Body); err != nil {
			return policies.Input{}, fmt.Errorf("body: %w", err)
		}
	}
	for _, op := range fakeOps {
		if op.method != tc.Method || op.host != in.Request.Host {
			continue
		}
		m := op.path.FindStringSubmatch(u.Path)
		if m == nil {
			continue
		}
		in.GCP = gcp.Operation{
			Service:  strings.TrimSuffix(in.Request.Host, ".googleapis.com"),
			Version:  "v1",
			Method:   op.id,
			ReadOnly: op.readonly,
			Resource: strings.TrimPrefix(u.Path, "/"),
		}
		if len(m) > 1 {
			in.GCP.Project = m[1]
		}
		if len(m) > 2 {
			in.GCP.Location = m[2]
		}
		break
	}
	return in, nil
}

func TestExamplesLoadAndPassTheirTests(t *testing.T) {
	set, err := policies.LoadFS(policies.LoadOptions{}, examples.FS, ".")
	if err != nil {
		t.Fatalf("load examples: %v", err)
	}
	if got, want := set.Names(), []string{"gcp-baseline"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("names = %v, want %v", got, want)
	}
	results := set.RunTests(context.Background(), fakeBuild)
	if len(results) < 15 {
		t.Fatalf("only %d example tests", len(results))
	}
	for _, r := range results {
		if !r.Passed {
			t.Errorf("%s: %s", r.Case, r.Failure())
		}
	}
	// Every rule of the examples is the deciding rule of some test.
	covered := map[string]bool{}
	for _, r := range results {
		covered[r.Got.Policy+"/"+r.Got.Rule] = true
	}
	for _, name := range []string{
		"gcp-baseline/unknown-operation", "gcp-baseline/no-prod-instance-delete", "gcp-baseline/no-bucket-delete",
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

func TestExamplesMaskSecrets(t *testing.T) {
	set, err := policies.LoadFS(policies.LoadOptions{}, examples.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	in, err := fakeBuild(context.Background(), policies.TestCase{Method: "GET", URL: "https://secretmanager.googleapis.com/v1/projects/acme-dev/secrets/db/versions/1:access",
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
