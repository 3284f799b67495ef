package recorder_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/recorder"
)

// recordedSession writes one closed session of n requests in small chunks
// and returns the sink and the chunk object names in order.
func recordedSession(t *testing.T, n int, signer *recorder.Signer) (*recorder.FileSink, []string, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "sink")
	sink, err := recorder.NewFileSink(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Chunks are cut by size and by the explicit Flush only: a timer-driven
	// flush on a loaded machine would cut chunks of one event.
	r := newRecorder(t, recorder.Options{Sink: sink, ChunkMaxBytes: 2048, Signer: signer, FlushInterval: time.Hour})
	for i := 0; i < n; i++ {
		if err := recordRequest(context.Background(), r, "audit~x", "alice", i); err != nil {
			t.Fatal(err)
		}
		if i == n/2 {
			// A manifest now and one at the end: a rollback can be tried.
			if err := r.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	closeRecorder(t, r)
	objs, _, err := sink.List(context.Background(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	var chunks []string
	var manifest string
	for _, o := range objs {
		switch {
		case strings.HasSuffix(o, ".jsonl.gz"):
			chunks = append(chunks, o)
		case strings.HasSuffix(o, ".manifest.json"):
			manifest = o // the newest: names sort by sequence
		}
	}
	if len(chunks) < 3 {
		t.Fatalf("want several chunks, got %v", chunks)
	}
	return sink, chunks, manifest
}

// manifestsOf lists the manifest objects of a sink, oldest first.
func manifestsOf(t *testing.T, sink recorder.Sink) []string {
	t.Helper()
	objs, _, err := sink.List(context.Background(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range objs {
		if strings.HasSuffix(o, ".manifest.json") {
			out = append(out, o)
		}
	}
	return out
}

func readLines(t *testing.T, sink recorder.Sink, name string) [][]byte {
	t.Helper()
	b, err := sink.Get(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Split(bytes.TrimSuffix(raw, []byte("\n")), []byte("\n"))
}

func writeLines(t *testing.T, sink recorder.Sink, name string, lines [][]byte) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(append(bytes.Join(lines, []byte("\n")), '\n'))
	zw.Close()
	replace(t, sink, name, buf.Bytes())
}

// replace overwrites an object as someone with delete rights on the sink
// can: the recorder itself never does.
func replace(t *testing.T, sink recorder.Sink, name string, data []byte) {
	t.Helper()
	if err := sink.Delete(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	if err := sink.Put(context.Background(), name, data); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, sink recorder.Sink, chunks []string, manifest string)
		// want are fragments of the first problem.
		want []string
	}{
		{"intact", func(*testing.T, recorder.Sink, []string, string) {}, nil},
		{"edited event", func(t *testing.T, s recorder.Sink, c []string, _ string) {
			lines := readLines(t, s, c[1])
			lines[1] = edit(t, lines[1])
			writeLines(t, s, c[1], lines)
		}, []string{"event altered", "#"}},
		{"edited last event of a chunk", func(t *testing.T, s recorder.Sink, c []string, _ string) {
			lines := readLines(t, s, c[0])
			n := len(lines) - 1
			lines[n] = edit(t, lines[n])
			writeLines(t, s, c[0], lines)
		}, []string{"event altered"}},
		{"missing event", func(t *testing.T, s recorder.Sink, c []string, _ string) {
			lines := readLines(t, s, c[1])
			writeLines(t, s, c[1], append(lines[:2:2], lines[3:]...))
		}, []string{"event missing"}},
		{"reordered events", func(t *testing.T, s recorder.Sink, c []string, _ string) {
			lines := readLines(t, s, c[1])
			lines[1], lines[2] = lines[2], lines[1]
			writeLines(t, s, c[1], lines)
		}, []string{"out of order"}},
		{"missing chunk", func(t *testing.T, s recorder.Sink, c []string, _ string) {
			if err := s.Delete(context.Background(), c[1]); err != nil {
				t.Fatal(err)
			}
		}, []string{"chunk missing", "-000002.jsonl.gz"}},
		{"corrupted chunk", func(t *testing.T, s recorder.Sink, c []string, _ string) {
			b, _ := s.Get(context.Background(), c[2])
			b[len(b)/2] ^= 0xff
			replace(t, s, c[2], b)
		}, []string{"-000003.jsonl.gz"}},
		{"event appended after close", func(t *testing.T, s recorder.Sink, c []string, _ string) {
			last := c[len(c)-1]
			lines := readLines(t, s, last)
			var e recorder.Event
			json.Unmarshal(lines[0], &e)
			e.Seq, e.Kind = 9999, "decision"
			extra, _ := json.Marshal(&e)
			writeLines(t, s, last, append(lines, extra))
		}, []string{"appended after the segment was closed"}},
		{"chunk appended after close", func(t *testing.T, s recorder.Sink, c []string, _ string) {
			last := c[len(c)-1]
			dir, base := path.Split(last)
			seg := base[:strings.LastIndex(base, "-")]
			writeLines(t, s, dir+recorder.ChunkName(seg, len(c)+1), readLines(t, s, c[0]))
		}, []string{"appended after the segment was closed"}},
		{"every manifest deleted", func(t *testing.T, s recorder.Sink, _ []string, _ string) {
			for _, m := range manifestsOf(t, s) {
				s.Delete(context.Background(), m)
			}
		}, []string{"without a manifest"}},
		{"newest manifest deleted", func(t *testing.T, s recorder.Sink, _ []string, m string) {
			s.Delete(context.Background(), m)
		}, []string{"rolled back", "checkpoint"}},
		{"last chunk and the manifests listing it deleted", func(t *testing.T, s recorder.Sink, c []string, _ string) {
			last := c[len(c)-1]
			ms := manifestsOf(t, s)
			for _, m := range ms[len(ms)-1:] {
				s.Delete(context.Background(), m)
			}
			s.Delete(context.Background(), last)
		}, []string{"rolled back"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink, chunks, manifest := recordedSession(t, 30, nil)
			tt.tamper(t, sink, chunks, manifest)
			res, err := recorder.NewReader(sink).Verify(context.Background(), "audit~x", recorder.VerifyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == nil {
				if !res.OK() || res.Events != 91 {
					t.Fatalf("intact session: problems %v, %d events", res.Problems, res.Events)
				}
				return
			}
			if res.OK() {
				t.Fatal("tampering not detected")
			}
			got := res.Problems[0].String()
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("first problem %q lacks %q", got, w)
				}
			}
		})
	}
}

// edit changes one recorded value of an event line.
func edit(t *testing.T, line []byte) []byte {
	t.Helper()
	for _, pair := range [][2]string{{"acme-prod", "acme-dev"}, {"sre-1", "sre-2"}, {`"DELETE"`, `"GET"`}, {`"shutdown"`, `"idle"`}} {
		if bytes.Contains(line, []byte(pair[0])) {
			return bytes.Replace(line, []byte(pair[0]), []byte(pair[1]), 1)
		}
	}
	t.Fatalf("nothing to edit in %s", line)
	return nil
}

func TestVerifyNamesTheEditedEvent(t *testing.T) {
	sink, chunks, _ := recordedSession(t, 30, nil)
	lines := readLines(t, sink, chunks[1])
	var e recorder.Event
	if err := json.Unmarshal(lines[2], &e); err != nil {
		t.Fatal(err)
	}
	lines[2] = bytes.Replace(lines[2], []byte(`"agent-7"`), []byte(`"agent-8"`), 1)
	if bytes.Equal(lines[2], readLines(t, sink, chunks[1])[2]) {
		lines[2] = bytes.Replace(lines[2], []byte(`"sre-1"`), []byte(`"sre-2"`), 1)
	}
	writeLines(t, sink, chunks[1], lines)
	res, err := recorder.NewReader(sink).Verify(context.Background(), "audit~x", recorder.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK() || res.Problems[0].Seq != e.Seq {
		t.Fatalf("problems %v, want event %d named", res.Problems, e.Seq)
	}
}

func TestSignedManifests(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sink, _, manifest := recordedSession(t, 20, recorder.NewSigner(priv))
	rd := recorder.NewReader(sink)
	ctx := context.Background()
	res, err := rd.Verify(ctx, "audit~x", recorder.VerifyOptions{PublicKey: pub})
	if err != nil || !res.OK() || res.Signed != 1 {
		t.Fatalf("signed session: %v %+v", err, res)
	}
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	if res, _ := rd.Verify(ctx, "audit~x", recorder.VerifyOptions{PublicKey: other}); res.OK() {
		t.Fatal("verified with the wrong key")
	}
	// Rewriting the manifest (e.g. to hide a dropped chunk) breaks the signature.
	b, _ := sink.Get(ctx, manifest)
	var m recorder.Manifest
	json.Unmarshal(b, &m)
	m.Events--
	b, _ = json.Marshal(&m)
	replace(t, sink, manifest, b)
	res, _ = rd.Verify(ctx, "audit~x", recorder.VerifyOptions{PublicKey: pub})
	if res.OK() || !strings.Contains(res.Problems[0].Message, "signature") {
		t.Fatalf("problems %v, want a signature failure", res.Problems)
	}
}
