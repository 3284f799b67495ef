package masking

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// fuzzSecrets are planted by FuzzMasker; their detectors need no word
// boundary before them, so any prefix keeps them detectable.
var fuzzSecrets = []string{testAPIKey, testYa29, testStripe, "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", "glpat-AbCdEfGhIjKlMnOpQrSt"}

func maskSplit(e *Engine, p Profile, kind Kind, data []byte, split int) ([]byte, error) {
	s, err := e.NewStream(p, kind)
	if err != nil {
		return nil, err
	}
	split = min(split, len(data))
	out, err := s.Write(nil, data[:split])
	if err != nil {
		return nil, err
	}
	if out, err = s.Write(out, data[split:]); err != nil {
		return nil, err
	}
	return s.Close(out)
}

func depth(b []byte) int {
	d, m := 0, 0
	for _, c := range b {
		switch c {
		case '{', '[':
			d++
			m = max(m, d)
		case '}', ']':
			d--
		}
	}
	return m
}

// FuzzTokenizer: valid JSON in gives valid JSON out, and the output does
// not depend on where the body is split.
func FuzzTokenizer(f *testing.F) {
	f.Add([]byte(`{"a":[1,2.5e-3,true,null,"x\u00e9\n"],"password":"p4ssw0rd!"}`), uint16(5))
	f.Add([]byte(`{"metadata":{"items":[{"key":"startup-script","value":"export KEY=`+testAPIKey+`"}]}}`), uint16(40))
	f.Add([]byte(`["\ud83d\ude00","\ud800", -0, 1E+2]`), uint16(3))
	e := testEngine(f)
	p := DefaultProfile().Merge(Profile{Detectors: []string{GroupAll},
		Fields: []Field{{Path: "**.value", Label: "v"}, {Path: `a[?key=="k"].b`, Label: "b"}}})
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		whole, err := e.Mask(p, JSON, data)
		parts, err2 := maskSplit(e, p, JSON, data, int(split))
		if (err == nil) != (err2 == nil) {
			t.Fatalf("whole error %v, split error %v", err, err2)
		}
		if err == nil && !bytes.Equal(whole, parts) {
			t.Fatalf("split at %d changes the output:\n%s\n%s", split, whole, parts)
		}
		if json.Valid(data) {
			if err != nil {
				if errors.Is(err, ErrUnmaskable) || depth(data) > maxDepth {
					return
				}
				t.Fatalf("valid JSON refused: %v", err)
			}
			if !json.Valid(whole) {
				t.Fatalf("valid JSON in, invalid out:\n%s\n%s", data, whole)
			}
		}
	})
}

// FuzzMasker: a planted secret never survives, in text or inside a JSON
// string, wherever the body is split.
func FuzzMasker(f *testing.F) {
	f.Add([]byte("key="), []byte("\n"), uint8(0), uint16(7))
	f.Add([]byte("Authorization: Bearer "), []byte(" rest"), uint8(1), uint16(30))
	f.Add([]byte(""), []byte(""), uint8(2), uint16(0))
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\n"), []byte("\n-----END PRIVATE KEY-----"), uint8(3), uint16(50))
	e := testEngine(f)
	f.Fuzz(func(t *testing.T, prefix, suffix []byte, which uint8, split uint16) {
		secret := fuzzSecrets[int(which)%len(fuzzSecrets)]
		text := append(append(append([]byte(nil), prefix...), secret...), suffix...)
		out, err := maskSplit(e, DefaultProfile(), Text, text, int(split))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(out, []byte(secret)) {
			t.Fatalf("text: secret survived in %q", out)
		}
		s, _ := json.Marshal(string(text))
		doc := append(append([]byte(`{"a":[`), s...), `]}`...)
		out, err = maskSplit(e, DefaultProfile(), JSON, doc, int(split))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(out, []byte(secret)) {
			t.Fatalf("json: secret survived in %s", out)
		}
		if !json.Valid(out) {
			t.Fatalf("json: invalid output %s", out)
		}
	})
}

// validProto reports whether b parses as a message, recursing into nothing.
func validProto(b []byte) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return false
		}
		b = b[n+m:]
	}
	return true
}

// FuzzProtobuf: whatever the input, MaskProtobuf fails or returns a message
// the detectors find nothing in (the input itself when it was clean); a
// secret planted in a string field, nested in up to three messages with
// fuzzed neighbours, never survives and the result still parses.
func FuzzProtobuf(f *testing.F) {
	f.Add([]byte{0x0a, 0x03, 'a', 'b', 'c'}, []byte("x="), []byte("\n"), uint8(0), uint8(1))
	f.Add([]byte{0x1b, 0x0a, 0x01, 'k', 0x1c}, []byte("-----BEGIN PRIVATE KEY-----\n"), []byte("\n-----END PRIVATE KEY-----"), uint8(3), uint8(2))
	f.Add([]byte{0x08, 0x96, 0x01, 0x12, 0x00}, []byte{}, []byte{0xff}, uint8(1), uint8(0))
	m, err := testEngine(f).TextMasker(DefaultProfile())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data, prefix, suffix []byte, which, nest uint8) {
		out, _, err := m.MaskProtobuf(nil, data)
		if err == nil {
			if m.Found(out) {
				t.Fatalf("a finding survived in %q", out)
			}
			if !m.Found(data) && !bytes.Equal(out, data) {
				t.Fatalf("a clean message changed: %q -> %q", data, out)
			}
			if validProto(data) != validProto(out) {
				t.Fatalf("structure changed: %q -> %q", data, out)
			}
		} else if !errors.Is(err, ErrNotProtobuf) && !errors.Is(err, ErrUnmaskable) {
			t.Fatalf("unexpected error %v", err)
		}

		secret := fuzzSecrets[int(which)%len(fuzzSecrets)]
		value := append(append(append([]byte(nil), prefix...), secret...), suffix...)
		var msg []byte
		msg = protowire.AppendTag(msg, protowire.Number(1+int(which)%20), protowire.BytesType)
		msg = protowire.AppendBytes(msg, value)
		if validProto(data) {
			msg = append(msg, data...)
		}
		for range int(nest) % 4 {
			var outer []byte
			outer = protowire.AppendTag(outer, 2, protowire.BytesType)
			outer = protowire.AppendBytes(outer, msg)
			msg = outer
		}
		out, _, err = m.MaskProtobuf(nil, msg)
		if err != nil {
			if errors.Is(err, ErrUnmaskable) {
				// The fuzzed neighbours can continue the secret across a
				// field boundary: refused, which is failing closed.
				return
			}
			t.Fatalf("planted message refused: %v", err)
		}
		if bytes.Contains(out, []byte(secret)) {
			t.Fatalf("secret survived in %q", out)
		}
		if !validProto(out) {
			t.Fatalf("masked message does not parse: %q", out)
		}
	})
}
