package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlockhq/airlock/identity/identitytest"
	"github.com/airlockhq/airlock/recorder"
	"github.com/airlockhq/airlock/recorder/recordertest"
)

// openPolicy allows everything: only airlock's own rules stand between an
// agent and Google.
const openPolicy = "name: open\ndefault: allow\n"

// startRecordingTo runs airlock recording to gs://audit/rec on a Cloud
// Storage emulator (which it reaches through STORAGE_EMULATOR_HOST, as the
// client libraries do), with extra recorder keys.
func startRecordingTo(t *testing.T, g *recordertest.GCS, iss *identitytest.Issuer, recorderKeys string) *Airlock {
	t.Helper()
	t.Setenv("STORAGE_EMULATOR_HOST", strings.TrimPrefix(g.URL, "http://"))
	return startAirlock(t, func(p Ports, dir string) string {
		pdir := writePolicy(t, dir, "policy.yaml", openPolicy)
		return fmt.Sprintf(`listen: {authz: %q, extproc: "", sds: "", http: %q}
%s
policies: {paths: [%q]}
recorder: {enabled: true, sink: "gs://audit/rec", spool: "%s/spool", durability: check%s}
`, p.Authz, p.HTTP, issuerConfig(iss), pdir, dir, recorderKeys)
	})
}

// A flood of requests without a token while the sink is down cannot fill
// the spool: an agent's request then is still allowed (not 503) and
// reaches the sink once it is back.
func TestTokenlessFloodLeavesRoomForAgents(t *testing.T) {
	g := recordertest.StartGCS(t, "audit")
	g.SetDown(true)
	iss := identitytest.NewIssuer(t)
	a := startRecordingTo(t, g, iss, ", spool_max_bytes: 262144")
	c := checker{t, a.Authz(t), envoyConfig}
	list := "https://compute.googleapis.com/compute/v1/projects/acme-dev/zones/us-east1-b/instances"
	headers := map[string]string{"user-agent": strings.Repeat("u", 2000), "x-filler": strings.Repeat("f", 4000)}
	body := strings.Repeat("b", 8000)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 150; i++ {
				if res := c.do("POST", list+"?key=x"+fmt.Sprint(i), "", headers, body); res.Allowed || res.Status != 401 {
					t.Errorf("tokenless request: allowed=%v status %d", res.Allowed, res.Status)
					return
				}
			}
		}()
	}
	wg.Wait()
	tok := iss.Mint(map[string]any{"sub": "agent-1", "groups": []string{"ai-agents"}})
	// As large as a tokenless one: it needs the room they could have taken.
	res := c.do("POST", list, tok, headers, body)
	if !res.Allowed {
		t.Fatalf("agent's request after the flood: %d %s", res.Status, res.Body)
	}
	_, m := a.Get(t, "/metrics")
	if !strings.Contains(m, `airlock_recorder_unauthenticated_dropped_total{reason="rate_limited"}`) {
		t.Fatalf("drops are not counted:\n%s", m)
	}
	// The sink is back: the agent's request reaches it (uploads retry with
	// backoff; a chunk waits up to 10 s for company).
	g.SetDown(false)
	rd := recorder.NewReader(recorder.NewGCSSink(g.Client(t), "audit", "rec"))
	var anon *recorder.Session
	waitFor(t, 120*time.Second, "the agent's decision and the tokenless ones in the sink", func() bool {
		sessions, err := rd.List(context.Background(), recorder.Filter{Subject: "agent-1"}, nil)
		if err != nil || len(sessions) != 1 || sessions[0].Summary.Decisions["allowed"] != 1 {
			return false
		}
		anon, err = rd.Load(context.Background(), recorder.UnauthenticatedSession, nil)
		return err == nil && len(anon.Events) > 0
	})
	for _, e := range anon.Events {
		if d := e.Decision; d != nil && (len(d.Headers) > 0 || d.BodyExcerpt != "" || d.Query != "" || d.Source == "") {
			t.Fatalf("a tokenless request was not recorded compactly: %+v", d)
		}
	}
}

// An agent cannot touch the recorder's bucket through the gateway, even
// under a policy that allows everything.
func TestAgentCannotTouchTheRecordings(t *testing.T) {
	g := recordertest.StartGCS(t, "audit")
	iss := identitytest.NewIssuer(t)
	a := startRecordingTo(t, g, iss, "")
	c := checker{t, a.Authz(t), envoyConfig}
	tok := iss.Mint(map[string]any{"sub": "agent-1", "groups": []string{"ai-agents"}})
	for _, tc := range []struct {
		method, url string
		headers     map[string]string
	}{
		{"DELETE", "https://storage.googleapis.com/storage/v1/b/audit/o/rec%2F2026%2F01%2F02%2Fs%2Fx.jsonl.gz", nil},
		{"GET", "https://storage.googleapis.com/storage/v1/b/audit/o?prefix=rec/", nil},
		{"PUT", "https://storage.googleapis.com/storage/v1/b/audit/iam", nil},
		{"GET", "https://audit.storage.googleapis.com/rec/2026/01/02/s/x.jsonl.gz", nil},
		{"PUT", "https://storage.googleapis.com/mine/copy", map[string]string{"x-goog-copy-source": "/audit/rec/2026/01/02/s/x.jsonl.gz"}},
	} {
		res := c.do(tc.method, tc.url, tok, tc.headers, "")
		if res.Allowed {
			t.Fatalf("%s %s reached Google", tc.method, tc.url)
		}
		ge := parseRefusal(t, res.Body)
		if res.Status != 403 || ge.Error.Details[0].Reason != "POLICY_DENIED" || ge.Error.Details[0].Metadata["rule"] != "recorder-sink" ||
			!strings.Contains(ge.Error.Message, "session recordings") {
			t.Fatalf("%s %s: %d %s", tc.method, tc.url, res.Status, res.Body)
		}
	}
	if res := c.do("GET", "https://storage.googleapis.com/storage/v1/b/audit/o/public%2Fx", tok, nil, ""); !res.Allowed {
		t.Fatalf("an object outside the prefix: %d %s", res.Status, res.Body)
	}
}

// One spool, one process: a second airlock on the same spool refuses to
// start, naming recorder.spool.
func TestSecondProcessOnOneSpoolRefusesToStart(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	spool := filepath.Join(t.TempDir(), "shared-spool")
	render := func(p Ports, dir string) string {
		pdir := writePolicy(t, dir, "policy.yaml", openPolicy)
		return fmt.Sprintf(`listen: {authz: %q, extproc: "", sds: "", http: %q}
%s
policies: {paths: [%q]}
recorder: {enabled: true, sink: "file://%s/sessions", spool: %q, durability: check}
`, p.Authz, p.HTTP, issuerConfig(iss), pdir, dir, spool)
	}
	startAirlock(t, render)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "airlock.yaml")
	if err := os.WriteFile(cfg, []byte(render(Ports{Authz: freePort(t), HTTP: freePort(t)}, dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, airlockBin, "serve", "--config", cfg)
	cmd.Dir = repoRoot
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("the second process kept running on a spool in use:\n%s", out)
	}
	if err == nil || !strings.Contains(string(out), "recorder.spool") || !strings.Contains(string(out), spool) || !strings.Contains(string(out), "another process") {
		t.Fatalf("second process: %v\n%s", err, out)
	}
}
