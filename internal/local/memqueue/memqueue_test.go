package memqueue_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/catalog-import/catalog-import/internal/local/memqueue"
	"github.com/catalog-import/catalog-import/internal/queue"
	"github.com/catalog-import/catalog-import/internal/queue/queuetest"
)

func TestContract(t *testing.T) {
	queuetest.Run(t, func(t *testing.T, cfg queuetest.Config) queue.Queue {
		q, err := memqueue.New(memqueue.Options{VisibilityTimeout: cfg.VisibilityTimeout})
		if err != nil {
			t.Fatal(err)
		}
		return q
	})
}

// fakeClock is a settable clock for Options.Clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type bundle struct {
	q     *memqueue.Queue
	clock *fakeClock
}

func setup(t *testing.T, vis time.Duration) bundle {
	t.Helper()
	clock := &fakeClock{now: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	q, err := memqueue.New(memqueue.Options{VisibilityTimeout: vis, Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return bundle{q: q, clock: clock}
}

// receiveNow receives without waiting and fails t unless exactly n came.
func (b bundle) receiveNow(t *testing.T, n int) []queue.Message {
	t.Helper()
	got, err := b.q.Receive(t.Context(), 100, 0)
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	if len(got) != n {
		t.Fatalf("Receive returned %d messages, want %d", len(got), n)
	}
	return got
}

func (b bundle) counts(t *testing.T, wantLen, wantInFlight int) {
	t.Helper()
	if l, f := b.q.Len(), b.q.InFlight(); l != wantLen || f != wantInFlight {
		t.Errorf("Len, InFlight = %d, %d; want %d, %d", l, f, wantLen, wantInFlight)
	}
}

func TestVisibilityWithFakeClock(t *testing.T) {
	b := setup(t, time.Minute)
	if err := b.q.Send(t.Context(), 10*time.Second, queuetest.Manifest(1), queuetest.Manifest(2)); err != nil {
		t.Fatal(err)
	}
	b.counts(t, 2, 0)
	b.receiveNow(t, 0)

	b.clock.Advance(10 * time.Second)
	first := b.receiveNow(t, 2)
	if first[0].Manifest.Shard != 1 || first[1].Manifest.Shard != 2 {
		t.Errorf("delivered shards %d, %d; want send order 1, 2", first[0].Manifest.Shard, first[1].Manifest.Shard)
	}
	b.counts(t, 2, 2)
	b.receiveNow(t, 0)

	b.clock.Advance(time.Minute - time.Nanosecond)
	b.receiveNow(t, 0)
	b.clock.Advance(time.Nanosecond)
	b.counts(t, 2, 0) // timed out: no longer in flight
	second := b.receiveNow(t, 2)
	for i, m := range second {
		if m.ID != first[i].ID || m.ReceiveCount != 2 || m.Receipt == first[i].Receipt {
			t.Errorf("redelivery %+v of %+v: want same ID, ReceiveCount 2, new receipt", m, first[i])
		}
	}

	// The first delivery's receipts are stale now.
	for _, m := range first {
		if err := b.q.Ack(t.Context(), m); !errors.Is(err, memqueue.ErrStaleReceipt) {
			t.Errorf("Ack with a stale receipt: %v, want ErrStaleReceipt", err)
		}
		if err := b.q.Retry(t.Context(), m, 0); !errors.Is(err, memqueue.ErrStaleReceipt) {
			t.Errorf("Retry with a stale receipt: %v, want ErrStaleReceipt", err)
		}
	}
	b.counts(t, 2, 2)

	// Retry with a delay: not in flight, back after the delay.
	if err := b.q.Retry(t.Context(), second[0], 5*time.Second); err != nil {
		t.Fatal(err)
	}
	b.counts(t, 2, 1)
	b.clock.Advance(5*time.Second - time.Nanosecond)
	b.receiveNow(t, 0)
	b.clock.Advance(time.Nanosecond)
	third := b.receiveNow(t, 1)
	if third[0].ID != second[0].ID || third[0].ReceiveCount != 3 {
		t.Errorf("after Retry got %+v, want ID %s with ReceiveCount 3", third[0], second[0].ID)
	}

	for _, m := range []queue.Message{third[0], second[1]} {
		if err := b.q.Ack(t.Context(), m); err != nil {
			t.Errorf("Ack: %v", err)
		}
	}
	b.counts(t, 0, 0)
	// Acknowledging again is a no-op; retrying a deleted message is an error.
	if err := b.q.Ack(t.Context(), third[0]); err != nil {
		t.Errorf("second Ack: %v", err)
	}
	if err := b.q.Retry(t.Context(), third[0], 0); !errors.Is(err, memqueue.ErrNotInQueue) {
		t.Errorf("Retry of an acknowledged message: %v, want ErrNotInQueue", err)
	}
}

func TestReceiveWakesOnSend(t *testing.T) {
	q, err := memqueue.New(memqueue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		got, err := q.Receive(t.Context(), 1, 30*time.Second)
		if err != nil || len(got) != 1 {
			t.Errorf("Receive = %d messages, %v", len(got), err)
		}
		done <- time.Since(start)
	}()
	time.Sleep(100 * time.Millisecond)
	if err := q.Send(t.Context(), 0, queuetest.Manifest(1)); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-done:
		if d > 5*time.Second {
			t.Errorf("Receive woke %v after Send", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Receive did not wake up on Send")
	}
}

func TestInvalidArguments(t *testing.T) {
	if _, err := memqueue.New(memqueue.Options{VisibilityTimeout: -time.Second}); err == nil {
		t.Error("New with a negative VisibilityTimeout succeeded")
	}
	b := setup(t, time.Second)
	if _, err := b.q.Receive(t.Context(), 0, 0); err == nil {
		t.Error("Receive(max 0) succeeded")
	}
	if err := b.q.Send(t.Context(), -time.Second, queuetest.Manifest(1)); err == nil {
		t.Error("Send with a negative delay succeeded")
	}
	b.counts(t, 0, 0)
}

func TestDefaultVisibilityTimeout(t *testing.T) {
	b := setup(t, 0)
	if err := b.q.Send(t.Context(), 0, queuetest.Manifest(1)); err != nil {
		t.Fatal(err)
	}
	b.receiveNow(t, 1)
	b.clock.Advance(memqueue.DefaultVisibilityTimeout - time.Nanosecond)
	b.receiveNow(t, 0)
	b.clock.Advance(time.Nanosecond)
	b.receiveNow(t, 1)
}
