package extproc

import (
	"math/bits"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/mem"
)

// GRPCServerOptions are the options airlock's ext_proc gRPC server runs with.
// Body chunks of up to a few hundred KiB cross the stream in both directions;
// gRPC's default buffer pool zeroes every buffer it hands out, which costs as
// much as masking the chunk. The pool here does not: gRPC fills a buffer
// before it reads from it, and a buffer never leaves the process.
//
// The transport takes the pool as an option but gRPC's proto codec does not:
// it marshals every message, and gathers every message that spans several
// HTTP/2 frames (any body chunk), into its default pool, which for a 64 KiB
// chunk means clearing a 1 MiB buffer twice per chunk. protoCodec is the
// same protobuf encoding over the pool here, and it leaves a response body
// chunk in the buffer it was gathered into instead of copying it.
func GRPCServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		experimental.BufferPool(dirtyPool),
		grpc.ForceServerCodecV2(protoCodec{}),
	}
}

var dirtyPool = newTieredPool(256, 4<<10, 16<<10, 32<<10, 64<<10, 128<<10, 256<<10, 1<<20)

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

// Size is the capacity of the buffer Get(n) returns.
func (p *tieredPool) Size(n int) int {
	if i := p.class(n); i >= 0 {
		return p.sizes[i]
	}
	return 1 << bits.Len(uint(n))
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
