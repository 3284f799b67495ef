package extproc

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/encoding/protowire"
)

// fuzzSecret is planted by the fuzzers; its detector needs no word
// boundary around it.
const fuzzSecret = "AIzaSyB3kQ9vX7mN2pL5tR8wY1zC4fH6jK0aQeU"

func fuzzServer(t testing.TB) *Server {
	t.Helper()
	s, err := NewServer(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), MaxDecompressedBytes: 1 << 20, MemoryBudgetBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fuzzStream is a stream past its response headers kv.
func fuzzStream(t *testing.T, s *Server, kv ...string) (*stream, *extprocv3.ProcessingResponse) {
	es := s.engine.Load()
	st := &stream{s: s, ctx: context.Background(), engine: es.e, def: es.def, bodyMode: BodyModeStreamed, method: "POST"}
	h := &corev3.HeaderMap{}
	for i := 0; i < len(kv); i += 2 {
		h.Headers = append(h.Headers, &corev3.HeaderValue{Key: kv[i], RawValue: []byte(kv[i+1])})
	}
	return st, st.responseHeaders(&extprocv3.HttpHeaders{Headers: h})
}

// runBody feeds body in chunks cut at the cuts and returns what the
// stream releases, or the first error.
func runBody(st *stream, body []byte, cuts []byte) ([]byte, error) {
	var out []byte
	for len(body) > 0 || cuts != nil {
		n := len(body)
		if len(cuts) > 0 {
			n = min(n, int(cuts[0])+1)
			cuts = cuts[1:]
		} else {
			cuts = nil
		}
		eos := n == len(body)
		err := st.maskChunk(body[:n], eos)
		out = st.out.appendTo(out, st.out.n)
		st.out.free()
		if err != nil {
			return out, err
		}
		body = body[n:]
		if eos {
			break
		}
	}
	return out, nil
}

func wholeFrames(b []byte) ([][]byte, []byte, bool) {
	var msgs [][]byte
	var flags []byte
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
	return msgs, flags, true
}

// FuzzGRPCFrames: whatever a gRPC body holds and however it is cut into
// chunks, the stream either fails or releases whole uncompressed frames
// whose messages hold nothing the detectors find, and gives its memory
// back; a body of clean valid messages passes unchanged; a key planted in
// a compressed message never comes out.
func FuzzGRPCFrames(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 3, 0x0a, 0x01, 'x'}, []byte{2, 0}, []byte("k="), uint8(0))
	f.Add([]byte{1, 0, 0, 0, 2, 0x1f, 0x8b}, []byte{}, []byte("\x0a\x02"), uint8(1))
	f.Add([]byte{0x80, 0, 0, 0, 1, 'a'}, []byte{0}, []byte{}, uint8(2))
	s := fuzzServer(f)
	f.Fuzz(func(t *testing.T, body, cuts, prefix []byte, mode uint8) {
		ct := "application/grpc"
		if mode&1 != 0 {
			ct = "application/grpc-web+proto"
		}
		st, resp := fuzzStream(t, s, ":status", "200", "content-type", ct, "grpc-encoding", "gzip")
		if resp.GetImmediateResponse() != nil {
			t.Fatalf("refused: %v", resp)
		}
		out, err := runBody(st, body, cuts)
		st.end()
		if s.budget.InUse() != 0 {
			t.Fatalf("%d bytes of the budget kept", s.budget.InUse())
		}
		if err == nil {
			msgs, flags, ok := wholeFrames(out)
			if !ok {
				t.Fatalf("released bytes are not whole frames: %q", out)
			}
			for i, m := range msgs {
				if flags[i]&1 != 0 || st.tm.Found(m) {
					t.Fatalf("frame %d: flag %#x, message %q", i, flags[i], m)
				}
			}
			if inMsgs, inFlags, ok := wholeFrames(body); ok && len(inMsgs) == len(msgs) {
				same := true
				for i, m := range inMsgs {
					same = same && inFlags[i]&1 == 0 && !st.tm.Found(m)
				}
				if same && !bytes.Equal(out, body) {
					t.Fatalf("clean frames changed: %q -> %q", body, out)
				}
			}
		}

		// A key planted in a string field of a compressed message.
		var msg []byte
		msg = protowire.AppendTag(msg, 1, protowire.BytesType)
		msg = protowire.AppendBytes(msg, append(append(append([]byte(nil), prefix...), fuzzSecret...), prefix...))
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		_, _ = zw.Write(msg)
		_ = zw.Close()
		frame := append([]byte{1, 0, 0, 0, 0}, gz.Bytes()...)
		binary.BigEndian.PutUint32(frame[1:], uint32(gz.Len()))
		st, _ = fuzzStream(t, s, ":status", "200", "content-type", ct, "grpc-encoding", "gzip")
		out, err = runBody(st, append(frame, frame...), cuts)
		st.end()
		if bytes.Contains(out, []byte(fuzzSecret)) {
			t.Fatalf("the key came out (err %v): %q", err, out)
		}
		if err == nil {
			if msgs, _, ok := wholeFrames(out); !ok || len(msgs) != 2 {
				t.Fatalf("planted: %q", out)
			}
		}
		if s.budget.InUse() != 0 {
			t.Fatalf("%d bytes of the budget kept", s.budget.InUse())
		}
	})
}

// envoyApply applies a header mutation as Envoy's ext_proc filter does:
// removals first, then each set (raw_value only), replacing every value of
// the name unless append is set.
func envoyApply(h [][2]string, m *extprocv3.HeaderMutation) [][2]string {
	for _, k := range m.GetRemoveHeaders() {
		out := h[:0:0]
		for _, e := range h {
			if e[0] != k {
				out = append(out, e)
			}
		}
		h = out
	}
	for _, o := range m.GetSetHeaders() {
		k, v := o.GetHeader().GetKey(), string(o.GetHeader().GetRawValue())
		//lint:ignore SA1019 the headers are applied as Envoy does, append first.
		if o.GetAppend().GetValue() {
			h = append(h, [2]string{k, v})
			continue
		}
		out := h[:0:0]
		placed := false
		for _, e := range h {
			if e[0] == k {
				if !placed {
					out = append(out, [2]string{k, v})
					placed = true
				}
				continue
			}
			out = append(out, e)
		}
		if !placed {
			out = append(out, [2]string{k, v})
		}
		h = out
	}
	return h
}

// FuzzResponseHeaders: a key planted in any response header value (or
// name) is gone once Envoy applies the mutation, on HEAD as on GET; headers
// airlock never touches come out as they went in.
func FuzzResponseHeaders(f *testing.F) {
	f.Add("x-goog-meta-a\nv1\ncontent-type\ntext/plain\nx-goog-meta-a\nv2", []byte("k="), uint8(0), uint8(1))
	f.Add("etag\n\"x\"\nset-cookie\nid=1", []byte{}, uint8(1), uint8(0))
	f.Add("x-goog-meta-aizasy0123456789abcdefgh\nz", []byte("-"), uint8(0), uint8(2))
	s := fuzzServer(f)
	f.Fuzz(func(t *testing.T, spec string, prefix []byte, which, method uint8) {
		lines := strings.Split(spec, "\n")
		if len(lines) > 60 {
			return
		}
		kv := []string{":status", "200"}
		for i := 0; i+1 < len(lines); i += 2 {
			k := strings.ToLower(lines[i])
			if !validName(k) || strings.ContainsAny(lines[i+1], "\r\n\x00") || k == "content-length" {
				return
			}
			kv = append(kv, k, lines[i+1])
		}
		if len(kv) < 4 {
			return
		}
		// Plant the key in one value.
		at := 3 + 2*(int(which)%(len(kv)/2-1))
		if untouched(kv[at-1]) {
			return
		}
		kv[at] = string(prefix) + fuzzSecret
		if strings.ContainsAny(kv[at], "\r\n\x00") {
			return
		}
		st, resp := fuzzStream(t, s, kv...)
		if method%2 == 1 {
			st.method = "HEAD"
		}
		if resp.GetImmediateResponse() != nil {
			return // refused: nothing reaches the agent
		}
		var in [][2]string
		for i := 0; i < len(kv); i += 2 {
			in = append(in, [2]string{kv[i], kv[i+1]})
		}
		got := envoyApply(in, resp.GetResponseHeaders().GetResponse().GetHeaderMutation())
		for _, e := range got {
			if strings.Contains(e[1], fuzzSecret) || strings.Contains(e[0], strings.ToLower(fuzzSecret)) {
				t.Fatalf("key survived in %s: %q", e[0], e[1])
			}
		}
		for _, e := range in {
			if untouched(e[0]) && e[0] != "content-length" {
				found := false
				for _, g := range got {
					found = found || g == e
				}
				if !found {
					t.Fatalf("untouched header %s: %q changed", e[0], e[1])
				}
			}
		}
		st.end()
	})
}

func validName(k string) bool {
	if k == "" || strings.HasPrefix(k, ":") {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			return false
		}
	}
	return true
}
