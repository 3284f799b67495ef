package recorder_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlockhq/airlock/handoff"
	"github.com/airlockhq/airlock/recorder"
	"github.com/airlockhq/airlock/recorder/recordertest"
)

const crashChildEnv = "AIRLOCK_RECORDER_CRASH_CHILD"

// crashFlowEnv runs crashFlowChild instead of the tests.
const crashFlowEnv = "AIRLOCK_RECORDER_CRASH_FLOW_CHILD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		os.Exit(0)
	}
	if dir := os.Getenv(crashFlowEnv); dir != "" {
		crashFlowChild(dir)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crashFlowChild records requests as airlock serve does with
// recorder.durability extproc, from several goroutines, until killed: for
// an allowed request the decision (not waited for), then ext_proc's request
// event (durable), then "forwarded ID": the request would now reach Google;
// for a refusal the decision, then "refused ID": the agent has its answer.
func crashFlowChild(dir string) {
	ctx := context.Background()
	sink, err := recorder.NewFileSink(filepath.Join(dir, "sink"))
	if err != nil {
		fmt.Println("error", err)
		return
	}
	r, err := recorder.New(ctx, recorder.Options{
		Spool: filepath.Join(dir, "spool"), Sink: sink, Durability: recorder.DurabilityExtProc,
		FlushInterval: 5 * time.Millisecond, ChunkMaxBytes: 4096, ChunkMaxAge: 5 * time.Millisecond,
	})
	if err != nil {
		fmt.Println("error", err)
		return
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	say := func(s ...any) {
		mu.Lock()
		fmt.Fprintln(out, s...)
		out.Flush()
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			session := fmt.Sprintf("flow-%d~x", w%3)
			for i := 0; ; i++ {
				id := fmt.Sprintf("p%d-w%d-%d", os.Getpid(), w, i)
				d := recorder.DecisionEvent{RequestID: id, SessionID: session, Subject: "alice", Method: "GET", Host: "compute.googleapis.com",
					Path: "/compute/v1/projects/p/zones/z/instances", Decision: recorder.DecisionAllowed, Rules: []string{"gcp/reads"}}
				if i%4 == 3 {
					d.Decision, d.Rules, d.Reason = recorder.DecisionPolicyDenied, []string{"gcp/no-delete"}, "POLICY_DENIED"
					if err := r.Decision(ctx, d); err != nil {
						say("error", err)
						return
					}
					say("refused", id)
					continue
				}
				if err := r.Decision(ctx, d); err != nil {
					say("error", err)
					return
				}
				meta := handoff.Metadata{RequestID: id, SessionID: session, Subject: "alice", Decision: "allowed", Rules: []string{"gcp/reads"}}
				if err := r.RecordRequestHeaders(ctx, meta, map[string]string{":method": "GET", ":authority": "compute.googleapis.com", ":path": "/x"}); err != nil {
					say("error", err)
					return
				}
				say("forwarded", id)
			}
		}()
	}
	wg.Wait()
}

// kill -9 in the middle of the extproc flow: every request that would have
// reached Google has its decision and its request event (carrying the
// decision), and every refusal answered has its decision event.
func TestKill9ExtProcFlowLosesNothingForwarded(t *testing.T) {
	dir := t.TempDir()
	forwarded, refused := map[string]bool{}, map[string]bool{}
	// kill -9 in the middle of appends, syncs and uploads.
	crashLives(t, crashFlowEnv, dir, 2000, func(line string) bool {
		kind, id, _ := strings.Cut(line, " ")
		switch kind {
		case "forwarded":
			forwarded[id] = true
		case "refused":
			refused[id] = true
		default:
			return false
		}
		return true
	})
	decisions, requests := map[string]int{}, map[string]int{}
	for _, e := range drainAndVerify(t, dir) {
		switch {
		case e.Decision != nil:
			decisions[e.RequestID]++
		case e.Request != nil:
			if e.Request.Decision != recorder.DecisionAllowed || len(e.Request.Rules) != 1 {
				t.Fatalf("request event without its decision: %+v", e.Request)
			}
			requests[e.RequestID]++
		}
	}
	for id := range forwarded {
		if decisions[id] != 1 || requests[id] != 1 {
			t.Fatalf("forwarded request %s: %d decision and %d request events", id, decisions[id], requests[id])
		}
	}
	for id := range refused {
		if decisions[id] != 1 {
			t.Fatalf("refused request %s: %d decision events", id, decisions[id])
		}
	}
	for id, n := range decisions {
		if n != 1 || requests[id] > 1 {
			t.Fatalf("request %s recorded %d/%d times", id, n, requests[id])
		}
	}
	t.Logf("%d forwarded and %d refused answered, %d decisions recorded (the rest were in flight at the kill)", len(forwarded), len(refused), len(decisions))
}

// crashChild records requests from several goroutines, uploading as it
// goes, and prints "ack ID" once each decision is durable, until killed.
func crashChild(dir string) {
	ctx := context.Background()
	sink, err := recorder.NewFileSink(filepath.Join(dir, "sink"))
	if err != nil {
		fmt.Println("error", err)
		return
	}
	r, err := recorder.New(ctx, recorder.Options{
		Spool: filepath.Join(dir, "spool"), Sink: sink,
		FlushInterval: 5 * time.Millisecond, ChunkMaxBytes: 4096, ChunkMaxAge: 5 * time.Millisecond,
	})
	if err != nil {
		fmt.Println("error", err)
		return
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				id := fmt.Sprintf("p%d-w%d-%d", os.Getpid(), w, i)
				err := r.Decision(ctx, recorder.DecisionEvent{RequestID: id, SessionID: fmt.Sprintf("kill-%d~x", w%3), Subject: "alice", Decision: "allow"})
				mu.Lock()
				if err != nil {
					fmt.Fprintln(out, "error", err)
				} else {
					fmt.Fprintln(out, "ack", id)
				}
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

func TestKill9LosesNothingAcknowledged(t *testing.T) {
	dir := t.TempDir()
	acked := map[string]bool{}
	// kill -9 in the middle of appends and uploads.
	crashLives(t, crashChildEnv, dir, 1500, func(line string) bool {
		if strings.HasPrefix(line, "error") {
			return false
		}
		acked[strings.TrimPrefix(line, "ack ")] = true
		return true
	})
	found := map[string]int{}
	for _, e := range drainAndVerify(t, dir) {
		if e.Kind == recorder.KindDecision {
			found[e.RequestID]++
		}
	}
	for id := range acked {
		if found[id] != 1 {
			t.Fatalf("acknowledged request %s found %d times", id, found[id])
		}
	}
	for id, n := range found {
		if n != 1 {
			t.Fatalf("request %s recorded %d times", id, n)
		}
	}
	t.Logf("%d acknowledged, %d recorded (the rest were in flight at the kill)", len(acked), len(found))
}

// crashLives runs this test binary as a child recording under dir (env
// names the child's role), twice: each life is killed with SIGKILL after
// it has answered killAfter lines, which take reports; a line it does not
// take fails the test.
func crashLives(t *testing.T, env, dir string, killAfter int, take func(line string) bool) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for life := 0; life < 2; life++ {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), env+"="+dir)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		n := 0
		for sc.Scan() {
			if !take(sc.Text()) {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("child: %s", sc.Text())
			}
			if n++; n == killAfter {
				if err := cmd.Process.Kill(); err != nil {
					t.Fatal(err)
				}
			}
		}
		cmd.Wait()
		if n < killAfter {
			t.Fatalf("life %d: child stopped after %d lines", life, n)
		}
	}
}

// drainAndVerify runs a clean recorder on the spool under dir, which
// uploads what the killed processes left, verifies every session of the
// sink and returns their events.
func drainAndVerify(t *testing.T, dir string) []*recorder.Event {
	t.Helper()
	r := newRecorder(t, recorder.Options{Spool: filepath.Join(dir, "spool"), Sink: recordertest.OpenSink(t, "file://"+filepath.Join(dir, "sink"))})
	closeRecorder(t, r)
	sink, err := recorder.NewFileSink(filepath.Join(dir, "sink"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rd := recorder.NewReader(sink)
	list, err := rd.List(ctx, recorder.Filter{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var events []*recorder.Event
	for _, s := range list {
		res, err := rd.Verify(ctx, s.ID, recorder.VerifyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !res.OK() {
			t.Fatalf("after kill -9: %v", res.Problems)
		}
		sess, err := rd.Load(ctx, s.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, sess.Events...)
	}
	return events
}
