package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// explain shows the variables as the engine sees them (a project number
// resolved through the declared world), the decision and its rules.
func TestPolicyExplain(t *testing.T) {
	dir := t.TempDir()
	world := filepath.Join(dir, "world.yaml")
	if err := os.WriteFile(world, []byte(`projects:
  - {id: acme-payments, number: "415104041262", labels: {env: prod}, parent: folders/300}
folders:
  - {id: folders/300, name: payments, parent: organizations/100}
  - {id: organizations/100, name: acme.com}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(policy, []byte(`name: labels
default: allow
rules:
  - name: prod-iam
    when: gcp.method.endsWith(".setIamPolicy") && resource.project.labels.?env.orValue("") == "prod"
    action: deny
    message: No IAM changes in production.
`), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := runPolicy(context.Background(), []string{"explain", "--method", "POST",
		"--url", "https://cloudresourcemanager.googleapis.com/v3/projects/415104041262:setIamPolicy",
		"--sub", "bot-1", "--groups", "ai-agents", "--resources", world, policy}, &stdout, &stderr)
	out := stdout.String()
	if code != 3 {
		t.Fatalf("exit %d, want 3 (denied); stderr %s\n%s", code, stderr.String(), out)
	}
	for _, want := range []string{
		`gcp.project                      "acme-payments"`,
		`resource.project.labels          {"env":"prod"}`,
		`resource.project.ancestor_names  ["payments","acme.com"]`,
		`identity.groups                  ["ai-agents"]`,
		"decision: deny",
		"message:  No IAM changes in production.",
		"decided by:\n  labels/prod-iam",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	// Refused before policy: said as such.
	stdout.Reset()
	code = runPolicy(context.Background(), []string{"explain", "--url", "https://example.com/x", policy}, &stdout, &stderr)
	if code != 3 || !strings.Contains(stdout.String(), "refused before policy (INVALID_REQUEST)") {
		t.Fatalf("exit %d:\n%s", code, stdout.String())
	}

	// A token's claims are read and said to be unverified.
	stdout.Reset()
	tok := "eyJhbGciOiJub25lIn0." + b64(`{"sub":"alice","groups":["sre"],"act":{"sub":"claude"}}`) + ".x"
	code = runPolicy(context.Background(), []string{"explain", "--url", "https://compute.googleapis.com/compute/v1/projects/p/zones/z/instances", "--token", tok, policy}, &stdout, &stderr)
	if code != 0 || !strings.Contains(stdout.String(), "WITHOUT verifying") || !strings.Contains(stdout.String(), `identity.actor                   "claude"`) {
		t.Fatalf("exit %d:\n%s", code, stdout.String())
	}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
