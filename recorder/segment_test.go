package recorder_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/airlockhq/airlock/handoff"
	"github.com/airlockhq/airlock/recorder"
	"github.com/airlockhq/airlock/recorder/recordertest"
)

func TestSegmentsRollOverAndVerify(t *testing.T) {
	r := newRecorder(t, recorder.Options{SegmentMaxEvents: 10})
	ctx := context.Background()
	for i := 0; i < 20; i++ {
		if err := recordRequest(ctx, r, "roll~x", "alice", i); err != nil {
			t.Fatal(err)
		}
	}
	sink := r.Sink()
	closeRecorder(t, r)
	res, err := recorder.NewReader(sink).Verify(ctx, "roll~x", recorder.VerifyOptions{})
	if err != nil || !res.OK() {
		t.Fatalf("verify: %v %v", err, res.Problems)
	}
	// 60 events in segments of at most 10 including their close event.
	if res.Segments < 6 || res.Events != 60+int64(res.Segments) {
		t.Fatalf("%d segments, %d events", res.Segments, res.Events)
	}
}

func TestIdleSegmentIsClosedAndUploaded(t *testing.T) {
	r := newRecorder(t, recorder.Options{IdleGap: 250 * time.Millisecond})
	ctx := context.Background()
	if err := recordRequest(ctx, r, "idle~x", "alice", 0); err != nil {
		t.Fatal(err)
	}
	rd := recorder.NewReader(r.Sink())
	deadline := time.Now().Add(10 * time.Second)
	for {
		list, err := rd.List(ctx, recorder.Filter{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) == 1 && len(list[0].Segments) == 1 && list[0].Segments[0].Closed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("idle segment never closed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The next event starts a new segment in the same session.
	if err := recordRequest(ctx, r, "idle~x", "alice", 1); err != nil {
		t.Fatal(err)
	}
	closeRecorder(t, r)
	res, err := rd.Verify(ctx, "idle~x", recorder.VerifyOptions{})
	if err != nil || !res.OK() || res.Segments != 2 || res.Events != 8 {
		t.Fatalf("verify: %v %+v", err, res)
	}
}

func TestExtProcMethods(t *testing.T) {
	r := newRecorder(t, recorder.Options{MaxBodyBytes: 8})
	ctx := context.Background()
	meta := handoff.Metadata{RequestID: "r1", SessionID: "ext~x", Subject: "alice", Actor: "bot", GCPMethod: "iam.projects.serviceAccounts.keys.create"}
	if err := r.RecordRequestHeaders(ctx, meta, map[string]string{":method": "POST", ":authority": "iam.googleapis.com", ":path": "/v1/x", "x-goog-api-key": "AIza"}); err != nil {
		t.Fatal(err)
	}
	if err := r.RecordResponse(ctx, meta, 200, map[string]string{"set-cookie": "a=b"}, []byte(`{"privateKeyData":"[MASKED:private_key]"}`), 4096); err != nil {
		t.Fatal(err)
	}
	// An invalid session cannot be recorded: an error, and counted.
	if err := r.RecordResponse(ctx, handoff.Metadata{SessionID: "../x"}, 200, nil, nil, 0); err == nil {
		t.Fatal("an invalid session was recorded")
	}
	if st := r.Stats(); st.Failed != 1 || st.Events != 2 {
		t.Fatalf("stats %+v", st)
	}
	sink := r.Sink()
	closeRecorder(t, r)
	sess, err := recorder.NewReader(sink).Load(ctx, "ext~x", nil)
	if err != nil {
		t.Fatal(err)
	}
	q, p := sess.Events[0].Request, sess.Events[1].Response
	if q == nil || q.Method != "POST" || q.Host != "iam.googleapis.com" || q.Headers["x-goog-api-key"] != recorder.Masked || q.Actor != "bot" {
		t.Fatalf("request %+v", q)
	}
	if p == nil || p.Status != 200 || p.TotalBytes != 4096 || p.BodyExcerpt != `{"privat` || p.Headers["set-cookie"] != recorder.Masked {
		t.Fatalf("response %+v", p)
	}
}

func TestClosedRecorderRefuses(t *testing.T) {
	r := newRecorder(t, recorder.Options{})
	closeRecorder(t, r)
	err := r.Decision(context.Background(), recorder.DecisionEvent{SessionID: "late~x", Decision: "allow"})
	if !errors.Is(err, recorder.ErrClosed) {
		t.Fatalf("after Close: %v, want ErrClosed", err)
	}
}

func TestEventsBeyondTheMemoryBudgetAreReadBack(t *testing.T) {
	spool := t.TempDir()
	sinkDir := t.TempDir()
	ctx := context.Background()
	opts := recorder.Options{Spool: spool, Sink: recordertest.OpenSink(t, "file://"+sinkDir), PendingMemoryBytes: 1500, FlushInterval: time.Hour, ChunkMaxBytes: 4096}
	r1 := newRecorder(t, opts)
	for i := 0; i < 60; i++ {
		if err := recordRequest(ctx, r1, "spill~x", "alice", i); err != nil {
			t.Fatal(err)
		}
	}
	if err := r1.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 60; i < 120; i++ {
		if err := recordRequest(ctx, r1, "spill~x", "alice", i); err != nil {
			t.Fatal(err)
		}
	}
	recorder.Abandon(r1)
	opts.FlushInterval = 0
	r2 := newRecorder(t, opts)
	closeRecorder(t, r2)
	sink, _ := recorder.NewFileSink(sinkDir)
	total, kinds := uniqueEvents(t, sink)
	if kinds["decision"] != 120 || kinds["close"] != 1 || total != 361 {
		t.Fatalf("total %d kinds %v", total, kinds)
	}
	list, err := recorder.NewReader(sink).List(ctx, recorder.Filter{Method: "compute.instances.delete", Subject: "alice"}, nil)
	if err != nil || len(list) != 1 || list[0].Summary.Requests != 120 {
		t.Fatalf("summary of spilled events: %v %+v", err, list)
	}
	verifyAll(t, sink)
}
