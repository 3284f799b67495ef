package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A rule on a method that does not exist never matches: lint names it,
// with the method meant, and fails.
func TestPolicyLintChecksMethods(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(file, []byte(`name: p
default: deny
rules:
  - name: no-bucket-delete
    when: gcp.method == "storage.bucket.delete"
    action: deny
  - name: iam
    when: gcp.method.endsWith(".setIamPolicyX") || gcp.method.startsWith("compute.")
    action: deny
  - name: reads
    when: gcp.method in ["compute.instances.list", "storage.objects.get"]
    action: allow
`), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := runPolicy(context.Background(), []string{"lint", file}, &stdout, &stderr)
	out := stderr.String()
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %s", code, out)
	}
	for _, want := range []string{
		`p.yaml:5:25: policy p rule no-bucket-delete: gcp.method is compared with "storage.bucket.delete", which is no method airlock knows (did you mean "storage.buckets.delete"?)`,
		`policy p rule iam: no method airlock knows has the suffix ".setIamPolicyX"`,
		"2 problem(s)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stderr lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "compute.instances.list") || strings.Contains(out, `"compute."`) {
		t.Errorf("a method or prefix that exists was reported:\n%s", out)
	}
}

func TestPolicyLintExamplesClean(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := runPolicy(context.Background(), []string{"lint", filepath.Join("..", "..", "policies", "examples")}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
}
