package extauthz

import (
	"bytes"
	"context"
	"maps"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/airlockhq/airlock/authz"
	"github.com/airlockhq/airlock/handoff"
	"github.com/airlockhq/airlock/masking"
	"github.com/airlockhq/airlock/policies"
	"github.com/airlockhq/airlock/test/grpctest"
)

func peer(addr string, port uint32) *authv3.AttributeContext_Peer {
	return &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
		SocketAddress: &corev3.SocketAddress{Address: addr, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}}}}}
}

// wireSeeds are CheckRequests of the shapes Envoy sends, and of shapes
// decodeCheck leaves to the protobuf runtime.
func wireSeeds() []*authv3.CheckRequest {
	get := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:      peer("10.0.0.7", 51234),
		Destination: &authv3.AttributeContext_Peer{Address: peer("127.0.0.1", 10000).Address, Principal: "spiffe://acme/envoy", Labels: map[string]string{"app": "envoy"}},
		Request: &authv3.AttributeContext_Request{
			Time: timestamppb.New(time.Date(2026, 12, 7, 9, 0, 0, 123456789, time.UTC)),
			Http: &authv3.AttributeContext_HttpRequest{
				Id: "17", Method: "GET", Host: "compute.googleapis.com", Scheme: "https", Protocol: "HTTP/2", Size: -1,
				Path: "/compute/v1/projects/p/zones/z/instances?maxResults=5",
				Headers: map[string]string{":method": "GET", ":path": "/compute/v1/projects/p/zones/z/instances?maxResults=5",
					":authority": "compute.googleapis.com", "authorization": "Bearer x.y.z", "x-request-id": "r-1", "Accept": "é/ü"},
			},
		},
		// Envoy sets both on every request, empty unless configured.
		MetadataContext:      &corev3.Metadata{},
		RouteMetadataContext: &corev3.Metadata{},
	}}
	post := proto.Clone(get).(*authv3.CheckRequest)
	h := post.Attributes.Request.Http
	h.Method, h.RawBody, h.Size = "POST", []byte(`{"name":"web-1"}`), 16
	h.Headers["x-envoy-auth-partial-body"] = "false"
	text := proto.Clone(get).(*authv3.CheckRequest)
	text.Attributes.Request.Http.Body = "plain body"
	pseudo := proto.Clone(get).(*authv3.CheckRequest)
	pseudo.Attributes.Request.Http.Method, pseudo.Attributes.Request.Http.Host, pseudo.Attributes.Request.Http.Path = "", "", ""
	raw := proto.Clone(get).(*authv3.CheckRequest)
	raw.Attributes.Request.Http.Headers = nil
	raw.Attributes.Request.Http.HeaderMap = &corev3.HeaderMap{Headers: []*corev3.HeaderValue{{Key: ":method", RawValue: []byte("GET")}, {Key: "X-Dup", RawValue: []byte("a")}, {Key: "x-dup", RawValue: []byte("b")}}}
	ext := proto.Clone(get).(*authv3.CheckRequest)
	ext.Attributes.ContextExtensions = map[string]string{"route": "google", "tier": "prod"}
	ext.Attributes.TlsSession = &authv3.AttributeContext_TLSSession{Sni: "gateway.acme.com"}
	md, err := structpb.NewStruct(map[string]any{"user": "alice", "n": 2})
	if err != nil {
		panic(err)
	}
	ext.Attributes.MetadataContext = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"envoy.filters.http.jwt_authn": md}}
	pipe := proto.Clone(get).(*authv3.CheckRequest)
	pipe.Attributes.Source = &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_Pipe{Pipe: &corev3.Pipe{Path: "/run/envoy.sock"}}}}
	return []*authv3.CheckRequest{get, post, text, pseudo, ext, raw, pipe, {}, {Attributes: &authv3.AttributeContext{}}}
}

// sameRequest reports whether two decoded requests are the same (an empty
// body however spelled).
func sameRequest(a, b authz.Request) bool {
	return a.ID == b.ID && a.Method == b.Method && a.Host == b.Host && a.Path == b.Path &&
		maps.Equal(a.Headers, b.Headers) && bytes.Equal(a.Body, b.Body) && a.BodyPartial == b.BodyPartial &&
		a.Time.Equal(b.Time) && a.Time.Location() == b.Time.Location() && a.Source == b.Source
}

// checkDecode holds decodeCheck to the protobuf runtime on b: what it
// accepts, the runtime decodes to the same request.
func checkDecode(t *testing.T, b []byte) bool {
	t.Helper()
	f, ok := decodeCheck(b)
	var req authv3.CheckRequest
	err := proto.Unmarshal(b, &req)
	if !ok {
		return false
	}
	if err != nil {
		t.Fatalf("decodeCheck accepted what protobuf refuses (%v): %x", err, b)
	}
	if got, want := f.request(), requestFromCheck(&req); !sameRequest(got, want) {
		t.Fatalf("decodeCheck read\n%+v\nprotobuf reads\n%+v\nfrom %x", got, want, b)
	}
	return true
}

func TestDecodeCheckMatchesProtobuf(t *testing.T) {
	fast := 0
	for i, req := range wireSeeds() {
		b, err := proto.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		if checkDecode(t, b) {
			fast++
		} else if i < 5 {
			t.Errorf("seed %d, a shape Envoy sends, was left to the protobuf runtime", i)
		}
	}
	if fast < 5 {
		t.Fatalf("only %d seeds decoded on the fast path", fast)
	}
}

// Shapes protobuf reads differently from a naive decoder: they go to the
// protobuf runtime, never through decodeCheck.
func TestDecodeCheckLeavesOddShapesToProtobuf(t *testing.T) {
	tag := func(b []byte, num protowire.Number, v []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), v)
	}
	entry := func(k, v string) []byte { return tag(tag(nil, 1, []byte(k)), 2, []byte(v)) }
	httpReq := func(fields ...[]byte) []byte {
		return tag(nil, 1, tag(nil, 4, tag(nil, 2, bytes.Join(fields, nil))))
	}
	cases := map[string][]byte{
		// protobuf merges a repeated message field: two http messages are one
		"repeated http": append(httpReq(tag(nil, 2, []byte("GET"))), httpReq(tag(nil, 4, []byte("/x")))...),
		// the last of a repeated string wins
		"repeated method": httpReq(tag(nil, 2, []byte("DELETE")), tag(nil, 2, []byte("GET"))),
		// protobuf refuses invalid UTF-8 in a string
		"invalid UTF-8 header": httpReq(tag(nil, 3, entry("x-h", "\xff\xfe"))),
		"invalid UTF-8 path":   httpReq(tag(nil, 4, []byte("/a\xc0"))),
		// a map entry whose key repeats
		"repeated map key": httpReq(tag(nil, 3, append(entry("a", "1"), tag(nil, 1, []byte("b"))...))),
		// a known field with another wire type
		"path as varint": httpReq(protowire.AppendVarint(protowire.AppendTag(nil, 4, protowire.VarintType), 7)),
		"unknown field":  httpReq(tag(nil, 40, []byte("x"))),
		// metadata Envoy adds, with a key protobuf refuses
		"invalid metadata": tag(nil, 1, tag(nil, 11, tag(nil, 1, entry("\xff", "")))),
		"truncated":        httpReq(tag(nil, 4, []byte("/x")))[:6],
	}
	for name, b := range cases {
		if _, ok := decodeCheck(b); ok {
			t.Errorf("%s: decodeCheck took it", name)
		}
		checkDecode(t, b)
	}
}

func FuzzDecodeCheck(f *testing.F) {
	for _, req := range wireSeeds() {
		b, err := proto.Marshal(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkDecode(t, b) })
}

// appendAllowed writes what response gives an allowed request, marshalled.
func TestAppendAllowedMatchesResponse(t *testing.T) {
	base := authz.Result{Outcome: authz.Allowed, RequestID: "r-1", SessionID: "s-20261207T090000Z-0123456789ab",
		Decision: policies.Decision{Policy: "p", Rule: "reads", Matches: []policies.Match{{Policy: "p", Rule: "reads"}, {Policy: "q", Rule: "mask"}},
			Masking: []masking.Rule{{Detectors: []string{"gcp_api_key"}, Fields: []string{"items.*.value"}}}}}
	noRules := base
	noRules.Decision = policies.Decision{}
	unicode := base
	unicode.RequestID = "ré-ü-✓"
	bad := base
	bad.RequestID = "r-\xff"
	for name, r := range map[string]*authz.Result{"rules and masking": &base, "no rules": &noRules, "unicode": &unicode} {
		b, ok := appendAllowed(nil, r.Metadata())
		if !ok {
			t.Fatalf("%s: not written", name)
		}
		var got authv3.CheckResponse
		if err := proto.Unmarshal(b, &got); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if want := response(r); !proto.Equal(&got, want) {
			t.Fatalf("%s: appendAllowed gives\n%v\nresponse gives\n%v", name, &got, want)
		}
	}
	if _, ok := appendAllowed(nil, bad.Metadata()); ok {
		t.Fatal("metadata with invalid UTF-8 was written: protobuf would refuse it")
	}
}

// The MCP metadata rides along as one JSON string, as in metadataStruct.
func TestAppendAllowedCarriesMCP(t *testing.T) {
	m := handoff.Metadata{RequestID: "r", Decision: "allowed", MCP: &handoff.MCPMetadata{Host: "compute.googleapis.com", Server: "compute",
		Calls: []handoff.MCPCallMetadata{{ID: "1", Method: "tools/call", Name: "get_instance"}}}}
	b, ok := appendAllowed(nil, m)
	if !ok {
		t.Fatal("not written")
	}
	var got authv3.CheckResponse
	if err := proto.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := &authv3.CheckResponse{DynamicMetadata: metadataStruct(m)}
	if !proto.Equal(got.DynamicMetadata, want.DynamicMetadata) {
		t.Fatalf("metadata %v, want %v", got.DynamicMetadata, want.DynamicMetadata)
	}
	if v := got.DynamicMetadata.Fields[handoff.KeyMCP]; v.GetStringValue() == "" {
		t.Fatalf("no MCP metadata in %v", got.DynamicMetadata)
	}
}

// fixedDecider answers every request with one result, noting the request.
type fixedDecider struct {
	r    *authz.Result
	seen []authz.Request
}

func (d *fixedDecider) Decide(_ context.Context, req authz.Request) *authz.Result {
	d.seen = append(d.seen, req)
	return d.r
}

// Over gRPC, with the server's codec and with gRPC's own, a Check reads
// the same request and answers the same response; a request protobuf
// refuses is a gRPC error either way (Envoy's status_on_error).
func TestCheckOverGRPCWithEitherCodec(t *testing.T) {
	allowed := &authz.Result{Outcome: authz.Allowed, RequestID: "r-1", SessionID: "s-20261207T090000Z-0123456789ab",
		Decision: policies.Decision{Policy: "p", Rule: "reads", Matches: []policies.Match{{Policy: "p", Rule: "reads"}}}}
	denied := &authz.Result{Outcome: authz.PolicyDenied, RequestID: "r-2", Refusal: authz.NewRefusal(authz.PolicyDenied, "no", nil)}
	for _, opts := range [][]grpc.ServerOption{nil, GRPCServerOptions()} {
		for _, res := range []*authz.Result{allowed, denied} {
			d := &fixedDecider{r: res}
			conn := grpctest.Serve(t, func(g *grpc.Server) { New(d).Register(g) }, opts...)
			client := authv3.NewAuthorizationClient(conn)
			for _, req := range wireSeeds()[:7] {
				got, err := client.Check(context.Background(), req)
				if err != nil {
					t.Fatal(err)
				}
				if want := response(res); !proto.Equal(got, want) {
					t.Fatalf("codec %v: got %v, want %v", opts != nil, got, want)
				}
				if seen := d.seen[len(d.seen)-1]; !sameRequest(seen, requestFromCheck(req)) {
					t.Fatalf("codec %v: decided on %+v, want %+v", opts != nil, seen, requestFromCheck(req))
				}
			}
			// A header value that is not UTF-8, as Envoy could pass one on.
			bad := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType),
				protowire.AppendBytes(protowire.AppendTag(nil, 4, protowire.BytesType),
					protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType),
						protowire.AppendBytes(protowire.AppendTag(nil, 3, protowire.BytesType),
							append(protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte("x-h")),
								protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), []byte("\xff"))...)))))
			var out authv3.CheckResponse
			err := conn.Invoke(context.Background(), authv3.Authorization_Check_FullMethodName, rawMessage(bad), &out, grpc.ForceCodecV2(rawCodec{}))
			if grpcstatus.Code(err) != codes.Internal {
				t.Fatalf("codec %v: a request protobuf refuses answered %v, want Internal", opts != nil, err)
			}
		}
	}
}

// rawMessage is a request sent as the bytes it is (with rawCodec).
type rawMessage []byte

// rawCodec sends a rawMessage as is and decodes replies with protobuf.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.(rawMessage))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return proto.Unmarshal(data.Materialize(), v.(proto.Message))
}

// BenchmarkDecodeCheck: a typical Check's request read by decodeCheck and
// by the protobuf runtime (then fieldsOf), in one run.
func BenchmarkDecodeCheck(b *testing.B) {
	_, req := benchEngine(b)
	wire, err := proto.Marshal(req)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("wire", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			f, ok := decodeCheck(wire)
			if !ok {
				b.Fatal("not decoded")
			}
			_ = f.request()
		}
	})
	b.Run("protobuf", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var m authv3.CheckRequest
			if err := proto.Unmarshal(wire, &m); err != nil {
				b.Fatal(err)
			}
			_ = requestFromCheck(&m)
		}
	})
}

// BenchmarkAllowedReply: an allowed reply written by appendAllowed and by
// response then proto.Marshal, in one run.
func BenchmarkAllowedReply(b *testing.B) {
	r := &authz.Result{Outcome: authz.Allowed, RequestID: "0f6a820c-c7c6-4d6c-acf9-55e9f1f32553", SessionID: "s-20261129T000801Z-eac6c73e18a5",
		Decision: policies.Decision{Policy: "gcp-baseline", Rule: "agents-may-read", Matches: []policies.Match{{Policy: "gcp-baseline", Rule: "agents-may-read"}}}}
	b.Run("wire", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := appendAllowed(nil, r.Metadata()); !ok {
				b.Fatal("not written")
			}
		}
	})
	b.Run("protobuf", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := proto.Marshal(response(r)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
