package extproc

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"io"
	"testing"
)

func compress(t *testing.T, enc string, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	switch enc {
	case "gzip":
		w = gzip.NewWriter(&buf)
	case "zlib":
		w = zlib.NewWriter(&buf)
	default:
		w, _ = flate.NewWriter(&buf, flate.DefaultCompression)
	}
	_, _ = w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func inflateAll(f *inflater, in []byte, chunk int) ([]byte, error) {
	var out []byte
	emit := func(p []byte) error {
		if len(p) > inflatePiece {
			return errors.New("piece larger than inflatePiece")
		}
		out = append(out, p...)
		return nil
	}
	for len(in) > 0 {
		n := min(chunk, len(in))
		if err := f.Write(in[:n], emit); err != nil {
			return out, err
		}
		in = in[n:]
	}
	return out, f.Close(emit)
}

func TestInflater(t *testing.T) {
	body := bytes.Repeat([]byte("hello airlock "), 5000)
	for _, tc := range []struct{ enc, header string }{{"gzip", "gzip"}, {"zlib", "deflate"}, {"raw", "deflate"}} {
		for _, chunk := range []int{1, 100, 1 << 20} {
			got, err := inflateAll(newInflater(tc.header, 1<<20), compress(t, tc.enc, body), chunk)
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("%s chunk %d: %v (%d bytes)", tc.enc, chunk, err, len(got))
			}
		}
	}
	// Over the bound.
	_, err := inflateAll(newInflater("gzip", 1000), compress(t, "gzip", body), 64)
	if !errors.Is(err, errTooLarge) {
		t.Fatalf("bomb: %v", err)
	}
	// Truncated and corrupt input.
	gz := compress(t, "gzip", body)
	if _, err := inflateAll(newInflater("gzip", 1<<20), gz[:len(gz)/2], 64); err == nil {
		t.Fatal("truncated gzip accepted")
	}
	if _, err := inflateAll(newInflater("gzip", 1<<20), []byte("not gzip at all"), 4); err == nil {
		t.Fatal("garbage accepted")
	}
	// Data after the end.
	if _, err := inflateAll(newInflater("deflate", 1<<20), append(compress(t, "zlib", body), "junk"...), 1<<20); err == nil {
		t.Fatal("trailing data accepted")
	}
	// Abort never blocks.
	f := newInflater("gzip", 1<<20)
	if err := f.Write(gz[:10], func([]byte) error { return nil }); err != nil {
		t.Fatal(err)
	}
	f.Abort()
}
