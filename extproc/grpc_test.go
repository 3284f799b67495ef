package extproc_test

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/airlockhq/airlock/extproc"
	"github.com/airlockhq/airlock/test/standin"
)

// grpcFrame is one length-prefixed gRPC message.
func grpcFrame(flag byte, msg []byte) []byte {
	out := []byte{flag, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(out[1:], uint32(len(msg)))
	return append(out, msg...)
}

// grpcFrames splits a body into its messages; false when it is not whole
// frames.
func grpcFrames(b []byte) (flags []byte, msgs [][]byte, ok bool) {
	for len(b) > 0 {
		if len(b) < 5 {
			return nil, nil, false
		}
		n := int(binary.BigEndian.Uint32(b[1:5]))
		if len(b) < 5+n {
			return nil, nil, false
		}
		flags = append(flags, b[0])
		msgs = append(msgs, b[5:5+n])
		b = b[5+n:]
	}
	return flags, msgs, true
}

func zlibbed(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw := zlib.NewWriter(&buf)
	_, _ = zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// secretMessage is a protocol buffer message holding an API key, as a
// Secret Manager or Cloud Run answer might.
func secretMessage(t testing.TB, i int) []byte {
	t.Helper()
	b, err := proto.Marshal(&structpb.Struct{Fields: map[string]*structpb.Value{
		"name":   structpb.NewStringValue("projects/acme/secrets/db/versions/" + strings.Repeat("9", i)),
		"script": structpb.NewStringValue("export KEY=" + testAPIKey + "\n./run"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// grpcUpstream answers a gRPC call with body and the trailers.
type grpcUpstream struct {
	header   http.Header
	body     []byte
	trailers http.Header
}

func (u grpcUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for k, v := range u.header {
		w.Header()[k] = v
	}
	var names []string
	for k := range u.trailers {
		names = append(names, k)
	}
	w.Header().Set("Trailer", strings.Join(names, ","))
	w.WriteHeader(200)
	_, _ = w.Write(u.body)
	for k, v := range u.trailers {
		w.Header()[k] = v
	}
}

func grpcRequest(t testing.TB) *http.Request {
	r := get(t, "POST")
	r.Header.Set("Content-Type", "application/grpc")
	r.Header.Set("Grpc-Accept-Encoding", "gzip")
	return r
}

// checkGRPC asserts that a gRPC body came back as whole uncompressed
// messages with the key masked and the rest of each message intact.
func checkGRPC(t *testing.T, what string, body []byte, n int) {
	t.Helper()
	if bytes.Contains(body, []byte(testAPIKey)) {
		t.Fatalf("%s: the key reached the agent", what)
	}
	flags, msgs, ok := grpcFrames(body)
	if !ok || len(msgs) != n {
		t.Fatalf("%s: body is not %d whole gRPC messages: %q", what, n, body)
	}
	for i, m := range msgs {
		var s structpb.Struct
		if flags[i] != 0 || proto.Unmarshal(m, &s) != nil {
			t.Fatalf("%s: message %d: flag %#x, does not parse", what, i, flags[i])
		}
		if got := s.Fields["script"].GetStringValue(); got != "export KEY=[MASKED:gcp_api_key]\n./run" {
			t.Fatalf("%s: message %d: script %q", what, i, got)
		}
		if got := s.Fields["name"].GetStringValue(); got != "projects/acme/secrets/db/versions/"+strings.Repeat("9", i) {
			t.Fatalf("%s: message %d: name %q", what, i, got)
		}
	}
}

// A gRPC response whose messages are compressed (grpc-encoding gzip or
// deflate, the compressed flag set per message) is inflated and masked
// message by message, whatever the chunking; messages go out uncompressed
// without grpc-encoding, and grpc-message in the trailers is masked too.
func TestGRPCCompressedMessages(t *testing.T) {
	conn := startServer(t, extproc.Options{})
	for _, enc := range []string{"gzip", "deflate"} {
		var body []byte
		for i := range 3 {
			m := secretMessage(t, i)
			if enc == "gzip" {
				m = gzipped(t, m)
			} else {
				m = zlibbed(t, m)
			}
			body = append(body, grpcFrame(1, m)...)
		}
		for _, chunk := range []int{1, 7, 1000, 64 << 10} {
			up := grpcUpstream{
				header:   http.Header{"Content-Type": {"application/grpc"}, "Grpc-Encoding": {enc}},
				body:     body,
				trailers: http.Header{"Grpc-Status": {"3"}, "Grpc-Message": {"invalid key " + testAPIKey}},
			}
			res := standin.NewExtProcFilter(conn, config(chunk)).Do(context.Background(), grpcRequest(t), nil, up)
			what := fmt.Sprintf("%s chunk %d", enc, chunk)
			if res.Status != 200 || res.Reset || res.LocalReply {
				t.Fatalf("%s: status %d reset %v details %q", what, res.Status, res.Reset, res.Details)
			}
			checkGRPC(t, what, res.Body, 3)
			if res.Header.Get("Grpc-Encoding") != "" {
				t.Fatalf("%s: grpc-encoding kept on uncompressed messages", what)
			}
			if got := res.Trailer.Get("Grpc-Message"); got != "invalid key [MASKED:gcp_api_key]" || res.Trailer.Get("Grpc-Status") != "3" {
				t.Fatalf("%s: trailers %v", what, res.Trailer)
			}
			if got := res.Upstream.Header.Get("Grpc-Accept-Encoding"); got != "identity" {
				t.Fatalf("%s: upstream grpc-accept-encoding %q", what, got)
			}
		}
	}
}

// Uncompressed messages, split across chunks, are masked the same way.
func TestGRPCUncompressedMessages(t *testing.T) {
	conn := startServer(t, extproc.Options{})
	body := append(grpcFrame(0, secretMessage(t, 0)), grpcFrame(0, secretMessage(t, 1))...)
	for _, mode := range []filterv3.ProcessingMode_BodySendMode{filterv3.ProcessingMode_STREAMED, filterv3.ProcessingMode_BUFFERED} {
		cfg := config(13)
		cfg.ProcessingMode.ResponseBodyMode = mode
		up := grpcUpstream{header: http.Header{"Content-Type": {"application/grpc+proto"}}, body: body, trailers: http.Header{"Grpc-Status": {"0"}}}
		res := standin.NewExtProcFilter(conn, cfg).Do(context.Background(), grpcRequest(t), nil, up)
		if res.Status != 200 || res.Reset {
			t.Fatalf("%v: status %d details %q", mode, res.Status, res.Details)
		}
		checkGRPC(t, mode.String(), res.Body, 2)
	}
}

// gRPC-Web: messages as gRPC, the trailers frame (flag 0x80) masked as
// text; the base64 form cannot be read and is refused.
func TestGRPCWeb(t *testing.T) {
	conn := startServer(t, extproc.Options{})
	trailers := []byte("grpc-status:16\r\ngrpc-message:bad key " + testAPIKey + "\r\n")
	body := append(grpcFrame(0, secretMessage(t, 0)), grpcFrame(0x80, trailers)...)
	up := grpcUpstream{header: http.Header{"Content-Type": {"application/grpc-web+proto"}}, body: body}
	res := standin.NewExtProcFilter(conn, config(9)).Do(context.Background(), grpcRequest(t), nil, up)
	flags, msgs, ok := grpcFrames(res.Body)
	if res.Status != 200 || !ok || len(msgs) != 2 || flags[1] != 0x80 {
		t.Fatalf("status %d details %q body %q", res.Status, res.Details, res.Body)
	}
	checkGRPC(t, "grpc-web", res.Body[:5+len(msgs[0])], 1)
	if string(msgs[1]) != "grpc-status:16\r\ngrpc-message:bad key [MASKED:gcp_api_key]\r\n" {
		t.Fatalf("trailers frame %q", msgs[1])
	}
	up.header.Set("Content-Type", "application/grpc-web-text")
	res = standin.NewExtProcFilter(conn, config(9)).Do(context.Background(), grpcRequest(t), nil, up)
	if res.Status != 502 || !strings.Contains(string(res.Body), "grpc-web-text") {
		t.Fatalf("grpc-web-text: %d %s", res.Status, res.Body)
	}
}

// A grpc-encoding airlock cannot read is refused before any byte; a
// compressed message without grpc-encoding, a message that is not a
// protocol buffer and a body cut inside a message end the stream. The key
// never reaches the agent.
func TestGRPCFailsClosed(t *testing.T) {
	conn := startServer(t, extproc.Options{})
	gz := grpcFrame(1, gzipped(t, secretMessage(t, 0)))
	up := grpcUpstream{header: http.Header{"Content-Type": {"application/grpc"}, "Grpc-Encoding": {"snappy"}}, body: gz}
	res := standin.NewExtProcFilter(conn, config(0)).Do(context.Background(), grpcRequest(t), nil, up)
	var e struct{ Error struct{ Message string } }
	if res.Status != 502 || json.Unmarshal(res.Body, &e) != nil || !strings.Contains(e.Error.Message, `"snappy"`) {
		t.Fatalf("snappy: %d %s", res.Status, res.Body)
	}
	plain := grpcFrame(0, secretMessage(t, 0))
	for name, body := range map[string][]byte{
		"compressed without grpc-encoding": grpcFrame(1, secretMessage(t, 0)),
		"not a message":                    grpcFrame(0, append([]byte{0x07}, testAPIKey...)),
		"cut inside a message":             plain[:len(plain)-3],
		"unknown flag":                     grpcFrame(0x02, secretMessage(t, 0)),
		"corrupt gzip":                     grpcFrame(1, []byte("not gzip "+testAPIKey)),
	} {
		up := grpcUpstream{header: http.Header{"Content-Type": {"application/grpc"}, "Grpc-Encoding": {"gzip"}}, body: body}
		if name == "compressed without grpc-encoding" {
			up.header.Del("Grpc-Encoding")
		}
		res := standin.NewExtProcFilter(conn, config(16)).Do(context.Background(), grpcRequest(t), nil, up)
		if !res.Reset || bytes.Contains(res.Body, []byte(testAPIKey)) {
			t.Fatalf("%s: reset %v body %q", name, res.Reset, res.Body)
		}
	}
}
