// Package protomsg holds what airlock's gRPC codecs share with gRPC's own
// protobuf codec.
package protomsg

import (
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
)

// Of is v as a protobuf message (APIv2, or APIv1 adapted), or nil when v
// is not one: what gRPC's codec accepts.
func Of(v any) proto.Message {
	switch v := v.(type) {
	case protoadapt.MessageV2:
		return v
	case protoadapt.MessageV1:
		return protoadapt.MessageV2Of(v)
	}
	return nil
}
