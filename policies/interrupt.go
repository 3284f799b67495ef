package policies

import (
	"context"
	"sync/atomic"
	"time"
)

// interruptFor returns the context an expression that loops over input is
// evaluated under: ctx itself when it has no deadline; else a context that
// ends at ctx's deadline rounded up to the next interruptStep, shared by
// every evaluation whose deadline rounds to the same instant. cel-go
// derives a context from it for every such evaluation: from a context of
// its own per request, that meant a timer per request, armed and stopped,
// which cost more than the expressions; from a shared one it is an entry
// in its list of children. A loop is then interrupted at most
// interruptStep after the deadline, and a cancellation of ctx before its
// deadline is not seen inside a loop: the caller checks ctx when the
// evaluation returns.
func interruptFor(ctx context.Context) context.Context {
	d, ok := ctx.Deadline()
	if !ok {
		return ctx
	}
	step := (d.UnixNano() + int64(interruptStep) - 1) / int64(interruptStep)
	slot := &interrupts[step%int64(len(interrupts))]
	if b := slot.Load(); b != nil && b.step == step {
		return b.ctx
	}
	b := &interruptBucket{step: step}
	b.ctx, b.cancel = context.WithDeadline(context.Background(), time.Unix(0, step*int64(interruptStep)))
	slot.Store(b)
	return b.ctx
}

// interruptStep is the granularity of the shared interrupt deadlines.
const interruptStep = 10 * time.Millisecond

// interruptBucket is the context of one rounded deadline; its timer
// releases it when it fires (cancel is kept for that reason alone).
type interruptBucket struct {
	step   int64
	ctx    context.Context
	cancel context.CancelFunc
}

// interrupts holds the buckets of the deadlines in use, indexed by their
// step; 256 slots cover 2.56 s of deadlines without a collision (a
// collision only costs a new bucket).
var interrupts [256]atomic.Pointer[interruptBucket]
