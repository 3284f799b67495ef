package masking

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// ErrNotProtobuf is returned (wrapped) when a message declared as a
// protocol buffer is not one.
var ErrNotProtobuf = errors.New("masking: not a protocol buffer message")

// maxProtoDepth bounds how deep MaskProtobuf looks into nested messages;
// deeper values are masked as strings.
const maxProtoDepth = 32

// MaskProtobuf appends msg, a serialized protocol buffer message, to dst
// with what the profile's detectors find replaced by their labels, and
// returns how many spans it masked.
//
// The message is read without its schema. Only detectors apply (field
// rules and secret_field name JSON members, which a binary message does
// not have). A message the detectors find nothing in is copied as it is.
// Otherwise each length-delimited field holding a finding is read as a
// nested message when it parses as one and its findings all lie in its own
// fields, and else as a string or bytes value whose findings are replaced;
// the lengths of the fields around it are rewritten, so the result is a
// valid message with the same structure. A finding that spans field
// boundaries cannot be replaced that way: the result is checked again, and
// anything still found fails with ErrUnmaskable. A msg that is not a
// protocol buffer message at all fails with ErrNotProtobuf. On error dst is
// returned as it was.
func (m *TextMasker) MaskProtobuf(dst, msg []byte) ([]byte, int, error) {
	if !m.Found(msg) {
		return append(dst, msg...), 0, nil
	}
	w := &protoWalk{m: m, work: 16*len(msg) + 64<<10}
	start := len(dst)
	out, ok := w.message(dst, msg, 0)
	if w.deep {
		return dst[:start], 0, fmt.Errorf("%w: a secret in groups nested deeper than %d", ErrUnmaskable, maxProtoDepth)
	}
	if !ok {
		return dst[:start], 0, fmt.Errorf("%w (%d bytes)", ErrNotProtobuf, len(msg))
	}
	if m.Found(out[start:]) {
		return dst[:start], 0, fmt.Errorf("%w: a secret spans the fields of a protocol buffer message", ErrUnmaskable)
	}
	return out, w.masked, nil
}

// protoWalk is one MaskProtobuf call.
type protoWalk struct {
	m      *TextMasker
	masked int
	// work bounds the bytes scanned while looking into nested messages
	// (each level scans its values again); once spent, values are masked
	// as strings.
	work int
	// deep is set when a group holding a finding is nested too deep.
	deep bool
}

func (w *protoWalk) found(b []byte) bool {
	w.work -= len(b)
	return w.m.Found(b)
}

// message appends msg with its findings masked; false when msg does not
// parse as a message.
func (w *protoWalk) message(dst, msg []byte, depth int) ([]byte, bool) {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return dst, false
		}
		m := protowire.ConsumeFieldValue(num, typ, msg[n:])
		if m < 0 {
			return dst, false
		}
		field := msg[:n+m]
		msg = msg[n+m:]
		switch typ {
		case protowire.BytesType:
			v, _ := protowire.ConsumeBytes(field[n:])
			if !w.found(v) {
				dst = append(dst, field...)
				break
			}
			masked := w.value(v, depth)
			dst = append(dst, field[:n]...)
			dst = protowire.AppendVarint(dst, uint64(len(masked)))
			dst = append(dst, masked...)
		case protowire.StartGroupType:
			group := field[n:]
			inner := group[:len(group)-protowire.SizeTag(num)]
			if !w.found(inner) {
				dst = append(dst, field...)
				break
			}
			if depth >= maxProtoDepth {
				w.deep = true
				return dst, false
			}
			dst = append(dst, field[:n]...)
			var ok bool
			if dst, ok = w.message(dst, inner, depth+1); !ok {
				return dst, false
			}
			dst = append(dst, group[len(inner):]...)
		case protowire.EndGroupType:
			return dst, false
		default:
			dst = append(dst, field...)
		}
	}
	return dst, true
}

// value masks a length-delimited value holding a finding: as a nested
// message when it parses as one and masking its fields leaves nothing to
// find, else as a string or bytes.
func (w *protoWalk) value(v []byte, depth int) []byte {
	if depth < maxProtoDepth && w.work >= 0 {
		masked, deep := w.masked, w.deep
		if sub, ok := w.message(nil, v, depth+1); ok && !w.found(sub) {
			return sub
		}
		w.masked, w.deep = masked, deep
	}
	out, n := w.m.Mask(make([]byte, 0, len(v)), v)
	w.masked += n
	return out
}
