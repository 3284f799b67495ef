package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/identity/identitytest"
)

// TestDevModeQuickStart is the README's quick start: a dev-mode server with
// the example policies, a token from `airlock dev-token`, and `airlock check`
// showing an allowed read and a denied delete with the rule named.
func TestDevModeQuickStart(t *testing.T) {
	a := startAirlock(t, func(p Ports, dir string) string {
		return fmt.Sprintf(`listen: {authz: %q, extproc: %q, sds: "", http: %q}
log: {format: text}
identity: {dev: true}
policies: {paths: [policies/examples]}
recorder: {enabled: false}
`, p.Authz, p.ExtProc, p.HTTP)
	})
	code, tok, stderr := runCLI(t, nil, "dev-token", "--server", "http://"+a.HTTPAddr, "--sub", "alice", "--groups", "ai-agents")
	if code != 0 || strings.Count(strings.TrimSpace(tok), ".") != 2 {
		t.Fatalf("dev-token: exit %d, stdout %q, stderr %q", code, tok, stderr)
	}
	tok = strings.TrimSpace(tok)

	code, out, stderr := runCLI(t, []string{"AIRLOCK_TOKEN=" + tok}, "check", "--server", a.AuthzAddr,
		"--method", "GET", "--url", "https://compute.googleapis.com/compute/v1/projects/acme-dev/zones/us-east1-b/instances")
	if code != 0 || !strings.Contains(out, "decision:  ALLOW") || !strings.Contains(out, "gcp-baseline/agents-may-read") {
		t.Fatalf("allowed read: exit %d\n%s%s", code, out, stderr)
	}

	code, out, stderr = runCLI(t, nil, "check", "--config", a.ConfigPath, "--token", tok,
		"--method", "DELETE", "--url", "https://compute.googleapis.com/compute/v1/projects/acme-prod/zones/us-east1-b/instances/web-1")
	if code != 3 || !strings.Contains(out, "decision:  DENY") || !strings.Contains(out, "no-prod-instance-delete") || !strings.Contains(out, "POLICY_DENIED") {
		t.Fatalf("denied delete: exit %d\n%s%s", code, out, stderr)
	}

	// A held request names its operation and the approval to ask for.
	code, out, stderr = runCLI(t, nil, "check", "--config", a.ConfigPath, "--token", tok, "--method", "POST",
		"--url", "https://compute.googleapis.com/compute/v1/projects/acme-prod/zones/us-east1-b/instances/web-1/stop")
	if code != 3 || !strings.Contains(out, "decision:  APPROVAL REQUIRED") || !strings.Contains(out, "operation: compute.instances.stop") ||
		!strings.Contains(out, "approval:  ") || !strings.Contains(out, "gcp-baseline/prod-writes-need-sre") {
		t.Fatalf("held stop: exit %d\n%s%s", code, out, stderr)
	}

	if !strings.Contains(a.Logs(), "DEV MODE") {
		t.Errorf("the server does not say loudly that it is in dev mode")
	}
	if strings.Contains(a.Logs(), tok[strings.LastIndex(tok, ".")+1:]) {
		t.Errorf("the dev token reached the logs")
	}

	// The dev token endpoint refuses a forwarded (non-loopback) caller.
	code, _, stderr = runCLI(t, nil, "dev-token", "--server", "http://"+a.HTTPAddr+"/nope", "--sub", "x")
	if code == 0 {
		t.Errorf("dev-token against a wrong URL succeeded: %s", stderr)
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	badPolicy := filepath.Join(dir, "bad")
	if err := os.MkdirAll(badPolicy, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(badPolicy, "p.yaml"), []byte("name: p\ndefault: deny\nrules:\n  - name: typo\n    when: gcp.methdo == \"x\"\n    action: deny\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown key", "listen:\n  authz: 127.0.0.1:0\n  grpc: 127.0.0.1:1\nidentity: {dev: true}\n", []string{"listen.grpc", "unknown key"}},
		{"bad address", "listen: {authz: nowhere}\nidentity: {dev: true}\n", []string{"listen.authz", "not host:port"}},
		{"missing policy folder", "listen: {authz: 127.0.0.1:0, http: 127.0.0.1:0}\nidentity: {dev: true}\npolicies: {paths: [/no/such/policies]}\n", []string{"policies.paths[0]", "/no/such/policies"}},
		{"port in use", fmt.Sprintf("listen: {authz: %q, extproc: \"\", sds: \"\", http: 127.0.0.1:0}\nidentity: {dev: true}\npolicies: {paths: [policies/examples]}\nrecorder: {enabled: false}\n", busy.Addr().String()), []string{"listen.authz", "address already in use"}},
		{"policy type error", fmt.Sprintf("listen: {authz: 127.0.0.1:0, extproc: \"\", sds: \"\", http: 127.0.0.1:0}\nidentity: {dev: true}\npolicies: {paths: [%q]}\nrecorder: {enabled: false}\n", badPolicy), []string{"p.yaml:5:", "typo", "methdo"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := write(strings.ReplaceAll(tc.name, " ", "-")+".yaml", tc.yaml)
			code, _, stderr := runCLI(t, nil, "serve", "--config", cfg)
			if code == 0 {
				t.Fatalf("serve accepted a bad config")
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Fatalf("stderr does not contain %q:\n%s", w, stderr)
				}
			}
		})
	}
	code, _, stderr := runCLI(t, nil, "serve", "--config", filepath.Join(dir, "absent.yaml"))
	if code == 0 || !strings.Contains(stderr, "absent.yaml") {
		t.Fatalf("a missing config file: exit %d, %s", code, stderr)
	}
}

func TestPolicyHotReload(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	a := startWithPolicy(t, iss, denyListPolicy, "")
	c := checker{t, a.Authz(t), envoyConfig}
	tok := iss.Mint(map[string]any{"sub": "agent-1"})
	del := "https://compute.googleapis.com/compute/v1/projects/acme-prod/zones/us-east1-b/instances/web-1"
	if res := c.do("DELETE", del, tok, nil, ""); res.Allowed {
		t.Fatal("delete allowed before the edit")
	}
	path := filepath.Join(a.Dir, "policies", "policy.yaml")
	relaxed := strings.Replace(denyListPolicy, `gcp.method == "compute.instances.delete"`, `gcp.method == "compute.instances.stop"`, 1)
	if err := os.WriteFile(path, []byte(relaxed), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the edited policy to take effect", func() bool {
		return c.do("DELETE", del, tok, nil, "").Allowed
	})

	// A broken edit is reported and never replaces the working set.
	if err := os.WriteFile(path, []byte("name: deny-list\ndefault: allow\nrules:\n  - name: broken\n    when: gcp.method ==\n    action: deny\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the failed reload to be counted", func() bool {
		_, m := a.Get(t, "/metrics")
		return regexp.MustCompile(`airlock_policy_reloads_total\{result="error"\} [1-9]`).MatchString(m)
	})
	if !c.do("DELETE", del, tok, nil, "").Allowed {
		t.Fatal("a broken edit replaced the working policy set")
	}
	code, body := a.Get(t, "/healthz")
	if code != 503 || !strings.Contains(body, "policy.yaml") {
		t.Fatalf("/healthz after a broken edit: %d %s", code, body)
	}
	if !strings.Contains(a.Logs(), "policy reload failed") {
		t.Errorf("the broken edit is not logged")
	}
	if err := os.WriteFile(path, []byte(denyListPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the fixed policy to take effect", func() bool {
		return !c.do("DELETE", del, tok, nil, "").Allowed
	})
	waitFor(t, 5*time.Second, "/healthz to recover", func() bool {
		code, _ := a.Get(t, "/healthz")
		return code == 200
	})
}

func TestMetricsAndHealth(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	a := startWithPolicy(t, iss, denyListPolicy, "")
	c := checker{t, a.Authz(t), envoyConfig}
	tok := iss.Mint(map[string]any{"sub": "agent-1"})
	c.do("GET", "https://compute.googleapis.com/compute/v1/projects/acme-dev/zones/us-east1-b/instances", tok, nil, "")
	c.do("DELETE", "https://compute.googleapis.com/compute/v1/projects/acme-prod/zones/us-east1-b/instances/web-1", tok, nil, "")
	c.do("GET", "https://compute.googleapis.com/compute/v1/projects/acme-dev/zones/us-east1-b/instances", "", nil, "")
	code, m := a.Get(t, "/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`airlock_decisions_total{outcome="allowed",rule="deny-list/default"} 1`,
		`airlock_decisions_total{outcome="policy_denied",rule="deny-list/no-instance-delete"} 1`,
		`airlock_decisions_total{outcome="unauthenticated",rule=""} 1`,
		`airlock_check_duration_seconds_count 3`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	code, body := a.Get(t, "/healthz")
	if code != 200 || !strings.Contains(body, `"status":"ok"`) {
		t.Fatalf("/healthz: %d %s", code, body)
	}
	for _, p := range []string{"/readyz", "/livez"} {
		if code, _ := a.Get(t, p); code != 200 {
			t.Errorf("%s: %d", p, code)
		}
	}
}
