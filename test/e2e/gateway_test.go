package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlockhq/airlock/config"
	"github.com/airlockhq/airlock/envoy/envoytest"
	"github.com/airlockhq/airlock/identity/identitytest"
	"github.com/airlockhq/airlock/test/standin"
)

// Secrets planted in the fake Google responses; none may reach the agent.
const (
	secretPEM    = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKjMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvuNMoSfm76oqFvAp8Gy0iz5sxjZmSnXyCdPEovGhLa0VzMaQ8s+CLOyS56YyCFGeJZ\n-----END PRIVATE KEY-----\n"
	secretAPIKey = "AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI"
)

// fakeGoogle answers like Google's APIs, by host and path, and records what
// reached it.
type fakeGoogle struct {
	mu    sync.Mutex
	auth  []string
	paths []string
}

func (g *fakeGoogle) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	g.auth = append(g.auth, r.Header.Get("Authorization"))
	g.paths = append(g.paths, r.Method+" "+r.Host+r.URL.Path)
	g.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	switch {
	case strings.HasSuffix(r.URL.Path, ":access"):
		fmt.Fprintf(w, `{"name":"projects/123/secrets/db/versions/3","payload":{"data":%q,"dataCrc32c":"1234"}}`,
			base64.StdEncoding.EncodeToString([]byte(secretPEM)))
	case strings.HasSuffix(r.URL.Path, "/keys") && r.Method == "POST":
		sa := fmt.Sprintf(`{"type":"service_account","project_id":"acme-dev","private_key_id":"abc","private_key":%q,"client_email":"bot@acme-dev.iam.gserviceaccount.com"}`, secretPEM)
		fmt.Fprintf(w, `{"name":"projects/acme-dev/serviceAccounts/bot@acme-dev.iam.gserviceaccount.com/keys/abc","privateKeyType":"TYPE_GOOGLE_CREDENTIALS_FILE","privateKeyData":%q}`,
			base64.StdEncoding.EncodeToString([]byte(sa)))
	case strings.Contains(r.URL.Path, "/instances/") && r.Method == "GET":
		fmt.Fprintf(w, `{"kind":"compute#instance","name":"web-1","serviceAccounts":[{"email":"123-compute@developer.gserviceaccount.com"}],"metadata":{"items":[{"key":"startup-script","value":"export API_KEY=%s\n./run"}]}}`, secretAPIKey)
	default:
		fmt.Fprint(w, `{"kind":"compute#instanceList","items":[{"name":"web-1","status":"RUNNING","fingerprint":"42WmSpB8rSM="}]}`)
	}
}

const gatewayPolicy = `name: gateway
default: deny
rules:
  - name: no-delete
    when: gcp.method == "compute.instances.delete"
    action: deny
    message: Deleting instances is not allowed for agents.
  - name: agents
    when: '"ai-agents" in identity.groups'
    action: allow
masking:
  - name: secret-payloads
    when: gcp.service == "secretmanager"
    fields: [payload.data]
  - name: startup-scripts
    when: gcp.service == "compute"
    fields: ['**.metadata.items[?key=="startup-script"].value']
`

type gateway struct {
	a      *Airlock
	front  *httptest.Server
	google *fakeGoogle
	tokens *envoytest.TokenServer
}

// startGateway runs airlock as a process and the Envoy stand-in in front of
// it, wired as the shipped bootstrap wires Envoy, with a fake Google behind.
func startGateway(t *testing.T, iss *identitytest.Issuer, extra string) *gateway {
	t.Helper()
	google := &fakeGoogle{}
	upstream := httptest.NewServer(google)
	t.Cleanup(upstream.Close)
	g := startGatewayWith(t, iss, upstream.URL, "", extra)
	g.google = google
	return g
}

// startGatewayWith runs the gateway against upstream, with the policies of
// policyDir (empty: gatewayPolicy).
func startGatewayWith(t *testing.T, iss *identitytest.Issuer, upstreamURL, policyDir, extra string) *gateway {
	t.Helper()
	g := &gateway{tokens: envoytest.NewTokenServer(t, time.Hour)}
	g.a = startAirlock(t, func(p Ports, dir string) string {
		pdir := policyDir
		if pdir == "" {
			pdir = writePolicy(t, dir, "policy.yaml", gatewayPolicy)
		}
		return fmt.Sprintf(`listen: {authz: %q, extproc: %q, sds: %q, http: %q}
%s
policies: {paths: [%q]}
recorder: {enabled: true, sink: "file://%s/sessions", spool: "%s/spool"}
credentials:
  - name: gcp
    service_account_key: %s
    scopes: [https://www.googleapis.com/auth/cloud-platform]
%s`, p.Authz, p.ExtProc, p.SDS, p.HTTP, issuerConfig(iss), pdir, dir, dir, g.tokens.KeyFile, extra)
	})
	cfg, err := config.Load(g.a.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	sds := standin.NewSDSClient(ctx, dial(t, g.a.SDSAddr), "gcp")
	t.Cleanup(sds.Close)
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	if _, err := sds.WaitFor(wctx, "gcp", ""); err != nil {
		t.Fatalf("no credential over SDS: %v\n%s", err, g.a.Logs())
	}
	fc := standin.AirlockFrontConfig(cfg, dial(t, g.a.AuthzAddr), dial(t, g.a.ExtProcAddr), sds, upstreamURL)
	fc.AuthzConfig.Timeout = 10 * time.Second
	g.front = httptest.NewServer(standin.NewFront(fc))
	t.Cleanup(g.front.Close)
	return g
}

// agent sends one request as the agent would, in transparent mode: the Host
// is the real Google host.
func (g *gateway) agent(t *testing.T, method, url, token string) (int, string) {
	t.Helper()
	i := strings.Index(url[len("https://"):], "/") + len("https://")
	req, err := http.NewRequest(method, g.front.URL+url[i:], nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = url[len("https://"):i]
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestGatewayMasksInjectsAndRefuses(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	g := startGateway(t, iss, "")
	tok := iss.Mint(map[string]any{"sub": "agent-1", "groups": []string{"ai-agents"}})

	code, body := g.agent(t, "GET", "https://compute.googleapis.com/compute/v1/projects/acme-dev/zones/us-east1-b/instances", tok)
	if code != 200 || !strings.Contains(body, `"web-1"`) || !strings.Contains(body, "42WmSpB8rSM=") {
		t.Fatalf("list: %d %s", code, body)
	}

	code, body = g.agent(t, "GET", "https://secretmanager.googleapis.com/v1/projects/acme-dev/secrets/db/versions/3:access", tok)
	// payload.data is bytes: its label is base64, so clients that decode
	// the field (gcloud secrets versions access) read "[MASKED:...]".
	var access struct {
		Payload struct{ Data []byte } `json:"payload"`
	}
	if code != 200 || strings.Contains(body, base64.StdEncoding.EncodeToString([]byte(secretPEM))[:40]) ||
		json.Unmarshal([]byte(body), &access) != nil || !strings.HasPrefix(string(access.Payload.Data), "[MASKED:") {
		t.Fatalf("secret access was not masked: %d %s", code, body)
	}

	code, body = g.agent(t, "POST", "https://iam.googleapis.com/v1/projects/acme-dev/serviceAccounts/bot@acme-dev.iam.gserviceaccount.com/keys", tok)
	var key struct{ PrivateKeyData []byte }
	if code != 200 || strings.Contains(body, "privateKeyData\":\"ey") || json.Unmarshal([]byte(body), &key) != nil || !strings.HasPrefix(string(key.PrivateKeyData), "[MASKED:") {
		t.Fatalf("a new key reached the agent (default profile): %d %s", code, body)
	}

	code, body = g.agent(t, "GET", "https://compute.googleapis.com/compute/v1/projects/acme-dev/zones/us-east1-b/instances/web-1", tok)
	if code != 200 || strings.Contains(body, secretAPIKey) || !strings.Contains(body, "gserviceaccount.com") {
		t.Fatalf("startup script: %d %s", code, body)
	}

	before := len(g.google.paths)
	code, body = g.agent(t, "DELETE", "https://compute.googleapis.com/compute/v1/projects/acme-prod/zones/us-east1-b/instances/web-1", tok)
	if code != 403 || !strings.Contains(body, "no-delete") {
		t.Fatalf("delete: %d %s", code, body)
	}
	g.google.mu.Lock()
	defer g.google.mu.Unlock()
	if len(g.google.paths) != before {
		t.Fatalf("a refused request reached Google: %v", g.google.paths[before:])
	}
	for _, a := range g.google.auth {
		if a != "Bearer token-1" {
			t.Fatalf("Google saw Authorization %q, want the injected SDS token", a)
		}
	}
	// Every decision and response was made durable, sharing syncs.
	_, m := g.a.Get(t, "/metrics")
	events := 0
	if sm := regexp.MustCompile(`(?m)^airlock_recorder_events_total (\d+)$`).FindStringSubmatch(m); sm != nil {
		events, _ = strconv.Atoi(sm[1])
	}
	if events < 5 || !regexp.MustCompile(`(?m)^airlock_recorder_spool_syncs_total [1-9]`).MatchString(m) {
		t.Fatalf("recorder metrics: want at least 5 events (5 decisions, 4 responses) and a sync:\n%s", m)
	}
}

// A recording that cannot be stored refuses the request (on_full: refuse,
// the default); on_full: drop lets it through and counts it.
func TestFullSpoolFailsClosed(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	tok := iss.Mint(map[string]any{"sub": "agent-1", "groups": []string{"ai-agents"}})
	list := "https://compute.googleapis.com/compute/v1/projects/acme-dev/zones/us-east1-b/instances"
	for _, tc := range []struct {
		onFull  string
		allowed bool
	}{{"refuse", false}, {"drop", true}} {
		t.Run(tc.onFull, func(t *testing.T) {
			a := startAirlock(t, func(p Ports, dir string) string {
				pdir := writePolicy(t, dir, "policy.yaml", gatewayPolicy)
				return fmt.Sprintf(`listen: {authz: %q, extproc: "", sds: "", http: %q}
%s
policies: {paths: [%q]}
recorder: {enabled: true, sink: "file://%s/sessions", spool: "%s/spool", spool_max_bytes: 1, on_full: %s, durability: check}
`, p.Authz, p.HTTP, issuerConfig(iss), pdir, dir, dir, tc.onFull)
			})
			res := checker{t, a.Authz(t), envoyConfig}.do("GET", list, tok, nil, "")
			if res.Allowed != tc.allowed {
				t.Fatalf("allowed=%v with a full spool and on_full %s: %d %s", res.Allowed, tc.onFull, res.Status, res.Body)
			}
			if !tc.allowed {
				g := parseRefusal(t, res.Body)
				if res.Status != 503 || g.Error.Details[0].Reason != "UNAVAILABLE" || !strings.Contains(g.Error.Message, "recorder") {
					t.Fatalf("refusal: %d %s", res.Status, g.Error.Message)
				}
			}
			// What was dropped is counted where operators look.
			_, m := a.Get(t, "/metrics")
			dropped := regexp.MustCompile(`(?m)^airlock_recorder_dropped_events_total [1-9]`).MatchString(m)
			if dropped != tc.allowed || !strings.Contains(m, "airlock_recorder_spool_bytes ") {
				t.Fatalf("on_full %s: dropped counted %v, want %v:\n%s", tc.onFull, dropped, tc.allowed, m)
			}
		})
	}
}
