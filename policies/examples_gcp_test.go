package policies_test

import (
	"context"
	"testing"

	"github.com/airlockhq/airlock/identity"
	"github.com/airlockhq/airlock/policies"
)

// TestBaselineProductionIsWhatItCannotRuleOut: the baseline treats every
// project it cannot establish as non-production as production, whatever
// host, API version or spelling names it.
func TestBaselineProductionIsWhatItCannotRuleOut(t *testing.T) {
	set := loadExamples(t)
	agent := identity.Identity{Subject: "bot-1", Groups: []string{"ai-agents"}}
	tests := []struct {
		method, url string
		headers     map[string]string
		action      policies.Action
		rule        string
	}{
		{"POST", "https://cloudresourcemanager.googleapis.com/v3/projects/415104041262:setIamPolicy", nil, policies.Deny, "no-prod-iam-policy-change"},
		{"POST", "https://cloudresourcemanager.googleapis.com/v1/projects/415104041262:setIamPolicy", nil, policies.Deny, "no-prod-iam-policy-change"},
		{"POST", "https://cloudresourcemanager-vialink1.p.googleapis.com/v1/projects/415104041262:setIamPolicy", nil, policies.Deny, "no-prod-iam-policy-change"},
		{"PUT", "https://storage.googleapis.com/storage/v1/b/acme-prod-data/iam", nil, policies.Deny, "no-prod-iam-policy-change"},
		{"PUT", "https://content-storage.googleapis.com/storage/v1/b/acme-dev-data/iam", nil, policies.Deny, "no-prod-iam-policy-change"},
		{"PUT", "https://storage.googleapis.com/acme-prod-data/a.txt?acl", map[string]string{"x-goog-project-id": "acme-dev"}, policies.Approve, "prod-writes-need-sre"},
		{"DELETE", "https://storage.googleapis.com/acme-prod-data/a.txt", map[string]string{"x-goog-project-id": "acme-dev"}, policies.Approve, "prod-writes-need-sre"},
		{"DELETE", "https://acme-prod-data.storage-download.googleapis.com/a.txt", map[string]string{"x-goog-project-id": "acme-dev"}, policies.Approve, "prod-writes-need-sre"},
		{"PUT", "https://storage.googleapis.com/acme-dev-data/copy.pem", map[string]string{"x-goog-project-id": "acme-dev", "x-amz-copy-source": "/acme-prod-secrets/key.pem"}, policies.Approve, "prod-writes-need-sre"},
		{"DELETE", "https://compute.googleapis.com/compute/v1/projects/415104041262/zones/us-east1-b/instances/web-1", nil, policies.Deny, "no-prod-instance-delete"},
		{"DELETE", "https://compute.googleapis.com/compute/v1/projects/acme-prod-dev2/zones/us-east1-b/instances/web-1", nil, policies.Deny, "no-prod-instance-delete"},
		{"POST", "https://compute.googleapis.com/compute/v1/projects/acme-test/zones/us-east1-b/instances/web-1/stop", nil, policies.Allow, "agents-may-change-non-production"},
		{"POST", "https://compute.googleapis.com/compute/v1/projects/acme-staging/zones/us-east1-b/instances/web-1/stop", nil, policies.Allow, "agents-may-change-non-production"},
	}
	for _, tc := range tests {
		in, err := build(context.Background(), policies.TestCase{Method: tc.method, URL: tc.url, Headers: tc.headers, Identity: agent})
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.url, err)
		}
		d := set.Evaluate(context.Background(), in)
		if d.Action != tc.action || d.Rule != tc.rule {
			t.Errorf("%s %s (project %q): %s by %q, want %s by %q", tc.method, tc.url, in.GCP.Project, d.Action, d.Rule, tc.action, tc.rule)
		}
	}
}
