package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEnvoyConfigOutput: --output writes the bootstrap that stdout would
// carry, whole, and prints nothing; an unwritable target fails the command
// (an init container must not leave Envoy without a bootstrap silently).
func TestEnvoyConfigOutput(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "airlock.yaml")
	if err := os.WriteFile(cfg, []byte(`listen: {authz: 127.0.0.1:9001, sds: unix:///run/airlock/sds.sock}
identity: {issuers: [{issuer: https://login.example.com, audience: airlock}]}
credentials: [{name: gcp, adc: true}]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	var want, errb bytes.Buffer
	if code := run(context.Background(), []string{"envoy", "config", "--config", cfg}, &want, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	out := filepath.Join(dir, "envoy", "envoy.yaml")
	if err := os.Mkdir(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	errb.Reset()
	if code := run(context.Background(), []string{"envoy", "config", "--config", cfg, "--output", out}, &stdout, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) || stdout.Len() != 0 {
		t.Fatalf("--output wrote %d bytes (stdout %d), want the %d bytes of stdout", len(got), stdout.Len(), want.Len())
	}
	entries, _ := os.ReadDir(filepath.Dir(out))
	if len(entries) != 1 {
		t.Errorf("temporary files left beside the bootstrap: %v", entries)
	}
	errb.Reset()
	if code := run(context.Background(), []string{"envoy", "config", "--config", cfg, "--output", filepath.Join(dir, "missing", "envoy.yaml")}, &stdout, &errb); code == 0 || !strings.Contains(errb.String(), "missing") {
		t.Fatalf("writing into a missing directory: exit %d, %q", code, errb.String())
	}
}
