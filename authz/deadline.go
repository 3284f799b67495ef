package authz

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// deadline is a context that ends at a deadline, like context.WithDeadline,
// but starts no timer until something waits on it. Most decisions wait on
// nothing (the token, the session and the resources are cached), and a
// timer per Check, armed and then stopped, costs about as much as a policy
// rule: one is started the first time Done is called, which is what a
// blocking call (an HTTP or Redis round trip, context.WithCancel,
// context.AfterFunc) does before it blocks. Err needs no timer: it reads
// the clock.
type deadline struct {
	parent context.Context
	at     time.Time

	timed   atomic.Pointer[context.Context] // set once, by start or stop
	stopped atomic.Bool
	mu      sync.Mutex
	cancel  context.CancelFunc
}

// canceled is the context of a deadline stopped before anything waited.
var canceled = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// withDeadline returns parent bounded by d from now. Its stop must be
// called, as context.WithTimeout's cancel.
func withDeadline(parent context.Context, d time.Duration) *deadline {
	return &deadline{parent: parent, at: time.Now().Add(d)}
}

func (c *deadline) Deadline() (time.Time, bool) {
	if p, ok := c.parent.Deadline(); ok && p.Before(c.at) {
		return p, true
	}
	return c.at, true
}

func (c *deadline) Done() <-chan struct{} {
	return c.start().Done()
}

// start arms the timer once and returns the context it ends.
func (c *deadline) start() context.Context {
	if t := c.timed.Load(); t != nil {
		return *t
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := c.timed.Load(); t != nil {
		return *t
	}
	ctx := canceled
	if !c.stopped.Load() {
		ctx, c.cancel = context.WithDeadline(c.parent, c.at)
	}
	c.timed.Store(&ctx)
	return ctx
}

func (c *deadline) Err() error {
	if t := c.timed.Load(); t != nil {
		return (*t).Err()
	}
	if err := c.parent.Err(); err != nil {
		return err
	}
	if c.stopped.Load() {
		return context.Canceled
	}
	if !time.Now().Before(c.at) {
		return context.DeadlineExceeded
	}
	return nil
}

// Value asks the timer's context once there is one: context.WithCancel
// over c then finds the timer's own cancelCtx there (it always starts
// the timer first, with Done) and registers with it as with any context
// of the standard library, with no goroutine and no callback.
func (c *deadline) Value(key any) any {
	if t := c.timed.Load(); t != nil {
		return (*t).Value(key)
	}
	return c.parent.Value(key)
}

// AfterFunc lets context.AfterFunc over c register with its timer.
func (c *deadline) AfterFunc(f func()) func() bool {
	return context.AfterFunc(c.start(), f)
}

// stop ends c, as a context.WithTimeout's cancel does, and releases its
// timer if one was started.
func (c *deadline) stop() {
	c.stopped.Store(true)
	if c.timed.Load() == nil {
		return
	}
	c.mu.Lock()
	cancel := c.cancel
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}
