package envoyhdr

import (
	"reflect"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

func TestMap(t *testing.T) {
	hm := &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
		{Key: ":Path", RawValue: []byte("/x")},
		{Key: "X-A", Value: "1"},
		{Key: "x-a", RawValue: []byte("2")},
		{Key: "empty"},
	}}
	want := map[string]string{":path": "/x", "x-a": "1,2", "empty": ""}
	if got := Map(hm); !reflect.DeepEqual(got, want) {
		t.Fatalf("Map = %v, want %v", got, want)
	}
	if got := Map(nil); len(got) != 0 {
		t.Fatalf("Map(nil) = %v", got)
	}
}
