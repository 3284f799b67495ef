package extauthz

import (
	"context"
	"fmt"
	"slices"
	"unicode/utf8"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/airlockhq/airlock/authz"
	"github.com/airlockhq/airlock/handoff"
	"github.com/airlockhq/airlock/internal/protomsg"
)

// GRPCServerOptions are the options of the gRPC server that serves Check:
// a codec that reads a CheckRequest from its wire bytes (decodeCheck) and
// writes an allowed CheckResponse without building it. Other services on
// the server (health) are coded as gRPC's own codec does.
func GRPCServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.ForceServerCodecV2(codec{})}
}

// codec is gRPC's protobuf codec, with the fast paths of Check.
type codec struct{}

var _ encoding.CodecV2 = codec{}

// Name is the content subtype of gRPC's own protobuf codec.
func (codec) Name() string { return "proto" }

func (codec) Marshal(v any) (mem.BufferSlice, error) {
	if r, ok := v.(*allowedReply); ok {
		return mem.BufferSlice{mem.SliceBuffer(r.b)}, nil
	}
	m := protomsg.Of(v)
	if m == nil {
		return nil, fmt.Errorf("extauthz: cannot marshal %T: not a proto message", v)
	}
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, err
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}

func (codec) Unmarshal(data mem.BufferSlice, v any) error {
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	b := buf.ReadOnlyData()
	if in, ok := v.(*checkIn); ok {
		in.coded = true
		if f, ok := decodeCheck(b); ok {
			in.fields, in.decoded = f, true
			return nil
		}
		// Not the shape decodeCheck takes: the protobuf runtime decides.
		return proto.Unmarshal(b, in.CheckRequest)
	}
	m := protomsg.Of(v)
	if m == nil {
		return fmt.Errorf("extauthz: cannot unmarshal into %T: not a proto message", v)
	}
	return proto.Unmarshal(b, m)
}

// checkIn is what the Check handler receives into. It embeds the
// CheckRequest, so that any protobuf codec decodes into it as into the
// message itself; with codec it holds the fields decodeCheck read
// instead (decoded), and says that codec will write the reply (coded).
type checkIn struct {
	*authv3.CheckRequest
	fields  checkFields
	decoded bool
	coded   bool
}

// allowedReply is an allowed CheckResponse in its wire form, written by
// codec.
type allowedReply struct{ b []byte }

// serviceDesc is envoy.service.auth.v3.Authorization with a Check handler
// that receives into a checkIn.
var serviceDesc = grpc.ServiceDesc{
	ServiceName: "envoy.service.auth.v3.Authorization",
	HandlerType: (*authv3.AuthorizationServer)(nil),
	Methods:     []grpc.MethodDesc{{MethodName: "Check", Handler: checkHandler}},
	Metadata:    "envoy/service/auth/v3/external_auth.proto",
}

func checkHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := &checkIn{CheckRequest: &authv3.CheckRequest{}}
	if err := dec(in); err != nil {
		return nil, err
	}
	s := srv.(*Server)
	if interceptor == nil {
		return s.check(ctx, in), nil
	}
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: authv3.Authorization_Check_FullMethodName}
	return interceptor(ctx, in, info, func(ctx context.Context, req any) (any, error) {
		return s.check(ctx, req.(*checkIn)), nil
	})
}

// check decides a received Check. An allowed request's reply is written
// straight to its wire form when codec will send it.
func (s *Server) check(ctx context.Context, in *checkIn) any {
	f := in.fields
	if !in.decoded {
		f = fieldsOf(in.CheckRequest)
	}
	r := s.decider.Decide(ctx, f.request())
	if in.coded && r.Outcome == authz.Allowed {
		if b, ok := appendAllowed(nil, r.Metadata()); ok {
			return &allowedReply{b}
		}
	}
	return response(r)
}

// allowedPrefix is an allowed CheckResponse without its dynamic metadata:
// the same for every allowed request.
var allowedPrefix = func() []byte {
	b, err := proto.Marshal(&authv3.CheckResponse{
		Status: &status.Status{Code: int32(codes.OK)},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
			HeadersToRemove:         headersToRemove,
			QueryParametersToRemove: queryToRemove,
		}},
	})
	if err != nil {
		panic(err)
	}
	return b
}()

// appendAllowed appends the allowed CheckResponse carrying m, as
// response(r) would be marshalled: allowedPrefix, then dynamic_metadata
// (field 4), the google.protobuf.Struct of metadataStruct. ok is false
// when a value is not valid UTF-8, which protobuf refuses to send.
func appendAllowed(b []byte, m handoff.Metadata) ([]byte, bool) {
	masking, mcp := m.MaskingJSON(), m.MCPJSON()
	strs := [...]struct{ k, v string }{
		{handoff.KeyRequestID, m.RequestID},
		{handoff.KeySessionID, m.SessionID},
		{handoff.KeySubject, m.Subject},
		{handoff.KeyActor, m.Actor},
		{handoff.KeyGCPMethod, m.GCPMethod},
		{handoff.KeyDecision, m.Decision},
		{handoff.KeyMasking, masking},
		{handoff.KeyMCP, mcp},
	}
	entries := strs[:]
	if m.MCP == nil {
		entries = strs[:len(strs)-1]
	}
	size, list := 0, 0
	for _, e := range entries {
		if !utf8.ValidString(e.v) {
			return nil, false
		}
		size += sizeField(entrySize(e.k, stringValueSize(e.v)))
	}
	for _, r := range m.Rules {
		if !utf8.ValidString(r) {
			return nil, false
		}
		list += sizeField(stringValueSize(r))
	}
	rulesValue := sizeField(list) // Value.list_value
	size += sizeField(entrySize(handoff.KeyRules, rulesValue))

	b = slices.Grow(b, len(allowedPrefix)+sizeField(size))
	b = append(b, allowedPrefix...)
	b = protowire.AppendTag(b, 4, protowire.BytesType) // dynamic_metadata
	b = protowire.AppendVarint(b, uint64(size))
	for _, e := range entries {
		b = appendEntryHead(b, e.k, stringValueSize(e.v))
		b = appendStringValue(b, e.v)
	}
	b = appendEntryHead(b, handoff.KeyRules, rulesValue)
	b = protowire.AppendTag(b, 6, protowire.BytesType) // Value.list_value
	b = protowire.AppendVarint(b, uint64(list))
	for _, r := range m.Rules {
		b = protowire.AppendTag(b, 1, protowire.BytesType) // ListValue.values
		b = protowire.AppendVarint(b, uint64(stringValueSize(r)))
		b = appendStringValue(b, r)
	}
	return b, true
}

// sizeField is the size of a length-delimited field (one-byte tag) whose
// value takes n bytes.
func sizeField(n int) int { return 1 + protowire.SizeBytes(n) }

// stringValueSize is the size of a google.protobuf.Value holding s.
func stringValueSize(s string) int { return sizeField(len(s)) }

// entrySize is the size of a Struct.fields entry: key, and a value of
// valueSize bytes.
func entrySize(key string, valueSize int) int { return sizeField(len(key)) + sizeField(valueSize) }

// appendEntryHead appends a Struct.fields entry up to its value's bytes.
func appendEntryHead(b []byte, key string, valueSize int) []byte {
	b = protowire.AppendTag(b, 1, protowire.BytesType) // Struct.fields
	b = protowire.AppendVarint(b, uint64(entrySize(key, valueSize)))
	b = protowire.AppendTag(b, 1, protowire.BytesType) // key
	b = protowire.AppendString(b, key)
	b = protowire.AppendTag(b, 2, protowire.BytesType) // value
	return protowire.AppendVarint(b, uint64(valueSize))
}

// appendStringValue appends the fields of a Value holding s.
func appendStringValue(b []byte, s string) []byte {
	b = protowire.AppendTag(b, 3, protowire.BytesType) // Value.string_value
	return protowire.AppendString(b, s)
}
