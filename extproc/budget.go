package extproc

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/mem"
)

// DefaultMemoryBudget is Options.MemoryBudgetBytes when unset: 256 MiB.
const DefaultMemoryBudget = 256 << 20

// errBudget is returned when a stream cannot reserve the memory it needs.
var errBudget = errors.New("extproc: the memory budget for masking (masking.memory_budget_bytes) is exhausted")

// Budget is the process-wide bound on the memory the server holds for
// masking and inflation: masked output waiting to be sent to Envoy, whole
// gRPC messages, decompressor state and masker state. Each stream that
// masks a body leases from it when its response headers arrive and gives
// everything back when it ends, whatever the way it ends (end of stream,
// error, cancellation); buffers handed to gRPC are given back as gRPC
// frees them. A stream that cannot lease what it needs is refused.
type Budget struct {
	limit int64
	used  atomic.Int64
	// wake is closed and replaced whenever memory is given back while a
	// stream waits to grow.
	mu      sync.Mutex
	wake    chan struct{}
	waiting int
}

// NewBudget returns a budget of limit bytes.
func NewBudget(limit int64) *Budget { return &Budget{limit: limit} }

// Limit is the size of the budget in bytes.
func (b *Budget) Limit() int64 { return b.limit }

// InUse is how many bytes streams hold now.
func (b *Budget) InUse() int64 { return b.used.Load() }

func (b *Budget) reserve(n int64) bool {
	for {
		u := b.used.Load()
		if u+n > b.limit {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

func (b *Budget) release(n int64) {
	if n == 0 {
		return
	}
	b.used.Add(-n)
	b.mu.Lock()
	if b.waiting > 0 {
		close(b.wake)
		b.wake = make(chan struct{})
	}
	b.mu.Unlock()
}

// growWait is how long a stream waits for memory other streams give back
// before it gives up growing: long enough for a reply to reach Envoy, short
// against Envoy's message timeout. Streams that start waiting first give
// up first, and what they held lets the others go on.
const growWait = 100 * time.Millisecond

// reserveWait reserves n bytes, waiting up to growWait for them.
func (b *Budget) reserveWait(n int64) bool {
	if b.reserve(n) {
		return true
	}
	if n > b.limit {
		return false
	}
	timer := time.NewTimer(growWait)
	defer timer.Stop()
	for {
		b.mu.Lock()
		if b.wake == nil {
			b.wake = make(chan struct{})
		}
		wake := b.wake
		b.waiting++
		b.mu.Unlock()
		ok, expired := b.reserve(n), false
		if !ok {
			select {
			case <-wake:
				ok = b.reserve(n)
			case <-timer.C:
				expired = true
			}
		}
		b.mu.Lock()
		b.waiting--
		b.mu.Unlock()
		if ok || expired {
			return ok
		}
	}
}

// leaseGrain is the step by which a lease grows and shrinks.
const leaseGrain = 64 << 10

// lease is one stream's share of the budget. It holds at least keep bytes
// while open and grows as the stream's buffers need; buffers are charged
// to it when taken and uncharged when given back, possibly by gRPC on
// another goroutine after the stream ended. Once closed it holds exactly
// what is still charged, and gives each buffer back to the budget as it
// returns.
type lease struct {
	b    *Budget
	mu   sync.Mutex
	held int64
	used int64
	keep int64
	// state is the part of used that is the stream's own state (masker,
	// decompressor), given back by close.
	state int64
	// growing counts charges waiting for the budget: the lease does not
	// shrink under them.
	growing int
	open    bool
}

// newLease reserves keep bytes; false when the budget cannot spare them.
func newLease(b *Budget, keep int64) (*lease, bool) {
	if !b.reserve(keep) {
		return nil, false
	}
	return &lease{b: b, held: keep, keep: keep, open: true}, true
}

// chargeState accounts the stream's own state, held until close.
func (l *lease) chargeState(n int64) error {
	if err := l.charge(n); err != nil {
		return err
	}
	l.mu.Lock()
	l.state += n
	l.mu.Unlock()
	return nil
}

// charge accounts n more bytes to the stream, growing the lease when it
// must (waiting a little for memory other streams give back).
func (l *lease) charge(n int64) error {
	l.mu.Lock()
	more := l.used + n - l.held
	if more <= 0 {
		l.used += n
		l.mu.Unlock()
		return nil
	}
	if !l.open {
		l.mu.Unlock()
		return errBudget
	}
	l.growing++
	l.mu.Unlock()
	// Not under l.mu: gRPC gives this stream's buffers back meanwhile.
	more = (more + leaseGrain - 1) / leaseGrain * leaseGrain
	ok := l.b.reserveWait(more)
	l.mu.Lock()
	l.growing--
	if ok && !l.open {
		l.b.release(more)
		ok = false
	}
	if ok {
		l.held += more
		l.used += n
	}
	l.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w (%d bytes in use of %d)", errBudget, l.b.InUse(), l.b.limit)
	}
	return nil
}

// uncharge gives n bytes back; safe from any goroutine.
func (l *lease) uncharge(n int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.used -= n
	if !l.open {
		l.held -= n
		l.b.release(n)
		return
	}
	// After a burst, shrink back towards keep.
	if target := max(l.keep, l.used); l.growing == 0 && l.held-target >= leaseGrain {
		l.b.release(l.held - target)
		l.held = target
	}
}

// close gives back everything not charged; what is still charged returns
// as it is uncharged.
func (l *lease) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.open {
		return
	}
	l.open = false
	l.used -= l.state
	l.state = 0
	l.b.release(l.held - l.used)
	l.held = l.used
}

// minBuffer is the smallest buffer a lease hands out: above gRPC's pooling
// threshold, so that gRPC gives every handed-off buffer back.
const minBuffer = 4 << 10

// take returns a buffer with room for at least n bytes, charged to the
// lease; its length is 0.
func (l *lease) take(n int) (*[]byte, error) {
	n = max(n, minBuffer)
	c := dirtyPool.Size(n)
	if err := l.charge(int64(c)); err != nil {
		return nil, err
	}
	b := dirtyPool.Get(n)
	*b = (*b)[:0]
	if cap(*b) != c {
		// Cannot happen with the pool's size classes; keep the books right.
		l.uncharge(int64(c))
		if err := l.charge(int64(cap(*b))); err != nil {
			dirtyPool.Put(b)
			return nil, err
		}
	}
	return b, nil
}

// put gives a buffer back.
func (l *lease) put(b *[]byte) {
	c := cap(*b)
	dirtyPool.Put(b)
	l.uncharge(int64(c))
}

// handOff makes b a gRPC buffer: gRPC writes it to Envoy and frees it,
// which gives it back to the lease. Should gRPC drop it without freeing it
// (a connection that dies with the buffer queued), the garbage collector
// gives it back instead.
func (l *lease) handOff(b *[]byte) mem.Buffer {
	h := &handedBuffer{l: l, n: int64(cap(*b))}
	h.cleanup = runtime.AddCleanup(b, (*handedBuffer).lost, h)
	return mem.NewBuffer(b, h)
}

// handedBuffer is the pool of one handed-off buffer.
type handedBuffer struct {
	l       *lease
	n       int64
	cleanup runtime.Cleanup
	done    atomic.Bool
}

var _ mem.BufferPool = (*handedBuffer)(nil)

// Get is never called: gRPC only returns the buffer.
func (h *handedBuffer) Get(n int) *[]byte { return dirtyPool.Get(n) }

// Put is gRPC freeing the buffer.
func (h *handedBuffer) Put(b *[]byte) {
	if h.done.Swap(true) {
		return
	}
	h.cleanup.Stop()
	dirtyPool.Put(b)
	h.l.uncharge(h.n)
}

func (h *handedBuffer) lost() {
	if !h.done.Swap(true) {
		h.l.uncharge(h.n)
	}
}

// output is the masked bytes of one reply, in buffers charged to a lease.
type output struct {
	l    *lease
	bufs []*[]byte
	n    int
}

// room returns the last buffer if it has room for need more bytes, else a
// new buffer of at least max(need, size) bytes.
func (o *output) room(need, size int) (*[]byte, error) {
	if k := len(o.bufs); k > 0 {
		if b := o.bufs[k-1]; cap(*b)-len(*b) >= need {
			return b, nil
		}
	}
	b, err := o.l.take(max(need, size))
	if err != nil {
		return nil, err
	}
	o.bufs = append(o.bufs, b)
	return b, nil
}

// commit records that the last buffer, b, now holds out (b's bytes with
// more appended). When the appends outgrew b, out is a new array: it is
// charged in b's place.
func (o *output) commit(b *[]byte, out []byte) error {
	o.n += len(out) - len(*b)
	if cap(out) == cap(*b) {
		*b = out
		return nil
	}
	if err := o.l.charge(int64(cap(out))); err != nil {
		o.n -= len(out) - len(*b)
		return err
	}
	o.l.put(b)
	nb := new([]byte)
	*nb = out
	o.bufs[len(o.bufs)-1] = nb
	return nil
}

// free gives every buffer back.
func (o *output) free() {
	for _, b := range o.bufs {
		o.l.put(b)
	}
	o.bufs = o.bufs[:0]
	o.n = 0
}

// equal reports whether the output is b.
func (o *output) equal(b []byte) bool {
	if o.n != len(b) {
		return false
	}
	for _, x := range o.bufs {
		if string(*x) != string(b[:len(*x)]) {
			return false
		}
		b = b[len(*x):]
	}
	return true
}

// appendTo appends at most limit bytes of the output to dst.
func (o *output) appendTo(dst []byte, limit int) []byte {
	for _, x := range o.bufs {
		if limit <= 0 {
			break
		}
		n := min(limit, len(*x))
		dst = append(dst, (*x)[:n]...)
		limit -= n
	}
	return dst
}
