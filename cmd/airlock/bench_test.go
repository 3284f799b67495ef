package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"sync"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// TestStatusCodecReadsTheCode: the bench's status-only reading of a reply
// gives the code protobuf gives, and refuses a malformed reply.
func TestStatusCodecReadsTheCode(t *testing.T) {
	meta, err := structpb.NewStruct(map[string]any{"request_id": "r", "rules": []any{"p/r"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, resp := range []*authv3.CheckResponse{
		{},
		{Status: &status.Status{}, DynamicMetadata: meta},
		{DynamicMetadata: meta, Status: &status.Status{Code: 7, Message: "denied"}},
		{Status: &status.Status{Code: 16}, HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status: &typev3.HttpStatus{Code: typev3.StatusCode_Unauthorized}, Body: `{"error":{"code":401}}`,
		}}},
	} {
		b, err := proto.Marshal(resp)
		if err != nil {
			t.Fatal(err)
		}
		var got checkStatus
		if err := (statusCodec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &got); err != nil {
			t.Fatalf("%v: %v", resp, err)
		}
		if got.code != resp.GetStatus().GetCode() {
			t.Errorf("%v: code %d, want %d", resp, got.code, resp.GetStatus().GetCode())
		}
		if len(b) > 2 {
			if err := (statusCodec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(b[:len(b)-1])}, &checkStatus{}); err == nil {
				t.Errorf("%v: a truncated reply was read without an error", resp)
			}
		}
	}
}

// recordingAuthz denies every Check and keeps the x-request-id and
// stream ID of each.
type recordingAuthz struct {
	authv3.UnimplementedAuthorizationServer
	mu  sync.Mutex
	ids map[string]bool
}

func (s *recordingAuthz) Check(_ context.Context, r *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	h := r.GetAttributes().GetRequest().GetHttp()
	s.mu.Lock()
	s.ids[h.GetHeaders()["x-request-id"]+" "+h.GetId()] = true
	s.mu.Unlock()
	return &authv3.CheckResponse{Status: &status.Status{Code: 7}}, nil
}

// TestBenchAuthzCountsEachReply runs bench authz against a server that
// denies everything, reading replies both ways: every request is counted
// denied, and each carries its own request ID, as from Envoy.
func TestBenchAuthzCountsEachReply(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &recordingAuthz{ids: map[string]bool{}}
	g := grpc.NewServer()
	authv3.RegisterAuthorizationServer(g, srv)
	go func() { _ = g.Serve(l) }()
	defer g.Stop()
	for _, flags := range [][]string{nil, {"--full-decode"}} {
		srv.mu.Lock()
		clear(srv.ids)
		srv.mu.Unlock()
		var out, errOut bytes.Buffer
		args := append([]string{"authz", "--target", l.Addr().String(), "--streams", "4", "--duration", "200ms", "--rounds", "1", "--token", "t", "--json"}, flags...)
		if code := runBench(context.Background(), args, &out, &errOut); code != 0 {
			t.Fatalf("%v: exit %d\n%s", flags, code, errOut.String())
		}
		var res struct{ Results []loadResult }
		if err := json.Unmarshal(out.Bytes(), &res); err != nil || len(res.Results) != 1 {
			t.Fatalf("%v: %v\n%s", flags, err, out.String())
		}
		r := res.Results[0]
		if r.Requests == 0 || r.Denied != r.Requests || r.Errors != 0 {
			t.Errorf("%v: %d requests, %d denied, %d errors; want all denied", flags, r.Requests, r.Denied, r.Errors)
		}
		srv.mu.Lock()
		distinct := len(srv.ids)
		srv.mu.Unlock()
		// The warm-up Check is sent as built, once.
		if distinct < r.Requests {
			t.Errorf("%v: %d distinct request IDs for %d requests", flags, distinct, r.Requests)
		}
	}
}
