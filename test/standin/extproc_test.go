package standin

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airlockhq/airlock/test/grpctest"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// extProcFake is a hand-written processor: fn serves each stream.
type extProcFake struct {
	extprocv3.UnimplementedExternalProcessorServer
	fn func(extprocv3.ExternalProcessor_ProcessServer) error
}

func (f *extProcFake) Process(s extprocv3.ExternalProcessor_ProcessServer) error { return f.fn(s) }

// extProcStartFake serves fn on a loopback listener and returns a client
// connection to it.
func extProcStartFake(t *testing.T, fn func(extprocv3.ExternalProcessor_ProcessServer) error) *grpc.ClientConn {
	t.Helper()
	conn := grpctest.Serve(t, func(gs *grpc.Server) {
		extprocv3.RegisterExternalProcessorServer(gs, &extProcFake{fn: fn})
	})
	return conn
}

// extProcReplier answers each message with reply(req); a nil reply ends
// the stream with OK.
func extProcReplier(reply func(*extprocv3.ProcessingRequest) (*extprocv3.ProcessingResponse, error)) func(extprocv3.ExternalProcessor_ProcessServer) error {
	return func(s extprocv3.ExternalProcessor_ProcessServer) error {
		for {
			req, err := s.Recv()
			if err != nil {
				return nil
			}
			resp, err := reply(req)
			if err != nil {
				return err
			}
			if resp == nil {
				return nil
			}
			if err := s.Send(resp); err != nil {
				return err
			}
		}
	}
}

// extProcContinue is the plain reply to any message.
func extProcContinue(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
	switch req.Request.(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{}}}
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{}}}
	case *extprocv3.ProcessingRequest_RequestBody:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{}}}
	case *extprocv3.ProcessingRequest_ResponseBody:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{}}}
	case *extprocv3.ProcessingRequest_RequestTrailers:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestTrailers{RequestTrailers: &extprocv3.TrailersResponse{}}}
	case *extprocv3.ProcessingRequest_ResponseTrailers:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseTrailers{ResponseTrailers: &extprocv3.TrailersResponse{}}}
	}
	return nil
}

func extProcSet(k, v string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, RawValue: []byte(v)}}
}

func extProcUpstream(status int, body string, hdr map[string]string) (http.Handler, *[]*http.Request) {
	var mu sync.Mutex
	var seen []*http.Request
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r)
		mu.Unlock()
		for k, v := range hdr {
			w.Header().Set(k, v)
		}
		if _, ok := hdr["Content-Length"]; !ok && body != "" {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}), &seen
}

func extProcGet(t *testing.T) *http.Request {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "https://compute.googleapis.com/compute/v1/projects/p/zones/z/instances", nil)
	r.Header.Set("X-Client", "yes")
	return r
}

func extProcHeader(h *corev3.HeaderMap, k string) (string, bool) {
	for _, e := range h.GetHeaders() {
		if e.GetKey() == k {
			return string(e.GetRawValue()), true
		}
	}
	return "", false
}

// §6.1: a clean close with OK lets traffic through unmodified.
func TestExtProcCloseStream(t *testing.T) {
	for _, onResponse := range []bool{false, true} {
		conn := extProcStartFake(t, extProcReplier(func(req *extprocv3.ProcessingRequest) (*extprocv3.ProcessingResponse, error) {
			if _, ok := req.Request.(*extprocv3.ProcessingRequest_ResponseHeaders); ok || !onResponse {
				return nil, nil
			}
			return extProcContinue(req), nil
		}))
		up, _ := extProcUpstream(200, "hello", nil)
		res := NewExtProcFilter(conn, extProcTestCfg(ExtProcConfig{})).Do(context.Background(), extProcGet(t), nil, up)
		if res.Status != 200 || string(res.Body) != "hello" || res.LocalReply {
			t.Fatalf("onResponse=%v: got %d %q local=%v", onResponse, res.Status, res.Body, res.LocalReply)
		}
	}
}

// §6.2: a gRPC error gives 500, also after a valid reply.
func TestExtProcFailStream(t *testing.T) {
	for _, onResponse := range []bool{false, true} {
		conn := extProcStartFake(t, extProcReplier(func(req *extprocv3.ProcessingRequest) (*extprocv3.ProcessingResponse, error) {
			if _, ok := req.Request.(*extprocv3.ProcessingRequest_ResponseHeaders); ok || !onResponse {
				return nil, status.Error(codes.Internal, "boom")
			}
			return extProcContinue(req), nil
		}))
		up, seen := extProcUpstream(200, "hello", nil)
		res := NewExtProcFilter(conn, extProcTestCfg(ExtProcConfig{})).Do(context.Background(), extProcGet(t), nil, up)
		if res.Status != 500 || !res.LocalReply || !strings.HasPrefix(res.Details, "ext_proc_error_gRPC_error_13") {
			t.Fatalf("onResponse=%v: got %d local=%v details=%q", onResponse, res.Status, res.LocalReply, res.Details)
		}
		if !onResponse && len(*seen) != 0 {
			t.Fatal("upstream reached after a failed request-headers call")
		}
	}
}

// §6.3 and §2: request headers content, raw_value only, set and remove.
func TestExtProcGetAndSetHeaders(t *testing.T) {
	var reqHdrs, respHdrs *corev3.HeaderMap
	var first *extprocv3.ProcessingRequest
	conn := extProcStartFake(t, extProcReplier(func(req *extprocv3.ProcessingRequest) (*extprocv3.ProcessingResponse, error) {
		switch r := req.Request.(type) {
		case *extprocv3.ProcessingRequest_RequestHeaders:
			first = req
			reqHdrs = r.RequestHeaders.GetHeaders()
			return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{
				Response: &extprocv3.CommonResponse{HeaderMutation: &extprocv3.HeaderMutation{
					SetHeaders: []*corev3.HeaderValueOption{
						extProcSet("x-new", "raw"),
						{Header: &corev3.HeaderValue{Key: "x-value-only", Value: "ignored"}},
					},
					RemoveHeaders: []string{"x-client"},
				}},
			}}}, nil
		case *extprocv3.ProcessingRequest_ResponseHeaders:
			respHdrs = r.ResponseHeaders.GetHeaders()
			if req.ProtocolConfig != nil {
				t.Error("protocol_config sent twice")
			}
		}
		return extProcContinue(req), nil
	}))
	up, seen := extProcUpstream(200, "ok", nil)
	res := NewExtProcFilter(conn, extProcTestCfg(ExtProcConfig{})).Do(context.Background(), extProcGet(t), nil, up)
	if res.Status != 200 {
		t.Fatalf("status %d", res.Status)
	}
	for _, k := range []string{":scheme", ":method", ":authority", ":path", "x-forwarded-proto", "x-client"} {
		if _, ok := extProcHeader(reqHdrs, k); !ok {
			t.Errorf("request_headers lacks %s", k)
		}
	}
	if first.GetProtocolConfig() == nil {
		t.Error("first message lacks protocol_config")
	}
	if v, _ := extProcHeader(respHdrs, ":status"); v != "200" {
		t.Errorf("response :status = %q", v)
	}
	u := (*seen)[0]
	if u.Header.Get("X-New") != "raw" || u.Header.Get("X-Client") != "" {
		t.Errorf("upstream headers %v", u.Header)
	}
	if vs, ok := u.Header["X-Value-Only"]; !ok || vs[0] != "" {
		t.Errorf("a header set with value only must be written empty, got %v", vs)
	}
}

func extProcReqHeadersReply(m *extprocv3.HeaderMutation) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{
		Response: &extprocv3.CommonResponse{HeaderMutation: m}}}}
}

func extProcRespHeadersReply(m *extprocv3.HeaderMutation) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{
		Response: &extprocv3.CommonResponse{HeaderMutation: m}}}}
}

// §6.4: :path is mutable; :scheme, :authority and :method are not.
func TestExtProcSetPathHeader(t *testing.T) {
	conn := extProcStartFake(t, extProcReplier(func(req *extprocv3.ProcessingRequest) (*extprocv3.ProcessingResponse, error) {
		if _, ok := req.Request.(*extprocv3.ProcessingRequest_RequestHeaders); ok {
			return extProcReqHeadersReply(&extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{
				extProcSet(":path", "/changed?x=1"), extProcSet(":scheme", "http"), extProcSet(":authority", "evil.example"), extProcSet(":method", "DELETE"),
			}}), nil
		}
		return extProcContinue(req), nil
	}))
	up, seen := extProcUpstream(200, "ok", nil)
	res := NewExtProcFilter(conn, extProcTestCfg(ExtProcConfig{})).Do(context.Background(), extProcGet(t), nil, up)
	u := (*seen)[0]
	if res.Status != 200 || u.URL.Path != "/changed" || u.Method != "GET" || u.Host != "compute.googleapis.com" {
		t.Fatalf("got %d path=%s method=%s host=%s", res.Status, u.URL.Path, u.Method, u.Host)
	}
}

// §6.6: :status 201 applies; :status 100 is ignored while other headers apply.
func TestExtProcResponseStatus(t *testing.T) {
	for _, tc := range []struct {
		set  string
		want int
	}{{"201", 201}, {"100", 200}} {
		conn := extProcStartFake(t, extProcReplier(func(req *extprocv3.ProcessingRequest) (*extprocv3.ProcessingResponse, error) {
			if _, ok := req.Request.(*extprocv3.ProcessingRequest_ResponseHeaders); ok {
				return extProcRespHeadersReply(&extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{
					extProcSet(":status", tc.set), extProcSet("x-other", "1"),
				}}), nil
			}
			return extProcContinue(req), nil
		}))
		up, _ := extProcUpstream(200, "ok", nil)
		res := NewExtProcFilter(conn, extProcTestCfg(ExtProcConfig{})).Do(context.Background(), extProcGet(t), nil, up)
		if res.Status != tc.want || res.Header.Get("X-Other") != "1" {
			t.Fatalf(":status %s: got %d %v", tc.set, res.Status, res.Header)
		}
	}
}

// §6.7 and §6.8: immediate responses; bad status becomes 200; system and
// envoy headers are dropped, even with disallow_is_error.
func TestExtProcImmediateResponse(t *testing.T) {
	for _, tc := range []struct {
		code typev3.StatusCode
		want int
	}{{401, 401}, {100, 200}} {
		conn := extProcStartFake(t, extProcReplier(func(req *extprocv3.ProcessingRequest) (*extprocv3.ProcessingResponse, error) {
			return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{ImmediateResponse: &extprocv3.ImmediateResponse{
				Status: &typev3.HttpStatus{Code: tc.code},
				Headers: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{
					extProcSet("x-failure-reason", "testing"), extProcSet(":foo", "bar"), extProcSet("x-envoy-foo", "bar"),
				}},
				Body: []byte("{\"reason\": \"Not authorized\"}"),
			}}}, nil
		}))
		up, seen := extProcUpstream(200, "ok", nil)
		res := NewExtProcFilter(conn, extProcTestCfg(ExtProcConfig{DisallowIsError: true})).Do(context.Background(), extProcGet(t), nil, up)
		if res.Status != tc.want || string(res.Body) != "{\"reason\": \"Not authorized\"}" || res.Header.Get("X-Failure-Reason") != "testing" ||
			res.Header.Get("X-Envoy-Foo") != "" || len(*seen) != 0 {
			t.Fatalf("code %d: got %d %q %v upstream=%d", tc.code, res.Status, res.Body, res.Header, len(*seen))
		}
	}
}

// §6.9: with disallow_is_error a :scheme mutation in a buffered body reply gives 500.
func TestExtProcBadMutationOnBody(t *testing.T) {
	conn := extProcStartFake(t, extProcReplier(func(req *extprocv3.ProcessingRequest) (*extprocv3.ProcessingResponse, error) {
		if _, ok := req.Request.(*extprocv3.ProcessingRequest_ResponseBody); ok {
			return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{
				Response: &extprocv3.CommonResponse{HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{extProcSet(":scheme", "https")}}}}}}, nil
		}
		return extProcContinue(req), nil
	}))
	up, _ := extProcUpstream(200, "body", nil)
	cfg := ExtProcConfig{DisallowIsError: true, ProcessingMode: &filterv3.ProcessingMode{ResponseBodyMode: filterv3.ProcessingMode_BUFFERED}}
	res := NewExtProcFilter(conn, extProcTestCfg(cfg)).Do(context.Background(), extProcGet(t), nil, up)
	if res.Status != 500 || !res.LocalReply {
		t.Fatalf("got %d local=%v", res.Status, res.LocalReply)
	}
}

// §6.11: a late reply gives 504; with failure_mode_allow 200 and no more messages.
func TestExtProcMessageTimeout(t *testing.T) {
	for _, allow := range []bool{false, true} {
		var mu sync.Mutex
		count := 0
		conn := extProcStartFake(t, extProcReplier(func(req *extprocv3.ProcessingRequest) (*extprocv3.ProcessingResponse, error) {
			mu.Lock()
			count++
			mu.Unlock()
			time.Sleep(400 * time.Millisecond) // the processor is slow on purpose
			return extProcContinue(req), nil
		}))
		up, _ := extProcUpstream(200, "ok", nil)
		res := NewExtProcFilter(conn, ExtProcConfig{FailureModeAllow: allow}).Do(context.Background(), extProcGet(t), nil, up)
		want := 504
		if allow {
			want = 200
		}
		if res.Status != want || len(res.Sent) != 1 {
			t.Fatalf("allow=%v: got %d after %d messages", allow, res.Status, len(res.Sent))
		}
		if !allow && res.Details != "ext_proc_error_per-message_timeout_exceeded" {
			t.Fatalf("details %q", res.Details)
		}
	}
}

// §6.13: no body versus an empty body.
func TestExtProcEmptyBody(t *testing.T) {
	for _, dataFrame := range []bool{false, true} {
		conn := extProcStartFake(t, extProcReplier(func(req *extprocv3.ProcessingRequest) (*extprocv3.ProcessingResponse, error) {
			return extProcContinue(req), nil
		}))
		up, _ := extProcUpstream(200, "", nil)
		cfg := ExtProcConfig{EmptyBodyAsDataFrame: dataFrame, ProcessingMode: &filterv3.ProcessingMode{ResponseBodyMode: filterv3.ProcessingMode_BUFFERED}}
		res := NewExtProcFilter(conn, extProcTestCfg(cfg)).Do(context.Background(), extProcGet(t), nil, up)
		var rh *extprocv3.HttpHeaders
		var bodies []*extprocv3.HttpBody
		for _, m := range res.Sent {
			switch r := m.Request.(type) {
			case *extprocv3.ProcessingRequest_ResponseHeaders:
				rh = r.ResponseHeaders
			case *extprocv3.ProcessingRequest_ResponseBody:
				bodies = append(bodies, r.ResponseBody)
			}
		}
		if dataFrame {
			if rh.GetEndOfStream() || len(bodies) != 1 || len(bodies[0].GetBody()) != 0 || !bodies[0].GetEndOfStream() {
				t.Fatalf("empty DATA frame: headers eos=%v bodies=%v", rh.GetEndOfStream(), bodies)
			}
		} else if !rh.GetEndOfStream() || len(bodies) != 0 {
			t.Fatalf("no body: headers eos=%v bodies=%d", rh.GetEndOfStream(), len(bodies))
		}
	}
}

func extProcBodyReply(body []byte) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{
		Response: &extprocv3.CommonResponse{BodyMutation: &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: body}}}}}}
}

// §2 and §6.14: content-length handling per body mode.
func TestExtProcContentLength(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mode    filterv3.ProcessingMode_BodySendMode
		replace string
		status  int
		cl      string
	}{
		{"streamed removes", filterv3.ProcessingMode_STREAMED, "changed!", 200, ""},
		{"buffered same size keeps", filterv3.ProcessingMode_BUFFERED, "Hello, World!", 200, "13"},
		{"buffered mismatch", filterv3.ProcessingMode_BUFFERED, "short", 500, ""},
	} {
		conn := extProcStartFake(t, extProcReplier(func(req *extprocv3.ProcessingRequest) (*extprocv3.ProcessingResponse, error) {
			if _, ok := req.Request.(*extprocv3.ProcessingRequest_ResponseBody); ok {
				return extProcBodyReply([]byte(tc.replace)), nil
			}
			return extProcContinue(req), nil
		}))
		up, _ := extProcUpstream(200, "Hello, World!", nil)
		cfg := ExtProcConfig{ProcessingMode: &filterv3.ProcessingMode{ResponseBodyMode: tc.mode}}
		res := NewExtProcFilter(conn, extProcTestCfg(cfg)).Do(context.Background(), extProcGet(t), nil, up)
		if res.Status != tc.status {
			t.Fatalf("%s: status %d", tc.name, res.Status)
		}
		if tc.status == 200 && (res.Header.Get("Content-Length") != tc.cl || string(res.Body) != tc.replace) {
			t.Fatalf("%s: content-length %q body %q", tc.name, res.Header.Get("Content-Length"), res.Body)
		}
	}
}

// §1 STREAMED: chunks of the configured size, FIFO replies, end_of_stream on the last.
func TestExtProcStreamedChunks(t *testing.T) {
	conn := extProcStartFake(t, extProcReplier(func(req *extprocv3.ProcessingRequest) (*extprocv3.ProcessingResponse, error) {
		if b, ok := req.Request.(*extprocv3.ProcessingRequest_ResponseBody); ok {
			return extProcBodyReply(bytes.ToUpper(b.ResponseBody.GetBody())), nil
		}
		return extProcContinue(req), nil
	}))
	up, _ := extProcUpstream(200, "abcdefg", nil)
	cfg := ExtProcConfig{ChunkSize: 3, ProcessingMode: &filterv3.ProcessingMode{ResponseBodyMode: filterv3.ProcessingMode_STREAMED}}
	res := NewExtProcFilter(conn, extProcTestCfg(cfg)).Do(context.Background(), extProcGet(t), nil, up)
	var got []string
	for _, m := range res.Sent {
		if b, ok := m.Request.(*extprocv3.ProcessingRequest_ResponseBody); ok {
			got = append(got, string(b.ResponseBody.GetBody())+"/"+strconv.FormatBool(b.ResponseBody.GetEndOfStream()))
		}
	}
	if strings.Join(got, ",") != "abc/false,def/false,g/true" || string(res.Body) != "ABCDEFG" {
		t.Fatalf("chunks %v body %q", got, res.Body)
	}
}

// A reply of the wrong type is a spurious message: 500.
func TestExtProcSpuriousMessage(t *testing.T) {
	conn := extProcStartFake(t, extProcReplier(func(req *extprocv3.ProcessingRequest) (*extprocv3.ProcessingResponse, error) {
		if _, ok := req.Request.(*extprocv3.ProcessingRequest_ResponseHeaders); ok {
			return extProcBodyReply([]byte("x")), nil
		}
		return extProcContinue(req), nil
	}))
	up, _ := extProcUpstream(200, "ok", nil)
	res := NewExtProcFilter(conn, extProcTestCfg(ExtProcConfig{})).Do(context.Background(), extProcGet(t), nil, up)
	if res.Status != 500 || !res.LocalReply {
		t.Fatalf("got %d", res.Status)
	}
}

// An error while a STREAMED body is under way resets the stream.
func TestExtProcStreamedErrorResets(t *testing.T) {
	conn := extProcStartFake(t, extProcReplier(func(req *extprocv3.ProcessingRequest) (*extprocv3.ProcessingResponse, error) {
		if b, ok := req.Request.(*extprocv3.ProcessingRequest_ResponseBody); ok {
			if b.ResponseBody.GetEndOfStream() {
				return nil, status.Error(codes.Internal, "masking failed")
			}
			return extProcBodyReply(b.ResponseBody.GetBody()), nil
		}
		return extProcContinue(req), nil
	}))
	up, _ := extProcUpstream(200, "0123456789", nil)
	cfg := ExtProcConfig{ChunkSize: 4, ProcessingMode: &filterv3.ProcessingMode{ResponseBodyMode: filterv3.ProcessingMode_STREAMED}}
	res := NewExtProcFilter(conn, extProcTestCfg(cfg)).Do(context.Background(), extProcGet(t), nil, up)
	if !res.Reset || res.Status != 200 || string(res.Body) != "01234567" {
		t.Fatalf("reset=%v status=%d body=%q", res.Reset, res.Status, res.Body)
	}
}

// §6.15: trailers; the last body chunk has end_of_stream false and the
// trailer mutation applies.
func TestExtProcTrailers(t *testing.T) {
	conn := extProcStartFake(t, extProcReplier(func(req *extprocv3.ProcessingRequest) (*extprocv3.ProcessingResponse, error) {
		if _, ok := req.Request.(*extprocv3.ProcessingRequest_ResponseTrailers); ok {
			return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseTrailers{ResponseTrailers: &extprocv3.TrailersResponse{
				HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{extProcSet("x-modified-trailers", "xxx")}}}}}, nil
		}
		return extProcContinue(req), nil
	}))
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Test-Trailers")
		_, _ = io.WriteString(w, "body")
		w.Header().Set("X-Test-Trailers", "yes")
	})
	cfg := ExtProcConfig{ProcessingMode: &filterv3.ProcessingMode{ResponseBodyMode: filterv3.ProcessingMode_BUFFERED, ResponseTrailerMode: filterv3.ProcessingMode_SEND}}
	res := NewExtProcFilter(conn, extProcTestCfg(cfg)).Do(context.Background(), extProcGet(t), nil, up)
	var bodyEOS = true
	for _, m := range res.Sent {
		if b, ok := m.Request.(*extprocv3.ProcessingRequest_ResponseBody); ok {
			bodyEOS = b.ResponseBody.GetEndOfStream()
		}
	}
	if bodyEOS || res.Trailer.Get("X-Modified-Trailers") != "xxx" || res.Trailer.Get("X-Test-Trailers") != "yes" {
		t.Fatalf("body eos=%v trailers=%v", bodyEOS, res.Trailer)
	}
}

// §1 and §6.16: mode_override is honoured only when allowed and listed.
func TestExtProcModeOverride(t *testing.T) {
	skip := &filterv3.ProcessingMode{ResponseBodyMode: filterv3.ProcessingMode_NONE}
	for _, tc := range []struct {
		name     string
		allow    bool
		allowed  []*filterv3.ProcessingMode
		wantBody bool
	}{
		{"disallowed", false, nil, true},
		{"allowed", true, nil, false},
		{"allowed but not listed", true, []*filterv3.ProcessingMode{{ResponseBodyMode: filterv3.ProcessingMode_BUFFERED}}, true},
		{"allowed and listed", true, []*filterv3.ProcessingMode{{ResponseBodyMode: filterv3.ProcessingMode_NONE}}, false},
	} {
		conn := extProcStartFake(t, extProcReplier(func(req *extprocv3.ProcessingRequest) (*extprocv3.ProcessingResponse, error) {
			resp := extProcContinue(req)
			if _, ok := req.Request.(*extprocv3.ProcessingRequest_ResponseHeaders); ok {
				resp.ModeOverride = skip
			}
			return resp, nil
		}))
		up, _ := extProcUpstream(200, "body", nil)
		cfg := ExtProcConfig{AllowModeOverride: tc.allow, AllowedOverrideModes: tc.allowed,
			ProcessingMode: &filterv3.ProcessingMode{ResponseBodyMode: filterv3.ProcessingMode_STREAMED}}
		res := NewExtProcFilter(conn, extProcTestCfg(cfg)).Do(context.Background(), extProcGet(t), nil, up)
		sawBody := false
		for _, m := range res.Sent {
			if _, ok := m.Request.(*extprocv3.ProcessingRequest_ResponseBody); ok {
				sawBody = true
			}
		}
		if sawBody != tc.wantBody || string(res.Body) != "body" {
			t.Fatalf("%s: body message sent=%v, body %q (%+v)", tc.name, sawBody, res.Body, res)
		}
	}
}

// Only the forwarding namespaces reach the processor.
func TestExtProcMetadataForwarding(t *testing.T) {
	var got *corev3.Metadata
	conn := extProcStartFake(t, extProcReplier(func(req *extprocv3.ProcessingRequest) (*extprocv3.ProcessingResponse, error) {
		if _, ok := req.Request.(*extprocv3.ProcessingRequest_RequestHeaders); ok {
			got = req.GetMetadataContext()
		}
		return extProcContinue(req), nil
	}))
	s, _ := structpb.NewStruct(map[string]any{"request_id": "r1"})
	md := &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{AuthzNamespace: s, "other": s}}
	up, _ := extProcUpstream(200, "ok", nil)
	NewExtProcFilter(conn, extProcTestCfg(ExtProcConfig{ForwardingNamespaces: []string{AuthzNamespace}})).Do(context.Background(), extProcGet(t), md, up)
	if got == nil || len(got.GetFilterMetadata()) != 1 || got.GetFilterMetadata()[AuthzNamespace] == nil {
		t.Fatalf("metadata_context %v", got)
	}
	got = nil
	NewExtProcFilter(conn, extProcTestCfg(ExtProcConfig{})).Do(context.Background(), extProcGet(t), md, up)
	if got != nil {
		t.Fatalf("no namespace configured, yet metadata was sent: %v", got)
	}
}

// CONTINUE_AND_REPLACE on request headers replaces the body; no body message.
func TestExtProcContinueAndReplace(t *testing.T) {
	conn := extProcStartFake(t, extProcReplier(func(req *extprocv3.ProcessingRequest) (*extprocv3.ProcessingResponse, error) {
		if _, ok := req.Request.(*extprocv3.ProcessingRequest_RequestHeaders); ok {
			return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{
				Response: &extprocv3.CommonResponse{Status: extprocv3.CommonResponse_CONTINUE_AND_REPLACE,
					BodyMutation: &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: []byte("replaced")}}}}}}, nil
		}
		return extProcContinue(req), nil
	}))
	up, _ := extProcUpstream(200, "ok", nil)
	cfg := ExtProcConfig{ProcessingMode: &filterv3.ProcessingMode{RequestBodyMode: filterv3.ProcessingMode_BUFFERED}}
	res := NewExtProcFilter(conn, extProcTestCfg(cfg)).Do(context.Background(), extProcGet(t), nil, up)
	for _, m := range res.Sent {
		if _, ok := m.Request.(*extprocv3.ProcessingRequest_RequestBody); ok {
			t.Fatal("a request body message was sent after CONTINUE_AND_REPLACE")
		}
	}
	if string(res.UpstreamBody) != "replaced" {
		t.Fatalf("upstream body %q", res.UpstreamBody)
	}
}

var _ = wrapperspb.Bool

// extProcTestCfg gives a generous message timeout to tests that are not
// about timeouts: the test machine may be loaded.
func extProcTestCfg(c ExtProcConfig) ExtProcConfig {
	if c.MessageTimeout == 0 {
		c.MessageTimeout = 5 * time.Second
	}
	return c
}

// Filter writes the result to a real connection; a reset aborts it.
func TestExtProcFilterOverHTTP(t *testing.T) {
	var fail atomic.Bool
	conn := extProcStartFake(t, extProcReplier(func(req *extprocv3.ProcessingRequest) (*extprocv3.ProcessingResponse, error) {
		if b, ok := req.Request.(*extprocv3.ProcessingRequest_ResponseBody); ok && fail.Load() && b.ResponseBody.GetEndOfStream() {
			return nil, status.Error(codes.Internal, "masking failed")
		}
		return extProcContinue(req), nil
	}))
	up, _ := extProcUpstream(200, "0123456789", map[string]string{"Content-Type": "text/plain"})
	f := NewExtProcFilter(conn, extProcTestCfg(ExtProcConfig{ChunkSize: 4, ProcessingMode: &filterv3.ProcessingMode{ResponseBodyMode: filterv3.ProcessingMode_STREAMED}}))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f.Filter(w, r, nil, up) }))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil || string(b) != "0123456789" || resp.StatusCode != 200 {
		t.Fatalf("got %d %q %v", resp.StatusCode, b, err)
	}
	fail.Store(true)
	resp, err = http.Get(srv.URL + "/x")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		_ = resp.Body.Close()
	}
	if err == nil {
		t.Fatal("a reset stream reached the client as a complete response")
	}
}
