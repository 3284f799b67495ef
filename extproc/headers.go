package extproc

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/airlockhq/airlock/masking"
)

// untouchedHeaders are the response headers airlock never masks: their
// values are defined by HTTP or computed by Google, never chosen by whoever
// stored the data (Cloud Storage lets an uploader choose content-type,
// content-disposition, content-language, cache-control and x-goog-meta-*,
// which are all masked), and rewriting one would break framing, caching or
// conditional requests (a 16-digit x-goog-generation can pass a card
// number's checksum). Pseudo-headers (":status") are never touched either.
var untouchedHeaders = map[string]bool{
	"content-length": true, "transfer-encoding": true, "connection": true, "keep-alive": true,
	"upgrade": true, "te": true, "trailer": true,
	"date": true, "expires": true, "last-modified": true, "age": true,
	"etag": true, "accept-ranges": true, "content-range": true, "vary": true,
	"x-goog-generation": true, "x-goog-metageneration": true, "x-goog-hash": true,
	"x-goog-stored-content-length": true, "x-goog-storage-class": true,
	"grpc-status": true, "grpc-encoding": true, "grpc-accept-encoding": true,
}

func untouched(k string) bool { return strings.HasPrefix(k, ":") || untouchedHeaders[k] }

// errUnrewritable is returned when a header Envoy does not let ext_proc
// rewrite holds a secret.
var errUnrewritable = errors.New("extproc: a secret is in a header Envoy does not let ext_proc rewrite")

// headerMasking is what masking one header block gives: the mutation that
// applies it and how many values were masked.
type headerMasking struct {
	set    []*corev3.HeaderValueOption
	remove []string
	masked int
	// values holds each entry's value after masking (nil: unchanged) and
	// gone the names removed; both nil when nothing changed.
	values [][]byte
	gone   map[string]bool
}

// changed reports whether anything was masked.
func (m *headerMasking) changed() bool { return m.masked > 0 }

// maskHeaders masks the values of a header block (response headers or
// trailers) with tm. A secret in a value is replaced by its label; a
// secret in a header's name (an x-goog-meta-* key chosen by an uploader,
// which arrives lower-cased: a detector keyword next to a long run of
// letters and digits is enough) removes the header. scratch is reused for the names. Entries are read
// as Envoy sends them, one per value, in raw_value; every value of a name
// that changes is set again, in order (the first replaces, the others
// append), since Envoy's set replaces all the values of a name.
func maskHeaders(tm *masking.TextMasker, hs []*corev3.HeaderValue, scratch *[]byte) (headerMasking, error) {
	var m headerMasking
	for i, hv := range hs {
		k := hv.GetKey()
		if untouched(k) {
			continue
		}
		if alnumRun(k) >= minNameSecret {
			*scratch = append((*scratch)[:0], k...)
			if tm.Found(*scratch) || tm.KeywordFound(*scratch) {
				if m.gone == nil {
					m.gone = map[string]bool{}
				}
				m.gone[strings.ToLower(k)] = true
				m.masked++
				continue
			}
		}
		v := hv.GetRawValue()
		if len(v) == 0 {
			v = []byte(hv.GetValue())
		}
		var out []byte
		var n int
		if strings.HasSuffix(k, "-bin") {
			out, n = maskBinary(tm, k, v)
		} else {
			out, n = tm.MaskFound(nil, v)
		}
		if n == 0 {
			continue
		}
		if m.values == nil {
			m.values = make([][]byte, len(hs))
		}
		m.values[i] = out
		m.masked += n
	}
	if !m.changed() {
		return m, nil
	}
	done := map[string]bool{}
	for k := range m.gone {
		if err := rewritable(k); err != nil {
			return m, err
		}
		m.remove = append(m.remove, k)
	}
	for i, out := range m.values {
		if out == nil {
			continue
		}
		k := strings.ToLower(hs[i].GetKey())
		if done[k] || m.gone[k] {
			continue
		}
		if err := rewritable(k); err != nil {
			return m, err
		}
		done[k] = true
		first := true
		for j := range hs {
			if !strings.EqualFold(hs[j].GetKey(), k) {
				continue
			}
			v := m.values[j]
			if v == nil {
				v = headerValue(hs[j])
			}
			o := &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, RawValue: v}}
			if !first {
				o.Append = wrapperspb.Bool(true)
				o.AppendAction = corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD
			} else {
				o.AppendAction = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
			}
			first = false
			m.set = append(m.set, o)
		}
	}
	return m, nil
}

// minNameSecret is the shortest run of letters and digits in a header
// name that is checked for a secret. Names reach ext_proc in lower case,
// where case-sensitive detectors no longer match a key, so a long run
// next to a detector's keyword is enough to remove the header.
const minNameSecret = 16

// alnumRun is the length of the longest run of ASCII letters, digits and
// '_' in s.
func alnumRun(s string) int {
	best, n := 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' {
			n++
			best = max(best, n)
		} else {
			n = 0
		}
	}
	return best
}

// rewritable fails for the headers Envoy's default mutation rules ignore
// (host, x-envoy-*): a secret there would pass unmasked.
func rewritable(k string) error {
	if k == "host" || strings.HasPrefix(k, "x-envoy-") {
		return fmt.Errorf("%w (%s)", errUnrewritable, k)
	}
	return nil
}

func headerValue(hv *corev3.HeaderValue) []byte {
	if v := hv.GetRawValue(); len(v) > 0 {
		return v
	}
	return []byte(hv.GetValue())
}

// maskBinary masks a binary header (name ending in -bin, base64 per the
// gRPC protocol): its text is masked like any value, and the bytes it
// decodes to are masked too (grpc-status-details-bin holds a
// google.rpc.Status message, any other one bytes) and encoded again.
func maskBinary(tm *masking.TextMasker, k string, v []byte) ([]byte, int) {
	enc := base64.RawStdEncoding
	raw, err := enc.DecodeString(strings.TrimRight(string(v), "="))
	if err != nil || !tm.Found(raw) {
		// Not base64, or clean once decoded: mask it as text (a key
		// written as the value is base64 characters too).
		return tm.MaskFound(nil, v)
	}
	var out []byte
	var n int
	if strings.EqualFold(k, "grpc-status-details-bin") {
		if out, n, err = tm.MaskProtobuf(nil, raw); err != nil {
			// Not a message after all, or a secret across its fields:
			// mask the bytes, which leaves no secret but may not parse.
			out, n = tm.Mask(nil, raw)
		}
	} else {
		out, n = tm.Mask(nil, raw)
	}
	return []byte(enc.EncodeToString(out)), n
}

// applyMasking returns h (lower-case names, duplicates joined with ",")
// with the masked values in place and removed names gone.
func applyMasking(h map[string]string, hs []*corev3.HeaderValue, m headerMasking) map[string]string {
	if !m.changed() {
		return h
	}
	for k := range m.gone {
		delete(h, k)
	}
	seen := map[string]bool{}
	for i, v := range m.values {
		if v == nil {
			continue
		}
		k := strings.ToLower(hs[i].GetKey())
		if seen[k] || m.gone[k] {
			continue
		}
		seen[k] = true
		var parts []string
		for j := range hs {
			if strings.EqualFold(hs[j].GetKey(), k) {
				if m.values[j] != nil {
					parts = append(parts, string(m.values[j]))
				} else {
					parts = append(parts, string(headerValue(hs[j])))
				}
			}
		}
		if _, ok := h[k]; ok {
			h[k] = strings.Join(parts, ",")
		}
	}
	return h
}
