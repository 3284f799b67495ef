package recorder_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airlockhq/airlock/handoff"
	"github.com/airlockhq/airlock/recorder"
	"github.com/airlockhq/airlock/recorder/recordertest"
)

// newRecorder opens a recorder on a file sink (unless opts names a sink)
// with a fresh spool.
func newRecorder(t *testing.T, opts recorder.Options) *recorder.Recorder {
	t.Helper()
	if opts.Spool == "" {
		opts.Spool = filepath.Join(t.TempDir(), "spool")
	}
	if opts.Sink == nil {
		opts.Sink = recordertest.OpenSink(t, "file://"+filepath.Join(t.TempDir(), "sink"))
	}
	if opts.FlushInterval == 0 {
		opts.FlushInterval = 20 * time.Millisecond
	}
	if opts.ChunkMaxAge == 0 {
		opts.ChunkMaxAge = 20 * time.Millisecond
	}
	if opts.RetryMin == 0 {
		opts.RetryMin = 10 * time.Millisecond
		opts.RetryMax = 50 * time.Millisecond
	}
	r, err := recorder.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func closeRecorder(t *testing.T, r *recorder.Recorder) {
	t.Helper()
	// Generous: the race detector on a loaded 2-core machine is slow.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := r.Close(ctx); err != nil {
		// Where it was stuck, for the next reader of a CI log.
		pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
		t.Fatalf("Close: %v", err)
	}
}

// recordRequest writes the three events of one request.
func recordRequest(ctx context.Context, r *recorder.Recorder, session, subject string, i int) error {
	id := fmt.Sprintf("%s-req-%d", session, i)
	if err := r.Decision(ctx, recorder.DecisionEvent{
		RequestID: id, SessionID: session, Subject: subject, Actor: "agent-7",
		Method: "DELETE", Host: "compute.googleapis.com", Path: "/compute/v1/projects/acme-prod/zones/z/instances/web-" + fmt.Sprint(i),
		GCPMethod: "compute.instances.delete", Project: "acme-prod", Decision: recorder.DecisionAllowed, Policy: "gcp", Rule: "agents-may",
		Headers: map[string]string{"authorization": "Bearer eyJsecret", "user-agent": "gcloud"},
	}); err != nil {
		return err
	}
	if err := r.Request(ctx, session, id, recorder.RequestEvent{Subject: subject, Method: "DELETE", Host: "compute.googleapis.com", Path: "/x"}); err != nil {
		return err
	}
	return r.Vote(ctx, recorder.VoteEvent{SessionID: session, RequestID: id, ApprovalID: "ap-" + id, Approver: "sre-1", Vote: "approve"})
}

// verifyAll verifies every session of the sink and returns the event
// count per session.
func verifyAll(t *testing.T, sink recorder.Sink) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	rd := recorder.NewReader(sink)
	list, err := rd.List(ctx, recorder.Filter{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, s := range list {
		res, err := rd.Verify(ctx, s.ID, recorder.VerifyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !res.OK() {
			t.Fatalf("session %s does not verify: %v", s.ID, res.Problems)
		}
		out[s.ID] = res.Events
	}
	return out
}

// uniqueEvents loads every session and fails on a duplicate (segment, seq).
func uniqueEvents(t *testing.T, sink recorder.Sink) (total int, kinds map[string]int) {
	t.Helper()
	ctx := context.Background()
	rd := recorder.NewReader(sink)
	list, err := rd.List(ctx, recorder.Filter{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kinds = map[string]int{}
	seen := map[string]bool{}
	for _, s := range list {
		sess, err := rd.Load(ctx, s.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(sess.Warnings) > 0 {
			t.Fatalf("warnings loading %s: %v", s.ID, sess.Warnings)
		}
		for _, e := range sess.Events {
			k := fmt.Sprintf("%s#%d", e.Segment, e.Seq)
			if seen[k] {
				t.Fatalf("event %s appears twice in the sink", k)
			}
			seen[k] = true
			kinds[e.Kind]++
			total++
		}
	}
	return total, kinds
}

func TestConcurrentSessionsRoundTrip(t *testing.T) {
	r := newRecorder(t, recorder.Options{ChunkMaxBytes: 8 << 10})
	ctx := context.Background()
	const sessions, perSession = 8, 60
	var wg sync.WaitGroup
	errs := make(chan error, sessions*4)
	for s := 0; s < sessions; s++ {
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < perSession/4; i++ {
					if err := recordRequest(ctx, r, fmt.Sprintf("task-%d~abc", s), fmt.Sprintf("user-%d", s), w*1000+i); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Concurrent requests share group commits.
	if st := r.Stats(); st.Events != 3*sessions*perSession || st.Syncs < 1 || st.Syncs > st.Events {
		t.Fatalf("stats %+v: want %d events in 1 to %[2]d syncs", st, 3*sessions*perSession)
	}
	sink := r.Sink()
	closeRecorder(t, r)
	counts := verifyAll(t, sink)
	if len(counts) != sessions {
		t.Fatalf("got %d sessions, want %d", len(counts), sessions)
	}
	total, kinds := uniqueEvents(t, sink)
	// 3 events per request plus one close event per segment.
	if kinds["decision"] != sessions*perSession || kinds["vote"] != sessions*perSession || kinds["request"] != sessions*perSession {
		t.Fatalf("kinds = %v", kinds)
	}
	if kinds["close"] < sessions || total != 3*sessions*perSession+kinds["close"] {
		t.Fatalf("total %d, kinds %v", total, kinds)
	}
	if left := r.Stats(); left.PendingEvents != 0 || left.SpoolBytes != 0 {
		t.Fatalf("after Close: %+v, want an empty spool", left)
	}
}

func TestCredentialsNeverRecorded(t *testing.T) {
	r := newRecorder(t, recorder.Options{MaxBodyBytes: 64, Mask: func(b []byte) []byte {
		return bytes.ReplaceAll(b, []byte("hunter2"), []byte("[MASKED:password]"))
	}})
	ctx := context.Background()
	err := r.Decision(ctx, recorder.DecisionEvent{
		SessionID: "s1~x", Subject: "alice", Decision: recorder.DecisionPolicyDenied,
		Headers: map[string]string{
			"Authorization": "Bearer ya29.token", "cookie": "sid=1", "x-goog-api-key": "AIzaSyA", "x-custom": "Bearer abc",
			"x-note": "pw hunter2", "user-agent": "gcloud/1",
		},
		Body: []byte(`{"password":"hunter2","pad":"` + strings.Repeat("z", 200) + `"}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	sink := r.Sink()
	closeRecorder(t, r)
	sess, err := recorder.NewReader(sink).Load(ctx, "s1~x", nil)
	if err != nil {
		t.Fatal(err)
	}
	d := sess.Events[0].Decision
	for _, secret := range []string{"ya29", "sid=1", "AIza", "hunter2", "Bearer"} {
		for k, v := range d.Headers {
			if strings.Contains(v, secret) {
				t.Errorf("header %s kept %q", k, v)
			}
		}
		if strings.Contains(d.BodyExcerpt, secret) {
			t.Errorf("body kept %q: %s", secret, d.BodyExcerpt)
		}
	}
	if d.Headers["user-agent"] != "gcloud/1" || d.Headers["authorization"] != recorder.Masked {
		t.Errorf("headers = %v", d.Headers)
	}
	if len(d.BodyExcerpt) > 64 || !strings.Contains(d.BodyExcerpt, "[MASKED:password]") || d.BodyBytes < 200 {
		t.Errorf("body excerpt %q (%d bytes of %d)", d.BodyExcerpt, len(d.BodyExcerpt), d.BodyBytes)
	}
}

func TestRequestBodyDroppedWithoutMask(t *testing.T) {
	r := newRecorder(t, recorder.Options{MaxBodyBytes: 1024})
	ctx := context.Background()
	if err := r.Request(ctx, "s2~x", "r1", recorder.RequestEvent{Body: []byte(`{"secret":"x"}`)}); err != nil {
		t.Fatal(err)
	}
	sink := r.Sink()
	closeRecorder(t, r)
	sess, err := recorder.NewReader(sink).Load(ctx, "s2~x", nil)
	if err != nil {
		t.Fatal(err)
	}
	if q := sess.Events[0].Request; q.BodyExcerpt != "" || q.BodyBytes != 14 {
		t.Fatalf("request = %+v, want the body dropped and its size kept", q)
	}
}

func TestSpoolFullRefuses(t *testing.T) {
	r := newRecorder(t, recorder.Options{SpoolMaxBytes: 2048, FlushInterval: time.Hour})
	ctx := context.Background()
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		err = recordRequest(ctx, r, "full~x", "alice", i)
	}
	if !errors.Is(err, recorder.ErrSpoolFull) {
		t.Fatalf("err = %v, want ErrSpoolFull", err)
	}
	if herr := r.Healthy(); !errors.Is(herr, recorder.ErrSpoolFull) {
		t.Fatalf("Healthy = %v, want ErrSpoolFull", herr)
	}
	// Uploading drains the spool and recording works again.
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Healthy(); err != nil {
		t.Fatalf("Healthy after draining: %v", err)
	}
	if err := recordRequest(ctx, r, "full~x", "alice", 1000); err != nil {
		t.Fatalf("after draining: %v", err)
	}
	closeRecorder(t, r)
}

func TestSpoolFullDropsAndCounts(t *testing.T) {
	r := newRecorder(t, recorder.Options{SpoolMaxBytes: 2048, OnFull: "drop", FlushInterval: time.Hour})
	ctx := context.Background()
	for i := 0; i < 50; i++ {
		if err := recordRequest(ctx, r, "drop~x", "alice", i); err != nil {
			t.Fatalf("drop mode returned %v", err)
		}
	}
	st := r.Stats()
	if st.Dropped == 0 || st.Events+st.Dropped != 150 {
		t.Fatalf("stats %+v: want drops counted, events+dropped = 150", st)
	}
	sink := r.Sink()
	closeRecorder(t, r)
	verifyAll(t, sink)
}

func TestGCSEndToEnd(t *testing.T) {
	g := recordertest.StartGCS(t, "audit")
	client := g.Client(t)
	r := newRecorder(t, recorder.Options{Sink: recorder.NewGCSSink(client, "audit", "airlock/sessions")})
	ctx := context.Background()
	var wg sync.WaitGroup
	for s := 0; s < 4; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				if err := recordRequest(ctx, r, fmt.Sprintf("gcs-%d~x", s), "bob", i); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	closeRecorder(t, r)
	objs := g.Objects(t, "audit", "airlock/sessions/")
	segments := map[string]bool{}
	checkpoints := 0
	for _, o := range objs {
		switch {
		case strings.HasPrefix(o, "airlock/sessions/"+recorder.CheckpointDir):
			checkpoints++
		case strings.HasSuffix(o, ".manifest.json"):
			// SEGMENT.SEQUENCE.manifest.json, one object per version.
			base := path.Base(o)
			segments[base[:strings.Index(base, ".")+17]] = true
		case !strings.HasSuffix(o, ".jsonl.gz"):
			t.Errorf("unexpected object %s", o)
		}
	}
	if len(segments) != 4 || checkpoints == 0 {
		t.Fatalf("%d segments with manifests, %d checkpoints in %v", len(segments), checkpoints, objs)
	}
	sink := recorder.NewGCSSink(client, "audit", "airlock/sessions")
	counts := verifyAll(t, sink)
	for id, n := range counts {
		if n != 151 {
			t.Errorf("session %s has %d events, want 151", id, n)
		}
	}
	if len(counts) != 4 {
		t.Fatalf("sessions = %v", counts)
	}
}

func TestGCSOutageSpoolsThenDrains(t *testing.T) {
	g := recordertest.StartGCS(t, "audit")
	client := g.Client(t)
	r := newRecorder(t, recorder.Options{Sink: recorder.NewGCSSink(client, "audit", "p"), UploadTimeout: 300 * time.Millisecond})
	ctx := context.Background()
	g.SetDown(true)
	for i := 0; i < 200; i++ {
		if err := recordRequest(ctx, r, "outage~x", "carol", i); err != nil {
			t.Fatalf("recording while GCS is down: %v", err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for g.Failed() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	st := r.Stats()
	if g.Failed() == 0 || st.SpoolBytes == 0 || st.PendingEvents != 600 {
		t.Fatalf("while down: failed requests %d, stats %+v", g.Failed(), st)
	}
	if n := len(g.Objects(t, "audit", "p/")); n != 0 {
		t.Fatalf("%d objects written while down", n)
	}
	g.SetDown(false)
	deadline = time.Now().Add(15 * time.Second)
	for r.Stats().PendingEvents > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := r.Stats(); st.PendingEvents != 0 || st.UploadErrors == 0 {
		t.Fatalf("after recovery: %+v", st)
	}
	closeRecorder(t, r)
	total, kinds := uniqueEvents(t, recorder.NewGCSSink(client, "audit", "p"))
	if total != 601 || kinds["close"] != 1 {
		t.Fatalf("total %d kinds %v, want 600 events and a close", total, kinds)
	}
	verifyAll(t, recorder.NewGCSSink(client, "audit", "p"))
}

func TestCrashRecoveryUploadsOnce(t *testing.T) {
	spool := filepath.Join(t.TempDir(), "spool")
	sinkDir := filepath.Join(t.TempDir(), "sink")
	ctx := context.Background()
	// First life: part uploaded, part only spooled, then a crash.
	r1 := newRecorder(t, recorder.Options{Spool: spool, Sink: recordertest.OpenSink(t, "file://"+sinkDir), FlushInterval: time.Hour})
	for i := 0; i < 40; i++ {
		if err := recordRequest(ctx, r1, "crash~x", "dave", i); err != nil {
			t.Fatal(err)
		}
	}
	if err := r1.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 40; i < 100; i++ {
		if err := recordRequest(ctx, r1, "crash~x", "dave", i); err != nil {
			t.Fatal(err)
		}
	}
	recorder.Abandon(r1)
	// A torn write at the end of the last spool file, as a crash in the
	// middle of an unacknowledged append leaves it.
	wals, _ := filepath.Glob(filepath.Join(spool, "wal-*.log"))
	sort.Strings(wals)
	if len(wals) == 0 {
		t.Fatal("no spool files after the crash")
	}
	f, err := os.OpenFile(wals[len(wals)-1], os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{200, 0, 0, 0, 1, 2, 3})
	f.Close()

	// Second life on the same spool: resumes and records more.
	r2 := newRecorder(t, recorder.Options{Spool: spool, Sink: recordertest.OpenSink(t, "file://"+sinkDir)})
	for i := 100; i < 110; i++ {
		if err := recordRequest(ctx, r2, "crash~x", "dave", i); err != nil {
			t.Fatal(err)
		}
	}
	closeRecorder(t, r2)
	sink, _ := recorder.NewFileSink(sinkDir)
	total, kinds := uniqueEvents(t, sink)
	if kinds["decision"] != 110 || kinds["vote"] != 110 {
		t.Fatalf("kinds %v: want every acknowledged event exactly once", kinds)
	}
	// One segment per life, each closed.
	if kinds["close"] != 2 || total != 332 {
		t.Fatalf("total %d kinds %v", total, kinds)
	}
	verifyAll(t, sink)
	if left, _ := filepath.Glob(filepath.Join(spool, "wal-*.log")); len(left) != 0 {
		t.Fatalf("spool files left after a clean close: %v", left)
	}
}

func TestCrashBeforeAnyUpload(t *testing.T) {
	g := recordertest.StartGCS(t, "audit")
	client := g.Client(t)
	spool := filepath.Join(t.TempDir(), "spool")
	ctx := context.Background()
	opts := recorder.Options{Spool: spool, Sink: recorder.NewGCSSink(client, "audit", "c"), FlushInterval: time.Hour}
	r1 := newRecorder(t, opts)
	for i := 0; i < 30; i++ {
		if err := recordRequest(ctx, r1, "early~x", "erin", i); err != nil {
			t.Fatal(err)
		}
	}
	recorder.Abandon(r1)
	opts.FlushInterval = 0
	r2 := newRecorder(t, opts)
	closeRecorder(t, r2)
	sink := recorder.NewGCSSink(client, "audit", "c")
	total, kinds := uniqueEvents(t, sink)
	if total != 91 || kinds["close"] != 1 {
		t.Fatalf("total %d kinds %v", total, kinds)
	}
	verifyAll(t, sink)
}

func TestCloseWithSinkDownKeepsTheSpool(t *testing.T) {
	g := recordertest.StartGCS(t, "audit")
	client := g.Client(t)
	spool := filepath.Join(t.TempDir(), "spool")
	ctx := context.Background()
	opts := recorder.Options{Spool: spool, Sink: recorder.NewGCSSink(client, "audit", "d"), UploadTimeout: 200 * time.Millisecond}
	r1 := newRecorder(t, opts)
	g.SetDown(true)
	for i := 0; i < 20; i++ {
		if err := recordRequest(ctx, r1, "down~x", "frank", i); err != nil {
			t.Fatal(err)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := r1.Close(cctx); err == nil {
		t.Fatal("Close reported success with the sink down")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Close took %v past its deadline", d)
	}
	g.SetDown(false)
	r2 := newRecorder(t, opts)
	closeRecorder(t, r2)
	total, kinds := uniqueEvents(t, recorder.NewGCSSink(client, "audit", "d"))
	if kinds["decision"] != 20 || kinds["close"] != 1 || total != 61 {
		t.Fatalf("total %d kinds %v", total, kinds)
	}
}

// TestSecretsInURLsAndResponseHeadersNeverRecorded: an API key in the query
// (?key=...), a secret in the path, and one in a response header are
// masked in every event, like header values and bodies.
func TestSecretsInURLsAndResponseHeadersNeverRecorded(t *testing.T) {
	const secret = "hunter2"
	r := newRecorder(t, recorder.Options{MaxBodyBytes: 64, Mask: func(b []byte) []byte {
		return bytes.ReplaceAll(b, []byte(secret), []byte("[MASKED:password]"))
	}})
	ctx := context.Background()
	meta := handoff.Metadata{SessionID: "s3~x", RequestID: "r1", Subject: "alice"}
	if err := r.Decision(ctx, recorder.DecisionEvent{
		SessionID: "s3~x", RequestID: "r1", Subject: "alice", Decision: recorder.DecisionAllowed,
		Method: "GET", Host: "storage.googleapis.com", Path: "/storage/v1/b/" + secret + "/o", Query: "key=" + secret + "&alt=json",
		Headers: map[string]string{":path": "/storage/v1/b/" + secret + "/o?key=" + secret},
	}); err != nil {
		t.Fatal(err)
	}
	if err := r.RecordRequestHeaders(ctx, meta, map[string]string{":method": "GET", ":authority": "storage.googleapis.com", ":path": "/storage/v1/b/x/o?key=" + secret}); err != nil {
		t.Fatal(err)
	}
	if err := r.RecordResponse(ctx, meta, 302, map[string]string{"location": "https://example.com/?sig=" + secret}, nil, 0); err != nil {
		t.Fatal(err)
	}
	sink := r.Sink()
	closeRecorder(t, r)
	sess, err := recorder.NewReader(sink).Load(ctx, "s3~x", nil)
	if err != nil {
		t.Fatal(err)
	}
	masked := 0
	for _, e := range sess.Events {
		line, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(line, []byte(secret)) {
			t.Errorf("%s event kept the secret: %s", e.Kind, line)
		}
		masked += bytes.Count(line, []byte("[MASKED:password]"))
	}
	if masked < 5 {
		t.Errorf("%d masks in the recording, want the path, query, :path headers and location masked", masked)
	}
}

// TestPremaskedBodyIsOnlyCut: a body the caller already masked with a
// profile covering the recorder's is cut to MaxBodyBytes, not masked a
// second time, and keeps the original size the caller gives.
func TestPremaskedBodyIsOnlyCut(t *testing.T) {
	var calls sync.Map
	r := newRecorder(t, recorder.Options{MaxBodyBytes: 8, Mask: func(b []byte) []byte {
		calls.Store(string(b), true)
		return b
	}})
	ctx := context.Background()
	for _, e := range []recorder.DecisionEvent{
		{SessionID: "s4~x", RequestID: "pre", Decision: recorder.DecisionAllowed, Body: []byte(`{"a":"premasked"}`), BodyMasked: true, BodyBytes: 40},
		{SessionID: "s4~x", RequestID: "raw", Decision: recorder.DecisionAllowed, Body: []byte(`{"a":"raw body"}`)},
	} {
		if err := r.Decision(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	sink := r.Sink()
	closeRecorder(t, r)
	if _, masked := calls.Load(`{"a":"premasked"}`); masked {
		t.Error("a premasked body went through the masker again")
	}
	if _, masked := calls.Load(`{"a":"raw body"}`); !masked {
		t.Error("a raw body was not masked")
	}
	sess, err := recorder.NewReader(sink).Load(ctx, "s4~x", nil)
	if err != nil {
		t.Fatal(err)
	}
	pre, raw := sess.Events[0].Decision, sess.Events[1].Decision
	if pre.BodyExcerpt != `{"a":"pr` || pre.BodyBytes != 40 {
		t.Errorf("premasked: excerpt %q, %d bytes", pre.BodyExcerpt, pre.BodyBytes)
	}
	if raw.BodyExcerpt != `{"a":"ra` || raw.BodyBytes != 16 {
		t.Errorf("raw: excerpt %q, %d bytes", raw.BodyExcerpt, raw.BodyBytes)
	}
}

// countingSink counts the manifests and chunks put to a sink, and the
// smallest chunk (uncompressed).
type countingSink struct {
	recorder.Sink
	mu                sync.Mutex
	manifests, chunks int
	smallest          int
}

func (c *countingSink) Put(ctx context.Context, name string, data []byte) error {
	c.mu.Lock()
	if strings.HasSuffix(name, ".manifest.json") {
		c.manifests++
	} else if strings.HasSuffix(name, ".jsonl.gz") {
		c.chunks++
		if zr, err := gzip.NewReader(bytes.NewReader(data)); err == nil {
			if b, err := io.ReadAll(zr); err == nil && (c.smallest == 0 || len(b) < c.smallest) {
				c.smallest = len(b)
			}
		}
	}
	c.mu.Unlock()
	return c.Sink.Put(ctx, name, data)
}

func (c *countingSink) counts() (manifests, chunks int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.manifests, c.chunks
}

// TestManifestFollowsChunksOncePerInterval: a busy open segment uploads
// chunk after chunk, but its manifest at most once per FlushInterval;
// Flush writes it at once, listing every chunk, and the session verifies.
func TestManifestFollowsChunksOncePerInterval(t *testing.T) {
	fs, err := recorder.OpenSink(context.Background(), "file://"+filepath.Join(t.TempDir(), "sink"), recorder.SinkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sink := &countingSink{Sink: fs}
	r := newRecorder(t, recorder.Options{Sink: sink, ChunkMinBytes: 4 << 10, ChunkMaxBytes: 4 << 10, FlushInterval: time.Hour, ChunkMaxAge: time.Hour})
	ctx := context.Background()
	// Eight agents' requests at once, as under load, until 8 chunks are up.
	var wg sync.WaitGroup
	var n atomic.Int64
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if _, chunks := sink.counts(); chunks >= 8 {
					return
				}
				i := n.Add(1)
				if i > 20000 {
					t.Errorf("8 chunks not uploaded after %d requests: %+v", i, r.Stats())
					return
				}
				if err := recordRequest(ctx, r, "busy-1", "alice", int(i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if manifests, chunks := sink.counts(); manifests > 1 {
		t.Fatalf("%d manifests for %d chunks within one interval, want at most 1", manifests, chunks)
	}
	// A manifest waiting for its interval does not make the uploader send
	// the few events pending meanwhile as a chunk of their own.
	sink.mu.Lock()
	smallest := sink.smallest
	sink.mu.Unlock()
	if smallest < 2<<10 {
		t.Fatalf("a %d-byte chunk went up before Flush; chunks wait for 4 KiB (ChunkMinBytes)", smallest)
	}
	fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := r.Flush(fctx); err != nil {
		t.Fatal(err)
	}
	manifests, chunks := sink.counts()
	if manifests < 1 {
		t.Fatal("Flush wrote no manifest")
	}
	rd := recorder.NewReader(fs)
	res, err := rd.Verify(ctx, "busy-1", recorder.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() || res.Chunks != chunks || strings.Contains(fmt.Sprint(res.Warnings), "not in the manifest") {
		t.Fatalf("after Flush: verify %+v, want every one of %d chunks in the manifest", res, chunks)
	}
	closeRecorder(t, r)
}
