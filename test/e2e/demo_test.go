package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/airlockhq/airlock/identity/identitytest"
)

// TestDemo is `make demo`: one agent session end to end, through the Envoy
// stand-in, a real `airlock serve` and a fake Google Cloud (fake-gcs-server
// for Storage, canned Discovery-shaped Compute and Secret Manager answers),
// printed as a story. Every step is also asserted, so the demo cannot rot.
func TestDemo(t *testing.T) {
	out := io.Writer(io.Discard)
	if os.Getenv("AIRLOCK_DEMO") != "" {
		out = os.Stdout
	}
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }

	gcs, err := fakestorage.NewServerWithOptions(fakestorage.Options{
		Scheme: "http", Host: "127.0.0.1", Port: 0, Writer: io.Discard,
		InitialObjects: []fakestorage.Object{
			{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "acme-dev-builds", Name: "release/v1.2.3.tar.gz"}, Content: []byte("tarball")},
			{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "acme-dev-builds", Name: "release/notes.txt"}, Content: []byte("notes")},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gcs.Stop)
	gcsURL, _ := url.Parse(gcs.URL())
	storage := httputil.NewSingleHostReverseProxy(gcsURL)

	iss := identitytest.NewIssuer(t)
	google := &fakeGoogle{}
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host == "storage.googleapis.com" {
			google.mu.Lock()
			google.auth = append(google.auth, r.Header.Get("Authorization"))
			google.mu.Unlock()
			storage.ServeHTTP(w, r)
			return
		}
		google.ServeHTTP(w, r)
	}))
	t.Cleanup(upstream.Close)

	g := startGatewayWith(t, iss, upstream.URL, filepath.Join(repoRoot, "policies", "examples"), "")
	alice := iss.Mint(map[string]any{"sub": "alice", "email": "alice@acme.example", "groups": []string{"ai-agents"}, "act": map[string]any{"sub": "claude-code"}})
	bob := iss.Mint(map[string]any{"sub": "bob", "email": "bob@acme.example", "groups": []string{"security"}})
	refusal := func(body string) googleError {
		var e googleError
		if err := json.Unmarshal([]byte(body), &e); err != nil || len(e.Error.Details) == 0 {
			t.Fatalf("not a refusal: %s", body)
		}
		return e
	}

	say("airlock demo: alice's coding agent (claude-code) works on Google Cloud through Envoy and airlock.")
	say("Envoy here is the test stand-in; Google Cloud is fake-gcs-server and canned Compute and Secret Manager answers.\n")

	say("1. The agent lists instances in acme-dev.")
	code, body := g.agent(t, "GET", "https://compute.googleapis.com/compute/v1/projects/acme-dev/zones/us-east1-b/instances", alice)
	if code != 200 || !strings.Contains(body, "web-1") {
		t.Fatalf("list: %d %s", code, body)
	}
	say("   GET compute.googleapis.com/.../projects/acme-dev/zones/us-east1-b/instances -> %d, instance web-1", code)
	say("   Google saw Authorization %q: the token airlock minted over SDS, never the agent's.\n", lastAuth(google))

	say("2. The agent tries to delete web-1 in acme-prod.")
	code, body = g.agent(t, "DELETE", "https://compute.googleapis.com/compute/v1/projects/acme-prod/zones/us-east1-b/instances/web-1", alice)
	e := refusal(body)
	if code != 403 || e.Error.Details[0].Reason != "POLICY_DENIED" || e.Error.Details[0].Metadata["rule"] != "no-prod-instance-delete" {
		t.Fatalf("delete: %d %s", code, body)
	}
	say("   -> %d %s, rule %s", code, e.Error.Details[0].Reason, e.Error.Details[0].Metadata["rule"])
	say("   the agent reads: %s\n", e.Error.Message)

	say("3. The agent reads the database secret in acme-dev.")
	secretURL := "https://secretmanager.googleapis.com/v1/projects/acme-dev/secrets/db/versions/3:access"
	code, body = g.agent(t, "GET", secretURL, alice)
	e = refusal(body)
	id := e.Error.Details[0].Metadata["approval_id"]
	if code != 403 || e.Error.Details[0].Reason != "APPROVAL_REQUIRED" || id == "" {
		t.Fatalf("secret: %d %s", code, body)
	}
	say("   -> %d %s: %s", code, e.Error.Details[0].Reason, e.Error.Message)
	code, list := api(t, "GET", "http://"+g.a.HTTPAddr+"/v1/approvals?state=pending", bob, nil)
	if code != 200 || !strings.Contains(fmt.Sprint(list), id) {
		t.Fatalf("pending: %d %v", code, list)
	}
	say("   bob (group security) sees it pending: %s %s by %s", id, "secretmanager.projects.secrets.versions.access", "alice@acme.example")
	rc, stdout, stderr := runCLI(t, []string{"AIRLOCK_TOKEN=" + bob}, "approvals", "approve", id, "--server", "http://"+g.a.HTTPAddr, "--reason", "db migration, ticket OPS-1234")
	if rc != 0 {
		t.Fatalf("approve: %d %s %s", rc, stdout, stderr)
	}
	say("   bob approves: airlock approvals approve %s --reason \"db migration, ticket OPS-1234\"", id)
	code, body = g.agent(t, "GET", secretURL, alice)
	var access struct {
		Payload struct{ Data []byte } `json:"payload"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &access) != nil || !strings.HasPrefix(string(access.Payload.Data), "[MASKED:") || strings.Contains(body, "LS0tLS1CRUdJTi") {
		t.Fatalf("retry: %d %s", code, body)
	}
	say("   the agent retries -> %d, and the private key in payload.data is masked inline", code)
	say("   (bytes stay base64, so clients decode the label: %s):", access.Payload.Data)
	say("   %s\n", body)

	say("4. The agent lists build artefacts in Cloud Storage (fake-gcs-server).")
	code, body = g.agent(t, "GET", "https://storage.googleapis.com/storage/v1/b/acme-dev-builds/o?prefix=release/", alice)
	if code != 200 || !strings.Contains(body, "release/v1.2.3.tar.gz") {
		t.Fatalf("storage: %d %s", code, body)
	}
	say("   GET storage.googleapis.com/storage/v1/b/acme-dev-builds/o -> %d, %d objects\n", code, strings.Count(body, `"kind":"storage#object"`))

	// Stopping airlock flushes the recording to the sink.
	g.a.Stop()
	sink := "file://" + g.a.Dir + "/sessions"
	rc, stdout, stderr = runCLI(t, nil, "sessions", "list", "--sink", sink, "--subject", "alice")
	sid := regexp.MustCompile(`s-[0-9TZ]+-[0-9a-f]+`).FindString(stdout)
	if rc != 0 || sid == "" {
		t.Fatalf("sessions list: %d %s %s", rc, stdout, stderr)
	}
	say("5. The auditor reads the recorded session back: airlock sessions show %s", sid)
	rc, stdout, stderr = runCLI(t, nil, "sessions", "show", sid, "--sink", sink)
	if rc != 0 || !strings.Contains(stdout, "no-prod-instance-delete") || !strings.Contains(stdout, id) || strings.Contains(stdout, "LS0tLS1CRUdJTi") {
		t.Fatalf("sessions show: %d\n%s\n%s", rc, stdout, stderr)
	}
	say("%s", indent(stdout))
	rc, stdout, stderr = runCLI(t, nil, "sessions", "verify", sid, "--sink", sink)
	if rc != 0 {
		t.Fatalf("sessions verify: %d %s %s", rc, stdout, stderr)
	}
	say("\n   airlock sessions verify %s: %s", sid, strings.TrimSpace(stdout))
}

func lastAuth(g *fakeGoogle) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.auth) == 0 {
		return ""
	}
	return g.auth[len(g.auth)-1]
}
