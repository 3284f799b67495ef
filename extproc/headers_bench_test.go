package extproc

import (
	"bytes"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/airlockhq/airlock/masking"
)

func defaultMasker(t testing.TB) *masking.TextMasker {
	t.Helper()
	e, err := masking.NewEngine(nil)
	if err != nil {
		t.Fatal(err)
	}
	tm, err := e.TextMasker(masking.DefaultProfile())
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// BenchmarkResponseHeaders is the cost of the headers of a typical
// response, a dozen clean ones, through the masker: a keyword scan each.
func BenchmarkResponseHeaders(b *testing.B) {
	tm := defaultMasker(b)
	hs := typicalHeaders()
	var scratch []byte
	b.ReportAllocs()
	for b.Loop() {
		if m, err := maskHeaders(tm, hs, &scratch); err != nil || m.changed() {
			b.Fatal(err)
		}
	}
}

// BenchmarkResponseHeadersSecret is the same with one x-goog-meta value
// holding an API key.
func BenchmarkResponseHeadersSecret(b *testing.B) {
	tm := defaultMasker(b)
	hs := append(typicalHeaders(), &corev3.HeaderValue{Key: "x-goog-meta-key", RawValue: []byte("k=AIzaSyB3kQ9vX7mN2pL5tR8wY1zC4fH6jK0aQeU")})
	var scratch []byte
	b.ReportAllocs()
	for b.Loop() {
		m, err := maskHeaders(tm, hs, &scratch)
		if err != nil || len(m.set) != 1 || !bytes.Contains(m.set[0].GetHeader().GetRawValue(), []byte("[MASKED:")) {
			b.Fatal(err)
		}
	}
}

func typicalHeaders() []*corev3.HeaderValue {
	var hs []*corev3.HeaderValue
	for _, kv := range [][2]string{
		{":status", "200"}, {"content-type", "application/json; charset=UTF-8"}, {"vary", "Origin, X-Origin, Referer"},
		{"date", "Tue, 03 Nov 2026 10:00:00 GMT"}, {"server", "ESF"}, {"cache-control", "private"},
		{"x-xss-protection", "0"}, {"x-frame-options", "SAMEORIGIN"}, {"x-content-type-options", "nosniff"},
		{"alt-svc", `h3=":443"; ma=2592000,h3-29=":443"; ma=2592000`}, {"content-length", "1234"},
		{"x-guploader-uploadid", "ABPtcPp5Gm2cBrnO4D1nG5zVx4CKQVbWGVF0F_VvQ5lR0Ul_3wQ1Fj6ZfVh7pB1M"},
	} {
		hs = append(hs, &corev3.HeaderValue{Key: kv[0], RawValue: []byte(kv[1])})
	}
	return hs
}
