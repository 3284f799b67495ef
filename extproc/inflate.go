package extproc

import (
	"bufio"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"iter"
)

// errTooLarge is returned when a compressed body inflates past the bound.
var errTooLarge = errors.New("extproc: the decompressed body exceeds masking.max_decompressed_bytes")

// inflatePiece is the most an inflater hands over at once.
const inflatePiece = 32 << 10

// inflaterCost is what an inflater holds while it runs (decompressor
// window and tables, input buffer, output piece), charged to the lease.
const inflaterCost = 128 << 10

// inflater decompresses a gzip or deflate stream that arrives in chunks.
// Output is handed over in pieces of at most inflatePiece bytes as it is
// produced, so what a chunk inflates to is never held whole: the caller
// masks each piece before the next is made. The decompressor runs as a
// coroutine (iter.Pull) that pulls input chunk by chunk.
type inflater struct {
	encoding string
	limit    int64
	total    int64

	next     func() ([]byte, bool)
	stop     func()
	started  bool
	finished bool

	// in is the chunk being consumed; eof is set by Close.
	in  []byte
	eof bool
	// wantInput is set by the coroutine when it yields for more input.
	wantInput bool
	err       error
}

func newInflater(encoding string, limit int64) *inflater {
	return &inflater{encoding: encoding, limit: limit}
}

// inputReader feeds the decompressor the current chunk and yields to the
// caller when it is used up.
type inputReader struct {
	f     *inflater
	yield func([]byte) bool
}

func (r *inputReader) Read(p []byte) (int, error) {
	for len(r.f.in) == 0 {
		if r.f.eof {
			return 0, io.EOF
		}
		r.f.wantInput = true
		if !r.yield(nil) {
			return 0, errAborted
		}
	}
	n := copy(p, r.f.in)
	r.f.in = r.f.in[n:]
	return n, nil
}

var errAborted = errors.New("extproc: inflation aborted")

func (f *inflater) run(yield func([]byte) bool) {
	br := bufio.NewReaderSize(&inputReader{f: f, yield: yield}, 4096)
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
		switch {
		case err == nil && head[0]&0x0f == 8 && (uint16(head[0])<<8|uint16(head[1]))%31 == 0:
			z, err := zlib.NewReader(br)
			if err != nil {
				f.err = fmt.Errorf("extproc: deflate body: %w", err)
				return
			}
			zr = z
		case err != nil && !errors.Is(err, io.EOF):
			f.err = fmt.Errorf("extproc: deflate body: %w", err)
			return
		default:
			zr = flate.NewReader(br)
		}
	}
	buf := make([]byte, inflatePiece)
	for {
		n, err := zr.Read(buf)
		if n > 0 {
			f.total += int64(n)
			if f.total > f.limit {
				f.err = fmt.Errorf("%w (%d bytes)", errTooLarge, f.limit)
				return
			}
			if !yield(buf[:n]) {
				return
			}
		}
		if err == io.EOF {
			// Anything after the end of the compressed stream is an error.
			if _, err := br.ReadByte(); err == nil {
				f.err = errors.New("extproc: data after the end of the compressed body")
			} else if !errors.Is(err, io.EOF) && f.err == nil {
				f.err = fmt.Errorf("extproc: %s body: %w", f.encoding, err)
			}
			return
		}
		if err != nil {
			if !errors.Is(err, errAborted) {
				f.err = fmt.Errorf("extproc: %s body: %w", f.encoding, err)
			}
			return
		}
	}
}

// pump runs the decompressor until it wants input or ends, handing each
// piece to emit; the piece is valid only during the call.
func (f *inflater) pump(emit func([]byte) error) error {
	if !f.started {
		f.started = true
		f.next, f.stop = iter.Pull(iter.Seq[[]byte](f.run))
	}
	for !f.finished {
		f.wantInput = false
		piece, ok := f.next()
		if !ok {
			f.finished = true
			break
		}
		if f.wantInput {
			return nil
		}
		if err := emit(piece); err != nil {
			f.stop()
			f.finished = true
			if f.err == nil {
				f.err = err
			}
			return err
		}
	}
	if f.err != nil {
		return f.err
	}
	if len(f.in) > 0 {
		f.err = errors.New("extproc: data after the end of the compressed body")
	}
	return f.err
}

// Write hands a compressed chunk over; emit receives what it inflates to,
// piece by piece.
func (f *inflater) Write(chunk []byte, emit func([]byte) error) error {
	if f.err != nil {
		return f.err
	}
	f.in = chunk
	err := f.pump(emit)
	f.in = nil
	return err
}

// Close ends the input, hands over the rest of the output and checks that
// the compressed stream ended where the body did.
func (f *inflater) Close(emit func([]byte) error) error {
	if f.err != nil {
		return f.err
	}
	f.eof = true
	return f.pump(emit)
}

// Abort stops the decompressor when the stream ends early.
func (f *inflater) Abort() {
	if f.started && !f.finished {
		f.stop()
		f.finished = true
	}
}
