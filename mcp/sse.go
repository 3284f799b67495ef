package mcp

import (
	"bytes"
	"slices"
)

// SSE masks a text/event-stream response event by event. Events may be
// split across chunks at any byte: the bytes of an event are held until
// its blank line (at most max bytes; more ends the response), then its data
// (the data lines joined by line feeds) is masked as a JSON-RPC message and
// written back as data lines. Comment, event, id and retry lines pass
// through the detectors. Line ends are written as "\n".
type SSE struct {
	m *ResponseMasker
	// buf holds the bytes of the event under way; scanned is how far they
	// have been read.
	buf     []byte
	scanned int
	max     int
	data    []byte
	out     []byte
	pooled  *[]byte
	// pooledData holds data while an event is masked; first is the event's
	// data while it has one line.
	pooledData *[]byte
	first      []byte
}

// Release gives the SSE's buffers back; it must not be used after.
func (s *SSE) Release() {
	if s.pooled != nil {
		*s.pooled = s.buf[:0]
		putBuf(s.pooled)
		s.pooled, s.buf = nil, nil
	}
	if s.pooledData != nil {
		*s.pooledData = s.data[:0]
		putBuf(s.pooledData)
		s.pooledData, s.data = nil, nil
	}
}

// NewSSE returns an SSE masker over m that holds at most max bytes of one
// event.
func NewSSE(m *ResponseMasker, max int) *SSE {
	return &SSE{m: m, max: max}
}

// Buffered is how many bytes of an unfinished event are held.
func (s *SSE) Buffered() int { return len(s.buf) }

// Write reads p and appends the masked events it completes to dst.
func (s *SSE) Write(dst, p []byte) ([]byte, error) {
	if len(s.buf) == 0 {
		// Complete events at the start of p are masked in place, without
		// copying them into the buffer first.
		end := lastEventEnd(p)
		if end > 0 {
			var err error
			if dst, err = s.events(dst, p[:end]); err != nil {
				return dst, err
			}
			p = p[end:]
		}
		if len(p) == 0 {
			return dst, nil
		}
	}
	if s.buf == nil {
		s.pooled = getBuf(len(p))
		s.buf = *s.pooled
	}
	s.buf = append(s.buf, p...)
	end := lastEventEndFrom(s.buf, max(0, s.scanned-2))
	if end < 0 {
		s.scanned = len(s.buf)
		if len(s.buf) > s.max {
			return dst, ErrMessageTooLarge
		}
		return dst, nil
	}
	var err error
	dst, err = s.events(dst, s.buf[:end])
	rest := copy(s.buf, s.buf[end:])
	s.buf = s.buf[:rest]
	s.scanned = len(s.buf)
	if err == nil && len(s.buf) > s.max {
		err = ErrMessageTooLarge
	}
	return dst, err
}

// Close ends the stream: an event without its blank line is masked as if
// it had one.
func (s *SSE) Close(dst []byte) ([]byte, error) {
	if len(bytes.TrimSpace(s.buf)) == 0 {
		s.buf = s.buf[:0]
		return dst, nil
	}
	b := append(s.buf, '\n', '\n')
	s.buf = s.buf[:0]
	return s.events(dst, b)
}

// lastEventEnd returns the index after the last blank line of b (the end
// of the last complete event), or -1. A "\r" at the very end may be the
// first half of "\r\n": it does not end a line yet.
func lastEventEnd(b []byte) int { return lastEventEndFrom(b, 0) }

// lastEventEndFrom is lastEventEnd looking at line ends from b[from] on
// (the bytes before are read only to see whether a line is empty). It
// scans forward with IndexByte, which is vectorised where LastIndexByte
// is not.
func lastEventEndFrom(b []byte, from int) int {
	last := -1
	var ends lineEnds
	for i := from; i < len(b); {
		p := ends.next(b, i)
		if p < 0 {
			break
		}
		c := b[p]
		if c == '\r' && p == len(b)-1 {
			break
		}
		j := p
		if c == '\n' && j > 0 && b[j-1] == '\r' {
			j--
		}
		if j == 0 || b[j-1] == '\n' || b[j-1] == '\r' {
			last = p + 1
		}
		i = p + 1
	}
	return last
}

// lineEnds finds the line ends of one buffer in order, remembering where
// the next "\r" and "\n" are so that no byte is scanned twice.
type lineEnds struct {
	nl, cr   int // next positions found, -1 when none is left
	searched bool
}

func (e *lineEnds) next(b []byte, i int) int {
	if !e.searched {
		e.nl, e.cr, e.searched = -2, -2, true
	}
	if e.nl != -1 && (e.nl == -2 || e.nl < i) {
		e.nl = indexFrom(b, i, '\n')
	}
	if e.cr != -1 && (e.cr == -2 || e.cr < i) {
		e.cr = indexFrom(b, i, '\r')
	}
	switch {
	case e.nl < 0:
		return e.cr
	case e.cr < 0 || e.nl < e.cr:
		return e.nl
	}
	return e.cr
}

func indexFrom(b []byte, i int, c byte) int {
	k := bytes.IndexByte(b[i:], c)
	if k < 0 {
		return -1
	}
	return i + k
}

// events masks complete events.
func (s *SSE) events(dst, b []byte) ([]byte, error) {
	s.data, s.first = s.data[:0], nil
	hasData := false
	fields := s.out[:0]
	eventType := []byte(nil)
	var ends lineEnds
	for i := 0; i < len(b); {
		line := b[i:]
		n := len(line)
		if p := ends.next(b, i); p >= 0 {
			line = b[i:p]
			n = p - i + 1
			if b[p] == '\r' && p+1 < len(b) && b[p+1] == '\n' {
				n++
			}
		}
		i += n
		if len(line) == 0 {
			// The end of an event.
			var err error
			if dst, err = s.flush(dst, fields, hasData, eventType); err != nil {
				return dst, err
			}
			fields, hasData, eventType = fields[:0], false, nil
			s.data, s.first = s.data[:0], nil
			continue
		}
		name, value := line, []byte(nil)
		if k := bytes.IndexByte(line, ':'); k >= 0 {
			name, value = line[:k], line[k+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		if string(name) == "data" {
			if !hasData {
				// One data line, the common case, is masked where it lies.
				hasData, s.first = true, value
				continue
			}
			if s.first != nil {
				if s.pooledData == nil {
					s.pooledData = getBuf(len(s.first) + len(b) + len(line))
					s.data = *s.pooledData
				}
				s.data = append(s.data[:0], s.first...)
				s.first = nil
			}
			s.data = append(s.data, '\n')
			s.data = append(s.data, value...)
			continue
		}
		if string(name) == "event" {
			eventType = value
		}
		masked, n2 := s.m.text.Mask(fields, line)
		s.m.masked += n2
		fields = append(masked, '\n')
	}
	s.out = fields[:0]
	return dst, nil
}

// flush writes one event: its other lines, then its data masked.
func (s *SSE) flush(dst, fields []byte, hasData bool, eventType []byte) ([]byte, error) {
	if len(fields) == 0 && !hasData {
		return dst, nil
	}
	dst = append(dst, fields...)
	if hasData {
		dst = append(dst, "data: "...)
		start := len(dst)
		data := s.data
		if s.first != nil {
			data = s.first
		}
		dst = slices.Grow(dst, len(data)+len(data)/8+64)
		var err error
		if len(eventType) == 0 || string(eventType) == "message" {
			dst, err = s.m.Message(dst, data)
		} else {
			var n int
			dst, n = s.m.text.Mask(dst, data)
			s.m.masked += n
		}
		if err != nil {
			return dst, err
		}
		dst = append(dataLines(dst, start), '\n')
	}
	return append(dst, '\n'), nil
}

// dataLines makes a data line of each line of dst[start:]: the first has
// its "data: " before start; every later one gets its own.
func dataLines(dst []byte, start int) []byte {
	n := bytes.Count(dst[start:], []byte{'\n'})
	if n == 0 {
		return dst
	}
	const prefix = "data: "
	r := len(dst)
	dst = append(dst, make([]byte, n*len(prefix))...)
	w := len(dst)
	for {
		k := bytes.LastIndexByte(dst[start:r], '\n')
		if k < 0 {
			break
		}
		k += start
		w -= copy(dst[w-(r-k-1):w], dst[k+1:r])
		w -= copy(dst[w-len(prefix):w], prefix)
		w--
		dst[w] = '\n'
		r = k
	}
	return dst
}
