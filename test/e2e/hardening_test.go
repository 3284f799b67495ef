package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/airlockhq/airlock/envoy/envoytest"
	"github.com/airlockhq/airlock/identity/identitytest"
	"github.com/airlockhq/airlock/recorder"
	"github.com/airlockhq/airlock/redistest"
	"github.com/airlockhq/airlock/test/standin"
)

// runBounded runs the airlock binary with args for at most d and returns
// its exit code (-1 when it was still running and had to be killed) and
// stderr.
func runBounded(t *testing.T, d time.Duration, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, airlockBin, args...)
	cmd.Dir = t.TempDir()
	var errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &errb, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		return -1, errb.String()
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), errb.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, errb.String()
}

// TestServeEmptyConfigFlagIsAnError: `--config ""` (an unset variable in a
// deployment script) is refused, naming the flag; it never serves the
// embedded local-trial configuration with its dev issuer.
func TestServeEmptyConfigFlagIsAnError(t *testing.T) {
	for _, args := range [][]string{{"serve", "--config", ""}, {"serve", "--config="}, {"serve", "-config", "  "}} {
		code, out := runBounded(t, 15*time.Second, args...)
		if code != 2 || !strings.Contains(out, "--config is empty") {
			t.Errorf("airlock %q: exit %d (want 2 naming --config)\n%s", args, code, out)
		}
		if strings.Contains(out, "DEV MODE") {
			t.Errorf("airlock %q started the dev issuer", args)
		}
	}
}

// TestHealthFollowsPolicyFilesOnDisk: a broken edit makes /healthz
// unhealthy; putting back the very text in force makes it healthy again,
// though nothing was reloaded.
func TestHealthFollowsPolicyFilesOnDisk(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	a := startWithPolicy(t, iss, denyListPolicy, "")
	path := filepath.Join(a.Dir, "policies", "policy.yaml")
	healthy := func() (bool, string) {
		code, body := a.Get(t, "/healthz")
		return code == 200 && strings.Contains(body, `"policies":"ok"`), body
	}
	if ok, body := healthy(); !ok {
		t.Fatalf("/healthz at start: %s", body)
	}
	broken := "name: deny-list\ndefault: allow\nrules:\n  - name: broken\n    when: gcp.method ==\n    action: deny\n"
	other := strings.Replace(denyListPolicy, `gcp.method == "compute.instances.delete"`, `gcp.method == "compute.instances.stop"`, 1)
	steps := []struct {
		text    string
		healthy bool
	}{
		{broken, false},
		{denyListPolicy, true}, // reverted to the text in force
		{broken, false},
		{other, true}, // a new good text: reloaded
		{broken, false},
		{other, true}, // reverted again, to the reloaded text
	}
	for i, s := range steps {
		if err := os.WriteFile(path, []byte(s.text), 0o644); err != nil {
			t.Fatal(err)
		}
		var last string
		waitFor(t, 10*time.Second, "/healthz to follow edit "+string(rune('1'+i)), func() bool {
			ok, body := healthy()
			last = body
			return ok == s.healthy
		})
		if !s.healthy && !strings.Contains(last, "policy.yaml") {
			t.Errorf("step %d: /healthz does not name the broken file: %s", i+1, last)
		}
	}
}

// TestIssuerRestrictionsAndLifetime: a token the trusted issuer signed for
// our audience is refused UNAUTHENTICATED when its subject is not allowed
// or when it lives longer than identity.max_token_lifetime.
func TestIssuerRestrictionsAndLifetime(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	a := startAirlock(t, func(p Ports, dir string) string {
		pdir := writePolicy(t, dir, "policy.yaml", denyListPolicy)
		return fmt.Sprintf(`listen: {authz: %q, extproc: "", sds: "", http: %q}
identity:
  max_token_lifetime: 2h
  issuers:
    - issuer: %s
      audience: airlock
      allowed_subjects: ["repo:acme/infra:*", agent-1]
policies: {paths: [%q]}
recorder: {enabled: false}
`, p.Authz, p.HTTP, iss.URL(), pdir)
	})
	c := checker{t, a.Authz(t), envoyConfig}
	list := "https://compute.googleapis.com/compute/v1/projects/acme-dev/zones/us-east1-b/instances"
	if res := c.do("GET", list, iss.Mint(map[string]any{"sub": "agent-1"}), nil, ""); !res.Allowed {
		t.Fatalf("an allowed subject was refused: %d %s", res.Status, res.Body)
	}
	if res := c.do("GET", list, iss.Mint(map[string]any{"sub": "repo:acme/infra:ref:refs/heads/main"}), nil, ""); !res.Allowed {
		t.Fatalf("an allowed subject prefix was refused: %d %s", res.Status, res.Body)
	}
	now := time.Now()
	for _, tc := range []struct {
		name   string
		claims map[string]any
		want   string
	}{
		{"subject not allowed", map[string]any{"sub": "someone-else"}, `its subject \"someone-else\" is not an allowed subject`},
		{"other repository", map[string]any{"sub": "repo:acme/infra-fork:ref:refs/heads/main"}, "is not an allowed subject"},
		{"ancient iat, far exp", map[string]any{"sub": "agent-1", "iat": now.Add(-365 * 24 * time.Hour).Unix(), "exp": now.Add(365 * 24 * time.Hour).Unix()}, "longer than the 2h0m0s this gateway accepts"},
		{"no iat, far exp", map[string]any{"sub": "agent-1", "iat": nil, "exp": now.Add(48 * time.Hour).Unix()}, "has no iat and expires in"},
	} {
		res := c.do("GET", list, iss.Mint(tc.claims), nil, "")
		if res.Allowed || res.Status != 401 || !strings.Contains(string(res.Body), "UNAUTHENTICATED") || !strings.Contains(string(res.Body), tc.want) {
			t.Errorf("%s: %d %s (want 401 UNAUTHENTICATED saying %q)", tc.name, res.Status, res.Body, tc.want)
		}
	}
}

// TestHTTPOutlastsSlowBodies: 100 connections that send headers and then a
// body one byte at a time are all closed within http.read_timeout (those
// beyond http.max_conns_per_source at once), and a normal request from
// another address succeeds meanwhile, as one from the same address does
// afterwards.
func TestHTTPOutlastsSlowBodies(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	const readTimeout = 2 * time.Second
	a := startWithPolicy(t, iss, denyListPolicy, "http: {read_header_timeout: 1s, read_timeout: 2s, max_conns_per_source: 64}\n")
	type result struct {
		closedAfter time.Duration
		refused     bool
		err         error
	}
	const n = 100
	results := make(chan result, n)
	start := time.Now()
	for range n {
		go func() {
			c, err := net.Dial("tcp", a.HTTPAddr)
			if err != nil {
				results <- result{err: err}
				return
			}
			defer c.Close()
			if _, err := io.WriteString(c, "POST /healthz HTTP/1.1\r\nHost: airlock\r\nContent-Length: 100000\r\n\r\nx"); err != nil {
				results <- result{err: err}
				return
			}
			stop := make(chan struct{})
			defer close(stop)
			go func() { // one byte every 200ms, for ever
				t := time.NewTicker(200 * time.Millisecond)
				defer t.Stop()
				for {
					select {
					case <-stop:
						return
					case <-t.C:
						if _, err := c.Write([]byte("x")); err != nil {
							return
						}
					}
				}
			}()
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
			b, err := io.ReadAll(c) // until the server closes the connection
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				results <- result{err: fmt.Errorf("still open after 20s")}
				return
			}
			results <- result{closedAfter: time.Since(start), refused: strings.HasPrefix(string(b), "HTTP/1.1 429")}
		}()
	}

	// Meanwhile a normal request from another address is served.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	other := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
	waitFor(t, 5*time.Second, "a request from another address", func() bool {
		resp, err := other.Get("http://" + a.HTTPAddr + "/livez")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})

	var worst time.Duration
	refused := 0
	for range n {
		r := <-results
		if r.err != nil {
			t.Fatalf("slow connection: %v", r.err)
		}
		worst = max(worst, r.closedAfter)
		if r.refused {
			refused++
		}
	}
	t.Logf("100 slow-body connections: %d refused at once (over max_conns_per_source 64), all closed after %s (read_timeout %s)", refused, worst.Round(time.Millisecond), readTimeout)
	if worst > readTimeout+2*time.Second {
		t.Errorf("the last slow connection was closed after %s, want about read_timeout %s", worst, readTimeout)
	}
	if refused != n-64 {
		t.Errorf("%d connections refused at once, want %d", refused, n-64)
	}
	if code, body := a.Get(t, "/healthz"); code != 200 {
		t.Errorf("/healthz after the flood: %d %s", code, body)
	}
}

const outagePolicy = `name: prod
default: deny
rules:
  - name: no-instance-delete
    when: gcp.method == "compute.instances.delete"
    action: deny
    message: Deleting instances is not allowed for agents.
  - name: prod-writes-need-sre
    when: '!gcp.readonly && gcp.project == "acme-prod"'
    action: approve
    approvers: [group:sre]
    grant: once
    ttl: 10m
  - name: reads
    when: gcp.readonly
    action: allow
`

// sessionOf is the session id airlock handed Envoy for an allowed request.
func sessionOf(t *testing.T, res *standin.AuthzResult) string {
	t.Helper()
	sid, _ := res.DynamicMetadata["session_id"].(string)
	if sid == "" {
		t.Fatalf("no session_id in the dynamic metadata: %v", res.DynamicMetadata)
	}
	return sid
}

// TestRedisOutage: with the real redis-server killed under a running
// airlock (recording on, sessions tracked in Redis), an allowed read and a
// denied delete still get their decisions, an approve rule answers 503
// naming the approval store, and /healthz says degraded, naming Redis;
// the read's events are marked local_session. Once Redis is restarted,
// approvals work again and sessions are shared again, without a restart.
func TestRedisOutage(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	r := redistest.Start(t)
	var sink string
	a := startAirlock(t, func(p Ports, dir string) string {
		pdir := writePolicy(t, dir, "policy.yaml", outagePolicy)
		sink = filepath.Join(dir, "sessions")
		return fmt.Sprintf(`listen: {authz: %q, extproc: "", sds: "", http: %q}
%s
policies: {paths: [%q]}
approvals: {store: %q, public_url: "http://%s"}
recorder: {enabled: true, sink: "file://%s", spool: %q, durability: check}
`, p.Authz, p.HTTP, issuerConfig(iss), pdir, r.URL(), p.HTTP, sink, filepath.Join(dir, "spool"))
	})
	agent := iss.Mint(map[string]any{"sub": "agent-1", "groups": []string{"ai-agents"}})
	sre := iss.Mint(map[string]any{"sub": "sre-1", "email": "sre-1@example.com", "groups": []string{"sre"}})
	c := checker{t, a.Authz(t), envoyConfig}
	read := "https://compute.googleapis.com/compute/v1/projects/acme-prod/zones/us-east1-b/instances/web-1"
	del := read
	stop := read + "/stop"

	res := c.do("GET", read, agent, nil, "")
	if !res.Allowed {
		t.Fatalf("read before the outage: %d %s", res.Status, res.Body)
	}
	sharedSession := sessionOf(t, res)

	r.Kill()
	res = c.do("GET", read, agent, nil, "")
	if !res.Allowed {
		t.Fatalf("an allowed read was refused with Redis down: %d %s", res.Status, res.Body)
	}
	localSession := sessionOf(t, res)
	res = c.do("DELETE", del, agent, nil, "")
	if res.Allowed || res.Status != 403 || parseRefusal(t, res.Body).Error.Details[0].Reason != "POLICY_DENIED" {
		t.Fatalf("a denied delete with Redis down: allowed=%v %d %s", res.Allowed, res.Status, res.Body)
	}
	res = c.do("POST", stop, agent, nil, "")
	if res.Allowed || res.Status != 503 {
		t.Fatalf("an approve rule with Redis down: allowed=%v %d %s", res.Allowed, res.Status, res.Body)
	}
	if g := parseRefusal(t, res.Body); g.Error.Details[0].Reason != "UNAVAILABLE" || !strings.Contains(g.Error.Message, "approval store") {
		t.Fatalf("the 503 does not name the approval store: %+v", g.Error)
	}
	code, body := a.Get(t, "/healthz")
	if code != 200 || !strings.Contains(body, `"status":"degraded"`) || !strings.Contains(body, `"degraded_by":["redis"]`) || !strings.Contains(body, "redis (approvals.store) cannot be reached") {
		t.Fatalf("/healthz with Redis down: %d %s", code, body)
	}
	if code, _ := a.Get(t, "/readyz"); code != 200 {
		t.Fatalf("/readyz with Redis down: %d (a shared dependency must not take the replica out)", code)
	}

	r.Restart()
	var id string
	waitFor(t, 40*time.Second, "approvals to work again", func() bool {
		res := c.do("POST", stop, agent, nil, "")
		if res.Allowed || res.Status != 403 {
			return false
		}
		id = parseRefusal(t, res.Body).Error.Details[0].Metadata["approval_id"]
		return id != ""
	})
	if code, body := api(t, "POST", "http://"+a.HTTPAddr+"/v1/approvals/"+id+":approve", sre, map[string]string{"reason": "after the outage"}); code != 200 {
		t.Fatalf("approve after the outage: %d %v", code, body)
	}
	if res := c.do("POST", stop, agent, nil, ""); !res.Allowed {
		t.Fatalf("the approved request was refused: %d %s", res.Status, res.Body)
	}
	waitFor(t, 40*time.Second, "/healthz to recover", func() bool {
		code, body := a.Get(t, "/healthz")
		return code == 200 && strings.Contains(body, `"status":"ok"`)
	})
	res = c.do("GET", read, agent, nil, "")
	if !res.Allowed {
		t.Fatalf("read after the outage: %d %s", res.Status, res.Body)
	}
	if sid := sessionOf(t, res); sid == localSession {
		t.Fatalf("the session tracked during the outage (%s) is still used after recovery", sid)
	}

	// The recording: the outage read is marked local_session, the reads
	// around it are not.
	a.Stop()
	ctx := context.Background()
	s, err := recorder.OpenSink(ctx, "file://"+sink, recorder.SinkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rd := recorder.NewReader(s)
	marked := map[string]bool{}
	for _, sid := range []string{sharedSession, localSession} {
		sess, err := rd.Load(ctx, sid, nil)
		if err != nil {
			t.Fatalf("session %s: %v", sid, err)
		}
		for _, e := range sess.Events {
			if e.Kind == recorder.KindDecision {
				marked[sid] = e.LocalSession
			}
		}
	}
	if marked[sharedSession] || !marked[localSession] {
		t.Fatalf("local_session marks: shared %s %v, outage %s %v", sharedSession, marked[sharedSession], localSession, marked[localSession])
	}
}

// TestSessionsSharedOverSentinelAndCluster: two replicas whose
// approvals.store is a redis-sentinel:// or redis-cluster:// URL agree on a
// subject's session (the session tracker uses the approvals' client).
func TestSessionsSharedOverSentinelAndCluster(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	for name, start := range map[string]func(testing.TB) string{
		"sentinel": func(tb testing.TB) string { u, _ := redistest.StartSentinel(tb); return u },
		"cluster":  redistest.StartCluster,
	} {
		t.Run(name, func(t *testing.T) {
			u := start(t)
			var sessions []string
			for range 2 {
				a := startAirlock(t, func(p Ports, dir string) string {
					pdir := writePolicy(t, dir, "policy.yaml", outagePolicy)
					return fmt.Sprintf(`listen: {authz: %q, extproc: "", sds: "", http: %q}
%s
policies: {paths: [%q]}
approvals: {store: %q}
recorder: {enabled: true, sink: "file://%s", spool: %q, durability: check}
`, p.Authz, p.HTTP, issuerConfig(iss), pdir, u, filepath.Join(dir, "sessions"), filepath.Join(dir, "spool"))
				})
				c := checker{t, a.Authz(t), envoyConfig}
				res := c.do("GET", "https://compute.googleapis.com/compute/v1/projects/acme-dev/zones/us-east1-b/instances", iss.Mint(map[string]any{"sub": "agent-" + name}), nil, "")
				if !res.Allowed {
					t.Fatalf("read: %d %s", res.Status, res.Body)
				}
				sessions = append(sessions, sessionOf(t, res))
			}
			if sessions[0] != sessions[1] {
				t.Fatalf("two replicas on %s put one subject in two sessions: %v", name, sessions)
			}
		})
	}
}

// sdsSecret subscribes to the secret "gcp" over conn as Envoy does and
// returns its value, or an error when none arrives within d.
func sdsSecret(t *testing.T, conn grpc.ClientConnInterface, d time.Duration) (string, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := standin.NewSDSClient(ctx, conn, "gcp")
	defer c.Close()
	wctx, wcancel := context.WithTimeout(ctx, d)
	defer wcancel()
	return c.WaitFor(wctx, "gcp", "")
}

func sdsConfig(p Ports, dir, sds, tokenKey, extra string) string {
	return fmt.Sprintf(`listen: {authz: %q, extproc: "", sds: %q, http: %q}
identity: {dev: true}
policies: {paths: [%q]}
recorder: {enabled: false}
credentials:
  - name: gcp
    service_account_key: %s
%s`, p.Authz, sds, p.HTTP, filepath.Join(repoRoot, "policies", "examples"), tokenKey, extra)
}

// TestSDSOverUnixSocket: listen.sds unix:///PATH serves the credential on
// the socket, to Envoy's SDS client, and nowhere else.
func TestSDSOverUnixSocket(t *testing.T) {
	tokens := envoytest.NewTokenServer(t, time.Hour)
	sockDir, err := os.MkdirTemp("", "sds")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "airlock", "sds.sock")
	a := startAirlock(t, func(p Ports, dir string) string {
		return sdsConfig(p, dir, "unix://"+sock, tokens.KeyFile, "")
	})
	st, err := os.Stat(sock)
	if err != nil || st.Mode()&os.ModeSocket == 0 || st.Mode().Perm() != 0o660 {
		t.Fatalf("socket %s: %v %v", sock, st.Mode(), err)
	}
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	v, err := sdsSecret(t, conn, 20*time.Second)
	if err != nil || v != "Bearer token-1" {
		t.Fatalf("secret over the socket: %q %v\n%s", v, err, a.Logs())
	}
	if c, err := net.DialTimeout("tcp", a.SDSAddr, time.Second); err == nil {
		c.Close()
		t.Fatalf("SDS also answers on TCP %s", a.SDSAddr)
	}
	a.Stop()
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("the socket outlives the process: %v", err)
	}
}

// TestSDSOverMTLS: with sds.tls_cert, sds.tls_key and sds.client_ca, the
// credential goes to a client presenting a certificate of the client CA;
// a client without one, or with another CA's, gets nothing.
func TestSDSOverMTLS(t *testing.T) {
	tokens := envoytest.NewTokenServer(t, time.Hour)
	serverCA := envoytest.NewCA(t, "airlock-sds")
	clientCA := envoytest.NewCA(t, "envoy")
	cert, key := serverCA.Issue("127.0.0.1", false)
	a := startAirlock(t, func(p Ports, dir string) string {
		return sdsConfig(p, dir, p.SDS, tokens.KeyFile, fmt.Sprintf("sds: {tls_cert: %s, tls_key: %s, client_ca: %s}\n", cert, key, clientCA.CertFile))
	})
	dialTLS := func(ca *envoytest.CA) *grpc.ClientConn {
		pem, err := os.ReadFile(serverCA.CertFile)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		tc := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
		if ca != nil {
			c, k := ca.Issue("envoy", true)
			kp, err := tls.LoadX509KeyPair(c, k)
			if err != nil {
				t.Fatal(err)
			}
			tc.Certificates = []tls.Certificate{kp}
		}
		conn, err := grpc.NewClient(a.SDSAddr, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	if v, err := sdsSecret(t, dialTLS(clientCA), 20*time.Second); err != nil || v != "Bearer token-1" {
		t.Fatalf("with a client certificate: %q %v\n%s", v, err, a.Logs())
	}
	if v, err := sdsSecret(t, dialTLS(nil), 3*time.Second); err == nil {
		t.Fatalf("without a client certificate the credential was served: %q", v)
	}
	if v, err := sdsSecret(t, dialTLS(envoytest.NewCA(t, "stranger")), 3*time.Second); err == nil {
		t.Fatalf("with another CA's certificate the credential was served: %q", v)
	}
	if v, err := sdsSecret(t, dial(t, a.SDSAddr), 3*time.Second); err == nil {
		t.Fatalf("over plaintext the credential was served: %q", v)
	}
}

// TestSDSRefusesNonLoopbackTCP: listen.sds on every interface without mTLS
// is a start-up error naming listen.sds; sds.allow_insecure_tcp overrides
// it.
func TestSDSRefusesNonLoopbackTCP(t *testing.T) {
	tokens := envoytest.NewTokenServer(t, time.Hour)
	dir := t.TempDir()
	p := Ports{Authz: freePort(t), SDS: "0.0.0.0:" + strings.Split(freePort(t), ":")[1], HTTP: freePort(t)}
	cfg := filepath.Join(dir, "airlock.yaml")
	if err := os.WriteFile(cfg, []byte(sdsConfig(p, dir, p.SDS, tokens.KeyFile, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out := runBounded(t, 15*time.Second, "serve", "--config", cfg)
	if code != 2 || !strings.Contains(out, "listen.sds") || !strings.Contains(out, "hands out the GCP access token") {
		t.Fatalf("serve with listen.sds %s: exit %d\n%s", p.SDS, code, out)
	}

	a := startAirlock(t, func(p Ports, dir string) string {
		p.SDS = "0.0.0.0:" + strings.Split(p.SDS, ":")[1]
		return sdsConfig(p, dir, p.SDS, tokens.KeyFile, "sds: {allow_insecure_tcp: true}\n")
	})
	if v, err := sdsSecret(t, dial(t, a.SDSAddr), 20*time.Second); err != nil || v != "Bearer token-1" {
		t.Fatalf("with sds.allow_insecure_tcp: %q %v", v, err)
	}
}
