package masking

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func protoMasker(t testing.TB) *TextMasker {
	t.Helper()
	m, err := testEngine(t).TextMasker(DefaultProfile())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func marshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A message the detectors find nothing in is copied byte for byte.
func TestMaskProtobufClean(t *testing.T) {
	m := protoMasker(t)
	msg := marshal(t, &structpb.Struct{Fields: map[string]*structpb.Value{
		"name": structpb.NewStringValue("projects/acme/secrets/db"), "n": structpb.NewNumberValue(3)}})
	out, n, err := m.MaskProtobuf([]byte("hdr"), msg)
	if err != nil || n != 0 || !bytes.Equal(out, append([]byte("hdr"), msg...)) {
		t.Fatalf("%v %d %q", err, n, out)
	}
}

// Secrets in strings and bytes nested at any depth are replaced and the
// message still parses, every other field intact.
func TestMaskProtobufNested(t *testing.T) {
	m := protoMasker(t)
	st := &structpb.Struct{Fields: map[string]*structpb.Value{
		"name":   structpb.NewStringValue("projects/acme/secrets/db"),
		"script": structpb.NewStringValue("export KEY=" + testAPIKey + "\n./run"),
		// A short nested message whose bytes are all printable.
		"list": structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{structpb.NewStringValue(testAPIKey)}}),
	}}
	outer, err := anypb.New(st)
	if err != nil {
		t.Fatal(err)
	}
	out, n, err := m.MaskProtobuf(nil, marshal(t, outer))
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("masked %d spans, want 2", n)
	}
	var a anypb.Any
	var got structpb.Struct
	if err := proto.Unmarshal(out, &a); err != nil {
		t.Fatalf("masked message does not parse: %v", err)
	}
	if err := a.UnmarshalTo(&got); err != nil {
		t.Fatalf("nested message does not parse: %v", err)
	}
	if s := got.Fields["script"].GetStringValue(); s != "export KEY=[MASKED:gcp_api_key]\n./run" {
		t.Errorf("script: %q", s)
	}
	if s := got.Fields["list"].GetListValue().GetValues()[0].GetStringValue(); s != "[MASKED:gcp_api_key]" {
		t.Errorf("list: %q", s)
	}
	if got.Fields["name"].GetStringValue() != "projects/acme/secrets/db" {
		t.Errorf("name: %v", got.Fields["name"])
	}

	// Raw bytes (a secret payload) two messages down.
	inner, err := anypb.New(wrapperspb.Bytes([]byte("\x00\x01" + testPEM + "\xff")))
	if err != nil {
		t.Fatal(err)
	}
	top, err := anypb.New(inner)
	if err != nil {
		t.Fatal(err)
	}
	out, n, err = m.MaskProtobuf(nil, marshal(t, top))
	if err != nil || n != 1 {
		t.Fatalf("%v, %d masked", err, n)
	}
	var a1, a2 anypb.Any
	var bv wrapperspb.BytesValue
	if err := proto.Unmarshal(out, &a1); err != nil {
		t.Fatal(err)
	}
	if err := a1.UnmarshalTo(&a2); err != nil {
		t.Fatal(err)
	}
	if err := a2.UnmarshalTo(&bv); err != nil || string(bv.Value) != "\x00\x01[MASKED:private_key]\xff" {
		t.Fatalf("nested bytes: %v %q", err, bv.Value)
	}
}

// Input that is not a message, and a secret cut across two fields, fail
// closed.
func TestMaskProtobufFailsClosed(t *testing.T) {
	m := protoMasker(t)
	if _, _, err := m.MaskProtobuf(nil, append([]byte{0x07}, testAPIKey...)); !errors.Is(err, ErrNotProtobuf) {
		t.Fatalf("garbage: %v", err)
	}
	// Field 10 (tag 'R') of length 'Q' (81) continues the key's alphabet:
	// the key is whole only across the two fields.
	var msg []byte
	msg = protowire.AppendTag(msg, 1, protowire.BytesType)
	msg = protowire.AppendBytes(msg, []byte("x "+testAPIKey[:30]))
	msg = protowire.AppendTag(msg, 10, protowire.BytesType)
	msg = protowire.AppendBytes(msg, []byte(testAPIKey[32:]+strings.Repeat("z", 81-len(testAPIKey[32:]))))
	if !bytes.Contains(msg, []byte(testAPIKey[:30]+"RQ")) || !m.Found(msg) {
		t.Fatalf("test message does not hold the split key: %q", msg)
	}
	if out, _, err := m.MaskProtobuf([]byte("keep"), msg); !errors.Is(err, ErrUnmaskable) || string(out) != "keep" {
		t.Fatalf("split secret: %v %q", err, out)
	}
}

// Groups are read as nested messages.
func TestMaskProtobufGroup(t *testing.T) {
	m := protoMasker(t)
	var msg []byte
	msg = protowire.AppendTag(msg, 3, protowire.StartGroupType)
	msg = protowire.AppendTag(msg, 1, protowire.BytesType)
	msg = protowire.AppendString(msg, "k="+testAPIKey)
	msg = protowire.AppendTag(msg, 3, protowire.EndGroupType)
	msg = protowire.AppendTag(msg, 2, protowire.VarintType)
	msg = protowire.AppendVarint(msg, 7)
	out, n, err := m.MaskProtobuf(nil, msg)
	var want []byte
	want = protowire.AppendTag(want, 3, protowire.StartGroupType)
	want = protowire.AppendTag(want, 1, protowire.BytesType)
	want = protowire.AppendString(want, "k=[MASKED:gcp_api_key]")
	want = protowire.AppendTag(want, 3, protowire.EndGroupType)
	want = protowire.AppendTag(want, 2, protowire.VarintType)
	want = protowire.AppendVarint(want, 7)
	if err != nil || n != 1 || !bytes.Equal(out, want) {
		t.Fatalf("%v %d %q", err, n, out)
	}
}

// BenchmarkMaskProtobufClean is the cost of a clean 64 KiB message: one
// scan and a copy.
func BenchmarkMaskProtobufClean(b *testing.B) {
	m := protoMasker(b)
	var vals []*structpb.Value
	for i := 0; len(vals) < 2000; i++ {
		vals = append(vals, structpb.NewStringValue("projects/acme-prod/zones/us-east1-b/instances/web-"+strings.Repeat("x", i%7)))
	}
	msg := marshal(b, &structpb.ListValue{Values: vals})
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	dst := make([]byte, 0, len(msg))
	for b.Loop() {
		if _, _, err := m.MaskProtobuf(dst[:0], msg); err != nil {
			b.Fatal(err)
		}
	}
}
