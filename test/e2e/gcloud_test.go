package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/airlockhq/airlock/config"
	"github.com/airlockhq/airlock/envoy/envoytest"
	"github.com/airlockhq/airlock/identity/identitytest"
	"github.com/airlockhq/airlock/test/standin"
)

// gatewayDomain is the gateway domain of the endpoint-override tests:
// compute.airlock.test is read as compute.googleapis.com.
const gatewayDomain = "airlock.test"

// cloud is a fake Google Cloud behind the gateway: Compute Engine and
// Resource Manager answer with canned Discovery-shaped JSON, Cloud Storage
// is fake-gcs-server. It records every request that reached it.
type cloud struct {
	storage http.Handler

	mu    sync.Mutex
	seen  []string       // "METHOD host/path"
	waits map[string]int // operation name -> wait calls
}

func newCloud(t *testing.T) *cloud {
	t.Helper()
	gcs, err := fakestorage.NewServerWithOptions(fakestorage.Options{
		Scheme: "http", Host: "127.0.0.1", Port: 0, Writer: io.Discard,
		InitialObjects: []fakestorage.Object{
			{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "acme-dev-builds", Name: "release/v1.2.3.tar.gz"}, Content: []byte("tarball")},
			{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "acme-dev-builds", Name: "release/notes.txt"}, Content: []byte("v1.2.3: faster builds\n")},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gcs.Stop)
	u, _ := url.Parse(gcs.URL())
	return &cloud{storage: httputil.NewSingleHostReverseProxy(u), waits: map[string]int{}}
}

// Seen returns the requests that reached Google, as "METHOD host/path".
func (c *cloud) Seen() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.seen...)
}

func (c *cloud) count(prefix string) int {
	n := 0
	for _, s := range c.Seen() {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}

const zoneURL = "https://compute.googleapis.com/compute/v1/projects/%s/zones/%s"

func (c *cloud) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.seen = append(c.seen, r.Method+" "+r.Host+r.URL.Path)
	c.mu.Unlock()
	if r.Host == "storage.googleapis.com" {
		c.storage.ServeHTTP(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	p := r.URL.Path
	seg := strings.Split(strings.Trim(p, "/"), "/")
	switch {
	case r.Host == "compute.googleapis.com" && len(seg) >= 6 && seg[4] == "zones":
		c.compute(w, r, seg[3], seg[5], seg[6:])
	case r.Host == "sqladmin.googleapis.com" && r.Method == "GET" && strings.HasSuffix(p, "/instances"):
		fmt.Fprintf(w, `{"kind":"sql#instancesList","items":[{"kind":"sql#instance","name":"orders","project":%q,"state":"RUNNABLE","databaseVersion":"POSTGRES_15","region":"us-east1","backendType":"SECOND_GEN","instanceType":"CLOUD_SQL_INSTANCE"}]}`, seg[3])
	case r.Host == "cloudresourcemanager.googleapis.com" && strings.HasSuffix(p, ":getIamPolicy"):
		fmt.Fprint(w, `{"version":1,"etag":"BwYsZ2bJ9n0=","bindings":[{"role":"roles/owner","members":["group:sre@acme.example"]},{"role":"roles/viewer","members":["group:ai-agents@acme.example"]}]}`)
	case r.Host == "cloudresourcemanager.googleapis.com" && len(seg) == 3 && seg[1] == "projects" && r.Method == "GET":
		fmt.Fprintf(w, `{"projectNumber":"415104041262","projectId":%q,"lifecycleState":"ACTIVE","name":%q,"labels":{"env":"prod"}}`, seg[2], seg[2])
	default:
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"error":{"code":404,"message":"The resource '%s' was not found","status":"NOT_FOUND"}}`, p)
	}
}

func (c *cloud) compute(w http.ResponseWriter, r *http.Request, project, zone string, rest []string) {
	zoneLink := fmt.Sprintf(zoneURL, project, zone)
	instance := func(status string) string {
		return fmt.Sprintf(`{"kind":"compute#instance","id":"7752","name":"web-1","zone":%q,"status":%q,"machineType":"%s/machineTypes/e2-small","selfLink":"%s/instances/web-1",`+
			`"serviceAccounts":[{"email":"123-compute@developer.gserviceaccount.com"}],"metadata":{"kind":"compute#metadata","items":[{"key":"startup-script","value":"export API_KEY=%s\n./serve"}]}}`,
			zoneLink, status, zoneLink, zoneLink, secretAPIKey)
	}
	operation := func(name, kind, status string) string {
		return fmt.Sprintf(`{"kind":"compute#operation","id":"901","name":%q,"zone":%q,"operationType":%q,"targetLink":"%s/instances/web-1","status":%q,"progress":%d,"selfLink":"%s/operations/%s"}`,
			name, zoneLink, kind, zoneLink, status, map[string]int{"RUNNING": 50, "DONE": 100}[status], zoneLink, name)
	}
	switch {
	case len(rest) == 1 && rest[0] == "instances" && r.Method == "GET":
		fmt.Fprintf(w, `{"kind":"compute#instanceList","id":"projects/%s/zones/%s/instances","items":[%s],"selfLink":"%s/instances"}`, project, zone, instance("RUNNING"), zoneLink)
	case len(rest) == 2 && rest[0] == "instances" && r.Method == "GET":
		fmt.Fprint(w, instance("RUNNING"))
	case len(rest) == 3 && rest[0] == "instances" && rest[2] == "stop" && r.Method == "POST":
		fmt.Fprint(w, operation("operation-stop-web-1", "stop", "RUNNING"))
	case len(rest) == 2 && rest[0] == "instances" && r.Method == "DELETE":
		fmt.Fprint(w, operation("operation-delete-web-1", "delete", "RUNNING"))
	case len(rest) == 3 && rest[0] == "operations" && rest[2] == "wait" && r.Method == "POST":
		// The first wait comes back before the operation is done, as
		// Compute's does after its deadline: gcloud waits again.
		c.mu.Lock()
		c.waits[rest[1]]++
		n := c.waits[rest[1]]
		c.mu.Unlock()
		status := "DONE"
		if n == 1 {
			status = "RUNNING"
		}
		fmt.Fprint(w, operation(rest[1], "stop", status))
	case len(rest) == 2 && rest[0] == "operations" && r.Method == "GET":
		fmt.Fprint(w, operation(rest[1], "stop", "DONE"))
	default:
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"error":{"code":404,"message":"The resource '%s' was not found","status":"NOT_FOUND"}}`, r.URL.Path)
	}
}

// tlsGateway is airlock behind the Envoy stand-in serving TLS with a
// certificate of the private CA, the way the shipped bootstrap does with
// envoy.tls_cert: for *.googleapis.com (transparent mode) and
// *.GATEWAY_DOMAIN (endpoint overrides).
type tlsGateway struct {
	a       *Airlock
	front   *httptest.Server
	net     *network
	ca      *privateCA
	cloud   *cloud
	iss     *identitytest.DeviceIssuer
	apiBase string
}

// startTLSGateway runs airlock with the shipped baseline policies
// (policies/examples), the gateway domain, and the approval URL on its
// HTTP listener, in front of a fake Google Cloud.
func startTLSGateway(t *testing.T) *tlsGateway {
	t.Helper()
	g := &tlsGateway{iss: identitytest.NewDeviceIssuer(t, "airlock"), cloud: newCloud(t), ca: newPrivateCA(t)}
	upstream := httptest.NewServer(g.cloud)
	t.Cleanup(upstream.Close)
	tokens := envoytest.NewTokenServer(t, time.Hour)
	g.a = startAirlock(t, func(p Ports, dir string) string {
		return fmt.Sprintf(`listen: {authz: %q, extproc: %q, sds: %q, http: %q}
identity:
  issuers:
    - {issuer: %s, audience: airlock, groups_claim: groups}
policies: {paths: [%q]}
approvals: {public_url: "http://%s"}
recorder: {enabled: true, sink: "file://%s/sessions", spool: "%s/spool"}
gateway: {domains: [%s]}
credentials:
  - name: gcp
    service_account_key: %s
    scopes: [https://www.googleapis.com/auth/cloud-platform]
`, p.Authz, p.ExtProc, p.SDS, p.HTTP, g.iss.URL(), filepath.Join(repoRoot, "policies", "examples"), p.HTTP, dir, dir, gatewayDomain, tokens.KeyFile)
	})
	g.apiBase = "http://" + g.a.HTTPAddr
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
	fc := standin.AirlockFrontConfig(cfg, dial(t, g.a.AuthzAddr), dial(t, g.a.ExtProcAddr), sds, upstream.URL)
	fc.AuthzConfig.Timeout = 10 * time.Second
	g.front = httptest.NewUnstartedServer(standin.NewFront(fc))
	g.front.TLS = &tls.Config{Certificates: []tls.Certificate{g.ca.serverCert(t, "*.googleapis.com", "*."+gatewayDomain)}}
	g.front.StartTLS()
	t.Cleanup(g.front.Close)
	g.net = newNetwork(t, g.front.Listener.Addr().String())
	return g
}

// gcloudPath finds the gcloud CLI. Without it the test says so and skips,
// unless CI=true, where a missing gcloud is a failure.
func gcloudPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("gcloud")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("gcloud is not installed; CI=true requires it for the real-client tests")
		}
		t.Skip("gcloud is not installed: the real-client tests need the Google Cloud CLI (https://cloud.google.com/sdk/docs/install)")
	}
	return p
}

// gcloud is one agent's gcloud: its own configuration directory, offline
// (no usage reporting, prompts, update checks or metadata server probing),
// reaching the gateway through the network stand-in, trusting its CA.
type gcloud struct {
	t    *testing.T
	bin  string
	env  []string
	home string
}

func newGcloud(t *testing.T, g *tlsGateway, tokenFile string, settings map[string]string) *gcloud {
	t.Helper()
	home := t.TempDir()
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"CLOUDSDK_CONFIG=" + filepath.Join(home, "gcloud"),
		"CLOUDSDK_CORE_DISABLE_USAGE_REPORTING=true",
		"CLOUDSDK_CORE_DISABLE_PROMPTS=1",
		"CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK=true",
		"CLOUDSDK_CORE_CHECK_GCE_METADATA=false",
		"CLOUDSDK_CORE_SHOW_STRUCTURED_LOGS=never",
		"CLOUDSDK_SURVEY_DISABLE_PROMPTS=true",
		"GCE_METADATA_HOST=127.0.0.1:9",
		"NO_GCE_CHECK=True",
		"CLOUDSDK_PROXY_TYPE=http",
		"CLOUDSDK_PROXY_ADDRESS=127.0.0.1",
		"CLOUDSDK_PROXY_PORT=" + g.net.Port(),
		"CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE=" + g.ca.CertFile,
		"CLOUDSDK_AUTH_ACCESS_TOKEN_FILE=" + tokenFile,
	}
	for k, v := range settings {
		env = append(env, k+"="+v)
	}
	return &gcloud{t: t, bin: gcloudPath(t), env: env, home: home}
}

// run runs gcloud with args and returns its exit code, stdout and stderr.
func (c *gcloud) run(args ...string) (int, string, string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = c.env
	cmd.Dir = c.home
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatalf("gcloud %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		c.t.Fatalf("gcloud %s did not finish in 90s:\n%s\n%s", strings.Join(args, " "), out.String(), errb.String())
	}
	return code, out.String(), errb.String()
}

// login runs `airlock login --once` against the gateway's issuer, approves
// its device code with claims as the person would in the browser, and
// returns the token file it wrote.
func (g *tlsGateway) login(t *testing.T, claims map[string]any) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "airlock", "token")
	cmd := exec.Command(airlockBin, "login", "--issuer", g.iss.URL(), "--client-id", "airlock", "--token-file", file, "--once")
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	code, err := g.iss.NextUserCode(30 * time.Second)
	if err != nil {
		_ = cmd.Process.Kill()
		t.Fatalf("%v\n%s", err, out.String())
	}
	if err := g.iss.Approve(code, claims); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("airlock login: %v\n%s", err, out.String())
		}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("airlock login did not finish:\n%s", out.String())
	}
	return file
}

var approvalIDRe = regexp.MustCompile(`approve request (\S+) at (\S+) before`)

// TestGcloudThroughTheGateway drives the real gcloud CLI through the Envoy
// stand-in and airlock, with the shipped baseline policies, to a fake
// Google Cloud. Compute goes through endpoint overrides
// (compute.airlock.test, rewritten by the bootstrap's Lua); Cloud Storage
// and Resource Manager go in transparent mode (the real Google hosts,
// trusted through the private CA).
func TestGcloudThroughTheGateway(t *testing.T) {
	gcloudPath(t)
	start := time.Now()
	out := io.Writer(io.Discard)
	if os.Getenv("AIRLOCK_DEMO") != "" {
		out = os.Stdout
	}
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	show := func(cmd []string, stdout, stderr string) {
		say("   $ gcloud %s", strings.Join(cmd, " "))
		if s := strings.TrimSpace(stdout + stderr); s != "" {
			say("      %s", strings.ReplaceAll(s, "\n", "\n      "))
		}
	}
	g := startTLSGateway(t)
	// alice signs in with `airlock login`; her coding agent's gcloud reads
	// the token file it keeps.
	aliceToken := g.login(t, map[string]any{"sub": "alice", "email": "alice@acme.example", "email_verified": true,
		"groups": []string{"ai-agents"}, "act": map[string]any{"sub": "claude-code"}})
	bob := g.iss.Mint(map[string]any{"sub": "bob", "email": "bob@acme.example", "email_verified": true, "groups": []string{"sre"}})
	gc := newGcloud(t, g, aliceToken, map[string]string{
		"CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE": "https://compute." + gatewayDomain + "/compute/v1/",
	})
	zone := []string{"--zone", "us-east1-b", "--project", "acme-prod"}
	say("airlock with gcloud: alice's coding agent runs the real gcloud CLI through Envoy (the test stand-in) and airlock,")
	say("under the shipped baseline policies, against a fake Google Cloud. Compute goes through endpoint overrides")
	say("(https://compute.%s/, rewritten by the bootstrap's Lua filter); Cloud Storage and Resource Manager go in", gatewayDomain)
	say("transparent mode (the real Google hosts, the gateway's certificate from a private CA gcloud trusts).")
	say("alice signed in with `airlock login` (device flow); gcloud reads her token from auth/access_token_file.\n")

	t.Run("an allowed list succeeds", func(t *testing.T) {
		cmd := []string{"compute", "instances", "list", "--zones", "us-east1-b", "--project", "acme-prod", "--format", "value(name,status)"}
		code, out, errOut := gc.run(cmd...)
		if code != 0 || !strings.Contains(out, "web-1") || !strings.Contains(out, "RUNNING") {
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
		}
		say("1. An allowed list (rule agents-may-read):")
		show(cmd, out, errOut)
	})

	t.Run("a refused delete prints airlock's message with the rule", func(t *testing.T) {
		before := g.cloud.count("DELETE ")
		cmd := append([]string{"compute", "instances", "delete", "web-1", "--quiet"}, zone...)
		code, out, errOut := gc.run(cmd...)
		if code == 0 || !strings.Contains(errOut, "airlock: denied by rule no-prod-instance-delete") ||
			!strings.Contains(errOut, "Deleting production VM instances is not allowed for agents") {
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
		}
		say("\n2. A refused delete: gcloud prints airlock's message and the rule; nothing reaches Google.")
		show(cmd, out, errOut)
		if g.cloud.count("DELETE ") != before {
			t.Fatalf("the refused delete reached Google: %v", g.cloud.Seen())
		}
	})

	t.Run("an approval-required stop is approved, and the retry completes", func(t *testing.T) {
		stop := append([]string{"compute", "instances", "stop", "web-1"}, zone...)
		code, out, errOut := gc.run(stop...)
		m := approvalIDRe.FindStringSubmatch(errOut)
		if code == 0 || m == nil || !strings.Contains(errOut, "approval required by rule prod-writes-need-sre") {
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
		}
		say("\n3. A production stop needs an SRE's approval: gcloud prints the approval id and URL.")
		show(stop, out, errOut)
		id, approveURL := m[1], strings.TrimSuffix(m[2], ".")
		if !strings.HasPrefix(approveURL, g.apiBase+"/") || !strings.Contains(approveURL, id) {
			t.Fatalf("approve URL %q does not lead to approval %s on %s", approveURL, id, g.apiBase)
		}
		if n := g.cloud.count("POST compute.googleapis.com/compute/v1/projects/acme-prod/zones/us-east1-b/instances/web-1/stop"); n != 0 {
			t.Fatalf("the held stop reached Google")
		}
		rc, stdout, stderr := runCLI(t, []string{"AIRLOCK_TOKEN=" + bob}, "approvals", "approve", id, "--server", g.apiBase, "--reason", "maintenance window CHG-42")
		if rc != 0 {
			t.Fatalf("approve: %d %s %s", rc, stdout, stderr)
		}
		say("   bob (group sre) approves it:")
		say("   $ airlock approvals approve %s --reason \"maintenance window CHG-42\"", id)
		say("      %s", strings.ReplaceAll(strings.TrimSpace(stdout), "\n", "\n      "))
		// gcloud's default behaviour: send the stop, then follow the
		// operation with zoneOperations.wait until it is DONE.
		code, out, errOut = gc.run(stop...)
		if code != 0 || !strings.Contains(errOut, "Updated [") || !strings.Contains(errOut, "web-1") {
			t.Fatalf("retry: exit %d\nstdout: %s\nstderr: %s\nGoogle saw: %v", code, out, errOut, g.cloud.Seen())
		}
		say("   the agent retries the same command; gcloud sends the stop and follows its operation (zoneOperations.wait,")
		say("   read-only, so no second approval) until it is DONE:")
		show(stop, out, errOut)
		if n := g.cloud.count("POST compute.googleapis.com/compute/v1/projects/acme-prod/zones/us-east1-b/instances/web-1/stop"); n != 1 {
			t.Fatalf("Google saw %d stops, want 1: %v", n, g.cloud.Seen())
		}
		if n := g.cloud.count("POST compute.googleapis.com/compute/v1/projects/acme-prod/zones/us-east1-b/operations/operation-stop-web-1/wait"); n < 2 {
			t.Fatalf("Google saw %d operation waits, want at least 2 (RUNNING, then DONE): %v", n, g.cloud.Seen())
		}
		// The grant was spent: the same stop waits for a human again.
		code, _, errOut = gc.run(stop...)
		if code == 0 || !strings.Contains(errOut, "approval required by rule prod-writes-need-sre") {
			t.Fatalf("a once grant admitted a second stop: exit %d\n%s", code, errOut)
		}
	})

	t.Run("a secret read comes back masked", func(t *testing.T) {
		cmd := append([]string{"compute", "instances", "describe", "web-1", "--format", "json(name,metadata.items)"}, zone...)
		code, out, errOut := gc.run(cmd...)
		if code != 0 || !strings.Contains(out, "startup-script") || !strings.Contains(out, "[MASKED") || strings.Contains(out, secretAPIKey) {
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
		}
		say("\n4. A secret read comes back masked: the API key in web-1's startup script never reaches the agent.")
		show(cmd, out, errOut)
	})

	say("\nThe four outcomes took %s after build, airlock's start and alice's login included.", time.Since(start).Round(time.Second))

	t.Run("Cloud Storage in transparent mode", func(t *testing.T) {
		cmd := []string{"storage", "ls", "gs://acme-dev-builds/release/"}
		code, out, errOut := gc.run(cmd...)
		if code != 0 || !strings.Contains(out, "gs://acme-dev-builds/release/notes.txt") {
			t.Fatalf("ls: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
		}
		say("\n5. Cloud Storage, transparent mode: reads pass, a delete waits for a human.")
		show(cmd, out, errOut)
		code, out, errOut = gc.run("storage", "cat", "gs://acme-dev-builds/release/notes.txt")
		if code != 0 || !strings.Contains(out, "v1.2.3: faster builds") {
			t.Fatalf("cat: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
		}
		cmd = []string{"storage", "rm", "gs://acme-dev-builds/release/notes.txt"}
		code, out, errOut = gc.run(cmd...)
		if code == 0 || !strings.Contains(out+errOut, "approval required by rule prod-writes-need-sre") {
			t.Fatalf("rm: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
		}
		show(cmd, out, errOut)
	})

	t.Run("Resource Manager reads, POST included", func(t *testing.T) {
		code, out, errOut := gc.run("projects", "describe", "acme-prod", "--format", "value(projectId,lifecycleState)")
		if code != 0 || !strings.Contains(out, "acme-prod") {
			t.Fatalf("describe: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
		}
		cmd := []string{"projects", "get-iam-policy", "acme-prod", "--format", "value(bindings.role)"}
		code, out, errOut = gc.run(cmd...)
		if code != 0 || !strings.Contains(out, "roles/viewer") {
			t.Fatalf("get-iam-policy: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
		}
		say("\n6. Resource Manager: getIamPolicy is a POST that reads (gcp.readonly), so agents may read it.")
		show(cmd, out, errOut)
	})

	t.Run("Cloud SQL (Admin API v1beta4, as gcloud sends it)", func(t *testing.T) {
		cmd := []string{"sql", "instances", "list", "--project", "acme-dev", "--format", "value(name,state)"}
		code, out, errOut := gc.run(cmd...)
		if code != 0 || !strings.Contains(out, "orders") {
			t.Fatalf("list: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
		}
		say("\n7. Cloud SQL: gcloud sql speaks the Admin API's v1beta4; a list passes, a delete is denied.")
		show(cmd, out, errOut)
		cmd = []string{"sql", "instances", "delete", "orders", "--project", "acme-dev", "--quiet"}
		code, out, errOut = gc.run(cmd...)
		if code == 0 || !strings.Contains(errOut, "airlock: denied by rule no-sql-instance-delete") {
			t.Fatalf("delete: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
		}
		show(cmd, out, errOut)
	})

	say("\nDone in %s (after build).", time.Since(start).Round(time.Second))
	// Every name gcloud looked up reached the gateway as configured.
	for _, n := range g.net.Names() {
		if n != "compute."+gatewayDomain+":443" && n != "storage.googleapis.com:443" && n != "cloudresourcemanager.googleapis.com:443" && n != "sqladmin.googleapis.com:443" {
			t.Errorf("gcloud connected to %s", n)
		}
	}
}
