package masking

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files of the masking corpus")

func testEngine(t testing.TB) *Engine {
	t.Helper()
	e, err := NewEngine(nil)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func kindOf(name string) Kind {
	if strings.HasSuffix(name, ".json") {
		return JSON
	}
	return Text
}

type corpusCase struct {
	name    string
	body    []byte
	secrets []string
	kind    Kind
}

func loadCorpus(t *testing.T) []corpusCase {
	t.Helper()
	files, err := filepath.Glob("testdata/corpus/*")
	if err != nil {
		t.Fatal(err)
	}
	var out []corpusCase
	for _, f := range files {
		if strings.HasSuffix(f, ".secrets") || strings.HasSuffix(f, ".masked") {
			continue
		}
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sec, err := os.ReadFile(f + ".secrets")
		if err != nil {
			t.Fatal(err)
		}
		c := corpusCase{name: filepath.Base(f), body: body, kind: kindOf(f)}
		for _, s := range strings.Split(strings.TrimSpace(string(sec)), "\n") {
			if s != "" {
				c.secrets = append(c.secrets, s)
			}
		}
		out = append(out, c)
	}
	if len(out) < 8 {
		t.Fatalf("corpus has %d cases", len(out))
	}
	return out
}

// maskChunks masks body fed in the given pieces.
func maskChunks(t testing.TB, e *Engine, p Profile, kind Kind, pieces [][]byte) []byte {
	t.Helper()
	s, err := e.NewStream(p, kind)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for _, c := range pieces {
		if out, err = s.Write(out, c); err != nil {
			t.Fatal(err)
		}
	}
	if out, err = s.Close(out); err != nil {
		t.Fatal(err)
	}
	return out
}

func chunked(b []byte, size int) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		n := min(size, len(b))
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}

func assertNoSecrets(t *testing.T, name string, out []byte, secrets []string) {
	t.Helper()
	for _, s := range secrets {
		if bytes.Contains(out, []byte(s)) {
			t.Fatalf("%s: output still holds secret %.20q...", name, s)
		}
	}
}

// Every secret of the corpus is masked with the default profile, and the
// output matches the golden file.
func TestCorpusMasked(t *testing.T) {
	e := testEngine(t)
	for _, c := range loadCorpus(t) {
		out, err := e.Mask(DefaultProfile(), c.kind, c.body)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		assertNoSecrets(t, c.name, out, c.secrets)
		if !hasLabel(out) {
			t.Fatalf("%s: nothing masked", c.name)
		}
		if c.kind == JSON && !json.Valid(out) {
			t.Fatalf("%s: output is not valid JSON:\n%s", c.name, out)
		}
		golden := filepath.Join("testdata/corpus", c.name+".masked")
		if *update {
			if err := os.WriteFile(golden, out, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%s: %v (run go test -run TestCorpusMasked -update)", c.name, err)
		}
		if !bytes.Equal(out, want) {
			t.Fatalf("%s: output differs from %s:\n%s", c.name, golden, out)
		}
	}
}

// The output does not depend on how the body is cut: every chunk size from
// one byte to the whole body, and every split into two chunks.
func TestCorpusChunked(t *testing.T) {
	e := testEngine(t)
	for _, c := range loadCorpus(t) {
		want, err := e.Mask(DefaultProfile(), c.kind, c.body)
		if err != nil {
			t.Fatal(err)
		}
		for size := 1; size <= len(c.body); size++ {
			got := maskChunks(t, e, DefaultProfile(), c.kind, chunked(c.body, size))
			if !bytes.Equal(got, want) {
				t.Fatalf("%s: chunk size %d gives a different output:\n%s", c.name, size, got)
			}
		}
		for k := 0; k <= len(c.body); k++ {
			got := maskChunks(t, e, DefaultProfile(), c.kind, [][]byte{c.body[:k], c.body[k:]})
			if !bytes.Equal(got, want) {
				t.Fatalf("%s: split at %d gives a different output:\n%s", c.name, k, got)
			}
		}
	}
}

// Ordinary responses come out byte for byte unchanged.
func TestCleanCorpusUnchanged(t *testing.T) {
	e := testEngine(t)
	files, _ := filepath.Glob("testdata/clean/*.json")
	if len(files) < 5 {
		t.Fatalf("clean corpus has %d files", len(files))
	}
	p := DefaultProfile().Merge(Profile{Detectors: []string{"credit_card", "iban", "us_ssn"}})
	for _, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out, err := e.Mask(p, JSON, body)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if !bytes.Equal(out, body) {
			t.Fatalf("%s: a clean response was changed:\n%s", f, firstDiff(body, out))
		}
		// With every detector on, service-account addresses stay.
		out, err = e.Mask(Profile{Detectors: []string{GroupAll}}, JSON, body)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Count(out, []byte("gserviceaccount.com")) != bytes.Count(body, []byte("gserviceaccount.com")) {
			t.Fatalf("%s: a service-account address was masked", f)
		}
		if !json.Valid(out) {
			t.Fatalf("%s: invalid JSON out", f)
		}
	}
}

func firstDiff(a, b []byte) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	lo := max(0, i-60)
	return "want ..." + string(a[lo:min(len(a), i+60)]) + "\n got ..." + string(b[lo:min(len(b), i+60)])
}

// maskedB64 is how a masked bytes member begins: "[MASKED:" in base64.
const maskedB64 = "W01BU0tFRD"

// hasLabel reports a masking label in out, readable or base64 (a bytes
// member).
func hasLabel(out []byte) bool {
	return bytes.Contains(out, []byte("[MASKED:")) || bytes.Contains(out, []byte(maskedB64))
}
