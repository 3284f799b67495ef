package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airlockhq/airlock/config"
	"github.com/airlockhq/airlock/identity/identitytest"
	"github.com/airlockhq/airlock/recorder"
	"github.com/airlockhq/airlock/test/standin"
)

// idGoogle is a fake Google that notes the x-request-id of every request
// that reached it.
type idGoogle struct {
	mu  sync.Mutex
	ids map[string]bool
}

func (g *idGoogle) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	g.ids[r.Header.Get("x-request-id")] = true
	g.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	fmt.Fprint(w, `{"kind":"compute#instanceList","items":[{"name":"web-1","status":"RUNNING"}]}`)
}

func (g *idGoogle) received() map[string]bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string]bool, len(g.ids))
	for id := range g.ids {
		out[id] = true
	}
	return out
}

// recordingConfig is airlock with ext_proc and the recorder on in its
// default mode (recorder.durability: extproc), recording to DIR/sessions.
func recordingConfig(t *testing.T, iss *identitytest.Issuer) func(p Ports, dir string) string {
	return func(p Ports, dir string) string {
		pdir := writePolicy(t, dir, "policy.yaml", gatewayPolicy)
		return fmt.Sprintf(`listen: {authz: %q, extproc: %q, sds: "", http: %q}
%s
policies: {paths: [%q]}
recorder: {enabled: true, sink: "file://%s/sessions", spool: "%s/spool"}
`, p.Authz, p.ExtProc, p.HTTP, issuerConfig(iss), pdir, dir, dir)
	}
}

// agentLoad sends requests through front from 8 agents until stop is
// closed: reads the policy allows and deletes it denies, each with its own
// x-request-id. It returns the ids of the refusals whose answer (403)
// reached the agent, once stop is closed and every agent has finished.
func agentLoad(t *testing.T, front, token string, answered *atomic.Int64, stop chan struct{}) func() map[string]bool {
	var mu sync.Mutex
	refused := map[string]bool{}
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("agent%d-%d", w, i)
				method, path := "GET", "/compute/v1/projects/acme-dev/zones/us-east1-b/instances"
				if i%4 == 3 {
					method, path = "DELETE", path+"/web-1"
				}
				req, _ := http.NewRequest(method, front+path, nil)
				req.Host = "compute.googleapis.com"
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("x-request-id", id)
				resp, err := client.Do(req)
				if err != nil {
					continue
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusForbidden {
					mu.Lock()
					refused[id] = true
					mu.Unlock()
				}
				answered.Add(1)
			}
		}()
	}
	return func() map[string]bool {
		wg.Wait()
		return refused
	}
}

// sessionEvents reads every session of a file sink: per request id, its
// decision events and the request events that carry decision "allowed".
func sessionEvents(t *testing.T, dir string, verify bool) (decisions, requests map[string]int) {
	t.Helper()
	sink, err := recorder.NewFileSink(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rd := recorder.NewReader(sink)
	list, err := rd.List(ctx, recorder.Filter{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	decisions, requests = map[string]int{}, map[string]int{}
	for _, s := range list {
		if verify {
			res, err := rd.Verify(ctx, s.ID, recorder.VerifyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !res.OK() {
				t.Fatalf("session %s: %v", s.ID, res.Problems)
			}
		}
		sess, err := rd.Load(ctx, s.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range sess.Events {
			if e.Decision != nil {
				decisions[e.RequestID]++
			}
			if q := e.Request; q != nil && q.Decision == recorder.DecisionAllowed && len(q.Rules) > 0 {
				requests[e.RequestID]++
			}
		}
	}
	return decisions, requests
}

// kill ends the process with SIGKILL: nothing is flushed or closed.
func (a *Airlock) kill(t *testing.T) {
	t.Helper()
	if err := a.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-a.done
}

// killUnderLoad sends an agent's requests through a front whose
// ext_authz is authz's and ext_proc is extproc's until 400 are answered,
// then kills victim with SIGKILL. It returns the request ids that reached
// Google and those refused to the agent.
func killUnderLoad(t *testing.T, iss *identitytest.Issuer, authz, extproc, victim *Airlock) (forwarded, refused map[string]bool) {
	t.Helper()
	google := &idGoogle{ids: map[string]bool{}}
	upstream := httptest.NewServer(google)
	t.Cleanup(upstream.Close)
	cfg, err := config.Load(authz.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(standin.NewFront(standin.AirlockFrontConfig(cfg, dial(t, authz.AuthzAddr), dial(t, extproc.ExtProcAddr), nil, upstream.URL)))
	t.Cleanup(front.Close)
	tok := iss.Mint(map[string]any{"sub": "agent-1", "groups": []string{"ai-agents"}})

	var answered atomic.Int64
	stop := make(chan struct{})
	wait := agentLoad(t, front.URL, tok, &answered, stop)
	waitFor(t, 60*time.Second, "400 answered requests", func() bool { return answered.Load() >= 400 })
	victim.kill(t)
	close(stop)
	refused = wait()
	return google.received(), refused
}

// kill -9 of airlock under load (ext_authz and ext_proc in one process,
// as in the shipped pod): after a restart on the same spool, every request
// that reached Google has its decision and its request event, and every
// refusal the agent received has its decision.
func TestKill9LosesNoForwardedRequest(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	a := startAirlock(t, recordingConfig(t, iss))
	forwarded, refused := killUnderLoad(t, iss, a, a, a)

	// A restart on the same spool uploads what the killed process left;
	// a clean stop uploads the rest.
	if err := a.launch(t); err != nil {
		t.Fatal(err)
	}
	a.Stop()
	decisions, requests := sessionEvents(t, filepath.Join(a.Dir, "sessions"), true)
	if len(forwarded) == 0 || len(refused) == 0 {
		t.Fatalf("%d forwarded, %d refused: the load did not run", len(forwarded), len(refused))
	}
	for id := range forwarded {
		if decisions[id] != 1 || requests[id] != 1 {
			t.Errorf("request %s reached Google with %d decision and %d request events recorded", id, decisions[id], requests[id])
		}
	}
	for id := range refused {
		if decisions[id] != 1 {
			t.Errorf("refusal %s reached the agent with %d decision events recorded", id, decisions[id])
		}
	}
	t.Logf("%d forwarded, %d refusals answered, %d decisions recorded", len(forwarded), len(refused), len(decisions))
}

// Behind a Service, ext_authz and ext_proc of one request may run on
// different replicas. The replica that decided is killed (its spool lost
// with it); every request that reached Google is still proved by the
// request event of the replica that ran ext_proc, which carries the
// decision and the rules it was given.
func TestForwardedRequestProvedWithoutTheDecidingReplica(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	decider := startAirlock(t, recordingConfig(t, iss))
	processor := startAirlock(t, recordingConfig(t, iss))
	forwarded, _ := killUnderLoad(t, iss, decider, processor, decider)
	processor.Stop()

	_, requests := sessionEvents(t, filepath.Join(processor.Dir, "sessions"), true)
	if len(forwarded) == 0 {
		t.Fatal("nothing was forwarded: the load did not run")
	}
	for id := range forwarded {
		if requests[id] != 1 {
			t.Errorf("request %s reached Google; the replica that ran ext_proc recorded %d request events carrying its decision", id, requests[id])
		}
	}
	t.Logf("%d forwarded, each proved by the ext_proc replica's recording", len(forwarded))
}
