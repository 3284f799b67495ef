package masking

import (
	"math"
	"sort"
)

// detSet is the set of detectors one stream runs, compiled from a Profile.
type detSet struct {
	e       *Engine
	enabled []bool
	// full lists enabled detectors without keywords: they scan every text.
	full []int32
	// carry is the longest match any enabled detector can produce.
	carry int
	// secretFields enables the secret_field detector (JSON only).
	secretFields bool
	any          bool
	// custom is true when a custom detector is enabled.
	custom bool
}

// scanner holds per-stream scratch space for finding spans.
type scanner struct {
	set   *detSet
	spans []span
	// windows per detector hit, merged.
	wins []window
	last []int32 // index into wins of the last window per detector, -1 if none
	used []int32 // detectors touched in this scan
}

type window struct {
	det        int32
	start, end int
	kwStart    int
	kwEnd      int
}

func newScanner(set *detSet) *scanner {
	s := &scanner{set: set, last: make([]int32, len(set.e.dets))}
	for i := range s.last {
		s.last[i] = -1
	}
	return s
}

// find returns the spans to mask in text, sorted and merged. The returned
// slice is reused by the next call.
func (s *scanner) find(text []byte) []span {
	s.spans = s.spans[:0]
	if !s.set.any || len(text) < minMatchLen {
		return s.spans
	}
	if len(text) < minMatchNoAt && !s.set.custom && !hasAt(text) {
		// Only matches holding '@' (e-mail, user:password@host) are this short.
		return s.spans
	}
	e := s.set.e
	s.wins = s.wins[:0]
	s.used = s.used[:0]
	e.ac.scan(text, func(id int32, end int) {
		kw := e.keywords[id]
		d := kw.det
		if !s.set.enabled[d] {
			return
		}
		det := e.dets[d]
		kwStart := end - kw.n
		if det.find != nil {
			// Hand-written finders inspect each hit themselves.
			s.wins = append(s.wins, window{det: d, kwStart: kwStart, kwEnd: end, start: -1})
			return
		}
		ws := kwStart - det.back
		if ws < 0 {
			ws = 0
		}
		we := kwStart + det.maxLen
		if we > len(text) {
			we = len(text)
		}
		if li := s.last[d]; li >= 0 && ws <= s.wins[li].end {
			if we > s.wins[li].end {
				s.wins[li].end = we
			}
			return
		}
		if s.last[d] < 0 {
			s.used = append(s.used, d)
		}
		s.last[d] = int32(len(s.wins))
		s.wins = append(s.wins, window{det: d, start: ws, end: we})
	})
	for _, d := range s.used {
		s.last[d] = -1
	}
	for _, w := range s.wins {
		det := e.dets[w.det]
		if w.start < 0 {
			n := len(s.spans)
			s.spans = det.find(text, w.kwStart, w.kwEnd, s.spans)
			for i := n; i < len(s.spans); i++ {
				s.spans[i].det = w.det
			}
			continue
		}
		s.spans = s.runRegex(det, w.det, text, w.start, w.end)
	}
	digits := -1
	var has uint8
	for _, d := range s.set.full {
		det := e.dets[d]
		if det.minDigits > 0 || det.needs != 0 {
			if digits < 0 {
				digits, has = countDigits(text)
			}
			if digits < det.minDigits || has&det.needs != det.needs {
				continue
			}
		}
		if det.find != nil {
			n := len(s.spans)
			s.spans = det.find(text, 0, 0, s.spans)
			for i := n; i < len(s.spans); i++ {
				s.spans[i].det = d
			}
			continue
		}
		s.spans = s.runRegex(det, d, text, 0, len(text))
	}
	return mergeSpans(s.spans)
}

func (s *scanner) runRegex(det *detector, d int32, text []byte, ws, we int) []span {
	for _, m := range det.re.FindAllSubmatchIndex(text[ws:we], -1) {
		a, b := m[0], m[1]
		if det.group > 0 && len(m) > 2*det.group+1 {
			a, b = m[2*det.group], m[2*det.group+1]
		}
		if a < 0 || b <= a {
			continue
		}
		if ws+m[1] == we && we < len(text) {
			// The window cut the match: extend over token characters so
			// that no tail of a long secret is left unmasked.
			for ws+b < len(text) && tokenChar(text[ws+b]) {
				b++
			}
		}
		if det.entropy > 0 && shannon(text[ws+a:ws+b]) < det.entropy {
			continue
		}
		s.spans = append(s.spans, span{start: ws + a, end: ws + b, det: d})
	}
	return s.spans
}

// mergeSpans sorts spans and merges overlapping ones in place.
func mergeSpans(sp []span) []span {
	if len(sp) < 2 {
		return sp
	}
	sort.Slice(sp, func(i, j int) bool { return sp[i].start < sp[j].start })
	out := sp[:1]
	for _, x := range sp[1:] {
		last := &out[len(out)-1]
		if x.start < last.end {
			if x.end > last.end {
				last.end = x.end
			}
			continue
		}
		out = append(out, x)
	}
	return out
}

// shannon returns the Shannon entropy of b in bits per byte.
func shannon(b []byte) float64 {
	var counts [256]int
	for _, c := range b {
		counts[c]++
	}
	n := float64(len(b))
	h := 0.0
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}

// tokenChar reports whether c can be part of a token or key.
func tokenChar(c byte) bool {
	return isAlnum(c) || c == '_' || c == '-' || c == '.' || c == '+' || c == '/' || c == '='
}

// minMatchLen is the shortest text any detector can match; minMatchNoAt
// the shortest match of a built-in detector without '@' (a US SSN).
const (
	minMatchLen  = 6
	minMatchNoAt = 11
)

func hasAt(b []byte) bool {
	for _, c := range b {
		if c == '@' {
			return true
		}
	}
	return false
}

// Byte classes a detector may need in a text (detector.needs).
const (
	needDash  = 1 << iota // '-' (a US SSN)
	needUpper             // 'A'-'Z' (an IBAN's country code)
)

// digitClass marks digits for countDigits; it sits above the need bits.
const digitClass = 4

// byteClasses maps a byte to digitClass, needDash or needUpper.
var byteClasses = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] = digitClass
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = needUpper
	}
	t['-'] = needDash
	return t
}()

// countDigits counts the ASCII digits of b and reports which of the
// needDash and needUpper classes occur in it.
func countDigits(b []byte) (int, uint8) {
	n := 0
	var has uint8
	for _, c := range b {
		v := byteClasses[c]
		n += int(v / digitClass)
		has |= v
	}
	return n, has &^ digitClass
}
