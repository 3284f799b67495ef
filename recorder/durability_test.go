package recorder

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/airlockhq/airlock/handoff"
)

// committerLog records, in order, what the spool's committer did and what
// the test's callers saw, and can hold the committer before a phase.
type committerLog struct {
	mu      sync.Mutex
	entries []string
	hold    map[string]chan struct{} // phase -> closed to let it go on
	entered map[string]chan struct{} // phase -> closed once it was reached
}

func (c *committerLog) add(s string) {
	c.mu.Lock()
	c.entries = append(c.entries, s)
	c.mu.Unlock()
}

func (c *committerLog) hook(phase string) {
	c.add(phase)
	c.mu.Lock()
	hold, entered := c.hold[phase], c.entered[phase]
	c.mu.Unlock()
	if entered != nil {
		select {
		case <-entered:
		default:
			close(entered)
		}
	}
	if hold != nil {
		<-hold
	}
}

// holdAt makes the committer stop before phase until the returned func is
// called.
func (c *committerLog) holdAt(phase string) (release func()) {
	ch := make(chan struct{})
	c.mu.Lock()
	c.hold[phase], c.entered[phase] = ch, make(chan struct{})
	c.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }
}

// index is the position of the first entry s, -1 when absent.
func (c *committerLog) index(s string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Index(c.entries, s)
}

// hookedRecorder is a recorder whose spools report to a committerLog.
func hookedRecorder(t *testing.T, durability string) (*Recorder, *committerLog) {
	t.Helper()
	dir := t.TempDir()
	log := &committerLog{hold: map[string]chan struct{}{}, entered: map[string]chan struct{}{}}
	r, err := New(context.Background(), Options{
		Spool: filepath.Join(dir, "spool"), Sink: mustSink(t, "file://"+filepath.Join(dir, "sink")),
		Durability: durability, FlushInterval: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	r.spool.hook, r.anon.hook = log.hook, log.hook
	t.Cleanup(func() {
		// Let a held committer go, then stop as a crash would.
		log.mu.Lock()
		for _, ch := range log.hold {
			select {
			case <-ch:
			default:
				close(ch)
			}
		}
		log.mu.Unlock()
		r.abandon()
	})
	return r, log
}

// returns runs f in the background and reports whether it returned within
// the deadline, and its error.
func returns(t *testing.T, d time.Duration, f func() error) (bool, error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return true, err
	case <-time.After(d):
		return false, nil
	}
}

func allowedDecision(session, id string) DecisionEvent {
	return DecisionEvent{RequestID: id, SessionID: session, Subject: "agent-1", Method: "GET", Host: "compute.googleapis.com",
		Path: "/compute/v1/projects/p/zones/z/instances", GCPMethod: "compute.instances.list", Decision: DecisionAllowed,
		Policy: "gcp", Rule: "agents-may-read", Rules: []string{"gcp/agents-may-read"}}
}

// With recorder.durability extproc, ext_authz's answer to an allowed
// request does not wait for the spool at all: the committer is held before
// it writes anything, and the decision is recorded all the same.
func TestExtProcModeAnswersAllowedCheckAtOnce(t *testing.T) {
	r, log := hookedRecorder(t, DurabilityExtProc)
	release := log.holdAt("write")
	defer release()
	ok, err := returns(t, 10*time.Second, func() error {
		return r.Decision(context.Background(), allowedDecision("s-one~x", "req-1"))
	})
	if !ok || err != nil {
		t.Fatalf("the allowed decision waited for the spool (returned %v, err %v)", ok, err)
	}
}

// Sixteen concurrent allowed Checks of one identity share one session and
// one hash chain, and none of them waits on it: with the committer held
// before it writes (so nothing is chained or synced), all sixteen return,
// and the chain is then completed in the order of their sequence numbers.
func TestOneSessionChecksDoNotWaitOnTheChain(t *testing.T) {
	r, log := hookedRecorder(t, DurabilityExtProc)
	release := log.holdAt("write")
	defer release()
	const callers = 16
	ok, err := returns(t, 10*time.Second, func() error {
		errs := make(chan error, callers)
		for i := range callers {
			go func() { errs <- r.Decision(context.Background(), allowedDecision("s-one~x", fmt.Sprintf("req-%d", i))) }()
		}
		for range callers {
			if err := <-errs; err != nil {
				return err
			}
		}
		return nil
	})
	if !ok || err != nil {
		t.Fatalf("concurrent Checks of one session waited on each other or on the spool (returned %v, err %v)", ok, err)
	}
	if i := log.index("write"); i > 0 {
		t.Fatalf("the committer wrote before the test let it: %v", log.entries)
	}
	release()
	seg := r.active["s-one~x"]
	seg.mu.Lock()
	pending := append([]pendingEvent(nil), seg.pending...)
	seg.mu.Unlock()
	if len(pending) != callers {
		t.Fatalf("%d events pending, want %d", len(pending), callers)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !isDone(pending[callers-1].batch) {
		if time.Now().After(deadline) {
			t.Fatal("the queued decisions were never made durable")
		}
		time.Sleep(time.Millisecond)
	}
	prev := seg.man.Genesis
	for i, p := range pending {
		var ev Event
		if err := json.Unmarshal(p.line, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Seq != int64(i) || ev.Prev != prev {
			t.Fatalf("event %d: seq %d prev %s, want prev %s", i, ev.Seq, ev.Prev, prev)
		}
		prev = lineHash(p.line)
	}
}

// ext_proc's request event is durable before RecordRequestHeaders returns
// (Envoy forwards only then), and a sync that covers it covers the
// decision queued before it on this replica.
func TestRequestEventDurableBeforeForwarding(t *testing.T) {
	r, log := hookedRecorder(t, DurabilityExtProc)
	ctx := context.Background()
	if err := r.Decision(ctx, allowedDecision("s-one~x", "req-1")); err != nil {
		t.Fatal(err)
	}
	meta := handoff.Metadata{RequestID: "req-1", SessionID: "s-one~x", Subject: "agent-1", GCPMethod: "compute.instances.list", Decision: "allowed", Rules: []string{"gcp/agents-may-read"}}
	if err := r.RecordRequestHeaders(ctx, meta, map[string]string{":method": "GET", ":authority": "compute.googleapis.com", ":path": "/x"}); err != nil {
		t.Fatal(err)
	}
	log.add("forwarded")
	if s, f := log.index("sync"), log.index("forwarded"); s < 0 || s > f {
		t.Fatalf("the request event was not synced before ext_proc answered: %v", log.entries)
	}
	// Both events are in the batch the sync made durable.
	seg := r.active["s-one~x"]
	seg.mu.Lock()
	defer seg.mu.Unlock()
	if len(seg.pending) != 2 || !isDone(seg.pending[0].batch) || !isDone(seg.pending[1].batch) {
		t.Fatalf("pending %d, decision durable %v", len(seg.pending), len(seg.pending) > 0 && isDone(seg.pending[0].batch))
	}
}

// With recorder.durability check (no ext_proc), the Check of an allowed
// request waits until its decision is durable.
func TestCheckModeAllowedWaitsForSync(t *testing.T) {
	r, log := hookedRecorder(t, DurabilityCheck)
	if err := r.Decision(context.Background(), allowedDecision("s-one~x", "req-1")); err != nil {
		t.Fatal(err)
	}
	log.add("answered")
	if s, a := log.index("sync"), log.index("answered"); s < 0 || s > a {
		t.Fatalf("the Check answered before its decision was synced: %v", log.entries)
	}
}

// Refusals (and responses) change nothing at Google: they wait until their
// event is written, so that a killed process loses none, but not for its
// sync, which rides the next group commit.
func TestRefusalsWaitForTheWriteNotTheSync(t *testing.T) {
	for _, mode := range []string{DurabilityCheck, DurabilityExtProc} {
		for _, tc := range []struct {
			name   string
			record func(r *Recorder) error
		}{
			{"denied", func(r *Recorder) error {
				d := allowedDecision("s-one~x", "req-2")
				d.Decision, d.Reason, d.Message = DecisionPolicyDenied, "POLICY_DENIED", "no"
				return r.Decision(context.Background(), d)
			}},
			{"approval required", func(r *Recorder) error {
				d := allowedDecision("s-one~x", "req-3")
				d.Decision = DecisionApprovalRequired
				return r.Decision(context.Background(), d)
			}},
			{"unauthenticated", func(r *Recorder) error {
				return r.Decision(context.Background(), DecisionEvent{RequestID: "req-4", Decision: DecisionUnauthenticated, Method: "GET", Host: "x.googleapis.com", Path: "/", Source: "10.0.0.9:1234"})
			}},
			{"response", func(r *Recorder) error {
				meta := handoff.Metadata{RequestID: "req-5", SessionID: "s-one~x", Subject: "agent-1"}
				return r.RecordResponse(context.Background(), meta, 200, map[string]string{"content-type": "application/json"}, []byte(`{}`), 2)
			}},
		} {
			t.Run(mode+"/"+tc.name, func(t *testing.T) {
				r, log := hookedRecorder(t, mode)
				release := log.holdAt("sync")
				defer release()
				ok, err := returns(t, 10*time.Second, func() error {
					err := tc.record(r)
					log.add("answered")
					return err
				})
				if !ok || err != nil {
					t.Fatalf("the event waited for its sync (returned %v, err %v): %v", ok, err, log.entries)
				}
				if w, a := log.index("write"), log.index("answered"); w < 0 || w > a {
					t.Fatalf("answered before the event was written: %v", log.entries)
				}
				if r.Stats().Unauthenticated+r.Stats().Events == 0 {
					t.Fatal("nothing was recorded")
				}
			})
		}
	}
}

// A record nobody waits for is still written and synced, within
// syncInterval.
func TestUnwaitedRecordsAreSynced(t *testing.T) {
	r, log := hookedRecorder(t, DurabilityExtProc)
	if err := r.Decision(context.Background(), allowedDecision("s-one~x", "req-1")); err != nil {
		t.Fatal(err)
	}
	seg := r.active["s-one~x"]
	seg.mu.Lock()
	b := seg.pending[0].batch
	seg.mu.Unlock()
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("an unwaited decision was never synced: %v", log.entries)
	}
	if b.err != nil {
		t.Fatal(b.err)
	}
}

// Sixteen callers on one session share one chain: the events are chained
// in the order their sequence numbers were taken, whoever hashes them.
func TestOneSessionManyCallersChain(t *testing.T) {
	dir := t.TempDir()
	sink := filepath.Join(dir, "sink")
	r, err := New(context.Background(), Options{Spool: filepath.Join(dir, "spool"), Sink: mustSink(t, "file://"+sink), Durability: DurabilityExtProc})
	if err != nil {
		t.Fatal(err)
	}
	const callers, each = 16, 100
	var wg sync.WaitGroup
	for c := 0; c < callers; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				id := fmt.Sprintf("c%d-%d", c, i)
				if err := r.Decision(context.Background(), allowedDecision("s-shared~x", id)); err != nil {
					t.Error(err)
					return
				}
				meta := handoff.Metadata{RequestID: id, SessionID: "s-shared~x", Subject: "agent-1", Decision: "allowed", Rules: []string{"gcp/agents-may-read"}}
				if err := r.RecordRequestHeaders(context.Background(), meta, map[string]string{":method": "GET"}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	fs, err := NewFileSink(sink)
	if err != nil {
		t.Fatal(err)
	}
	rd := NewReader(fs)
	res, err := rd.Verify(ctx, "s-shared~x", VerifyOptions{})
	if err != nil || !res.OK() {
		t.Fatalf("verify: %v %v", err, res)
	}
	s, err := rd.Load(ctx, "s-shared~x", nil)
	if err != nil {
		t.Fatal(err)
	}
	requests := 0
	for _, e := range s.Events {
		if q := e.Request; q != nil {
			requests++
			if q.Decision != "allowed" || len(q.Rules) != 1 || q.Rules[0] != "gcp/agents-may-read" {
				t.Fatalf("the request event does not carry its decision: %+v", q)
			}
		}
	}
	if len(s.Events) != 2*callers*each+1 || requests != callers*each {
		t.Fatalf("%d events, %d requests", len(s.Events), requests)
	}
}

// mustSink opens a sink URL.
func mustSink(tb testing.TB, url string) Sink {
	tb.Helper()
	s, err := OpenSink(context.Background(), url, SinkOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}
