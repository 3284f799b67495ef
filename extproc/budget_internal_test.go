package extproc

import (
	"runtime"
	"testing"
	"time"
)

// A lease grows past keep as buffers are charged, shrinks back when they
// return, and after close gives each outstanding buffer back to the budget
// as it returns.
func TestLeaseAccounting(t *testing.T) {
	b := NewBudget(1 << 20)
	l, ok := newLease(b, 256<<10)
	if !ok || b.InUse() != 256<<10 {
		t.Fatalf("lease: %v, in use %d", ok, b.InUse())
	}
	if _, ok := newLease(b, 1<<20); ok {
		t.Fatal("a lease past the budget was granted")
	}
	if err := l.chargeState(64 << 10); err != nil {
		t.Fatal(err)
	}
	big, err := l.take(200 << 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.InUse(); got != 64<<10+256<<10 {
		t.Fatalf("in use %d after a 256 KiB buffer", got)
	}
	if _, err := l.take(700 << 10); err == nil {
		t.Fatal("a buffer past the budget was granted")
	}
	l.put(big)
	if got := b.InUse(); got != 256<<10 {
		t.Fatalf("in use %d after the buffer came back, want the lease's keep", got)
	}
	small, err := l.take(10 << 10)
	if err != nil {
		t.Fatal(err)
	}
	l.close()
	if got := b.InUse(); got != int64(cap(*small)) {
		t.Fatalf("in use %d after close with one %d-byte buffer out", got, cap(*small))
	}
	l.put(small)
	if b.InUse() != 0 {
		t.Fatalf("in use %d at the end", b.InUse())
	}
}

// A buffer handed to gRPC comes back when gRPC frees it, once; one gRPC
// drops without freeing comes back through the garbage collector.
func TestHandoff(t *testing.T) {
	b := NewBudget(8 << 20)
	l, _ := newLease(b, 0)
	buf, err := l.take(64 << 10)
	if err != nil {
		t.Fatal(err)
	}
	*buf = append(*buf, "masked"...)
	mb := l.handOff(buf)
	l.close()
	if b.InUse() != 64<<10 {
		t.Fatalf("in use %d with the buffer out", b.InUse())
	}
	if string(mb.ReadOnlyData()) != "masked" {
		t.Fatalf("data %q", mb.ReadOnlyData())
	}
	mb.Free()
	if b.InUse() != 0 {
		t.Fatalf("in use %d after gRPC freed the buffer", b.InUse())
	}

	l, _ = newLease(b, 0)
	func() {
		lost, err := l.take(64 << 10)
		if err != nil {
			t.Fatal(err)
		}
		_ = l.handOff(lost)
	}()
	l.close()
	deadline := time.Now().Add(10 * time.Second)
	for b.InUse() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("in use %d: a dropped buffer never came back", b.InUse())
		}
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
}

// A stream that cannot grow waits for memory another gives back, and
// gives up once growWait has passed without any.
func TestReserveWait(t *testing.T) {
	b := NewBudget(1 << 20)
	if !b.reserve(1 << 20) {
		t.Fatal("reserve")
	}
	done := make(chan bool)
	go func() { done <- b.reserveWait(512 << 10) }()
	b.release(512 << 10)
	if !<-done {
		t.Fatal("the waiter did not get the memory given back")
	}
	start := time.Now()
	if b.reserveWait(64 << 10) {
		t.Fatal("reserved past the budget")
	}
	if d := time.Since(start); d < growWait {
		t.Fatalf("gave up after %v, before growWait", d)
	}
}
