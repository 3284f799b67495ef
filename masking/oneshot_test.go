package masking

import (
	"bytes"
	"testing"
)

// TestMaskTextMatchesStream holds MaskText to what a Text stream gives for
// the whole corpus (every detector on) and for short header-like values.
func TestMaskTextMatchesStream(t *testing.T) {
	e := testEngine(t)
	p := Profile{Detectors: []string{GroupAll}}
	inputs := [][]byte{nil, []byte("gcloud/500.0.0"), []byte("alice@example.com"), []byte("key=AIzaSyA1234567890abcdefghijklmnopqrstu and more"),
		[]byte("application/json\nBearer ya29.a0AfH6SMBxxxxxxxxxxxxxxxxxxxxxxxx\nmailto:bob@example.org")}
	for _, c := range loadCorpus(t) {
		inputs = append(inputs, c.body)
	}
	masked := 0
	for i, in := range inputs {
		want := maskChunks(t, e, p, Text, [][]byte{in})
		got, n, err := e.MaskText(p, []byte("prefix:"), in)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, append([]byte("prefix:"), want...)) {
			t.Errorf("input %d: MaskText differs from a stream:\n got %q\nwant %q", i, got, want)
		}
		masked += n
	}
	if masked == 0 {
		t.Fatal("nothing masked: the corpus must hold secrets")
	}
	if _, _, err := e.MaskText(Profile{Detectors: []string{"no-such-detector"}}, nil, []byte("x")); err == nil {
		t.Fatal("unknown detector accepted")
	}
}

func TestMaskTextAllocations(t *testing.T) {
	e := testEngine(t)
	p := DefaultProfile()
	in := []byte("google-cloud-sdk gcloud/500.0.0\napplication/json\nmail alice@example.com")
	dst := make([]byte, 0, 256)
	e.MaskText(p, dst, in) // warm the pool and the profile cache
	// MaskText looks its profile up per call (a few small strings); no
	// scanner or buffer is made.
	n := testing.AllocsPerRun(100, func() { e.MaskText(p, dst[:0], in) })
	stream := testing.AllocsPerRun(100, func() { e.Mask(p, Text, in) })
	if n >= stream {
		t.Errorf("MaskText allocates %v times per call (a stream: %v)", n, stream)
	}
	m, err := e.TextMasker(p)
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { m.Mask(dst[:0], in) }); n != 0 {
		t.Errorf("TextMasker.Mask allocates %v times per call", n)
	}
}
