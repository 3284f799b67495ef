package masking

// emitFunc appends b to dst in the output encoding (raw text, or the inside
// of a JSON string).
type emitFunc func(dst, b []byte) []byte

func emitRaw(dst, b []byte) []byte { return append(dst, b...) }

// contextBytes is how much already-emitted text is kept in front of the
// buffer so that word boundaries at its start are seen correctly.
const contextBytes = 32

// textMasker masks a stream of text with the detectors of a set. It keeps a
// tail of the stream (at most the longest match of any enabled detector) so
// that a secret split across two writes is still found.
type textMasker struct {
	sc    *scanner
	carry int
	// maxBuf bounds the buffer: a match still growing past it is masked to
	// the end of the buffer rather than held longer.
	maxBuf int
	buf    []byte
	// keep is the number of bytes at the start of buf that were already
	// emitted and are only context.
	keep   int
	masked int
	// b64 is the scratch of base64 runs (textb64.go).
	b64 b64State
	// err is set when the stream cannot go on: a secret found in a long
	// base64 run part of which was emitted.
	err error
}

func newTextMasker(sc *scanner) *textMasker {
	c := sc.set.carry
	if c < 256 {
		c = 256
	}
	// Sized for the long-string path (2*carry plus one piece) so that
	// appends do not double it.
	return &textMasker{sc: sc, carry: c, maxBuf: 2*c + 64<<10, buf: make([]byte, 0, 2*c+longPiece+contextBytes)}
}

func (t *textMasker) reset() {
	t.buf = t.buf[:0]
	t.keep = 0
	t.b64.long.active = false
}

// write feeds p and appends to dst everything that can be emitted safely;
// with final it emits the rest.
func (t *textMasker) write(dst, p []byte, final bool, emit emitFunc) []byte {
	t.buf = append(t.buf, p...)
	pending := len(t.buf) - t.keep
	if pending == 0 {
		return dst
	}
	if !final && pending < 2*t.carry {
		return dst
	}
	spans := t.sc.find(t.buf)
	// Runs that started before keep were decoded whole when they were
	// emitted (a run reaching the end is held, never cut).
	spans, open := t.b64Spans(spans, t.keep)
	spans = mergeSpans(spans)
	n := len(t.buf)
	cut := n
	if !final {
		cut = n - t.carry
	}
	for _, s := range spans {
		if s.start >= cut {
			break
		}
		if s.end > cut {
			if s.end >= n && !final && n < t.maxBuf {
				// The match may continue in the next write: hold it.
				cut = s.start
				break
			}
			cut = s.end
		}
	}
	longFrom := -1
	if open >= 0 && !final && open < cut {
		if n < t.maxBuf {
			// A base64 run may continue in the next write: hold it.
			cut = open
		} else if !t.b64.long.active {
			// Too long to hold: decode it as it goes out.
			t.b64.long.reset()
			longFrom = max(open, t.keep)
		}
	}
	if t.b64.long.active && longFrom < 0 {
		longFrom = t.keep
	}
	if cut <= t.keep {
		return dst
	}
	pos := t.keep
	for _, s := range spans {
		if s.start >= cut {
			break
		}
		if s.end <= t.keep {
			continue
		}
		st := s.start
		if st < t.keep {
			st = t.keep
		}
		if st > pos {
			dst = t.emitFed(dst, pos, st, longFrom, final, emit)
		}
		dst = append(dst, t.sc.set.e.dets[s.det].label...)
		t.masked++
		pos = s.end
	}
	if pos < cut {
		dst = t.emitFed(dst, pos, cut, longFrom, final, emit)
	}
	if final {
		t.reset()
		return dst
	}
	ctx := cut
	if ctx > contextBytes {
		ctx = contextBytes
	}
	m := copy(t.buf, t.buf[cut-ctx:])
	t.buf = t.buf[:m]
	t.keep = ctx
	return dst
}

// emitFed emits buf[from:to] and feeds the part at or after longFrom to the
// decoder of a long base64 run; a secret found there sets t.err.
func (t *textMasker) emitFed(dst []byte, from, to, longFrom int, final bool, emit emitFunc) []byte {
	if t.err != nil {
		return dst
	}
	if longFrom >= 0 && t.b64.long.active && to > longFrom {
		if err := t.feedLong(t.buf[max(from, longFrom):to], final && to == len(t.buf)); err != nil {
			t.err = err
			return dst
		}
	}
	return emit(dst, t.buf[from:to])
}
