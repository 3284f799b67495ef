package extproc_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/airlockhq/airlock/extproc"
	"github.com/airlockhq/airlock/handoff"
	"github.com/airlockhq/airlock/masking"
	"github.com/airlockhq/airlock/test/grpctest"
	"github.com/airlockhq/airlock/test/standin"
)

const testAPIKey = "AIzaSyB3kQ9vX7mN2pL5tR8wY1zC4fH6jK0aQeU"

// startServer serves an extproc.Server on a loopback listener.
func startServer(t testing.TB, opts extproc.Options) *grpc.ClientConn {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	srv, err := extproc.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, srv.Register, extproc.GRPCServerOptions()...)
}

func serve(t testing.TB, register func(grpc.ServiceRegistrar), opts ...grpc.ServerOption) *grpc.ClientConn {
	t.Helper()
	return grpctest.Serve(t, func(gs *grpc.Server) { register(gs) }, opts...)
}

// config is airlock's shipped filter configuration with a message timeout
// that tolerates a loaded test machine.
func config(chunk int) standin.ExtProcConfig {
	c := standin.ExtProcAirlockConfig()
	c.ChunkSize = chunk
	c.MessageTimeout = 10 * time.Second
	return c
}

type upstream struct {
	status   int
	header   map[string]string
	body     []byte
	mu       sync.Mutex
	accepted string
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.accepted = r.Header.Get("Accept-Encoding")
	u.mu.Unlock()
	for k, v := range u.header {
		w.Header().Set(k, v)
	}
	if _, ok := u.header["Content-Length"]; !ok {
		w.Header().Set("Content-Length", strconv.Itoa(len(u.body)))
	}
	w.WriteHeader(u.status)
	_, _ = w.Write(u.body)
}

func get(t testing.TB, method string) *http.Request {
	t.Helper()
	r := httptest.NewRequest(method, "https://compute.googleapis.com/compute/v1/projects/acme-prod/zones/us-east1-b/instances/web-1", nil)
	r.Header.Set("Authorization", "Bearer agent-token")
	r.Header.Set("Accept-Encoding", "gzip, br")
	return r
}

func metadata(t testing.TB, m handoff.Metadata) *corev3.Metadata {
	t.Helper()
	s, err := structpb.NewStruct(m.ToMap())
	if err != nil {
		t.Fatal(err)
	}
	return &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{handoff.MetadataNamespace: s}}
}

func corpus(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../masking/testdata/corpus/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A STREAMED response is masked whatever the chunk size; content-length
// goes, accept-encoding: identity reaches the upstream.
func TestStreamedMasking(t *testing.T) {
	conn := startServer(t, extproc.Options{})
	body := corpus(t, "instance_get.json")
	want := corpus(t, "instance_get.json.masked")
	for _, chunk := range []int{1, 7, 1000, 64 << 10} {
		up := &upstream{status: 200, header: map[string]string{"Content-Type": "application/json; charset=UTF-8"}, body: body}
		res := standin.NewExtProcFilter(conn, config(chunk)).Do(context.Background(), get(t, "GET"), nil, up)
		if res.Status != 200 || res.Reset || res.LocalReply {
			t.Fatalf("chunk %d: status %d reset=%v details=%q", chunk, res.Status, res.Reset, res.Details)
		}
		if !bytes.Equal(res.Body, want) {
			t.Fatalf("chunk %d: body differs:\n%s", chunk, res.Body)
		}
		if res.Header.Get("Content-Length") != "" {
			t.Fatalf("chunk %d: content-length %q kept", chunk, res.Header.Get("Content-Length"))
		}
		if up.accepted != "identity" {
			t.Fatalf("upstream got accept-encoding %q", up.accepted)
		}
	}
}

// The server works the same under gRPC's default options (its own codec
// and buffer pool) as under GRPCServerOptions.
func TestStreamedMaskingDefaultGRPCOptions(t *testing.T) {
	srv, err := extproc.NewServer(extproc.Options{Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	conn := serve(t, srv.Register)
	body := corpus(t, "instance_get.json")
	want := corpus(t, "instance_get.json.masked")
	for _, chunk := range []int{1, 7, 1000, 64 << 10} {
		up := &upstream{status: 200, header: map[string]string{"Content-Type": "application/json; charset=UTF-8"}, body: body}
		res := standin.NewExtProcFilter(conn, config(chunk)).Do(context.Background(), get(t, "GET"), nil, up)
		if res.Status != 200 || res.Reset || !bytes.Equal(res.Body, want) {
			t.Fatalf("chunk %d: status %d reset=%v body:\n%s", chunk, res.Status, res.Reset, res.Body)
		}
	}
}

// In BUFFERED mode the body is masked in one piece and content-length
// cannot mismatch.
func TestBufferedMasking(t *testing.T) {
	conn := startServer(t, extproc.Options{BodyMode: extproc.BodyModeBuffered})
	cfg := config(0)
	cfg.ProcessingMode.ResponseBodyMode = filterv3.ProcessingMode_BUFFERED
	up := &upstream{status: 200, header: map[string]string{"Content-Type": "text/plain"}, body: corpus(t, "object_env.txt")}
	res := standin.NewExtProcFilter(conn, cfg).Do(context.Background(), get(t, "GET"), nil, up)
	if res.Status != 200 || !bytes.Equal(res.Body, corpus(t, "object_env.txt.masked")) {
		t.Fatalf("status %d details %q body:\n%s", res.Status, res.Details, res.Body)
	}
}

// The masking rules ext_authz forwards add to the default profile.
func TestMetadataSelectsRules(t *testing.T) {
	conn := startServer(t, extproc.Options{})
	body := []byte(`{"name":"s/1","payload":{"data":"aGVsbG8="},"owner":"bob@example.com","sa":"x@p.iam.gserviceaccount.com","key":"` + testAPIKey + `"}`)
	md := metadata(t, handoff.Metadata{RequestID: "r1", Masking: []masking.Rule{{Policy: "p", Name: "gcp-secrets", Fields: []string{"payload.data"}, Detectors: []string{"email"}}}})
	up := &upstream{status: 200, header: map[string]string{"Content-Type": "application/json"}, body: body}
	res := standin.NewExtProcFilter(conn, config(5)).Do(context.Background(), get(t, "GET"), md, up)
	want := `{"name":"s/1","payload":{"data":"[MASKED:gcp-secrets]"},"owner":"[MASKED:email]","sa":"x@p.iam.gserviceaccount.com","key":"[MASKED:gcp_api_key]"}`
	if string(res.Body) != want {
		t.Fatalf("got  %s\nwant %s", res.Body, want)
	}
	// Without forwarded metadata only the default profile applies.
	res = standin.NewExtProcFilter(conn, config(5)).Do(context.Background(), get(t, "GET"), nil, up)
	want = `{"name":"s/1","payload":{"data":"aGVsbG8="},"owner":"bob@example.com","sa":"x@p.iam.gserviceaccount.com","key":"[MASKED:gcp_api_key]"}`
	if string(res.Body) != want {
		t.Fatalf("default profile: got %s", res.Body)
	}
	// An unknown detector in the forwarded rules fails closed before any byte.
	bad := metadata(t, handoff.Metadata{Masking: []masking.Rule{{Name: "x", Detectors: []string{"nope"}}}})
	res = standin.NewExtProcFilter(conn, config(5)).Do(context.Background(), get(t, "GET"), bad, up)
	if res.Status != 502 || !strings.Contains(string(res.Body), `unknown detector`) {
		t.Fatalf("unknown detector: %d %s", res.Status, res.Body)
	}
}

func gzipped(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// A gzip body is inflated, masked and sent without content-encoding.
func TestGzipResponse(t *testing.T) {
	conn := startServer(t, extproc.Options{})
	body := corpus(t, "serial_port_output.json")
	up := &upstream{status: 200, header: map[string]string{"Content-Type": "application/json", "Content-Encoding": "gzip"}, body: gzipped(t, body)}
	for _, chunk := range []int{1, 100, 64 << 10} {
		res := standin.NewExtProcFilter(conn, config(chunk)).Do(context.Background(), get(t, "GET"), nil, up)
		if res.Status != 200 || res.Reset || !bytes.Equal(res.Body, corpus(t, "serial_port_output.json.masked")) {
			t.Fatalf("chunk %d: status %d reset=%v body %.200s", chunk, res.Status, res.Reset, res.Body)
		}
		if res.Header.Get("Content-Encoding") != "" {
			t.Fatal("content-encoding kept on an inflated body")
		}
	}
}

// A gzip bomb ends the stream once the bound is passed.
func TestGzipBomb(t *testing.T) {
	conn := startServer(t, extproc.Options{MaxDecompressedBytes: 1 << 20})
	bomb := gzipped(t, bytes.Repeat([]byte("A"), 64<<20))
	up := &upstream{status: 200, header: map[string]string{"Content-Type": "text/plain", "Content-Encoding": "gzip"}, body: bomb}
	res := standin.NewExtProcFilter(conn, config(16<<10)).Do(context.Background(), get(t, "GET"), nil, up)
	if !res.Reset || len(res.Body) > 2<<20 {
		t.Fatalf("reset=%v body=%d bytes", res.Reset, len(res.Body))
	}
}

// An encoding airlock cannot read is refused before any byte.
func TestUnsupportedEncoding(t *testing.T) {
	conn := startServer(t, extproc.Options{})
	up := &upstream{status: 200, header: map[string]string{"Content-Type": "application/json", "Content-Encoding": "br"}, body: []byte("xx")}
	res := standin.NewExtProcFilter(conn, config(0)).Do(context.Background(), get(t, "GET"), nil, up)
	var e struct {
		Error struct {
			Code    int
			Message string
		}
	}
	if res.Status != 502 || json.Unmarshal(res.Body, &e) != nil || !strings.Contains(e.Error.Message, `"br"`) {
		t.Fatalf("%d %s", res.Status, res.Body)
	}
}

// Invalid JSON fails closed: STREAMED resets, BUFFERED answers 502; the
// secret never reaches the client.
func TestInvalidJSONFailsClosed(t *testing.T) {
	body := []byte(`{"key":"` + testAPIKey + `","broken": }`)
	for _, buffered := range []bool{false, true} {
		opts := extproc.Options{}
		cfg := config(8)
		if buffered {
			opts.BodyMode = extproc.BodyModeBuffered
			cfg.ProcessingMode.ResponseBodyMode = filterv3.ProcessingMode_BUFFERED
		}
		conn := startServer(t, opts)
		up := &upstream{status: 200, header: map[string]string{"Content-Type": "application/json"}, body: body}
		res := standin.NewExtProcFilter(conn, cfg).Do(context.Background(), get(t, "GET"), nil, up)
		if bytes.Contains(res.Body, []byte(testAPIKey)) {
			t.Fatalf("buffered=%v: secret leaked: %s", buffered, res.Body)
		}
		if buffered && (res.Status != 502 || !res.LocalReply) {
			t.Fatalf("buffered: %d %s", res.Status, res.Body)
		}
		if !buffered && !res.Reset {
			t.Fatalf("streamed: no reset, body %s", res.Body)
		}
	}
}

// Responses without a body skip body processing through mode_override.
func TestNoBodySkipsBody(t *testing.T) {
	conn := startServer(t, extproc.Options{})
	for _, tc := range []struct {
		method string
		status int
	}{{"HEAD", 200}, {"GET", 204}, {"GET", 304}} {
		up := &upstream{status: tc.status, header: map[string]string{"Content-Type": "application/json", "Content-Length": "12"}, body: []byte("ignored-body")}
		res := standin.NewExtProcFilter(conn, config(0)).Do(context.Background(), get(t, tc.method), nil, up)
		for _, m := range res.Sent {
			if _, ok := m.Request.(*extprocv3.ProcessingRequest_ResponseBody); ok && tc.method == "HEAD" {
				t.Fatalf("%s %d: a body message was sent", tc.method, tc.status)
			}
		}
		if res.Status != tc.status {
			t.Fatalf("%s %d: got %d", tc.method, tc.status, res.Status)
		}
	}
}

type recorder struct {
	mu      sync.Mutex
	reqHdrs map[string]string
	status  int
	body    []byte
	total   int64
	meta    handoff.Metadata
	// failRequest and failResponse make the recording fail.
	failRequest, failResponse bool
}

func (r *recorder) RecordRequestHeaders(_ context.Context, meta handoff.Metadata, h map[string]string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqHdrs, r.meta = h, meta
	if r.failRequest {
		return errors.New("spool full")
	}
	return nil
}

func (r *recorder) RecordResponse(_ context.Context, _ handoff.Metadata, status int, _ map[string]string, body []byte, total int64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status, r.body, r.total = status, append([]byte(nil), body...), total
	if r.failResponse {
		return errors.New("spool full")
	}
	return nil
}

var _ extproc.Recorder = (*recorder)(nil)

func TestRecorder(t *testing.T) {
	rec := &recorder{}
	conn := startServer(t, extproc.Options{Recorder: rec, RecordBodyBytes: 20})
	up := &upstream{status: 200, header: map[string]string{"Content-Type": "application/json"}, body: []byte(`{"k":"` + testAPIKey + `","n":1}`)}
	md := metadata(t, handoff.Metadata{RequestID: "req-9"})
	res := standin.NewExtProcFilter(conn, config(3)).Do(context.Background(), get(t, "GET"), md, up)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if _, ok := rec.reqHdrs["authorization"]; ok {
		t.Fatal("the recorder saw the authorization header")
	}
	if rec.reqHdrs[":path"] == "" || rec.meta.RequestID != "req-9" {
		t.Fatalf("request headers %v meta %+v", rec.reqHdrs, rec.meta)
	}
	if rec.status != 200 || string(rec.body) != string(res.Body[:20]) || rec.total != int64(len(res.Body)) || bytes.Contains(rec.body, []byte("AIza")) {
		t.Fatalf("recorded %d %q %d; body %q", rec.status, rec.body, rec.total, res.Body)
	}
}

// A recording that cannot be stored fails the exchange closed: the request
// never reaches the upstream, and a response is never completed.
func TestRecorderFailureFailsClosed(t *testing.T) {
	body := []byte(`{"items":[` + strings.Repeat(`{"name":"web-1"},`, 200) + `{"name":"last"}]}`)
	t.Run("request", func(t *testing.T) {
		rec := &recorder{failRequest: true}
		conn := startServer(t, extproc.Options{Recorder: rec})
		up := &upstream{status: 200, header: map[string]string{"Content-Type": "application/json"}, body: body}
		res := standin.NewExtProcFilter(conn, config(64)).Do(context.Background(), get(t, "GET"), nil, up)
		if res.Status != 503 || res.Upstream != nil {
			t.Fatalf("status %d, upstream reached: %v", res.Status, res.Upstream != nil)
		}
	})
	t.Run("response", func(t *testing.T) {
		rec := &recorder{failResponse: true}
		conn := startServer(t, extproc.Options{Recorder: rec})
		up := &upstream{status: 200, header: map[string]string{"Content-Type": "application/json"}, body: body}
		res := standin.NewExtProcFilter(conn, config(64)).Do(context.Background(), get(t, "GET"), nil, up)
		if !res.Reset || bytes.Contains(res.Body, []byte(`"last"`)) {
			t.Fatalf("the response completed although it could not be recorded: status %d reset %v", res.Status, res.Reset)
		}
	})
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// PassContentTypes lets chosen media types through uninspected; every
// other body is scanned whatever its type.
func TestPassContentTypes(t *testing.T) {
	conn := startServer(t, extproc.Options{PassContentTypes: []string{"video/"}})
	body := []byte("frame " + testAPIKey)
	for _, tc := range []struct {
		ct     string
		masked bool
	}{{"video/mp4", false}, {"image/png", true}, {"application/octet-stream", true}} {
		up := &upstream{status: 200, header: map[string]string{"Content-Type": tc.ct}, body: body}
		res := standin.NewExtProcFilter(conn, config(4)).Do(context.Background(), get(t, "GET"), nil, up)
		if got := !bytes.Contains(res.Body, []byte(testAPIKey)); got != tc.masked {
			t.Fatalf("%s: masked=%v body %q", tc.ct, got, res.Body)
		}
	}
}

// Body data on a response announced without one is refused.
func TestBodyOnNoBodyResponse(t *testing.T) {
	conn := startServer(t, extproc.Options{})
	cfg := config(4)
	cfg.AllowModeOverride = false // Envoy keeps sending the body
	up := &upstream{status: 200, header: map[string]string{"Content-Type": "text/plain", "Content-Length": "0"}, body: []byte("key " + testAPIKey)}
	res := standin.NewExtProcFilter(conn, cfg).Do(context.Background(), get(t, "GET"), nil, up)
	if bytes.Contains(res.Body, []byte(testAPIKey)) || !res.Reset {
		t.Fatalf("reset=%v body %q", res.Reset, res.Body)
	}
}

// Streams are independent; SetEngine swaps detectors for new streams.
func TestConcurrentStreamsAndSetEngine(t *testing.T) {
	srv, err := extproc.NewServer(extproc.Options{Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	conn := serve(t, srv.Register)
	var wg sync.WaitGroup
	errs := make(chan string, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			body := []byte(`{"n":` + strconv.Itoa(i) + `,"k":"` + testAPIKey + `","pad":"` + strings.Repeat("x", i*100) + `"}`)
			up := &upstream{status: 200, header: map[string]string{"Content-Type": "application/json"}, body: body}
			res := standin.NewExtProcFilter(conn, config(1+i)).Do(context.Background(), get(t, "GET"), nil, up)
			want := `{"n":` + strconv.Itoa(i) + `,"k":"[MASKED:gcp_api_key]","pad":"` + strings.Repeat("x", i*100) + `"}`
			if string(res.Body) != want {
				errs <- string(res.Body)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatalf("stream mixed up: %s", e)
	}
	eng, err := masking.NewEngine([]masking.DetectorSpec{{Name: "acme_token", Regex: `acme_[0-9a-f]{8}`, Keywords: []string{"acme_"}}})
	if err != nil {
		t.Fatal(err)
	}
	srv.SetEngine(eng)
	md := metadata(t, handoff.Metadata{Masking: []masking.Rule{{Name: "acme", Detectors: []string{"acme_token"}}}})
	up := &upstream{status: 200, header: map[string]string{"Content-Type": "text/plain"}, body: []byte("t=acme_0123abcd")}
	res := standin.NewExtProcFilter(conn, config(3)).Do(context.Background(), get(t, "GET"), md, up)
	if string(res.Body) != "t=[MASKED:acme_token]" {
		t.Fatalf("custom detector after SetEngine: %q (status %d)", res.Body, res.Status)
	}
}
