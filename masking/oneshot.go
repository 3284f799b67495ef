package masking

import "sync"

// scannerPool holds scratch space for MaskText across calls and profiles.
var scannerPool = sync.Pool{New: func() any { return &scanner{} }}

// MaskText masks a whole text at once with the detectors of p, as a Text
// stream would, and appends the result to dst. It returns how many spans
// were masked. Unlike a Stream it allocates nothing per call beyond dst's
// growth: the path for short values (header values, request bodies kept
// in recordings), which would otherwise pay for a stream's buffers.
func (e *Engine) MaskText(p Profile, dst, text []byte) ([]byte, int, error) {
	cp, err := e.compile(p)
	if err != nil {
		return dst, 0, err
	}
	sc := scannerPool.Get().(*scanner)
	defer scannerPool.Put(sc)
	if len(sc.last) != len(e.dets) {
		sc.last = make([]int32, len(e.dets))
		for i := range sc.last {
			sc.last[i] = -1
		}
	}
	sc.set = cp.set
	defer func() { sc.set = nil }()
	spans := sc.find(text)
	pos := 0
	for _, s := range spans {
		if s.start > pos {
			dst = append(dst, text[pos:s.start]...)
		}
		dst = append(dst, e.dets[s.det].label...)
		pos = s.end
	}
	return append(dst, text[pos:]...), len(spans), nil
}
