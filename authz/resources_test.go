package authz

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/gcp"
	"github.com/airlockhq/airlock/resources"
	"github.com/airlockhq/airlock/resources/resourcestest"
)

const resourcePolicy = `name: resource-aware
default: deny
rules:
  - name: no-prod-iam
    when: gcp.method.endsWith(".setIamPolicy") && gcp.project == "acme-prod"
    action: deny
    message: No IAM changes in production.
  - name: prod-by-label
    when: '!gcp.readonly && resource.project.labels.?env.orValue("") == "prod"'
    action: approve
    approvers: [group:sre]
  - name: prod-folder
    when: '!gcp.readonly && "folders/200" in resource.project.ancestors'
    action: approve
    approvers: [group:sre]
  - name: reads
    when: gcp.readonly
    action: allow
  - name: writes-elsewhere
    when: '!gcp.readonly'
    action: allow
`

func newResourceEngine(t *testing.T, f *resourcestest.Fake, policy string) *Engine {
	t.Helper()
	set := loadPolicy(t, policy)
	l, err := resources.New(resources.Options{Client: http.DefaultClient, Endpoints: f.Endpoints(), Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Options{
		Verifier:   fakeVerifier{"good": {Subject: "agent-1", Groups: []string{"ai-agents"}}},
		Recognizer: gcp.NewRecognizer(gcp.DefaultCatalog(), nil),
		Policies:   set,
		Resources:  l,
		Approvals:  &fakeApprovals{err: context.Canceled},
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func resourceWorld(t *testing.T) *resourcestest.Fake {
	f := resourcestest.New(t)
	f.AddNode("organizations/100", resourcestest.Node{DisplayName: "acme.com"})
	f.AddNode("folders/200", resourcestest.Node{DisplayName: "prod", Parent: "organizations/100"})
	f.AddNode("folders/300", resourcestest.Node{DisplayName: "payments", Parent: "folders/200"})
	f.AddProject(resourcestest.Project{ID: "acme-prod", Number: "415104041262", Parent: "folders/300", Labels: map[string]string{"env": "prod"}})
	f.AddProject(resourcestest.Project{ID: "acme-core", Number: "222222222222", Parent: "folders/300"})
	f.AddProject(resourcestest.Project{ID: "acme-dev", Number: "111111111111", Parent: "organizations/100", Labels: map[string]string{"env": "dev"}})
	f.AddBucket("acme-prod-data", resourcestest.Bucket{ProjectNumber: "415104041262"})
	f.AddBucket("acme-dev-scratch", resourcestest.Bucket{ProjectNumber: "111111111111"})
	return f
}

func TestResourceAwareDecisions(t *testing.T) {
	f := resourceWorld(t)
	e := newResourceEngine(t, f, resourcePolicy)
	tests := []struct {
		name, method, host, path string
		outcome                  Outcome
		rule                     string
	}{
		{"project number resolves to its id", "POST", "cloudresourcemanager.googleapis.com", "/v3/projects/415104041262:setIamPolicy", PolicyDenied, "no-prod-iam"},
		{"v1 by number too", "POST", "cloudresourcemanager.googleapis.com", "/v1/projects/415104041262:setIamPolicy", PolicyDenied, "no-prod-iam"},
		{"a bucket resolves to its project", "PUT", "storage.googleapis.com", "/storage/v1/b/acme-prod-data/iam", PolicyDenied, "no-prod-iam"},
		{"an object delete in a production bucket waits for a human", "DELETE", "storage.googleapis.com", "/storage/v1/b/acme-prod-data/o/report.csv", Unavailable, "prod-by-label"},
		{"a folder two levels up", "POST", "compute.googleapis.com", "/compute/v1/projects/acme-core/zones/us-east1-b/instances/web-1/stop", Unavailable, "prod-folder"},
		{"development writes", "DELETE", "storage.googleapis.com", "/storage/v1/b/acme-dev-scratch/o/tmp.txt", Allowed, "writes-elsewhere"},
		{"a bucket that does not exist: empty attributes, policies decide", "DELETE", "storage.googleapis.com", "/storage/v1/b/ghost-bucket/o/x", Allowed, "writes-elsewhere"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := e.Decide(context.Background(), req(tc.method, tc.host, tc.path, "good"))
			// Approve rules reach the (failing) approval store: the decision
			// itself is what is checked.
			if res.Outcome != tc.outcome || res.Decision.Rule != tc.rule {
				t.Fatalf("outcome %s by %q, want %s by %q (%+v)", res.Outcome, res.Decision.Rule, tc.outcome, tc.rule, res.Refusal)
			}
		})
	}
}

func TestResourceLookupFailsClosed(t *testing.T) {
	f := resourceWorld(t)
	e := newResourceEngine(t, f, resourcePolicy)
	f.Fail("/v3/", http.StatusServiceUnavailable)

	// A write whose rules need the project's labels: 503 naming the lookup.
	res := e.Decide(context.Background(), req("POST", "compute.googleapis.com", "/compute/v1/projects/acme-dev/zones/us-east1-b/instances/web-1/stop", "good"))
	if res.Outcome != Unavailable || !strings.Contains(res.Refusal.Message, "resource.project.labels") || !strings.Contains(res.Refusal.Message, "HTTP 503") {
		t.Fatalf("outcome %s, refusal %+v", res.Outcome, res.Refusal)
	}
	if res.Refusal.HTTPStatus != 503 {
		t.Fatalf("status %d", res.Refusal.HTTPStatus)
	}
	// A read needs no lookup: unaffected.
	res = e.Decide(context.Background(), req("GET", "compute.googleapis.com", "/compute/v1/projects/acme-dev/zones/us-east1-b/instances", "good"))
	if res.Outcome != Allowed {
		t.Fatalf("read: outcome %s, refusal %+v", res.Outcome, res.Refusal)
	}
	// A deny that did not need the failed lookup stands.
	res = e.Decide(context.Background(), req("POST", "cloudresourcemanager.googleapis.com", "/v3/projects/acme-prod:setIamPolicy", "good"))
	if res.Outcome != PolicyDenied || res.Decision.Rule != "no-prod-iam" {
		t.Fatalf("deny: outcome %s by %q", res.Outcome, res.Decision.Rule)
	}
	// A number that cannot be resolved: gcp.project itself is unknown.
	res = e.Decide(context.Background(), req("POST", "cloudresourcemanager.googleapis.com", "/v3/projects/999999999999:setIamPolicy", "good"))
	if res.Outcome != Unavailable || !strings.Contains(res.Refusal.Message, "gcp.project") {
		t.Fatalf("number: outcome %s, refusal %+v", res.Outcome, res.Refusal)
	}

	// A timeout fails closed too.
	f.Fail("/v3/", 0)
	f.SetDelay(time.Second)
	res = e.Decide(context.Background(), req("POST", "compute.googleapis.com", "/compute/v1/projects/acme-core/zones/us-east1-b/instances/web-1/stop", "good"))
	if res.Outcome != Unavailable {
		t.Fatalf("timeout: outcome %s, refusal %+v", res.Outcome, res.Refusal)
	}
}

// A set that never reads resource.* looks nothing up for a project id.
func TestNoResourceRulesNoLookups(t *testing.T) {
	f := resourceWorld(t)
	e := newResourceEngine(t, f, `name: plain
default: deny
rules:
  - name: reads
    when: gcp.readonly && gcp.project == "acme-dev"
    action: allow
`)
	res := e.Decide(context.Background(), req("GET", "compute.googleapis.com", "/compute/v1/projects/acme-dev/zones/us-east1-b/instances", "good"))
	if res.Outcome != Allowed || f.TotalHits() != 0 {
		t.Fatalf("outcome %s, %d lookups", res.Outcome, f.TotalHits())
	}
	if e.Policies().UsesResources() {
		t.Fatal("UsesResources is true for a set without resource.*")
	}
}
