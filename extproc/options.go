package extproc

import (
	"fmt"
	"math/bits"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
)

// GRPCServerOptions are the options airlock's ext_proc gRPC server runs with.
// Body chunks of up to a few hundred KiB cross the stream in both directions;
// gRPC's default buffer pool zeroes every buffer it hands out, which costs as
// much as masking the chunk. The pool here does not: gRPC fills a buffer
// before it reads from it, and a buffer never leaves the process.
//
// The transport takes the pool as an option, but gRPC's proto codec does
// not: it marshals every message, and gathers every message that spans
// several HTTP/2 frames (any body chunk), into buffers of its default pool,
// which for a 64 KiB chunk means clearing a 1 MiB buffer twice per chunk.
// The codec here is the same protobuf encoding with the pool above.
func GRPCServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		experimental.BufferPool(dirtyPool),
		grpc.ForceServerCodecV2(protoCodec{}),
	}
}

// protoCodec is gRPC's protobuf codec with buffers from dirtyPool.
type protoCodec struct{}

var _ encoding.CodecV2 = protoCodec{}

func (protoCodec) Name() string { return "proto" }

func (protoCodec) Marshal(v any) (mem.BufferSlice, error) {
	m := protoMessage(v)
	if m == nil {
		return nil, fmt.Errorf("extproc: cannot marshal %T: not a proto message", v)
	}
	size := proto.Size(m)
	// UseCachedSize is safe right after Size on a message nobody mutates.
	opts := proto.MarshalOptions{UseCachedSize: true}
	if mem.IsBelowBufferPoolingThreshold(size) {
		b, err := opts.Marshal(m)
		if err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	buf := dirtyPool.Get(size)
	b, err := opts.MarshalAppend((*buf)[:0], m)
	if err != nil {
		dirtyPool.Put(buf)
		return nil, err
	}
	if len(b) != size || &b[0] != &(*buf)[0] {
		// The size changed under us: hand over what was written.
		dirtyPool.Put(buf)
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	*buf = b
	return mem.BufferSlice{mem.NewBuffer(buf, dirtyPool)}, nil
}

func protoMessage(v any) proto.Message {
	switch v := v.(type) {
	case protoadapt.MessageV2:
		return v
	case protoadapt.MessageV1:
		return protoadapt.MessageV2Of(v)
	}
	return nil
}

func (protoCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m := protoMessage(v)
	if m == nil {
		return fmt.Errorf("extproc: cannot unmarshal into %T: not a proto message", v)
	}
	buf := data.MaterializeToBuffer(dirtyPool)
	defer buf.Free()
	return proto.Unmarshal(buf.ReadOnlyData(), m)
}

var dirtyPool mem.BufferPool = newTieredPool(256, 4<<10, 16<<10, 32<<10, 64<<10, 256<<10, 1<<20)

// tieredPool hands out buffers from size classes without clearing them.
type tieredPool struct {
	sizes []int
	pools []sync.Pool
}

var _ mem.BufferPool = (*tieredPool)(nil)

func newTieredPool(sizes ...int) *tieredPool {
	return &tieredPool{sizes: sizes, pools: make([]sync.Pool, len(sizes))}
}

func (p *tieredPool) class(n int) int {
	for i, s := range p.sizes {
		if n <= s {
			return i
		}
	}
	return -1
}

// Get returns a buffer of length n; its contents are whatever it last held.
func (p *tieredPool) Get(n int) *[]byte {
	i := p.class(n)
	if i < 0 {
		b := make([]byte, n, 1<<bits.Len(uint(n)))
		return &b
	}
	if b, ok := p.pools[i].Get().(*[]byte); ok {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, p.sizes[i])
	return &b
}

// Put returns a buffer to the class its capacity fills.
func (p *tieredPool) Put(b *[]byte) {
	c := cap(*b)
	for i := len(p.sizes) - 1; i >= 0; i-- {
		if c >= p.sizes[i] {
			if c == p.sizes[i] {
				p.pools[i].Put(b)
			}
			return
		}
	}
}
