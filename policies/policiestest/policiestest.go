// Package policiestest holds helpers for tests and benchmarks of code that
// evaluates policies: a realistic large policy shared by the policy and the
// ext_authz benchmarks.
package policiestest

import (
	"fmt"
	"strings"
)

// prodCond is how the benchmark policy recognises a production project.
const prodCond = `(gcp.project.endsWith("-prod") || gcp.project in ["acme-core", "acme-billing"])`

// BenchmarkPolicy50 returns the YAML of one policy with 50 rules shaped like
// a real organisation's: 20 deny rules on dangerous methods, 15 approval
// rules on production writes and 15 allow rules on reads, plus masking.
// Its name is "bench-50" and its default is deny.
//
// A read such as GET https://compute.googleapis.com/compute/v1/projects/acme-prod/zones/us-east1-b/instances/web-1
// by a caller in group ai-agents is allowed by rule "compute-reads".
func BenchmarkPolicy50() string {
	var b strings.Builder
	b.WriteString("name: bench-50\n")
	b.WriteString("match: request.host.endsWith(\".googleapis.com\")\n")
	b.WriteString("default: deny\n")
	b.WriteString("rules:\n")
	rule := func(name, when, action, extra string) {
		fmt.Fprintf(&b, "  - name: %s\n    when: '%s'\n    action: %s\n%s", name, when, action, extra)
	}
	// 20 deny rules.
	denyMethods := [][]string{
		{"compute.instances.delete"},
		{"compute.disks.delete"},
		{"compute.snapshots.delete"},
		{"compute.firewalls.delete", "compute.firewalls.patch"},
		{"compute.networks.delete"},
		{"storage.buckets.delete"},
		{"storage.objects.delete"},
		{"sql.instances.delete"},
		{"sql.databases.delete"},
		{"container.projects.locations.clusters.delete", "container.projects.zones.clusters.delete"},
		{"run.projects.locations.services.delete"},
		{"cloudresourcemanager.projects.delete"},
		{"iam.projects.serviceAccounts.keys.create", "iam.projects.serviceAccounts.keys.upload"},
		{"iam.projects.serviceAccounts.delete"},
		{"iam.roles.delete", "iam.projects.roles.delete"},
		{"secretmanager.projects.secrets.delete"},
		{"cloudbuild.projects.triggers.delete"},
	}
	for i, ms := range denyMethods {
		when := fmt.Sprintf("gcp.method == \"%s\" && %s", ms[0], prodCond)
		if len(ms) > 1 {
			when = fmt.Sprintf("gcp.method in [\"%s\"] && %s", strings.Join(ms, "\", \""), prodCond)
		}
		rule(fmt.Sprintf("deny-%02d-%s", i, strings.ReplaceAll(ms[0], ".", "-")), strings.ReplaceAll(when, "'", "''"), "deny",
			"    message: This operation is not allowed on production resources.\n")
	}
	rule("deny-unknown-operations", `gcp.method == ""`, "deny", "    message: Unknown operations are not allowed.\n")
	rule("deny-prod-iam-policy", `gcp.method.endsWith(".setIamPolicy") && `+prodCond, "deny", "")
	rule("deny-untrusted-issuer", `identity.issuer != "" && !identity.issuer.startsWith("https://")`, "deny", "")
	// 15 approve rules.
	approver := "    approvers: [group:sre]\n    ttl: 15m\n"
	services := []string{"compute", "storage", "sqladmin", "container", "run", "iam", "cloudresourcemanager", "secretmanager", "cloudbuild", "pubsub", "bigquery", "dns", "logging", "monitoring"}
	for _, svc := range services {
		rule("approve-prod-writes-"+svc, fmt.Sprintf(`gcp.service == "%s" && !gcp.readonly && %s`, svc, prodCond), "approve", approver)
	}
	rule("approve-secret-access", `gcp.method in ["secretmanager.projects.secrets.versions.access", "secretmanager.projects.locations.secrets.versions.access"]`, "approve",
		"    approvers: [group:security]\n    ttl: 15m\n")
	// 15 allow rules.
	for _, svc := range services {
		rule(svc+"-reads", fmt.Sprintf(`gcp.service == "%s" && gcp.readonly && "ai-agents" in identity.groups`, svc), "allow", "")
	}
	rule("agents-non-prod-writes", `"ai-agents" in identity.groups && !gcp.readonly && !`+prodCond, "allow", "")
	b.WriteString("masking:\n")
	b.WriteString("  - name: secrets\n    when: gcp.service == \"secretmanager\"\n    fields: [payload.data]\n    detectors: [private_key]\n")
	b.WriteString("  - name: sa-keys\n    when: gcp.service == \"iam\"\n    fields: [\"**.privateKeyData\"]\n")
	b.WriteString("  - name: credentials\n    detectors: [private_key, gcp_api_key, oauth_token]\n")
	return b.String()
}
