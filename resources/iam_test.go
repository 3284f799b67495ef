package resources_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/resources"
	"github.com/airlockhq/airlock/resources/resourcestest"
)

func TestIAMPolicyOfEachShape(t *testing.T) {
	f := resourcestest.New(t)
	l := newLookup(t, f, resources.Options{})
	f.SetIAMPolicy("/v1/projects/acme-prod", map[string]any{"bindings": []any{map[string]any{"role": "roles/owner", "members": []any{"user:a@acme.com"}}}})
	f.SetIAMPolicy("/storage/v1/b/acme-data/iam", map[string]any{"bindings": []any{map[string]any{"role": "roles/storage.objectViewer", "members": []any{"allUsers"}}}})
	f.SetIAMPolicy("/compute/v1/projects/p/zones/z/instances/i/getIamPolicy", map[string]any{"bindings": []any{map[string]any{"role": "roles/compute.admin", "members": []any{"group:ops@acme.com"}}}})
	ctx := context.Background()
	for _, tt := range []struct{ method, path, want string }{
		{"cloudresourcemanager.projects.setIamPolicy", "/v1/projects/acme-prod:setIamPolicy", "roles/owner"},
		{"storage.buckets.setIamPolicy", "/storage/v1/b/acme-data/iam", "allUsers"},
		{"compute.instances.setIamPolicy", "/compute/v1/projects/p/zones/z/instances/i/setIamPolicy", "group:ops@acme.com"},
	} {
		got, err := l.IAMPolicy(ctx, tt.method, tt.path)
		if err != nil || !strings.Contains(string(got), tt.want) {
			t.Errorf("%s: %s, %v", tt.method, got, err)
		}
	}
	if auth := f.Authorizations(); len(auth) != 3 || auth[0] != "Bearer lookup-token" {
		t.Errorf("lookups did not use airlock's credential: %q", auth)
	}
	// Paths the agent could bend toward another resource or host are refused
	// before any call.
	for _, tt := range []struct{ method, path string }{
		{"cloudresourcemanager.projects.setIamPolicy", "/v1/projects/../../x:setIamPolicy"},
		{"cloudresourcemanager.projects.setIamPolicy", "/v1/projects/p:setIamPolicy?alt=media"},
		{"cloudresourcemanager.projects.setIamPolicy", "//evil.example.com/v1/projects/p:setIamPolicy"},
		{"evil.example.com/x.setIamPolicy", "/v1/projects/p:setIamPolicy"},
		{"compute.instances.delete", "/compute/v1/projects/p/zones/z/instances/i"},
	} {
		if _, err := l.IAMPolicy(ctx, tt.method, tt.path); !errors.Is(err, resources.ErrNoIAMPolicy) {
			t.Errorf("%s %s: %v, want ErrNoIAMPolicy", tt.method, tt.path, err)
		}
	}
	if n := len(f.Authorizations()); n != 3 {
		t.Errorf("refused paths reached Google: %d calls", n)
	}
	f.Fail("/v1/projects/acme-prod", 403)
	if _, err := l.IAMPolicy(ctx, "cloudresourcemanager.projects.setIamPolicy", "/v1/projects/acme-prod:setIamPolicy"); err == nil || !strings.Contains(err.Error(), "HTTP 403") {
		t.Errorf("a refused lookup = %v", err)
	}
}
