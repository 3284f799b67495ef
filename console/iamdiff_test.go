package console_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/approvals"
	"github.com/airlockhq/airlock/console"
	"github.com/airlockhq/airlock/resources"
	"github.com/airlockhq/airlock/resources/resourcestest"
)

func setIAM(body string) approvals.Approval {
	return approvals.Approval{Request: approvals.Request{
		Operation: "cloudresourcemanager.projects.setIamPolicy", Method: "POST",
		URL: "https://cloudresourcemanager.googleapis.com/v1/projects/acme-prod:setIamPolicy", BodyExcerpt: body,
	}}
}

func diff(t *testing.T, fetch console.FetchPolicy, a approvals.Approval) console.PolicyDiff {
	t.Helper()
	v, err := console.PolicyDiffer(fetch)(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	return v.(console.PolicyDiff)
}

func render(bs []console.Binding) string {
	var out []string
	for _, b := range bs {
		s := b.Role + "=" + strings.Join(b.Members, "+")
		if b.Condition != "" {
			s += "?" + b.Condition
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

// TestPolicyDiffAgainstTheCurrentPolicy reads the current policy with the
// resource lookups (a fake Resource Manager) and shows what the request
// adds and removes, role by role.
func TestPolicyDiffAgainstTheCurrentPolicy(t *testing.T) {
	f := resourcestest.New(t)
	f.SetIAMPolicy("/v1/projects/acme-prod", map[string]any{"etag": "BwX", "bindings": []any{
		map[string]any{"role": "roles/owner", "members": []any{"user:ceo@acme.com"}},
		map[string]any{"role": "roles/viewer", "members": []any{"group:eng@acme.com", "user:old@acme.com"}},
	}})
	l, err := resources.New(resources.Options{Client: http.DefaultClient, Endpoints: f.Endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	body := `{"policy":{"etag":"BwX","bindings":[
		{"role":"roles/owner","members":["user:ceo@acme.com","serviceAccount:agent@acme-prod.iam.gserviceaccount.com"]},
		{"role":"roles/viewer","members":["group:eng@acme.com"]},
		{"role":"roles/storage.admin","members":["user:new@acme.com"],"condition":{"title":"expires","expression":"request.time < timestamp('2027-01-01T00:00:00Z')"}}]}}`
	d := diff(t, l.IAMPolicy, setIAM(body))
	if !d.Applies || !d.Compared {
		t.Fatalf("diff = %+v", d)
	}
	if got := render(d.Added); got != "roles/owner=serviceAccount:agent@acme-prod.iam.gserviceaccount.com roles/storage.admin=user:new@acme.com?expires: request.time < timestamp('2027-01-01T00:00:00Z')" {
		t.Errorf("added = %s", got)
	}
	if got := render(d.Removed); got != "roles/viewer=user:old@acme.com" {
		t.Errorf("removed = %s", got)
	}
	// Cloud Storage: the body is the policy itself.
	f.SetIAMPolicy("/storage/v1/b/acme-data/iam", map[string]any{"bindings": []any{}})
	a := approvals.Approval{Request: approvals.Request{Operation: "storage.buckets.setIamPolicy", Method: "PUT",
		URL: "https://storage.googleapis.com/storage/v1/b/acme-data/iam", BodyExcerpt: `{"bindings":[{"role":"roles/storage.objectViewer","members":["allUsers"]}]}`}}
	if d := diff(t, l.IAMPolicy, a); !d.Compared || render(d.Added) != "roles/storage.objectViewer=allUsers" {
		t.Errorf("storage diff = %+v", d)
	}
}

func TestPolicyDiffWithoutTheCurrentPolicy(t *testing.T) {
	body := `{"policy":{"bindings":[{"role":"roles/owner","members":["user:x@acme.com"]}]}}`
	// Lookups off: the requested bindings, and why there is no diff.
	d := diff(t, nil, setIAM(body))
	if d.Compared || render(d.Requested) != "roles/owner=user:x@acme.com" || !strings.Contains(d.Note, "resources.credential") {
		t.Errorf("without lookups = %+v", d)
	}
	// The lookup fails (403): said so.
	f := resourcestest.New(t)
	f.Fail("/v1/projects/acme-prod", 403)
	l, _ := resources.New(resources.Options{Client: http.DefaultClient, Endpoints: f.Endpoints()})
	if d := diff(t, l.IAMPolicy, setIAM(body)); d.Compared || !strings.Contains(d.Note, "HTTP 403") || len(d.Requested) != 1 {
		t.Errorf("failed lookup = %+v", d)
	}
	// A body cut at the bound is not guessed at.
	if d := diff(t, nil, setIAM(body[:40]+"...")); d.Compared || len(d.Requested) != 0 || !strings.Contains(d.Note, "not a whole JSON policy") {
		t.Errorf("cut body = %+v", d)
	}
	// Not an IAM change.
	a := setIAM(body)
	a.Request.Operation = "compute.instances.delete"
	if d := diff(t, nil, a); d.Applies {
		t.Errorf("a delete has an IAM diff: %+v", d)
	}
	b, _ := json.Marshal(diff(t, nil, setIAM(body)))
	if !strings.Contains(string(b), `"requested":[{"role":"roles/owner"`) {
		t.Errorf("JSON = %s", b)
	}
}
