package yamlpos

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"gopkg.in/yaml.v3"
)

func parseErr(t *testing.T, doc string) error {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader([]byte(doc)))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			t.Fatalf("%q parses", doc)
		}
		if err != nil {
			return err
		}
	}
}

func TestLocatePointsAtTheWrongLine(t *testing.T) {
	for _, tc := range []struct {
		doc  string
		line int
	}{
		// The parser names line 3 (the start of the sequence); the stray
		// indentation is on line 6.
		{"name: p\ndefault: deny\nrules:\n  - name: a\n    when: \"true\"\n   action: allow\n", 6},
		{"listen:\n  authz: \":9001\"\n approvals:\n  store: memory\n", 3},
		{"listen:\n  authz: [1\n", 2},
		{"a: 1\nb: \"unterminated\nc: 2\n", 2},
		// A bracket never closed: its line.
		{"a: 1\n---\nb: [\n  1,\n  2\nc: 3\n", 3},
		{"a: 1\nb: 2\nc: 3\nd: [1, 2]]\n", 4},
		{"a:\tb: c: d\n", 1},
	} {
		err := parseErr(t, tc.doc)
		line, msg := Locate([]byte(tc.doc), err)
		if line != tc.line || msg == "" {
			t.Errorf("%q: line %d (%q), want %d; the parser said %v", tc.doc, line, msg, tc.line, err)
		}
	}
}

func TestLocateWithoutPosition(t *testing.T) {
	if line, msg := Locate([]byte("x"), errors.New("boom")); line != 0 || msg != "boom" {
		t.Fatalf("got %d %q", line, msg)
	}
}
