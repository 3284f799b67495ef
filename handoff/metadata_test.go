package handoff

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/airlockhq/airlock/masking"
)

func TestMetadataRoundTrip(t *testing.T) {
	m := Metadata{
		RequestID: "r", SessionID: "s", Subject: "alice", Actor: "claude", GCPMethod: "compute.instances.get", Decision: "allowed",
		Rules: []string{"p/r"},
		Masking: []masking.Rule{
			{Policy: "p", Name: "startup", Fields: []string{`**.metadata.items[?key=="startup-script"].value`}, Detectors: []string{"private_key"}},
			{Policy: "p\u00e9\x01", Name: "bad\xff", Fields: nil, Detectors: []string{"email"}},
		},
	}
	raw := m.MaskingJSON()
	var check []map[string]any
	if err := json.Unmarshal([]byte(raw), &check); err != nil || len(check) != 2 {
		t.Fatalf("MaskingJSON is not a JSON array of two objects: %v\n%s", err, raw)
	}
	back := MetadataFromMap(m.ToMap())
	want := m
	want.Masking[1].Name = "bad\uFFFD"
	want.Masking[1].Fields = []string{}
	if back.Masking[1].Fields == nil {
		back.Masking[1].Fields = []string{}
	}
	if !reflect.DeepEqual(back, want) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", back, want)
	}
	// A hand-written structured list is read too; garbage selects nothing.
	list := MetadataFromMap(map[string]any{"masking": []any{map[string]any{"policy": "p", "name": "n", "fields": []any{"payload.data"}}}})
	if len(list.Masking) != 1 || list.Masking[0].Fields[0] != "payload.data" {
		t.Fatalf("structured masking not read: %+v", list.Masking)
	}
	if g := MetadataFromMap(map[string]any{"masking": "{not json"}); len(g.Masking) != 0 {
		t.Fatalf("garbage masking selected %+v", g.Masking)
	}
	if (Metadata{}).MaskingJSON() != "[]" {
		t.Fatal("empty masking is not []")
	}
}

// appendJSONString writes what encoding/json reads back as the string
// (invalid UTF-8 as U+FFFD, as encoding/json itself writes it).
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", `quote " and \ back`, "ctl \x00\x1f\n\t", "ünï ✓ 𝄞", "bad \xff\xfe tail", "\u2028\u2029", "<&>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendJSONString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q: %s is not a JSON string: %v", s, b, err)
		}
		if want := invalidBytesReplaced(s); got != want {
			t.Fatalf("%q read back as %q, want %q", s, got, want)
		}
	})
}

// invalidBytesReplaced is s with every byte of an invalid sequence
// replaced by U+FFFD.
func invalidBytesReplaced(s string) string {
	var out strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			out.WriteString("\ufffd")
		} else {
			out.WriteString(s[i : i+n])
		}
		i += n
	}
	return out.String()
}
