package handoff

import (
	"encoding/json"
	"reflect"
	"testing"

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
