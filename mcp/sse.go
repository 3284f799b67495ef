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
	// pooledData holds data while an event is masked.
	pooledData *[]byte
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
// (the bytes before are read only to see whether a line is empty).
func lastEventEndFrom(b []byte, from int) int {
	hi := len(b)
	for hi > from {
		// The last line end below hi, found with two fast scans.
		w := b[from:hi]
		i := max(bytes.LastIndexByte(w, '\n'), bytes.LastIndexByte(w, '\r'))
		if i < 0 {
			return -1
		}
		i += from
		hi = i
		c := b[i]
		if c == '\r' && i == len(b)-1 {
			continue
		}
		j := i
		if c == '\n' && j > 0 && b[j-1] == '\r' {
			j--
		}
		if j == 0 || b[j-1] == '\n' || b[j-1] == '\r' {
			return i + 1
		}
	}
	return -1
}

// events masks complete events.
func (s *SSE) events(dst, b []byte) ([]byte, error) {
	s.data = s.data[:0]
	hasData := false
	fields := s.out[:0]
	eventType := []byte(nil)
	for len(b) > 0 {
		line := b
		n := len(b)
		if k := lineEnd(b); k >= 0 {
			line = b[:k]
			n = k + 1
			if b[k] == '\r' && k+1 < len(b) && b[k+1] == '\n' {
				n++
			}
		}
		b = b[n:]
		if len(line) == 0 {
			// The end of an event.
			var err error
			if dst, err = s.flush(dst, fields, hasData, eventType); err != nil {
				return dst, err
			}
			fields, hasData, eventType = fields[:0], false, nil
			s.data = s.data[:0]
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
			if s.pooledData == nil {
				s.pooledData = getBuf(len(b) + len(line))
				s.data = *s.pooledData
			}
			if hasData {
				s.data = append(s.data, '\n')
			}
			hasData = true
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
		dst = slices.Grow(dst, len(s.data)+len(s.data)/8+64)
		var err error
		if len(eventType) == 0 || string(eventType) == "message" {
			dst, err = s.m.Message(dst, s.data)
		} else {
			var n int
			dst, n = s.m.text.Mask(dst, s.data)
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

// lineEnd is the index of the first "\r" or "\n" of b, or -1.
func lineEnd(b []byte) int {
	n := bytes.IndexByte(b, '\n')
	r := bytes.IndexByte(b, '\r')
	if r >= 0 && (n < 0 || r < n) {
		return r
	}
	return n
}
