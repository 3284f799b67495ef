package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/identity/identitytest"
)

// identityPolicy reads the identities agents already have, through
// identity.claims as the issuers' claim mappings expose them.
const identityPolicy = `name: identities
default: deny
rules:
  - name: cluster-agents-read
    when: >-
      "namespace" in identity.claims && identity.claims.namespace == "agents" &&
      identity.claims.service_account == "claude" && gcp.readonly
    action: allow
  - name: ci-deploys-from-main
    when: >-
      "repository" in identity.claims && identity.claims.repository == "acme/infra" &&
      identity.claims.ref == "refs/heads/main" && identity.claims.workflow == "Deploy" &&
      identity.claims.environment == "production"
    action: allow
  - name: people-through-their-agents
    when: identity.actor == "claude-code" && "ai-agents" in identity.groups && gcp.readonly
    action: allow
`

// TestIdentitiesAgentsAlreadyHave: Kubernetes service-account tokens, GitHub
// Actions tokens and a person's delegated token work with configuration
// alone (issuer, audience, claim mapping, restriction), their claims are
// usable in CEL, and the actor is kept in the recording.
func TestIdentitiesAgentsAlreadyHave(t *testing.T) {
	k8s := identitytest.NewKubernetesIssuer(t)
	gh := identitytest.NewGitHubActionsIssuer(t)
	idp := identitytest.NewIssuer(t)
	a := startAirlock(t, func(p Ports, dir string) string {
		pdir := writePolicy(t, dir, "policy.yaml", identityPolicy)
		return fmt.Sprintf(`listen: {authz: %q, extproc: "", sds: "", http: %q}
identity:
  issuers:
    - issuer: %s
      audience: airlock
      claims: {namespace: kubernetes.io.namespace, service_account: kubernetes.io.serviceaccount.name}
    - issuer: %s
      audience: airlock
      allowed_subjects: ["repo:acme/infra:*"]
    - issuer: %s
      audience: airlock
policies: {paths: [%q]}
recorder: {enabled: true, sink: "file://%s/sessions", spool: "%s/spool", durability: check}
`, p.Authz, p.HTTP, k8s.URL(), gh.URL(), idp.URL(), pdir, dir, dir)
	})
	c := checker{t, a.Authz(t), envoyConfig}
	list := "https://compute.googleapis.com/compute/v1/projects/acme-prod/zones/us-east1-b/instances"
	stop := list + "/web-1/stop"
	rule := func(t *testing.T, method, url, tok, wantRule string) {
		t.Helper()
		res := c.do(method, url, tok, nil, "")
		if wantRule == "" {
			if res.Allowed {
				t.Fatalf("%s %s allowed", method, url)
			}
			return
		}
		if !res.Allowed || !strings.Contains(fmt.Sprint(res.DynamicMetadata["rules"]), wantRule) {
			t.Fatalf("%s %s: allowed=%v metadata=%v body=%s", method, url, res.Allowed, res.DynamicMetadata, res.Body)
		}
	}

	t.Run("kubernetes service account", func(t *testing.T) {
		rule(t, "GET", list, k8s.KubernetesToken("agents", "claude", "airlock"), "cluster-agents-read")
		rule(t, "POST", stop, k8s.KubernetesToken("agents", "claude", "airlock"), "")
		rule(t, "GET", list, k8s.KubernetesToken("default", "claude", "airlock"), "")
		res := c.do("GET", list, k8s.KubernetesToken("agents", "claude", "vault"), nil, "")
		if res.Status != 401 || !strings.Contains(string(res.Body), "audience") {
			t.Fatalf("a token for another audience: %d %s", res.Status, res.Body)
		}
	})
	t.Run("github actions", func(t *testing.T) {
		rule(t, "POST", stop, gh.GitHubToken("acme/infra", "refs/heads/main", "Deploy", "production", "airlock"), "ci-deploys-from-main")
		rule(t, "POST", stop, gh.GitHubToken("acme/infra", "refs/heads/feature", "Deploy", "production", "airlock"), "")
		res := c.do("POST", stop, gh.GitHubToken("mallory/infra", "refs/heads/main", "Deploy", "production", "airlock"), nil, "")
		if res.Status != 401 || !strings.Contains(string(res.Body), "not_allowed") {
			t.Fatalf("another organisation's workflow: %d %s", res.Status, res.Body)
		}
	})
	t.Run("a person through their agent", func(t *testing.T) {
		alice := idp.Mint(map[string]any{"sub": "alice", "groups": []string{"ai-agents"}, "act": map[string]any{"sub": "claude-code"}})
		rule(t, "GET", list, alice, "people-through-their-agents")
		rule(t, "GET", list, idp.Mint(map[string]any{"sub": "alice", "groups": []string{"ai-agents"}}), "")
	})

	// The actor is in every decision recorded for alice.
	a.Stop()
	sink := "file://" + filepath.Join(a.Dir, "sessions")
	rc, out, errOut := runCLI(t, nil, "sessions", "list", "--sink", sink, "--subject", "alice", "--json")
	if rc != 0 {
		t.Fatalf("sessions list: %d %s %s", rc, out, errOut)
	}
	ids := map[string]bool{}
	for _, id := range regexp.MustCompile(`s-[0-9TZ]+-[0-9a-f]+`).FindAllString(out, -1) {
		ids[id] = true
	}
	var withActor, without int
	for id := range ids {
		rc, out, errOut = runCLI(t, nil, "sessions", "export", id, "--sink", sink)
		if rc != 0 {
			t.Fatalf("export: %d %s", rc, errOut)
		}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var ev struct {
				Kind     string `json:"kind"`
				Decision struct {
					Subject string   `json:"subject"`
					Actor   string   `json:"actor"`
					Rules   []string `json:"rules"`
				} `json:"decision"`
			}
			if err := json.Unmarshal([]byte(line), &ev); err != nil || ev.Kind != "decision" || ev.Decision.Subject != "alice" {
				continue
			}
			switch ev.Decision.Actor {
			case "claude-code":
				withActor++
			case "":
				without++
			default:
				t.Errorf("actor %q recorded: %s", ev.Decision.Actor, line)
			}
		}
	}
	if withActor != 1 || without != 1 {
		t.Fatalf("recorded decisions of alice: %d with the actor claude-code, %d without; want 1 and 1", withActor, without)
	}
}

// TestUnrestrictedPublicIssuerRefusesToStart: trusting accounts.google.com
// (any Google account on earth) without a restriction stops airlock at
// start, naming the entry and the keys that would fix it.
func TestUnrestrictedPublicIssuerRefusesToStart(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "airlock.yaml")
	if err := os.WriteFile(cfg, []byte(`listen: {authz: "127.0.0.1:0", extproc: "", sds: "", http: ""}
identity:
  issuers:
    - {issuer: https://idp.acme.example, audience: airlock}
    - {issuer: https://accounts.google.com, audience: airlock}
recorder: {enabled: false}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out := runBounded(t, 20*time.Second, "serve", "--config", cfg)
	if code <= 0 || !strings.Contains(out, "identity.issuers[1]") || !strings.Contains(out, "allowed_emails") ||
		!strings.Contains(out, "allow_unrestricted") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}
