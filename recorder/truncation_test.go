package recorder_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"log/slog"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airlockhq/airlock/recorder"
	"github.com/airlockhq/airlock/recorder/recordertest"
)

// Truncation must be evident: an attacker with delete rights on the sink
// (no Bucket Lock) restores an older signed manifest and deletes what came
// after it, deletes a whole segment, or deletes the last one. Each runs
// against a local directory and the Cloud Storage emulator.

// sinkKinds opens an empty sink of each kind.
func sinkKinds(t *testing.T) map[string]func(t *testing.T) recorder.Sink {
	g := recordertest.StartGCS(t, "audit")
	client := g.Client(t)
	var n atomic.Int64
	return map[string]func(t *testing.T) recorder.Sink{
		"file": func(t *testing.T) recorder.Sink {
			s, err := recorder.NewFileSink(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		"gcs": func(t *testing.T) recorder.Sink {
			return recorder.NewGCSSink(client, "audit", fmt.Sprintf("trunc%d/sessions", n.Add(1)))
		},
	}
}

var segmentIDRe = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}Z\.[0-9a-f]{16}`)

// objectsBySegment groups the objects of a session by segment id, in
// segment order.
func objectsBySegment(t *testing.T, sink recorder.Sink) ([]string, map[string][]string) {
	t.Helper()
	objs, _, err := sink.List(context.Background(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	by := map[string][]string{}
	for _, o := range objs {
		if seg := segmentIDRe.FindString(path.Base(o)); seg != "" && !strings.HasPrefix(o, "checkpoints/") {
			by[seg] = append(by[seg], o)
		}
	}
	segs := make([]string, 0, len(by))
	for s := range by {
		segs = append(segs, s)
	}
	sort.Strings(segs)
	return segs, by
}

func mustFail(t *testing.T, sink recorder.Sink, id string, opts recorder.VerifyOptions, want ...string) {
	t.Helper()
	res, err := recorder.NewReader(sink).Verify(context.Background(), id, opts)
	if err != nil {
		t.Fatalf("verify: %v (want a failed verification, not an error)", err)
	}
	if res.OK() {
		t.Fatalf("truncation not detected: %+v", res)
	}
	all := fmt.Sprint(res.Problems)
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("problems %s lack %q", all, w)
		}
	}
}

func TestRollbackOfSignedManifestWithDeletedChunksFails(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for kind, newSink := range sinkKinds(t) {
		t.Run(kind, func(t *testing.T) {
			sink := newSink(t)
			ctx := context.Background()
			r := newRecorder(t, recorder.Options{Sink: sink, ChunkMaxBytes: 2048, Signer: recorder.NewSigner(priv)})
			for i := 0; i < 20; i++ {
				if err := recordRequest(ctx, r, "roll~x", "alice", i); err != nil {
					t.Fatal(err)
				}
			}
			if err := r.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			// What the attacker keeps: every object as it is now.
			objs, _, err := sink.List(ctx, "", "")
			if err != nil {
				t.Fatal(err)
			}
			kept := map[string][]byte{}
			for _, o := range objs {
				if strings.HasPrefix(o, "checkpoints/") {
					continue
				}
				b, err := sink.Get(ctx, o)
				if err != nil {
					t.Fatal(err)
				}
				kept[o] = b
			}
			for i := 20; i < 40; i++ {
				if err := recordRequest(ctx, r, "roll~x", "alice", i); err != nil {
					t.Fatal(err)
				}
			}
			closeRecorder(t, r)
			// Roll the session back: the older signed manifest restored,
			// everything recorded after it deleted.
			objs, _, err = sink.List(ctx, "", "")
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range objs {
				if strings.HasPrefix(o, "checkpoints/") {
					continue
				}
				b, ok := kept[o]
				if cur, _ := sink.Get(ctx, o); ok && bytes.Equal(cur, b) {
					continue
				}
				if err := sink.Delete(ctx, o); err != nil {
					t.Fatal(err)
				}
				if ok {
					if err := sink.Put(ctx, o, b); err != nil {
						t.Fatal(err)
					}
				}
			}
			for o, b := range kept {
				if _, err := sink.Get(ctx, o); err != nil {
					if err := sink.Put(ctx, o, b); err != nil {
						t.Fatal(err)
					}
				}
			}
			mustFail(t, sink, "roll~x", recorder.VerifyOptions{PublicKey: pub}, "rolled back")
			mustFail(t, sink, "roll~x", recorder.VerifyOptions{}, "rolled back")
		})
	}
}

// recordSegments records a session of several segments (10 events each).
func recordSegments(t *testing.T, sink recorder.Sink, id string) []string {
	t.Helper()
	ctx := context.Background()
	r := newRecorder(t, recorder.Options{Sink: sink, SegmentMaxEvents: 10})
	for i := 0; i < 15; i++ {
		if err := recordRequest(ctx, r, id, "alice", i); err != nil {
			t.Fatal(err)
		}
	}
	closeRecorder(t, r)
	segs, _ := objectsBySegment(t, sink)
	if len(segs) < 4 {
		t.Fatalf("want several segments, got %v", segs)
	}
	res, err := recorder.NewReader(sink).Verify(ctx, id, recorder.VerifyOptions{})
	if err != nil || !res.OK() {
		t.Fatalf("intact session: %v %+v", err, res)
	}
	return segs
}

func deleteSegment(t *testing.T, sink recorder.Sink, seg string) {
	t.Helper()
	_, by := objectsBySegment(t, sink)
	for _, o := range by[seg] {
		if err := sink.Delete(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDeletedSegmentFails(t *testing.T) {
	for kind, newSink := range sinkKinds(t) {
		t.Run(kind, func(t *testing.T) {
			sink := newSink(t)
			segs := recordSegments(t, sink, "seg~x")
			victim := segs[len(segs)/2]
			deleteSegment(t, sink, victim)
			mustFail(t, sink, "seg~x", recorder.VerifyOptions{}, victim, "missing")
		})
	}
}

func TestDeletedLastSegmentFails(t *testing.T) {
	for kind, newSink := range sinkKinds(t) {
		t.Run(kind, func(t *testing.T) {
			sink := newSink(t)
			segs := recordSegments(t, sink, "last~x")
			victim := segs[len(segs)-1]
			deleteSegment(t, sink, victim)
			mustFail(t, sink, "last~x", recorder.VerifyOptions{}, victim, "checkpoint")
		})
	}
}

func TestDeletedWholeSessionFails(t *testing.T) {
	for kind, newSink := range sinkKinds(t) {
		t.Run(kind, func(t *testing.T) {
			sink := newSink(t)
			segs := recordSegments(t, sink, "gone~x")
			for _, s := range segs {
				deleteSegment(t, sink, s)
			}
			mustFail(t, sink, "gone~x", recorder.VerifyOptions{}, "checkpoint")
			problems, err := recorder.NewReader(sink).MissingSessions(context.Background(), func(string) bool { return false }, recorder.VerifyOptions{})
			if err != nil || len(problems) != 1 || problems[0].Session != "gone~x" {
				t.Fatalf("MissingSessions = %v, %v; want gone~x", problems, err)
			}
		})
	}
}

// Under a locked retention policy (Bucket Lock) nothing in the bucket can
// be deleted or replaced: the recorder must never need to, manifests
// included, also across a restart that finds its own uploads.
func TestRecorderWorksUnderBucketLock(t *testing.T) {
	g := recordertest.StartGCS(t, "audit")
	g.Lock("audit", 30*24*time.Hour)
	client := g.Client(t)
	ctx := context.Background()
	spool := filepath.Join(t.TempDir(), "spool")
	var logs strings.Builder
	var logMu sync.Mutex
	opts := recorder.Options{Sink: recorder.NewGCSSink(client, "audit", "locked"), Spool: spool, ChunkMaxBytes: 2048,
		Logger: slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) { logMu.Lock(); defer logMu.Unlock(); return logs.Write(p) }), nil))}
	r := newRecorder(t, opts)
	for i := 0; i < 30; i++ {
		if err := recordRequest(ctx, r, "locked~x", "alice", i); err != nil {
			t.Fatal(err)
		}
		if i%10 == 9 {
			if err := r.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	recorder.Abandon(r)
	r = newRecorder(t, opts)
	if err := recordRequest(ctx, r, "locked~x", "alice", 30); err != nil {
		t.Fatal(err)
	}
	closeRecorder(t, r)
	if n := g.Refused(); n != 0 || r.Stats().UploadErrors != 0 {
		t.Fatalf("%d writes refused by the retention policy, %d upload errors\n%s", n, r.Stats().UploadErrors, logs.String())
	}
	sink := recorder.NewGCSSink(client, "audit", "locked")
	if counts := verifyAll(t, sink); counts["locked~x"] == 0 {
		t.Fatalf("sessions %v", counts)
	}
	ret, ok, err := recorder.RetentionOf(ctx, sink)
	if err != nil || !ok || !ret.Locked || ret.Period != 30*24*time.Hour {
		t.Fatalf("RetentionOf = %+v %v %v", ret, ok, err)
	}
	// What the lock stops: an attacker's delete.
	if err := sink.Delete(ctx, "x"); err == nil {
		t.Fatal("the emulator's lock let a delete through")
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
