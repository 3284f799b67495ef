package recorder_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/airlockhq/airlock/recorder"
	"github.com/airlockhq/airlock/recorder/recordertest"
	"github.com/airlockhq/airlock/redistest"
)

// manifestsOfSession reads the newest manifest of each segment of id.
func manifestsOfSession(t *testing.T, sink recorder.Sink, id string) []*recorder.Manifest {
	t.Helper()
	list, err := recorder.NewReader(sink).List(context.Background(), recorder.Filter{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list {
		if s.ID == id {
			return s.Segments
		}
	}
	t.Fatalf("session %s not found", id)
	return nil
}

// With Redis, a segment started on one replica names the segment another
// replica started before it in the same session, with how far it went.
func TestSegmentNamesThePreviousOneAcrossReplicas(t *testing.T) {
	srv := redistest.Start(t)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { client.Close() })
	sink, err := recorder.NewFileSink(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a := newRecorder(t, recorder.Options{Sink: sink, RedisClient: client})
	for i := 0; i < 3; i++ {
		if err := recordRequest(ctx, a, "shared~x", "alice", i); err != nil {
			t.Fatal(err)
		}
	}
	closeRecorder(t, a) // closes A's segment: 10 events
	b := newRecorder(t, recorder.Options{Sink: sink, RedisClient: client})
	if err := recordRequest(ctx, b, "shared~x", "alice", 3); err != nil {
		t.Fatal(err)
	}
	closeRecorder(t, b)
	ms := manifestsOfSession(t, sink, "shared~x")
	if len(ms) != 2 {
		t.Fatalf("%d segments, want 2", len(ms))
	}
	first, second := ms[0], ms[1]
	if first.Writer != a.Writer() {
		first, second = second, first
	}
	if second.Previous == nil || second.Previous.Segment != first.Segment || second.Previous.Events != first.Events || second.Previous.Head != first.Head {
		t.Fatalf("replica B's segment names %+v, want A's %s with %d events and its head", second.Previous, first.Segment, first.Events)
	}
	if first.Previous != nil {
		t.Fatalf("the first segment names %+v", first.Previous)
	}
	if res, err := recorder.NewReader(sink).Verify(ctx, "shared~x", recorder.VerifyOptions{}); err != nil || !res.OK() {
		t.Fatalf("verify: %v %+v", err, res)
	}
	// A's segment deleted: B's names it.
	deleteSegment(t, sink, first.Segment)
	mustFail(t, sink, "shared~x", recorder.VerifyOptions{}, first.Segment, "names it")
}

// Without Redis the writer remembers its own segments; editing the link
// away in the manifest breaks the genesis hash that binds it.
func TestPreviousSegmentIsBoundByGenesis(t *testing.T) {
	sink, err := recorder.NewFileSink(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r := newRecorder(t, recorder.Options{Sink: sink, SegmentMaxEvents: 10})
	for i := 0; i < 5; i++ {
		if err := recordRequest(ctx, r, "bound~x", "alice", i); err != nil {
			t.Fatal(err)
		}
	}
	closeRecorder(t, r)
	ms := chain(t, manifestsOfSession(t, sink, "bound~x"))
	// Drop the link from the last manifest and delete the segment before.
	objs, _, _ := sink.List(ctx, "", "")
	var newest string
	for _, o := range objs {
		if strings.Contains(o, ms[len(ms)-1].Segment) && strings.HasSuffix(o, ".manifest.json") {
			newest = o
		}
	}
	m := *ms[len(ms)-1]
	m.Previous = nil
	b, _ := jsonMarshal(&m)
	replace(t, sink, newest, b)
	mustFail(t, sink, "bound~x", recorder.VerifyOptions{}, "genesis")
}

// lossySink loses the answer to one chunk upload that succeeded, as a
// crash right after it would.
type lossySink struct {
	recorder.Sink
	suffix     string // of the objects concerned; default chunks
	lose, down atomic.Bool
	exists     atomic.Int64 // writes refused: the object was there
}

func (s *lossySink) Put(ctx context.Context, name string, data []byte) error {
	if s.down.Load() {
		return errors.New("sink down")
	}
	suffix := s.suffix
	if suffix == "" {
		suffix = ".jsonl.gz"
	}
	err := s.Sink.Put(ctx, name, data)
	if err == nil && strings.HasSuffix(name, suffix) && s.lose.CompareAndSwap(true, false) {
		s.down.Store(true) // the process is gone: nothing more reaches the sink
		return errors.New("connection reset")
	}
	if errors.Is(err, recorder.ErrExists) && strings.HasSuffix(name, suffix) {
		s.exists.Add(1)
	}
	return err
}

// A manifest written just before a crash, before the writer recorded its
// sequence, is never overwritten: the next process skips to the next
// sequence.
func TestManifestWrittenBeforeCrashIsSkipped(t *testing.T) {
	inner, err := recorder.NewFileSink(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sink := &lossySink{Sink: inner, suffix: ".manifest.json"}
	spool := filepath.Join(t.TempDir(), "spool")
	ctx := context.Background()
	r1 := newRecorder(t, recorder.Options{Sink: sink, Spool: spool, FlushInterval: time.Hour})
	for i := 0; i < 3; i++ {
		if err := recordRequest(ctx, r1, "mcrash~x", "alice", i); err != nil {
			t.Fatal(err)
		}
	}
	sink.lose.Store(true)
	fctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_ = r1.Flush(fctx)
	cancel()
	recorder.Abandon(r1)
	if sink.lose.Load() {
		t.Fatal("no manifest was written before the crash")
	}
	sink.down.Store(false)
	r2 := newRecorder(t, recorder.Options{Sink: sink, Spool: spool})
	closeRecorder(t, r2)
	if sink.exists.Load() == 0 {
		t.Fatal("the restarted writer never met the manifest written before the crash")
	}
	ms := manifestsOf(t, inner)
	for i, m := range ms {
		if !strings.HasSuffix(m, fmt.Sprintf(".%06d.manifest.json", i+1)) {
			t.Fatalf("manifests %v, want sequences 1, 2, ...", ms)
		}
	}
	if len(ms) < 2 {
		t.Fatalf("manifests %v: the restarted writer wrote none", ms)
	}
	verifyAll(t, inner)
}

// A chunk uploaded just before a crash, before the writer recorded it, is
// found by the next process and taken as it is: never overwritten, every
// event exactly once, whether the next process would have cut its chunk
// shorter or longer.
func TestChunkUploadedBeforeCrashIsTakenAsIs(t *testing.T) {
	for _, tc := range []struct {
		name         string
		before, next int // ChunkMaxBytes of the crashed and the next process
	}{{"next chunk longer", 2048, 4 << 20}, {"next chunk shorter", 4 << 20, 2048}} {
		t.Run(tc.name, func(t *testing.T) {
			inner, err := recorder.NewFileSink(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			sink := &lossySink{Sink: inner}
			spool := filepath.Join(t.TempDir(), "spool")
			ctx := context.Background()
			r1 := newRecorder(t, recorder.Options{Sink: sink, Spool: spool, FlushInterval: time.Hour, ChunkMaxAge: time.Hour, ChunkMinBytes: 1 << 20, ChunkMaxBytes: tc.before})
			for i := 0; i < 5; i++ {
				if err := recordRequest(ctx, r1, "crash~x", "alice", i); err != nil {
					t.Fatal(err)
				}
			}
			sink.lose.Store(true)
			fctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			_ = r1.Flush(fctx)
			cancel()
			recorder.Abandon(r1)
			if sink.lose.Load() {
				t.Fatal("no chunk was uploaded before the crash")
			}
			sink.down.Store(false)
			r2 := newRecorder(t, recorder.Options{Sink: sink, Spool: spool, ChunkMaxBytes: tc.next})
			closeRecorder(t, r2)
			if sink.exists.Load() == 0 {
				t.Fatal("the restarted writer never met the chunk uploaded before the crash")
			}
			total, kinds := uniqueEvents(t, inner)
			if kinds["decision"] != 5 || total != 16 {
				t.Fatalf("%d events %v, want the 15 recorded and a close", total, kinds)
			}
			verifyAll(t, inner)
		})
	}
}

// A segment left open (its writer died with its spool) is a warning while
// it could still be running, a failure once its idle gap has long passed.
func TestStaleOpenSegmentFails(t *testing.T) {
	sink, err := recorder.NewFileSink(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r := newRecorder(t, recorder.Options{Sink: sink, IdleGap: time.Minute})
	for i := 0; i < 3; i++ {
		if err := recordRequest(ctx, r, "open~x", "alice", i); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	recorder.Abandon(r) // the spool is never recovered
	rd := recorder.NewReader(sink)
	res, err := rd.Verify(ctx, "open~x", recorder.VerifyOptions{})
	if err != nil || !res.OK() || !strings.Contains(strings.Join(res.Warnings, " "), "not closed") {
		t.Fatalf("fresh open segment: %v %+v", err, res)
	}
	later := func() time.Time { return time.Now().Add(time.Minute + 11*time.Minute) }
	mustFail(t, sink, "open~x", recorder.VerifyOptions{Now: later}, "not closed", "idle gap (1m0s)")
}

// Two processes never share a spool.
func TestSpoolIsLocked(t *testing.T) {
	spool := filepath.Join(t.TempDir(), "spool")
	r := newRecorder(t, recorder.Options{Spool: spool})
	_, err := recorder.New(context.Background(), recorder.Options{Spool: spool, Sink: recordertest.OpenSink(t, "file://"+t.TempDir())})
	if !errors.Is(err, recorder.ErrSpoolInUse) || !strings.Contains(err.Error(), spool) {
		t.Fatalf("second recorder on one spool: %v, want ErrSpoolInUse naming it", err)
	}
	closeRecorder(t, r)
	r2 := newRecorder(t, recorder.Options{Spool: spool})
	closeRecorder(t, r2)
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// With Redis down, segments still start (named from this writer's memory)
// and only the first pays Redis's timeout.
func TestSegmentsStartWithRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1})
	t.Cleanup(func() { client.Close() })
	srv.Kill()
	r := newRecorder(t, recorder.Options{RedisClient: client, Tracker: recorder.NewMemoryTracker(nil), SegmentMaxEvents: 3})
	ctx := context.Background()
	start := time.Now()
	for i := 0; i < 10; i++ {
		if err := recordRequest(ctx, r, "down~x", "alice", i); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("10 segments took %s with Redis down", d)
	}
	sink := r.Sink()
	closeRecorder(t, r)
	chain(t, manifestsOfSession(t, sink, "down~x"))
}

// chain orders segments by the links between them and checks they form one
// chain, each naming the one before with its length and head.
func chain(t *testing.T, ms []*recorder.Manifest) []*recorder.Manifest {
	t.Helper()
	by := map[string]*recorder.Manifest{}
	named := map[string]bool{}
	for _, m := range ms {
		by[m.Segment] = m
		if m.Previous != nil {
			named[m.Previous.Segment] = true
		}
	}
	var last *recorder.Manifest
	for _, m := range ms {
		if !named[m.Segment] {
			if last != nil {
				t.Fatalf("two segments named by none: %s and %s", last.Segment, m.Segment)
			}
			last = m
		}
	}
	var out []*recorder.Manifest
	for m := last; m != nil; {
		out = append([]*recorder.Manifest{m}, out...)
		if m.Previous == nil {
			break
		}
		p := by[m.Previous.Segment]
		if p == nil || p.Events != m.Previous.Events || p.Head != m.Previous.Head {
			t.Fatalf("segment %s names %+v, which does not match %+v", m.Segment, m.Previous, p)
		}
		m = p
	}
	if len(out) != len(ms) {
		t.Fatalf("the links cover %d of %d segments", len(out), len(ms))
	}
	return out
}
