package recorder_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airlockhq/airlock/recorder"
	"github.com/airlockhq/airlock/recorder/recordertest"
)

// tokenless is what the gateway records of a request without a token, as
// an attacker would send it: large headers, a long query, a body.
func tokenless(i int) recorder.DecisionEvent {
	return recorder.DecisionEvent{
		RequestID: fmt.Sprintf("anon-%d", i),
		Method:    "POST",
		Host:      "storage.googleapis.com",
		Path:      "/upload/storage/v1/b/x/o/" + strings.Repeat("p", 200),
		Query:     "key=AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI&" + strings.Repeat("q", 500),
		Decision:  recorder.DecisionUnauthenticated,
		Message:   "airlock: unauthenticated: no token",
		Headers:   map[string]string{"user-agent": strings.Repeat("u", 2000), "x-filler": strings.Repeat("f", 4000)},
		Body:      []byte(strings.Repeat("b", 8000)),
	}
}

// A flood of requests without a token while the sink is down cannot fill
// the spool that authenticated agents need: their requests are still
// recorded (not refused), and reach the sink once it is back.
func TestUnauthenticatedFloodLeavesRoomForAgents(t *testing.T) {
	g := recordertest.StartGCS(t, "audit")
	g.SetDown(true)
	ctx := context.Background()
	r := newRecorder(t, recorder.Options{Sink: recorder.NewGCSSink(g.Client(t), "audit", "s"), SpoolMaxBytes: 256 << 10, MaxBodyBytes: 16 << 10, UploadTimeout: time.Second})
	for i := 0; i < 2000; i++ {
		if err := r.Decision(ctx, tokenless(i)); err != nil {
			t.Fatalf("tokenless request %d: %v", i, err)
		}
	}
	if err := r.Healthy(); err != nil {
		t.Fatalf("after the flood the recorder is unhealthy: %v", err)
	}
	for i := 0; i < 20; i++ {
		if err := recordRequest(ctx, r, "agent~x", "alice", i); err != nil {
			t.Fatalf("authenticated request %d after the flood: %v", i, err)
		}
	}
	g.SetDown(false)
	closeRecorder(t, r)
	sink := recorder.NewGCSSink(g.Client(t), "audit", "s")
	counts := verifyAll(t, sink)
	if counts["agent~x"] != 61 {
		t.Fatalf("sessions %v: want agent~x with its 60 events and a close", counts)
	}
}

// What is kept of a request refused before an identity is known: method,
// host, path without query (masked), source and reason. Each source is
// rate-limited and the rest dropped and counted.
func TestUnauthenticatedEventsAreCompactAndLimited(t *testing.T) {
	ctx := context.Background()
	// The clock is read by the recorder's own goroutines too.
	var now atomic.Pointer[time.Time]
	start := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	now.Store(&start)
	clock := func() time.Time { return *now.Load() }
	sinkDir := t.TempDir()
	r := newRecorder(t, recorder.Options{Sink: recordertest.OpenSink(t, "file://"+sinkDir), Now: clock, MaxBodyBytes: 16 << 10,
		Mask:            func(b []byte) []byte { return []byte(strings.ReplaceAll(string(b), "SECRET", "[MASKED]")) },
		Unauthenticated: recorder.UnauthenticatedOptions{Rate: 1, Burst: 3}})
	for i := 0; i < 10; i++ {
		e := tokenless(i)
		e.Path = "/storage/v1/b/SECRET/o?alt=media"
		e.Source = "203.0.113.9"
		e.Reason = "UNAUTHENTICATED: no_token"
		if err := r.Decision(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	// Another host of the same IPv6 /64 shares its bucket; another /64
	// has its own.
	for _, src := range []string{"2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2::3", "2001:db8:1:2::4", "2001:db8:9::1"} {
		e := tokenless(0)
		e.Source = src
		r.Decision(ctx, e)
	}
	st := r.Stats()
	if st.Unauthenticated != 7 || st.UnauthenticatedDropped["rate_limited"] != 8 {
		t.Fatalf("recorded %d, dropped %v; want 3+3+1 recorded, 7+1 rate-limited", st.Unauthenticated, st.UnauthenticatedDropped)
	}
	// A second later the source may add one more.
	later := start.Add(time.Second)
	now.Store(&later)
	e := tokenless(99)
	e.Source = "203.0.113.9"
	r.Decision(ctx, e)
	if st := r.Stats(); st.Unauthenticated != 8 {
		t.Fatalf("after a second: %d recorded", st.Unauthenticated)
	}
	closeRecorder(t, r)
	sink, _ := recorder.NewFileSink(sinkDir)
	sess, err := recorder.NewReader(sink).Load(ctx, recorder.UnauthenticatedSession, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ev := range sess.Events {
		d := ev.Decision
		if d == nil {
			continue
		}
		n++
		if d.Query != "" || len(d.Headers) > 0 || d.BodyExcerpt != "" || d.BodyBytes != 0 || d.Message != "" || d.Subject != "" {
			t.Fatalf("not compact: %+v", d)
		}
		if d.Method != "POST" || d.Host != "storage.googleapis.com" || d.Decision != recorder.DecisionUnauthenticated || d.Source == "" {
			t.Fatalf("fields missing: %+v", d)
		}
		if strings.Contains(d.Path, "SECRET") || strings.Contains(d.Path, "?") {
			t.Fatalf("path not masked or query kept: %q", d.Path)
		}
	}
	if n != 8 {
		t.Fatalf("%d events in the session, want 8", n)
	}
	verifyAll(t, sink)
}

// Their share of the spool full, events are dropped and counted, and the
// recorder stays healthy.
func TestUnauthenticatedSpoolShareDrops(t *testing.T) {
	g := recordertest.StartGCS(t, "audit")
	g.SetDown(true)
	ctx := context.Background()
	r := newRecorder(t, recorder.Options{Sink: recorder.NewGCSSink(g.Client(t), "audit", "s"), SpoolMaxBytes: 64 << 10, UploadTimeout: time.Second,
		Unauthenticated: recorder.UnauthenticatedOptions{Rate: 1e6, Burst: 1e6}})
	for i := 0; i < 2000; i++ {
		e := tokenless(i)
		e.Source = fmt.Sprintf("198.51.100.%d", i%200)
		r.Decision(ctx, e)
	}
	st := r.Stats()
	if st.UnauthenticatedDropped["spool_full"] == 0 || st.Unauthenticated == 0 {
		t.Fatalf("stats %+v: want some recorded and the rest dropped for the share", st)
	}
	if st.SpoolBytes > 64<<10 {
		t.Fatalf("spool holds %d bytes, over its bound", st.SpoolBytes)
	}
	if err := r.Healthy(); err != nil {
		t.Fatalf("unhealthy: %v", err)
	}
	if err := recordRequest(ctx, r, "agent~x", "alice", 0); err != nil {
		t.Fatalf("authenticated request: %v", err)
	}
	g.SetDown(false)
	closeRecorder(t, r)
}
