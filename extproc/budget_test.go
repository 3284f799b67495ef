package extproc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/airlockhq/airlock/extproc"
	"github.com/airlockhq/airlock/test/standin"
)

// rawStream drives one ext_proc stream message by message, as Envoy does,
// so that a test can hold it open anywhere.
type rawStream struct {
	t      testing.TB
	s      extprocv3.ExternalProcessor_ProcessClient
	cancel context.CancelFunc
}

func openRaw(t testing.TB, conn grpc.ClientConnInterface) *rawStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := extprocv3.NewExternalProcessorClient(conn).Process(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return &rawStream{t: t, s: s, cancel: cancel}
}

func (r *rawStream) send(req *extprocv3.ProcessingRequest) {
	r.t.Helper()
	if err := r.s.Send(req); err != nil && !errors.Is(err, io.EOF) {
		r.t.Fatal(err)
	}
}

func (r *rawStream) recv() (*extprocv3.ProcessingResponse, error) { return r.s.Recv() }

func (r *rawStream) mustRecv() *extprocv3.ProcessingResponse {
	r.t.Helper()
	resp, err := r.s.Recv()
	if err != nil {
		r.t.Fatal(err)
	}
	return resp
}

// start sends a GET's request headers and response headers kv and returns
// the reply to the response headers.
func (r *rawStream) start(kv ...string) *extprocv3.ProcessingResponse {
	r.t.Helper()
	r.send(&extprocv3.ProcessingRequest{
		ProtocolConfig: &extprocv3.ProtocolConfiguration{ResponseBodyMode: filterv3.ProcessingMode_STREAMED},
		Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{
			Headers: rawHeaders(":method", "GET", ":path", "/storage/v1/b/acme/o/x")}}})
	r.mustRecv()
	r.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{
		Headers: rawHeaders(append([]string{":status", "200"}, kv...)...)}}})
	return r.mustRecv()
}

// body sends a body chunk and returns the bytes its reply releases.
func (r *rawStream) body(chunk []byte, eos bool) ([]byte, error) {
	r.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{Body: chunk, EndOfStream: eos}}})
	resp, err := r.recv()
	if err != nil {
		return nil, err
	}
	switch m := resp.GetResponseBody().GetResponse().GetBodyMutation().GetMutation().(type) {
	case nil:
		return chunk, nil
	case *extprocv3.BodyMutation_Body:
		return m.Body, nil
	case *extprocv3.BodyMutation_ClearBody:
		return nil, nil
	}
	r.t.Fatalf("unexpected reply %v", resp)
	return nil, nil
}

// finish ends the stream as Envoy does once the response is complete.
func (r *rawStream) finish() {
	r.t.Helper()
	_ = r.s.CloseSend()
	if _, err := r.s.Recv(); !errors.Is(err, io.EOF) {
		r.t.Fatalf("stream end: %v", err)
	}
}

func rawHeaders(kv ...string) *corev3.HeaderMap {
	h := &corev3.HeaderMap{}
	for i := 0; i < len(kv); i += 2 {
		h.Headers = append(h.Headers, &corev3.HeaderValue{Key: kv[i], RawValue: []byte(kv[i+1])})
	}
	return h
}

// budgetServer serves a server whose memory budget is limit bytes.
func budgetServer(t testing.TB, opts extproc.Options) (*extproc.Server, *grpc.ClientConn) {
	t.Helper()
	opts.Logger = discard()
	srv, err := extproc.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	return srv, serve(t, srv.Register, extproc.GRPCServerOptions()...)
}

// drained waits until every stream gave its memory back.
func drained(t testing.TB, srv *extproc.Server) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for srv.Budget().InUse() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes of the memory budget never came back", srv.Budget().InUse())
		}
		// A buffer gRPC dropped without freeing returns through the
		// garbage collector.
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

// perStream is what one JSON stream leases, measured.
func perStream(t testing.TB) int64 {
	t.Helper()
	srv, conn := budgetServer(t, extproc.Options{})
	r := openRaw(t, conn)
	r.start("content-type", "application/json")
	n := srv.Budget().InUse()
	r.finish()
	drained(t, srv)
	if n <= 0 {
		t.Fatal("a masking stream leases nothing")
	}
	return n
}

// With the budget full, the next stream is refused with a 503 in Google's
// error shape naming the cause, before any byte; the streams holding the
// budget complete, masked, and every byte comes back.
func TestBudgetExhaustion(t *testing.T) {
	const n = 4
	srv, conn := budgetServer(t, extproc.Options{MemoryBudgetBytes: n * perStream(t)})
	var streams []*rawStream
	for range n {
		r := openRaw(t, conn)
		if resp := r.start("content-type", "application/json"); resp.GetImmediateResponse() != nil {
			t.Fatalf("stream %d refused within the budget", len(streams))
		}
		streams = append(streams, r)
	}
	extra := openRaw(t, conn)
	resp := extra.start("content-type", "application/json")
	ir := resp.GetImmediateResponse()
	var e struct {
		Error struct {
			Code    int
			Status  string
			Message string
			Details []struct {
				Reason   string
				Metadata map[string]string
			}
		}
	}
	if ir == nil || ir.GetStatus().GetCode() != 503 || json.Unmarshal(ir.GetBody(), &e) != nil {
		t.Fatalf("stream %d over the budget: %v", n+1, resp)
	}
	if e.Error.Code != 503 || e.Error.Status != "UNAVAILABLE" || !strings.Contains(e.Error.Message, "masking.memory_budget_bytes") ||
		len(e.Error.Details) != 1 || e.Error.Details[0].Metadata["cause"] != "masking.memory_budget_bytes" {
		t.Fatalf("refusal: %s", ir.GetBody())
	}
	extra.finish()
	for i, r := range streams {
		a, err := r.body([]byte(`{"key":"AIzaSyB3kQ9vX7mN2pL5`), false)
		if err != nil {
			t.Fatal(err)
		}
		b, err := r.body([]byte(`tR8wY1zC4fH6jK0aQeU","n":1}`), true)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(a) + string(b); got != `{"key":"[MASKED:gcp_api_key]","n":1}` {
			t.Fatalf("stream %d: %s", i, got)
		}
		r.finish()
	}
	drained(t, srv)
}

// Memory comes back however a stream ends: client cancellation with a
// chunk half inflated, a gRPC message half read or masked output unread,
// a masking error, and a connection that dies with masked output queued
// for Envoy.
func TestBudgetReleasedOnEveryExit(t *testing.T) {
	bomb := gzipped(t, bytes.Repeat([]byte("A"), 8<<20))
	msg := grpcFrame(0, secretMessage(t, 0))
	for name, run := range map[string]func(t *testing.T, conn *grpc.ClientConn){
		"cancel mid inflation": func(t *testing.T, conn *grpc.ClientConn) {
			r := openRaw(t, conn)
			r.start("content-type", "text/plain", "content-encoding", "gzip")
			if _, err := r.body(bomb[:len(bomb)/2], false); err != nil {
				t.Fatal(err)
			}
			r.cancel()
		},
		"cancel mid gRPC message": func(t *testing.T, conn *grpc.ClientConn) {
			r := openRaw(t, conn)
			r.start("content-type", "application/grpc")
			if _, err := r.body(msg[:len(msg)/2], false); err != nil {
				t.Fatal(err)
			}
			r.cancel()
		},
		"masking error": func(t *testing.T, conn *grpc.ClientConn) {
			r := openRaw(t, conn)
			r.start("content-type", "application/json")
			if _, err := r.body([]byte(`{"a": }`), true); err == nil {
				t.Fatal("invalid JSON masked")
			}
		},
		"cancel with output unread": func(t *testing.T, conn *grpc.ClientConn) {
			r := openRaw(t, conn)
			r.start("content-type", "text/plain", "content-encoding", "gzip")
			r.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{Body: bomb}}})
			r.cancel()
		},
	} {
		t.Run(name, func(t *testing.T) {
			srv, conn := budgetServer(t, extproc.Options{})
			run(t, conn)
			drained(t, srv)
		})
	}
	t.Run("connection dies with output queued", func(t *testing.T) {
		srv, err := extproc.NewServer(extproc.Options{Logger: discard()})
		if err != nil {
			t.Fatal(err)
		}
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		g := grpc.NewServer(extproc.GRPCServerOptions()...)
		srv.Register(g)
		go func() { _ = g.Serve(lis) }()
		t.Cleanup(g.Stop)
		// Fixed flow-control windows: Envoy reads nothing, so the masked
		// output stays queued in the server's transport.
		conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
		if err != nil {
			t.Fatal(err)
		}
		r := openRaw(t, conn)
		r.start("content-type", "text/plain", "content-encoding", "gzip")
		r.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{Body: bomb}}})
		deadline := time.Now().Add(20 * time.Second)
		for srv.Budget().InUse() < 4<<20 {
			if time.Now().After(deadline) {
				t.Fatalf("the masked output was never queued (%d bytes in use)", srv.Budget().InUse())
			}
			time.Sleep(5 * time.Millisecond)
		}
		_ = conn.Close()
		drained(t, srv)
	})
}

// A body that inflates to more than the budget can spare ends in a reset
// (STREAMED) or a 503 (BUFFERED) naming the key, never in an allocation
// past the budget; one that inflates past masking.max_decompressed_bytes
// ends the same way with a 502.
func TestGzipBombOverBudget(t *testing.T) {
	bomb := gzipped(t, bytes.Repeat([]byte("A"), 48<<20))
	for _, tc := range []struct {
		name           string
		opts           extproc.Options
		status         int
		key            string
		buffered       bool
		maxHeldInBytes int64
	}{
		{"budget streamed", extproc.Options{MemoryBudgetBytes: 8 << 20}, 0, "masking.memory_budget_bytes", false, 8 << 20},
		{"budget buffered", extproc.Options{MemoryBudgetBytes: 8 << 20}, 503, "masking.memory_budget_bytes", true, 8 << 20},
		{"limit streamed", extproc.Options{MaxDecompressedBytes: 1 << 20}, 0, "masking.max_decompressed_bytes", false, 0},
		{"limit buffered", extproc.Options{MaxDecompressedBytes: 1 << 20}, 502, "masking.max_decompressed_bytes", true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, conn := budgetServer(t, tc.opts)
			cfg := config(16 << 10)
			if tc.buffered {
				cfg.ProcessingMode.ResponseBodyMode = filterv3.ProcessingMode_BUFFERED
				cfg.BufferLimit = 4 << 20
			}
			up := &upstream{status: 200, header: map[string]string{"Content-Type": "text/plain", "Content-Encoding": "gzip"}, body: bomb}
			res := standin.NewExtProcFilter(conn, cfg).Do(context.Background(), get(t, "GET"), nil, up)
			if tc.buffered {
				if res.Status != tc.status || !strings.Contains(string(res.Body), tc.key) {
					t.Fatalf("status %d body %s", res.Status, res.Body)
				}
			} else if !res.Reset || !strings.Contains(res.Details, tc.key) {
				t.Fatalf("reset %v details %q", res.Reset, res.Details)
			}
			drained(t, srv)
		})
	}
}
