package extproc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"mime"
	"strings"
)

// gRPC message framing (the gRPC over HTTP/2 protocol, and gRPC-Web): each
// message is a flag byte, a 4-byte big-endian length and the message.
const (
	grpcHeaderLen = 5
	// grpcCompressed marks a message compressed with the grpc-encoding.
	grpcCompressed = 0x01
	// grpcWebTrailers marks a gRPC-Web frame carrying the trailers as text.
	grpcWebTrailers = 0x80
)

// grpcKind says whether a content type is gRPC: 0 for no, grpcPlain for
// application/grpc[+codec], grpcWeb for application/grpc-web[+codec] and
// grpcWebText for the base64 form, which cannot be inspected.
func grpcKind(contentType string) int {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(strings.SplitN(contentType, ";", 2)[0]))
	}
	base, _, _ := strings.Cut(mt, "+")
	switch base {
	case "application/grpc":
		return grpcPlain
	case "application/grpc-web":
		return grpcWeb
	case "application/grpc-web-text":
		return grpcWebText
	}
	return 0
}

const (
	grpcPlain = iota + 1
	grpcWeb
	grpcWebText
)

// grpcFramer splits a gRPC response body into whole messages. A message
// that arrives in one chunk is handed over where it lies; one split across
// chunks is assembled in a buffer charged to the stream's lease.
type grpcFramer struct {
	l     *lease
	web   bool
	limit int64

	hdr  [grpcHeaderLen]byte
	hn   int
	size int
	msg  *[]byte
}

var errGRPCFrame = errors.New("extproc: malformed gRPC message framing")

// write consumes chunk and calls frame for each message it completes; msg
// is valid only during the call.
func (g *grpcFramer) write(chunk []byte, frame func(flag byte, msg []byte) error) error {
	for len(chunk) > 0 {
		if g.hn < grpcHeaderLen {
			n := copy(g.hdr[g.hn:], chunk)
			g.hn += n
			chunk = chunk[n:]
			if g.hn < grpcHeaderLen {
				return nil
			}
			flag := g.hdr[0]
			allowed := byte(grpcCompressed)
			if g.web {
				allowed |= grpcWebTrailers
			}
			if flag&^allowed != 0 {
				return fmt.Errorf("%w: flags %#x", errGRPCFrame, flag)
			}
			size := binary.BigEndian.Uint32(g.hdr[1:])
			if int64(size) > g.limit {
				return fmt.Errorf("%w: a gRPC message of %d bytes (%d bytes)", errTooLarge, size, g.limit)
			}
			g.size = int(size)
			if len(chunk) >= g.size {
				// The whole message is in this chunk.
				m := chunk[:g.size]
				chunk = chunk[g.size:]
				g.hn = 0
				if err := frame(flag, m); err != nil {
					return err
				}
				continue
			}
			b, err := g.l.take(g.size)
			if err != nil {
				return err
			}
			g.msg = b
		}
		n := min(g.size-len(*g.msg), len(chunk))
		*g.msg = append(*g.msg, chunk[:n]...)
		chunk = chunk[n:]
		if len(*g.msg) == g.size {
			m := g.msg
			g.msg = nil
			g.hn = 0
			err := frame(g.hdr[0], *m)
			g.l.put(m)
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// close checks that the body ended between messages.
func (g *grpcFramer) close() error {
	if g.hn != 0 {
		return fmt.Errorf("%w: the body ends inside a message", errGRPCFrame)
	}
	return nil
}

// free gives back a message being assembled.
func (g *grpcFramer) free() {
	if g.msg != nil {
		g.l.put(g.msg)
		g.msg = nil
	}
}

// grpcMessage masks one whole gRPC message into the reply being built:
// a compressed message is inflated first, and the message goes out
// uncompressed (the grpc-encoding header was removed).
func (st *stream) grpcMessage(flag byte, msg []byte) error {
	if flag&grpcCompressed != 0 {
		if st.grpcEncoding == "" {
			return fmt.Errorf("%w: a compressed message without grpc-encoding", errGRPCFrame)
		}
		plain, err := st.inflateMessage(msg)
		if plain != nil {
			defer st.lease.put(plain)
		}
		if err != nil {
			return err
		}
		msg = *plain
		flag &^= grpcCompressed
	}
	need := grpcHeaderLen + len(msg) + len(msg)/16 + 64
	b, err := st.out.room(need, 0)
	if err != nil {
		return err
	}
	start := len(*b)
	out := append(*b, flag, 0, 0, 0, 0)
	var n int
	if flag&grpcWebTrailers != 0 {
		out, n = st.tm.Mask(out, msg)
	} else if out, n, err = st.tm.MaskProtobuf(out, msg); err != nil {
		return fmt.Errorf("extproc: gRPC message: %w", err)
	}
	st.grpcMasked += n
	size := len(out) - start - grpcHeaderLen
	if uint64(size) > math.MaxUint32 {
		return fmt.Errorf("%w: a masked gRPC message of %d bytes", errTooLarge, size)
	}
	binary.BigEndian.PutUint32(out[start+1:], uint32(size))
	return st.out.commit(b, out)
}

// inflateMessage inflates a compressed gRPC message into a buffer charged
// to the lease; the caller puts the buffer back.
func (st *stream) inflateMessage(msg []byte) (*[]byte, error) {
	acc, err := st.lease.take(int(min(st.s.opts.MaxDecompressedBytes, int64(4*len(msg)+inflatePiece))))
	if err != nil {
		return nil, err
	}
	f := newInflater(st.grpcEncoding, st.s.opts.MaxDecompressedBytes)
	defer f.Abort()
	emit := func(p []byte) error {
		if len(*acc)+len(p) > cap(*acc) {
			nb, err := st.lease.take(max(2*cap(*acc), len(*acc)+len(p)))
			if err != nil {
				return err
			}
			*nb = append(*nb, *acc...)
			st.lease.put(acc)
			acc = nb
		}
		*acc = append(*acc, p...)
		return nil
	}
	if err := f.Write(msg, emit); err != nil {
		return acc, err
	}
	return acc, f.Close(emit)
}
