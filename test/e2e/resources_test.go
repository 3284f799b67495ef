package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/envoy/envoytest"
	"github.com/airlockhq/airlock/identity/identitytest"
	"github.com/airlockhq/airlock/resources/resourcestest"
)

const resourcePolicy = `name: resource-aware
default: deny
rules:
  - name: no-prod-iam
    when: gcp.method.endsWith(".setIamPolicy") && (gcp.project == "acme-payments" || "folders/200" in resource.project.ancestors)
    action: deny
    message: No IAM changes in production.
  - name: no-writes-to-pii
    when: '!gcp.readonly && resource.labels.?data.orValue("") == "pii"'
    action: deny
    message: Buckets holding personal data are read-only for agents.
  - name: agents
    when: '"ai-agents" in identity.groups'
    action: allow
`

// TestResourceAwarePolicies: the built binary, its own lookup credential
// minted from a service-account key, a fake Resource Manager and Storage.
// A project number resolves to its id, a bucket to its labels and
// project, a folder two levels up is seen; a lookup that fails refuses
// only what needed it, with 503.
func TestResourceAwarePolicies(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	tokens := envoytest.NewTokenServer(t, time.Hour)
	google := resourcestest.New(t)
	google.AddNode("organizations/100", resourcestest.Node{DisplayName: "acme.com"})
	google.AddNode("folders/200", resourcestest.Node{DisplayName: "prod", Parent: "organizations/100"})
	google.AddNode("folders/300", resourcestest.Node{DisplayName: "payments", Parent: "folders/200"})
	google.AddProject(resourcestest.Project{ID: "acme-payments", Number: "415104041262", Parent: "folders/300"})
	google.AddProject(resourcestest.Project{ID: "acme-ledger", Number: "515104041262", Parent: "folders/300"})
	google.AddProject(resourcestest.Project{ID: "acme-sandbox", Number: "111111111111", Parent: "organizations/100"})
	google.AddBucket("acme-customers", resourcestest.Bucket{ProjectNumber: "111111111111", Labels: map[string]string{"data": "pii"}})
	google.AddBucket("acme-scratch", resourcestest.Bucket{ProjectNumber: "111111111111"})

	a := startWithPolicy(t, iss, resourcePolicy, fmt.Sprintf(`credentials:
  - name: lookup
    service_account_key: %q
resources:
  credential: lookup
  endpoints: {cloudresourcemanager: %q, storage: %q}
  timeout: 500ms
`, tokens.KeyFile, google.URL(), google.URL()))
	agent := iss.Mint(map[string]any{"sub": "agent-1", "groups": []string{"ai-agents"}})
	c := checker{t, a.Authz(t), envoyConfig}

	reason := func(body []byte) string { return parseRefusal(t, body).Error.Details[0].Reason }
	cases := []struct {
		name, method, url string
		allowed           bool
		want              string // a fragment of the refusal
	}{
		{"project by number", "POST", "https://cloudresourcemanager.googleapis.com/v3/projects/415104041262:setIamPolicy", false, "No IAM changes in production"},
		{"folder two levels up", "POST", "https://cloudresourcemanager.googleapis.com/v1/projects/acme-ledger:setIamPolicy", false, "No IAM changes in production"},
		{"sandbox IAM", "POST", "https://cloudresourcemanager.googleapis.com/v3/projects/acme-sandbox:setIamPolicy", true, ""},
		{"bucket labels", "DELETE", "https://storage.googleapis.com/storage/v1/b/acme-customers/o/list.csv", false, "read-only for agents"},
		{"xml api too", "PUT", "https://storage.googleapis.com/acme-customers/new.csv", false, "read-only for agents"},
		{"other bucket", "DELETE", "https://storage.googleapis.com/storage/v1/b/acme-scratch/o/tmp.txt", true, ""},
	}
	for _, tc := range cases {
		res := c.do(tc.method, tc.url, agent, map[string]string{"Content-Type": "text/csv"}, "")
		if res.Allowed != tc.allowed {
			t.Fatalf("%s: allowed %v, want %v: %d %s", tc.name, res.Allowed, tc.allowed, res.Status, res.Body)
		}
		if !tc.allowed && (reason(res.Body) != "POLICY_DENIED" || !strings.Contains(string(res.Body), tc.want)) {
			t.Fatalf("%s: %s", tc.name, res.Body)
		}
	}
	for _, auth := range google.Authorizations() {
		if !strings.HasPrefix(auth, "Bearer token-") {
			t.Fatalf("a lookup carried %q, not airlock's own minted credential", auth)
		}
	}
	if n := google.Hits("project"); n > 4 {
		t.Errorf("%d projects.get calls for 3 projects: the cache did not hold", n)
	}

	// Resource Manager fails: what needs it is refused with 503 naming the
	// lookup; a read that needs nothing is unaffected.
	google.Fail("/v3/", http.StatusInternalServerError)
	google.Fail("/storage/", http.StatusInternalServerError)
	res := c.do("DELETE", "https://storage.googleapis.com/storage/v1/b/acme-other/o/x", agent, nil, "")
	if res.Allowed || res.Status != 503 || reason(res.Body) != "UNAVAILABLE" || !strings.Contains(string(res.Body), "resource.labels") {
		t.Fatalf("lookup down: %d %s", res.Status, res.Body)
	}
	res = c.do("GET", "https://compute.googleapis.com/compute/v1/projects/acme-sandbox/zones/us-east1-b/instances", agent, nil, "")
	if !res.Allowed {
		t.Fatalf("a read that needs no lookup was refused: %d %s", res.Status, res.Body)
	}
}
