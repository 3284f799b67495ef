package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/identity"
	"github.com/airlockhq/airlock/recorder"
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

func TestHealthzStatus(t *testing.T) {
	fail := func(context.Context) error { return errors.New("down") }
	ok := func(context.Context) error { return nil }
	for _, tc := range []struct {
		name           string
		checks, shared []healthCheck
		code           int
		status         string
	}{
		{"all ok", []healthCheck{{"policies", ok}}, []healthCheck{{"redis", ok}}, 200, "ok"},
		{"redis down", []healthCheck{{"policies", ok}}, []healthCheck{{"redis", fail}}, 200, "degraded"},
		{"policies broken", []healthCheck{{"policies", fail}}, []healthCheck{{"redis", ok}}, 503, "unhealthy"},
		{"both", []healthCheck{{"policies", fail}}, []healthCheck{{"redis", fail}}, 503, "unhealthy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &server{checks: tc.checks, sharedChecks: tc.shared}
			rec := httptest.NewRecorder()
			s.healthz(rec, httptest.NewRequest("GET", "/healthz", nil))
			var body struct {
				Status     string            `json:"status"`
				Checks     map[string]string `json:"checks"`
				DegradedBy []string          `json:"degraded_by"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if rec.Code != tc.code || body.Status != tc.status {
				t.Fatalf("%d %s, want %d %s", rec.Code, rec.Body, tc.code, tc.status)
			}
			if tc.status == "degraded" && (len(body.DegradedBy) != 1 || body.DegradedBy[0] != "redis" || body.Checks["redis"] != "down") {
				t.Errorf("degraded body: %s", rec.Body)
			}
		})
	}
}

func TestRedisHealthNamesWhatStops(t *testing.T) {
	if err := redisHealth(nil, recorder.FallbackStatus{}); err != nil {
		t.Fatal(err)
	}
	err := redisHealth(errors.New("dial tcp 127.0.0.1:6379: connect: connection refused"), recorder.FallbackStatus{Down: true})
	for _, want := range []string{"redis (approvals.store)", "connection refused", "approve rules answer 503", "local_session"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v lacks %q", err, want)
		}
	}
	if err := redisHealth(nil, recorder.FallbackStatus{Down: true, Err: errors.New("x")}); err == nil || !strings.Contains(err.Error(), "answers again") {
		t.Errorf("recovering: %v", err)
	}
}

// TestEnvoyConfigRendersSDSMTLSAway: `airlock envoy config` renders the
// SDS mTLS context where airlock's certificate files do not exist (a
// workstation), warning about them, and refuses a half-set mTLS.
func TestEnvoyConfigRendersSDSMTLSAway(t *testing.T) {
	dir := t.TempDir()
	write := func(text string) string {
		p := filepath.Join(dir, "airlock.yaml")
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	base := `listen: {authz: 0.0.0.0:9001, sds: 0.0.0.0:9003}
identity: {dev: true, issuers: []}
credentials: [{name: gcp, adc: true}]
envoy: {airlock_host: airlock.internal, sds_tls_cert: /etc/envoy/sds/tls.crt, sds_tls_key: /etc/envoy/sds/tls.key, sds_ca: /etc/envoy/sds/ca.crt}
`
	var out, errb bytes.Buffer
	cfg := write(base + "sds: {tls_cert: /etc/airlock/sds/tls.crt, tls_key: /etc/airlock/sds/tls.key, client_ca: /etc/airlock/sds/ca.crt}\n")
	if code := run(context.Background(), []string{"envoy", "config", "--config", cfg}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "UpstreamTlsContext") || !strings.Contains(out.String(), `sni: "airlock.internal"`) || !strings.Contains(errb.String(), "sds.tls_cert") {
		t.Fatalf("stdout:\n%s\nstderr:\n%s", out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	cfg = write(base + "sds: {tls_cert: /etc/airlock/sds/tls.crt}\n")
	if code := run(context.Background(), []string{"envoy", "config", "--config", cfg}, &out, &errb); code == 0 || !strings.Contains(errb.String(), "go together") {
		t.Fatalf("a half-set mTLS rendered: exit %d\n%s", code, errb.String())
	}
}
