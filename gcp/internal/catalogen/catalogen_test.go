package catalogen

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestIsGA(t *testing.T) {
	tests := map[string]bool{"v1": true, "v2.1": true, "directory_v1": true, "preview": true,
		"v1beta": false, "v1beta1": false, "v2alpha": false, "v1p1beta1": false, "V1BETA": false}
	for v, want := range tests {
		if got := IsGA(v); got != want {
			t.Errorf("IsGA(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestVersionRank(t *testing.T) {
	tests := map[string]int{"v1": 0, "v2.1": 0, "directory_v1": 0, "preview": 1, "v1b3": 1, "v2sandbox": 1}
	for v, want := range tests {
		if got := versionRank(v); got != want {
			t.Errorf("versionRank(%q) = %d, want %d", v, got, want)
		}
	}
}

func TestSpans(t *testing.T) {
	tests := []struct {
		path, flat string
		want       []Span
	}{
		{"v1/{+name}:access", "v1/projects/{projectsId}/secrets/{secretsId}/versions/{versionsId}:access",
			[]Span{{Name: "name", Start: 1, End: 7}}},
		{"v1/{+parent}/secrets", "v1/projects/{projectsId}/secrets", []Span{{Name: "parent", Start: 1, End: 3}}},
		{"v1/{+a}/x/{+b}", "v1/p/{p}/x/q/{q}", nil},
		{"v1/{name}", "v1/{name}", nil},
	}
	for _, tc := range tests {
		if got := spans(tc.path, tc.flat); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("spans(%q, %q) = %v, want %v", tc.path, tc.flat, got, tc.want)
		}
	}
}

func TestLongRunning(t *testing.T) {
	var d discoDoc
	if err := json.Unmarshal([]byte(`{"schemas":{
		"GoogleLongrunningOperation":{"properties":{"done":{},"name":{}}},
		"UnitOperation":{"properties":{"name":{}}}}}`), &d); err != nil {
		t.Fatal(err)
	}
	tests := map[string]bool{"Operation": true, "GoogleLongrunningOperation": true, "UnitOperation": false, "Instance": false, "Missing Operation": false}
	for ref, want := range tests {
		if got := longRunning(&d, ref); got != want {
			t.Errorf("longRunning(%q) = %v, want %v", ref, got, want)
		}
	}
}
