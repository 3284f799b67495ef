package masking

import "sync"

// scannerPool holds scratch space for whole-text masking across calls and
// profiles.
var scannerPool = sync.Pool{New: func() any { return &scanner{} }}

// TextMasker masks whole texts at once with one profile's detectors, as a
// Text stream would. It allocates nothing per call beyond the output's
// growth and is safe for concurrent use: the path for short values (header
// values, paths, queries, request bodies kept in recordings), which would
// otherwise pay for a stream's buffers.
type TextMasker struct {
	e  *Engine
	cp *compiledProfile
}

// TextMasker compiles p for whole-text masking.
func (e *Engine) TextMasker(p Profile) (*TextMasker, error) {
	cp, err := e.compile(p)
	if err != nil {
		return nil, err
	}
	return &TextMasker{e: e, cp: cp}, nil
}

// Mask appends text, its secrets replaced by their labels, to dst and
// returns how many spans were masked.
func (m *TextMasker) Mask(dst, text []byte) ([]byte, int) {
	return m.mask(dst, text, true)
}

// MaskFound is Mask for the common case of a clean text: when text holds
// nothing to mask it returns dst unchanged and 0, without copying text.
func (m *TextMasker) MaskFound(dst, text []byte) ([]byte, int) {
	return m.mask(dst, text, false)
}

// Found reports whether text holds anything the detectors mask.
func (m *TextMasker) Found(text []byte) bool {
	sc := m.scanner()
	spans := m.find(sc, text)
	found := len(spans) > 0
	m.done(sc)
	return found
}

// find is the scanner's spans plus those of base64 runs holding a secret.
func (m *TextMasker) find(sc *scanner, text []byte) []span {
	spans := sc.find(text)
	if !m.cp.set.any || !hasB64Run(text) {
		return spans
	}
	st := b64Pool.Get().(*b64State)
	spans, _ = st.spans(m.cp.set, text, 0, spans)
	b64Pool.Put(st)
	return mergeSpans(spans)
}

func (m *TextMasker) scanner() *scanner {
	sc := scannerPool.Get().(*scanner)
	if len(sc.last) != len(m.e.dets) {
		sc.last = make([]int32, len(m.e.dets))
		for i := range sc.last {
			sc.last[i] = -1
		}
	}
	sc.set = m.cp.set
	return sc
}

func (m *TextMasker) done(sc *scanner) {
	sc.set = nil
	scannerPool.Put(sc)
}

func (m *TextMasker) mask(dst, text []byte, copyClean bool) ([]byte, int) {
	sc := m.scanner()
	spans := m.find(sc, text)
	n := len(spans)
	if n == 0 {
		m.done(sc)
		if copyClean {
			dst = append(dst, text...)
		}
		return dst, 0
	}
	pos := 0
	for _, s := range spans {
		if s.start > pos {
			dst = append(dst, text[pos:s.start]...)
		}
		dst = append(dst, m.e.dets[s.det].label...)
		pos = s.end
	}
	m.done(sc)
	return append(dst, text[pos:]...), n
}

// MaskText masks a whole text at once with the detectors of p; see
// TextMasker, which saves compiling p on every call.
func (e *Engine) MaskText(p Profile, dst, text []byte) ([]byte, int, error) {
	m, err := e.TextMasker(p)
	if err != nil {
		return dst, 0, err
	}
	out, n := m.Mask(dst, text)
	return out, n, nil
}

// KeywordFound reports whether text holds the keyword of one of the
// profile's detectors, in any letter case: the prefilter alone, for text
// whose letter case was lost (HTTP/2 header names are lower case), where
// the detectors themselves may no longer match.
func (m *TextMasker) KeywordFound(text []byte) bool {
	found := false
	m.e.ac.scan(text, func(id int32, _ int) {
		if m.cp.set.enabled[m.e.keywords[id].det] {
			found = true
		}
	})
	return found
}
