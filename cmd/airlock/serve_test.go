package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/identity"
)

func TestWarnPublicIssuers(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	warnPublicIssuers(log, []identity.IssuerConfig{
		{Issuer: "https://idp.example.com", Audience: "airlock"},
		{Issuer: "https://accounts.google.com", Audience: "airlock"},
		{Issuer: "https://token.actions.githubusercontent.com", Audience: "airlock", AllowedSubjects: []string{"repo:acme/infra:*"}},
		{Issuer: "https://login.microsoftonline.com/common/v2.0", Audience: "airlock"},
	})
	out := buf.String()
	if n := strings.Count(out, "level=WARN"); n != 2 {
		t.Fatalf("%d warnings, want 2 (google, microsoft common):\n%s", n, out)
	}
	for _, want := range []string{"key=identity.issuers[1]", "key=identity.issuers[3]", "allowed_email_domains", "https://accounts.google.com"} {
		if !strings.Contains(out, want) {
			t.Errorf("warnings lack %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "identity.issuers[0]") || strings.Contains(out, "identity.issuers[2]") {
		t.Errorf("a private or restricted issuer was warned about:\n%s", out)
	}
}
