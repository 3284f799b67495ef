package extproc

import (
	"bytes"
	"sync/atomic"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// frames cuts b into pieces of n bytes, as gRPC hands over a message read
// from several HTTP/2 frames; n <= 0 gives one piece.
func frames(b []byte, n int) mem.BufferSlice {
	if n <= 0 || n >= len(b) {
		return mem.BufferSlice{mem.SliceBuffer(bytes.Clone(b))}
	}
	var out mem.BufferSlice
	for len(b) > 0 {
		k := min(n, len(b))
		out = append(out, mem.SliceBuffer(bytes.Clone(b[:k])))
		b = b[k:]
	}
	return out
}

func testMetadata(t testing.TB) *corev3.Metadata {
	t.Helper()
	s, err := structpb.NewStruct(map[string]any{"request_id": "r-1", "masking": []any{map[string]any{"name": "x"}}})
	if err != nil {
		t.Fatal(err)
	}
	return &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"envoy.filters.http.ext_authz": s}}
}

func bodyRequest(body []byte, eos bool) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{
		ResponseBody: &extprocv3.HttpBody{Body: body, EndOfStream: eos}}}
}

// codecCases are encoded ProcessingRequests: those the fast path reads and
// those it hands to the generic decoder.
func codecCases(t testing.TB) map[string][]byte {
	t.Helper()
	big := bytes.Repeat([]byte(`{"k":"v"},`), 7000)
	withMeta := bodyRequest(big, false)
	withMeta.MetadataContext = testMetadata(t)
	withMeta.ProtocolConfig = &extprocv3.ProtocolConfiguration{ResponseBodyMode: filterv3.ProcessingMode_STREAMED}
	withMeta.Attributes = map[string]*structpb.Struct{"envoy.filters.http.ext_proc": {}}
	withMeta.ObservabilityMode = true
	headers := &extprocv3.ProcessingRequest{
		Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{
			Headers: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{{Key: ":status", RawValue: []byte("200")}}}}},
		MetadataContext: testMetadata(t),
	}
	marshal := func(m proto.Message) []byte {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := map[string][]byte{
		"body":          marshal(bodyRequest([]byte("hello"), false)),
		"big body":      marshal(withMeta),
		"empty eos":     marshal(bodyRequest(nil, true)),
		"request body":  marshal(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{Body: []byte("x")}}}),
		"headers":       marshal(headers),
		"trailers":      marshal(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseTrailers{ResponseTrailers: &extprocv3.HttpTrailers{}}}),
		"no oneof":      marshal(&extprocv3.ProcessingRequest{MetadataContext: testMetadata(t)}),
		"empty message": nil,
	}
	// An unknown field inside HttpBody, a repeated body field, a body
	// message twice (merged), another oneof member after the body, an
	// unknown top-level field, and a body with a wrong wire type.
	hb := protowire.AppendTag(nil, 1, protowire.BytesType)
	hb = protowire.AppendBytes(hb, []byte("abc"))
	unknownInner := protowire.AppendTag(bytes.Clone(hb), 9, protowire.VarintType)
	unknownInner = protowire.AppendVarint(unknownInner, 1)
	field5 := func(inner []byte) []byte {
		b := protowire.AppendTag(nil, 5, protowire.BytesType)
		return protowire.AppendBytes(b, inner)
	}
	twice := append(bytes.Clone(hb), hb...)
	cases["unknown in body"] = field5(unknownInner)
	cases["body field twice"] = field5(twice)
	cases["body message twice"] = append(field5(hb), field5(protowire.AppendVarint(protowire.AppendTag(nil, 2, protowire.VarintType), 1))...)
	cases["then headers"] = append(field5(hb), marshal(headers)...)
	top := protowire.AppendTag(field5(hb), 99, protowire.BytesType)
	cases["unknown top"] = protowire.AppendBytes(top, []byte("zz"))
	cases["wrong type"] = protowire.AppendVarint(protowire.AppendTag(nil, 5, protowire.VarintType), 3)
	cases["eos varint 2"] = field5(protowire.AppendVarint(protowire.AppendTag(bytes.Clone(hb), 2, protowire.VarintType), 2))
	return cases
}

// protoCodec decodes into a request exactly what proto.Unmarshal decodes,
// however the message is cut into frames.
func TestCodecUnmarshalMatchesProto(t *testing.T) {
	for name, b := range codecCases(t) {
		want := &extprocv3.ProcessingRequest{}
		if err := proto.Unmarshal(b, want); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, n := range []int{0, 7, 16 << 10} {
			r := newRequest()
			if err := (protoCodec{}).Unmarshal(frames(b, n), r); err != nil {
				t.Fatalf("%s/%d: %v", name, n, err)
			}
			if !proto.Equal(r.ProcessingRequest, want) {
				t.Fatalf("%s/%d: got %v\nwant %v", name, n, r.ProcessingRequest, want)
			}
			r.release()
		}
	}
}

// Once the stream has its metadata, a body chunk's metadata_context is not
// decoded; everything else is.
func TestCodecSkipsMetadata(t *testing.T) {
	b := codecCases(t)["big body"]
	want := &extprocv3.ProcessingRequest{}
	if err := proto.Unmarshal(b, want); err != nil {
		t.Fatal(err)
	}
	want.MetadataContext = nil
	r := newRequest()
	r.skipMetadata = true
	if err := (protoCodec{}).Unmarshal(frames(b, 16<<10), r); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(r.ProcessingRequest, want) {
		t.Fatalf("got %v", r.ProcessingRequest)
	}
	// Headers messages are decoded whole.
	h := codecCases(t)["headers"]
	if err := (protoCodec{}).Unmarshal(frames(h, 0), r); err != nil {
		t.Fatal(err)
	}
	if r.GetMetadataContext() == nil {
		t.Fatal("metadata dropped from a headers message")
	}
}

// Malformed input fails as proto.Unmarshal fails.
func TestCodecUnmarshalErrors(t *testing.T) {
	good := codecCases(t)["body"]
	for name, b := range map[string][]byte{
		"truncated":     good[:len(good)-2],
		"bad tag":       {0x00, 0x01},
		"bad inner":     append(protowire.AppendTag(nil, 5, protowire.BytesType), 2, 0x0a, 0x05),
		"bad metadata":  append(bytes.Clone(good), protowire.AppendBytes(protowire.AppendTag(nil, 8, protowire.BytesType), []byte{0x0a, 0x09})...),
		"overlong size": append(protowire.AppendTag(nil, 5, protowire.BytesType), 0xff, 0x7f),
	} {
		if err := proto.Unmarshal(b, &extprocv3.ProcessingRequest{}); err == nil {
			t.Fatalf("%s: proto accepts the case", name)
		}
		if err := (protoCodec{}).Unmarshal(frames(b, 3), newRequest()); err == nil {
			t.Fatalf("%s: accepted", name)
		}
	}
}

// countingPool counts the buffers given back.
type countingPool struct{ puts atomic.Int32 }

func (p *countingPool) Get(n int) *[]byte { b := make([]byte, n); return &b }
func (p *countingPool) Put(*[]byte)       { p.puts.Add(1) }

// The body of a chunk aliases the receive buffer, which is given back only
// once the request is released.
func TestCodecBodyAliasesBuffer(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789"), 1000)
	b, err := proto.Marshal(bodyRequest(big, true))
	if err != nil {
		t.Fatal(err)
	}
	pool := &countingPool{}
	in := pool.Get(len(b))
	copy(*in, b)
	buf := mem.NewBuffer(in, pool)
	r := newRequest()
	if err := (protoCodec{}).Unmarshal(mem.BufferSlice{buf}, r); err != nil {
		t.Fatal(err)
	}
	buf.Free() // gRPC frees its reference when Unmarshal returns
	body := r.GetResponseBody().GetBody()
	if !bytes.Equal(body, big) || !r.GetResponseBody().GetEndOfStream() {
		t.Fatalf("body %d bytes, eos %v", len(body), r.GetResponseBody().GetEndOfStream())
	}
	if off := bytes.Index(b, big); &body[0] != &(*in)[off] {
		t.Fatal("the body was copied")
	}
	if pool.puts.Load() != 0 {
		t.Fatal("the receive buffer went back to the pool while the body is in use")
	}
	r.release()
	if pool.puts.Load() != 1 {
		t.Fatalf("buffer given back %d times after release", pool.puts.Load())
	}
	if r.GetResponseBody().GetBody() != nil {
		t.Fatal("the released body is still reachable")
	}
}

// Marshal encodes as proto.Marshal does, small and large messages alike.
func TestCodecMarshal(t *testing.T) {
	for _, n := range []int{0, 10, 100 << 10} {
		m := &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{
			Response: &extprocv3.CommonResponse{BodyMutation: &extprocv3.BodyMutation{
				Mutation: &extprocv3.BodyMutation_Body{Body: bytes.Repeat([]byte("x"), n)}}}}}}
		want, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := (protoCodec{}).Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Materialize(), want) {
			t.Fatalf("%d: encoding differs", n)
		}
		got.Free()
	}
	if _, err := (protoCodec{}).Marshal("not a message"); err == nil {
		t.Fatal("marshalled a string")
	}
	if err := (protoCodec{}).Unmarshal(frames([]byte{}, 0), new(int)); err == nil {
		t.Fatal("unmarshalled into an int")
	}
}

// FuzzCodecUnmarshal holds protoCodec to proto.Unmarshal on any input.
func FuzzCodecUnmarshal(f *testing.F) {
	for _, b := range codecCases(f) {
		f.Add(b, 5)
	}
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		want := &extprocv3.ProcessingRequest{}
		werr := proto.Unmarshal(b, want)
		r := newRequest()
		err := (protoCodec{}).Unmarshal(frames(b, n%64), r)
		if (err == nil) != (werr == nil) {
			t.Fatalf("codec error %v, proto error %v", err, werr)
		}
		if err == nil && !proto.Equal(r.ProcessingRequest, want) {
			t.Fatalf("got %v\nwant %v", r.ProcessingRequest, want)
		}
		r.release()
	})
}

// A bodyReply encodes as the ProcessingResponse it stands for, whether its
// output is copied (small) or handed to gRPC buffer by buffer, and under
// gRPC's own codec too; every buffer returns to the lease once freed.
func TestBodyReplyMarshal(t *testing.T) {
	b := NewBudget(64 << 20)
	for _, sizes := range [][]int{{1}, {4000}, {5000}, {70000}, {100, 300000, 5}, {1 << 20, 1 << 20}} {
		l, _ := newLease(b, 0)
		o := &output{l: l}
		var want []byte
		for i, n := range sizes {
			buf, err := o.room(n, 0)
			if err != nil {
				t.Fatal(err)
			}
			chunk := bytes.Repeat([]byte{byte('a' + i)}, n)
			if err := o.commit(buf, append(*buf, chunk...)); err != nil {
				t.Fatal(err)
			}
			want = append(want, chunk...)
		}
		msg := &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{
			Response: &extprocv3.CommonResponse{BodyMutation: &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: want}}}}}}
		wantWire, err := proto.Marshal(msg)
		if err != nil {
			t.Fatal(err)
		}
		r := &bodyReply{out: o}
		generic, err := encoding.GetCodecV2("proto").Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(generic.Materialize(), wantWire) {
			t.Fatalf("%v: gRPC's codec encodes a bodyReply differently", sizes)
		}
		generic.Free()
		data, err := protoCodec{}.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if got := data.Materialize(); !bytes.Equal(got, wantWire) {
			t.Fatalf("%v: %d bytes, want %d", sizes, len(got), len(wantWire))
		}
		l.close()
		data.Free()
		if b.InUse() != 0 {
			t.Fatalf("%v: %d bytes still charged", sizes, b.InUse())
		}
	}
}
