package authz

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDeadlineEndsWithoutAWaiter(t *testing.T) {
	ctx := withDeadline(context.Background(), 20*time.Millisecond)
	defer ctx.stop()
	if err := ctx.Err(); err != nil {
		t.Fatalf("Err before the deadline: %v", err)
	}
	d, ok := ctx.Deadline()
	if !ok || time.Until(d) > 20*time.Millisecond {
		t.Fatalf("Deadline() = %v, %v", d, ok)
	}
	time.Sleep(30 * time.Millisecond)
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err after the deadline, no timer: %v", ctx.Err())
	}
	select {
	case <-ctx.Done():
	default:
		t.Fatal("Done is not closed after the deadline")
	}
	if ctx.timed.Load() == nil {
		t.Fatal("Done did not start the timer")
	}
}

func TestDeadlineDoneClosesAtTheDeadline(t *testing.T) {
	ctx := withDeadline(context.Background(), 20*time.Millisecond)
	defer ctx.stop()
	start := time.Now()
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done never closed")
	}
	if waited := time.Since(start); waited < 15*time.Millisecond {
		t.Fatalf("Done closed after %v, before the deadline", waited)
	}
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err = %v", ctx.Err())
	}
}

func TestDeadlineStopCancels(t *testing.T) {
	for _, started := range []bool{false, true} {
		ctx := withDeadline(context.Background(), time.Hour)
		if started {
			_ = ctx.Done()
		}
		ctx.stop()
		if !errors.Is(ctx.Err(), context.Canceled) {
			t.Errorf("started=%v: Err after stop = %v", started, ctx.Err())
		}
		select {
		case <-ctx.Done():
		default:
			t.Errorf("started=%v: Done open after stop", started)
		}
	}
}

func TestDeadlineFollowsItsParent(t *testing.T) {
	type key struct{}
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	ctx := withDeadline(parent, time.Hour)
	defer ctx.stop()
	if ctx.Value(key{}) != "v" {
		t.Fatal("Value does not reach the parent")
	}
	child, childCancel := context.WithCancel(ctx)
	defer childCancel()
	fired := make(chan struct{})
	context.AfterFunc(ctx, func() { close(fired) })
	cancel()
	if !errors.Is(ctx.Err(), context.Canceled) {
		t.Fatalf("Err after the parent's cancel = %v", ctx.Err())
	}
	for name, done := range map[string]<-chan struct{}{"child": child.Done(), "AfterFunc": fired} {
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s not ended by the parent's cancel", name)
		}
	}

	early, cancelEarly := context.WithTimeout(context.Background(), time.Minute)
	defer cancelEarly()
	bounded := withDeadline(early, time.Hour)
	defer bounded.stop()
	want, _ := early.Deadline()
	if got, _ := bounded.Deadline(); !got.Equal(want) {
		t.Fatalf("Deadline() = %v, want the parent's earlier %v", got, want)
	}
}

// BenchmarkDeadline compares the decision's deadline with
// context.WithTimeout when nothing waits on it, as in a cached decision.
func BenchmarkDeadline(b *testing.B) {
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.Run("context.WithTimeout", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ctx, stop := context.WithTimeout(parent, time.Second)
			_ = ctx.Err()
			stop()
		}
	})
	b.Run("withDeadline", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ctx := withDeadline(parent, time.Second)
			_ = ctx.Err()
			ctx.stop()
		}
	})
}

// TestDeadlineChildrenNeedNoGoroutine: context.WithCancel over a started
// deadline (as an HTTP or Redis client makes) registers with its timer,
// as over a context.WithTimeout.
func TestDeadlineChildrenNeedNoGoroutine(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	ctx := withDeadline(parent, time.Hour)
	defer ctx.stop()
	_ = ctx.Done()
	allocs := testing.AllocsPerRun(100, func() {
		_, childCancel := context.WithCancel(ctx)
		childCancel()
	})
	timeout, stop := context.WithTimeout(parent, time.Hour)
	defer stop()
	want := testing.AllocsPerRun(100, func() {
		_, childCancel := context.WithCancel(timeout)
		childCancel()
	})
	if allocs > want {
		t.Fatalf("a child of a deadline costs %v allocations, of a context.WithTimeout %v", allocs, want)
	}
	child, childCancel := context.WithCancel(ctx)
	defer childCancel()
	ctx.stop()
	select {
	case <-child.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the child outlived the deadline's stop")
	}
}
