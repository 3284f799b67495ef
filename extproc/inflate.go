package extproc

import (
	"bufio"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
)

// errTooLarge is returned when a compressed body inflates past the bound.
var errTooLarge = errors.New("extproc: decompressed body exceeds the limit")

// maxInflatePerChunk bounds what one compressed chunk may inflate to.
const maxInflatePerChunk = 16 << 20

// inflater decompresses a gzip or deflate body that arrives in chunks. A
// goroutine runs the decompressor; chunks are handed to it one at a time and
// each Write returns everything the chunks so far decompress to.
type inflater struct {
	encoding string
	limit    int64

	in      chan []byte
	req     chan struct{}
	done    chan struct{}
	started bool
	idle    bool
	closed  bool

	// Owned by the goroutine while it runs; read by the caller only while
	// the goroutine waits for input or after done.
	out   []byte
	total int64
	err   error
}

func newInflater(encoding string, limit int64) *inflater {
	return &inflater{encoding: encoding, limit: limit,
		in: make(chan []byte), req: make(chan struct{}), done: make(chan struct{})}
}

type chanReader struct {
	f   *inflater
	cur []byte
	eof bool
}

// Read hands over the current chunk, asking the caller for the next one when
// it is used up.
func (r *chanReader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if r.eof {
			return 0, io.EOF
		}
		r.f.req <- struct{}{}
		c, ok := <-r.f.in
		if !ok {
			r.eof = true
			return 0, io.EOF
		}
		r.cur = c
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

func (f *inflater) run() {
	defer close(f.done)
	br := bufio.NewReaderSize(&chanReader{f: f}, 4096)
	var zr io.Reader
	switch f.encoding {
	case "gzip", "x-gzip":
		g, err := gzip.NewReader(br)
		if err != nil {
			f.err = fmt.Errorf("extproc: gzip body: %w", err)
			return
		}
		zr = g
	default:
		// "deflate" is zlib-wrapped per RFC 9110; some servers send raw deflate.
		head, err := br.Peek(2)
		if err == nil && len(head) == 2 && head[0]&0x0f == 8 && (uint16(head[0])<<8|uint16(head[1]))%31 == 0 {
			z, err := zlib.NewReader(br)
			if err != nil {
				f.err = fmt.Errorf("extproc: deflate body: %w", err)
				return
			}
			zr = z
		} else if err != nil && !errors.Is(err, io.EOF) {
			f.err = fmt.Errorf("extproc: deflate body: %w", err)
			return
		} else {
			zr = flate.NewReader(br)
		}
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := zr.Read(buf)
		f.total += int64(n)
		if f.total > f.limit {
			f.err = fmt.Errorf("%w (%d bytes)", errTooLarge, f.limit)
			f.drain()
			return
		}
		f.out = append(f.out, buf[:n]...)
		if len(f.out) > maxInflatePerChunk {
			f.err = fmt.Errorf("%w: one chunk inflates to more than %d bytes", errTooLarge, maxInflatePerChunk)
			f.drain()
			return
		}
		if err == io.EOF {
			// Anything after the end of the compressed stream is an error.
			if _, err := br.ReadByte(); err == nil {
				f.err = errors.New("extproc: data after the end of the compressed body")
				f.drain()
			}
			return
		}
		if err != nil {
			f.err = fmt.Errorf("extproc: %s body: %w", f.encoding, err)
			f.drain()
			return
		}
	}
}

// drain consumes input until the caller closes it, so the caller never blocks.
func (f *inflater) drain() {
	go func() {
		for range f.in {
		}
	}()
}

// wait blocks until the goroutine wants input or has ended.
func (f *inflater) wait() {
	if f.idle {
		return
	}
	select {
	case <-f.req:
		f.idle = true
	case <-f.done:
	}
}

func (f *inflater) finished() bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

// Write hands a compressed chunk over and returns what it inflated to.
func (f *inflater) Write(chunk []byte) ([]byte, error) {
	if !f.started {
		f.started = true
		go f.run()
	}
	f.wait()
	if f.finished() {
		if f.err != nil {
			return nil, f.err
		}
		if len(chunk) > 0 {
			return nil, errors.New("extproc: data after the end of the compressed body")
		}
		return f.take(), nil
	}
	if len(chunk) > 0 {
		f.idle = false
		f.in <- chunk
		f.wait()
	}
	if f.finished() && f.err != nil {
		return nil, f.err
	}
	return f.take(), nil
}

// Close ends the input and returns the rest of the output.
func (f *inflater) Close() ([]byte, error) {
	if !f.started {
		f.started = true
		go f.run()
	}
	if !f.closed {
		f.closed = true
		f.wait()
		close(f.in)
	}
	<-f.done
	if f.err != nil {
		return nil, f.err
	}
	return f.take(), nil
}

// Abort stops the goroutine when the stream ends early.
func (f *inflater) Abort() {
	if !f.started || f.closed {
		return
	}
	f.closed = true
	close(f.in)
	go func() {
		// Let a goroutine blocked on req finish.
		for {
			select {
			case <-f.req:
			case <-f.done:
				return
			}
		}
	}()
}

func (f *inflater) take() []byte {
	out := f.out
	f.out = nil
	return out
}
