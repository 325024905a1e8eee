package shard

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/catalog-import/catalog-import/internal/failure"
)

// TestAdaptiveLimiter drives the limiter on a fake clock: a throttle halves
// the rate, down to the floor (a thirty-second of the configured rate);
// throttles within AdaptHold of a decrease are the same episode and change
// nothing; a success adds a tenth of the configured rate back, at most once
// per AdaptHold and never within AdaptHold of a change, up to the configured
// rate. The token bucket runs at the rate the limiter reports.
func TestAdaptiveLimiter(t *testing.T) {
	t.Parallel()
	clock := time.Unix(1_700_000_000, 0)
	a := NewAdaptiveLimiter(1000, 100)
	a.now = func() time.Time { return clock }
	const hold = AdaptHold
	steps := []struct {
		after time.Duration // the clock moves first
		op    string
		want  float64
	}{
		{0, "throttled", 500},
		{hold / 10, "throttled", 500}, // the same episode: every request in flight was refused
		{hold / 10, "succeeded", 500}, // too soon after the decrease
		{hold, "throttled", 250},
		{hold, "succeeded", 350},
		{0, "succeeded", 350}, // one step per hold
		{hold / 2, "succeeded", 350},
		{hold / 2, "succeeded", 450},
		{hold / 2, "throttled", 225}, // a decrease is not held back by an increase
		{hold, "throttled", 112.5}, {hold, "throttled", 56.25}, {hold, "throttled", 31.25},
		{hold, "throttled", 31.25}, // the floor: 1000/32
		{hold, "succeeded", 131.25}, {hold, "succeeded", 231.25}, {hold, "succeeded", 331.25},
		{hold, "succeeded", 431.25}, {hold, "succeeded", 531.25}, {hold, "succeeded", 631.25},
		{hold, "succeeded", 731.25}, {hold, "succeeded", 831.25}, {hold, "succeeded", 931.25},
		{hold, "succeeded", 1000}, {hold, "succeeded", 1000},
	}
	for i, s := range steps {
		clock = clock.Add(s.after)
		if s.op == "throttled" {
			a.Throttled()
		} else {
			a.Succeeded()
		}
		if got := a.Limit(); got != s.want {
			t.Fatalf("step %d (%s after %v): limit %v, want %v", i, s.op, s.after, got, s.want)
		}
		if got := float64(a.l.Limit()); got != s.want {
			t.Fatalf("step %d: the token bucket runs at %v, want %v", i, got, s.want)
		}
	}
	st := a.Stats()
	want := LimiterStats{Limit: 1000, Lowest: 31.25, Throttles: 8, Decreases: 6, Increases: 12}
	if st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
}

func TestAdaptiveLimiterFloorBelowOne(t *testing.T) {
	t.Parallel()
	a := NewAdaptiveLimiter(0.5, 0)
	a.Throttled()
	if got := a.Limit(); got != 0.5 {
		t.Errorf("limit %v: a rate under 1 row/s is its own floor", got)
	}
	if a.burst != 1 {
		t.Errorf("burst %d, want 1", a.burst)
	}
}

// TestAdaptiveLimiterWait: Wait takes n rows in pieces of the burst, and
// refuses at once a wait that would outlast the context's deadline.
func TestAdaptiveLimiterWait(t *testing.T) {
	t.Parallel()
	a := NewAdaptiveLimiter(10, 50)
	if err := a.Wait(context.Background(), 50); err != nil { // the full bucket
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := a.Wait(ctx, 120); err == nil { // 12s of tokens
		t.Fatal("a wait past the deadline succeeded")
	}
	if d := time.Since(start); d > 40*time.Millisecond {
		t.Errorf("refusing took %v, want at once", d)
	}
	var nilLimiter *AdaptiveLimiter
	if err := nilLimiter.Wait(ctx, 1<<30); err != nil || nilLimiter.Limit() != 0 {
		t.Errorf("nil limiter: %v, want unlimited", err)
	}
	nilLimiter.Throttled()
	nilLimiter.Succeeded()
	if NewAdaptiveLimiter(0, 10) != nil {
		t.Error("rate 0 should be unlimited (nil)")
	}
}

func TestDelay(t *testing.T) {
	t.Parallel()
	base, limit := 50*time.Millisecond, 5*time.Second
	for _, tc := range []struct {
		attempt int
		ceil    time.Duration
	}{{-1, base}, {0, base}, {1, 2 * base}, {3, 8 * base}, {6, 3200 * time.Millisecond}, {7, limit}, {100, limit}} {
		for range 200 {
			if d := Delay(tc.attempt, base, limit); d < 0 || d >= tc.ceil {
				t.Fatalf("Delay(%d) = %v, want in [0, %v)", tc.attempt, d, tc.ceil)
			}
		}
	}
	if Delay(3, 0, limit) != 0 {
		t.Error("a zero base must not wait")
	}
}

func TestBreakerErrorsAreCircuitOpen(t *testing.T) {
	t.Parallel()
	for _, err := range []error{gobreaker.ErrOpenState, gobreaker.ErrTooManyRequests} {
		if got := failure.ReasonOf(breakerErr(err)); got != failure.CircuitOpen {
			t.Errorf("%v maps to %s, want CircuitOpen", err, got)
		}
		if !errors.Is(breakerErr(err), err) {
			t.Errorf("%v is lost in the mapping", err)
		}
	}
	other := errors.New("x")
	if breakerErr(other) != other {
		t.Error("other errors must pass unchanged")
	}
}

// TestGroupLimit: without a deadline a commit may take maxGroup chunks;
// under one, the first commit takes one chunk (the pace is unknown), then as
// many as fit before the margin at the pace measured.
func TestGroupLimit(t *testing.T) {
	r := &run{w: &Worker{opt: Options{DeadlineMargin: time.Second}}}
	if n := r.groupLimit(context.Background()); n != maxGroup {
		t.Errorf("no deadline: %d chunks, want %d", n, maxGroup)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if n := r.groupLimit(ctx); n != 1 {
		t.Errorf("first commit under a deadline: %d chunks, want 1", n)
	}
	r.pending.Add(1)
	r.paced(1, 10*time.Second)
	if n := r.groupLimit(ctx); n < 4 || n > 6 {
		t.Errorf("59 s left, 1 s margin, 10 s a chunk: %d chunks, want 5", n)
	}
	r.paced(1, time.Millisecond)
	r.paced(1, time.Millisecond)
	r.paced(1, time.Millisecond)
	if n := r.groupLimit(ctx); n != maxGroup {
		t.Errorf("fast chunks: %d, want %d", n, maxGroup)
	}
}
