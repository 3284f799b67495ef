package extproc

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/protobuf/proto"
)

// fakeStream is a Process stream without a network: each message goes
// through a codec as gRPC would send it (cut into 16 KiB frames), and each
// reply is decoded from its encoding before Send returns, as gRPC
// serialises it.
type fakeStream struct {
	grpc.ServerStream
	codec encoding.CodecV2
	in    []*extprocv3.ProcessingRequest
	out   []*extprocv3.ProcessingResponse
}

func (f *fakeStream) Context() context.Context { return context.Background() }

func (f *fakeStream) RecvMsg(m any) error {
	if len(f.in) == 0 {
		return io.EOF
	}
	b, err := proto.Marshal(f.in[0])
	if err != nil {
		return err
	}
	f.in = f.in[1:]
	return f.codec.Unmarshal(frames(b, 16<<10), m)
}

func (f *fakeStream) Recv() (*extprocv3.ProcessingRequest, error) {
	m := &extprocv3.ProcessingRequest{}
	return m, f.RecvMsg(m)
}

func (f *fakeStream) Send(m *extprocv3.ProcessingResponse) error { return f.SendMsg(m) }

func (f *fakeStream) SendMsg(m any) error {
	data, err := f.codec.Marshal(m)
	if err != nil {
		return err
	}
	defer data.Free()
	r := &extprocv3.ProcessingResponse{}
	if err := proto.Unmarshal(data.Materialize(), r); err != nil {
		return err
	}
	f.out = append(f.out, r)
	return nil
}

// codecs are the codecs a Server meets: protoCodec (GRPCServerOptions) and
// gRPC's own.
func codecs() map[string]encoding.CodecV2 {
	return map[string]encoding.CodecV2{"protoCodec": protoCodec{}, "grpc": encoding.GetCodecV2("proto")}
}

func headers(kv ...string) *corev3.HeaderMap {
	h := &corev3.HeaderMap{}
	for i := 0; i < len(kv); i += 2 {
		h.Headers = append(h.Headers, &corev3.HeaderValue{Key: kv[i], RawValue: []byte(kv[i+1])})
	}
	return h
}

// process runs a GET whose response carries chunks through a Server and
// returns the replies to the chunks.
func process(t *testing.T, codec encoding.CodecV2, contentType string, chunks ...string) []*extprocv3.ProcessingResponse {
	t.Helper()
	srv, err := NewServer(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeStream{codec: codec, in: []*extprocv3.ProcessingRequest{
		{Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{
			Headers: headers(":method", "GET", ":path", "/v1/x")}}},
		{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{
			Headers: headers(":status", "200", "content-type", contentType)}}},
	}}
	for i, c := range chunks {
		f.in = append(f.in, bodyRequest([]byte(c), i == len(chunks)-1))
	}
	if err := srv.Process(f); err != nil {
		t.Fatal(err)
	}
	if len(f.out) != 2+len(chunks) {
		t.Fatalf("%d replies to %d messages", len(f.out), 2+len(chunks))
	}
	return f.out[2:]
}

// downstream applies the replies to the chunks as Envoy does in STREAMED
// mode and reports which chunks went out unchanged (no body mutation).
func downstream(t *testing.T, chunks []string, replies []*extprocv3.ProcessingResponse) (string, []bool) {
	t.Helper()
	var b strings.Builder
	var same []bool
	for i, r := range replies {
		br, ok := r.Response.(*extprocv3.ProcessingResponse_ResponseBody)
		if !ok {
			t.Fatalf("reply %d is %T", i, r.Response)
		}
		switch m := br.ResponseBody.GetResponse().GetBodyMutation().GetMutation().(type) {
		case nil:
			b.WriteString(chunks[i])
			same = append(same, true)
		case *extprocv3.BodyMutation_Body:
			b.Write(m.Body)
			same = append(same, false)
		case *extprocv3.BodyMutation_ClearBody:
			same = append(same, false)
		default:
			t.Fatalf("reply %d: mutation %T", i, m)
		}
	}
	return b.String(), same
}

// A chunk that masking leaves as it is goes back without a body mutation;
// a secret that starts in the next chunk and ends in the one after is
// still masked.
func TestUnchangedChunk(t *testing.T) {
	chunks := []string{`{"a":"x",`, `"key":"AIzaSyB3kQ9`, `vX7mN2pL5tR8wY1zC4fH6jK0aQeU","b":[1,2]}`}
	want := `{"a":"x","key":"[MASKED:gcp_api_key]","b":[1,2]}`
	for name, codec := range codecs() {
		got, same := downstream(t, chunks, process(t, codec, "application/json", chunks...))
		if got != want {
			t.Fatalf("%s: got %s", name, got)
		}
		if !same[0] || same[1] || same[2] {
			t.Fatalf("%s: unchanged chunks %v, want only the first", name, same)
		}
	}
}

// A chunk whose reply would be the very bytes Envoy holds goes back without
// a mutation even when bytes are held back on both sides of it: the body
// downstream is the same.
func TestUnchangedChunkWithHeldBackBytes(t *testing.T) {
	// Not letters: one long base64-like run is held until it ends.
	c := strings.Repeat(".", 64<<10)
	chunks := []string{c, c, c + " key AIzaSyB3kQ9vX7mN2pL5tR8wY1zC4fH6jK0aQeU"}
	want := c + c + c + " key [MASKED:gcp_api_key]"
	for name, codec := range codecs() {
		got, same := downstream(t, chunks, process(t, codec, "text/plain", chunks...))
		if got != want {
			t.Fatalf("%s: body differs (%d bytes, want %d)", name, len(got), len(want))
		}
		if same[0] || !same[1] || same[2] {
			t.Fatalf("%s: unchanged chunks %v, want only the second", name, same)
		}
	}
}

// With one-byte chunks most JSON chunks go back unchanged, and every secret
// is still masked.
func TestOneByteChunks(t *testing.T) {
	body := `{"items":[{"k":"AIzaSyB3kQ9vX7mN2pL5tR8wY1zC4fH6jK0aQeU","n":12,"password":"hunter22"},{"ok":true}]}`
	want := `{"items":[{"k":"[MASKED:gcp_api_key]","n":12,"password":"[MASKED:password]"},{"ok":true}]}`
	chunks := strings.Split(body, "")
	for name, codec := range codecs() {
		got, same := downstream(t, chunks, process(t, codec, "application/json", chunks...))
		if got != want {
			t.Fatalf("%s: got %s", name, got)
		}
		n := 0
		for _, s := range same {
			if s {
				n++
			}
		}
		if n == 0 || n == len(chunks) {
			t.Fatalf("%s: %d of %d chunks unchanged", name, n, len(chunks))
		}
	}
}

// Replies are built in one buffer reused from chunk to chunk: each carries
// its own chunk's bytes only, and a masked chunk never goes back unchanged.
func TestReplyBufferReuse(t *testing.T) {
	var chunks []string
	var want bytes.Buffer
	for i := 0; i < 6; i++ {
		pad := strings.Repeat("x", 1000*(6-i))
		chunks = append(chunks, `{"k":"AIzaSyB3kQ9vX7mN2pL5tR8wY1zC4fH6jK0aQe`+string(rune('A'+i))+`","p":"`+pad+`"}`+"\n")
		want.WriteString(`{"k":"[MASKED:gcp_api_key]","p":"` + pad + `"}` + "\n")
	}
	for name, codec := range codecs() {
		got, same := downstream(t, chunks, process(t, codec, "application/json", chunks...))
		if got != want.String() {
			t.Fatalf("%s: got %s", name, got)
		}
		for i, s := range same {
			if s {
				t.Fatalf("%s: masked chunk %d sent unchanged", name, i)
			}
		}
	}
}
