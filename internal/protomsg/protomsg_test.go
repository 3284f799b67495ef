package protomsg

import (
	"testing"

	"google.golang.org/protobuf/types/known/structpb"
)

func TestOf(t *testing.T) {
	v := structpb.NewStringValue("x")
	if Of(v) != v {
		t.Fatal("a protobuf message is not itself")
	}
	if Of("not a message") != nil || Of(nil) != nil {
		t.Fatal("a non-message was taken for a message")
	}
}
