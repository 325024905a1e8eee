package shard

// Resilience of the write path (invariant 9: retries are bounded).
//
//   - Retries: an infrastructure-transient error (failure.Reason.Transient:
//     Throttled, NetworkTimeout, ServiceUnavailable, CircuitOpen) from the
//     sink's Write, or from the store's Checkpoint or PutFailures, is retried
//     in-process with exponential backoff and full jitter. Every step is
//     replay-safe by its port's contract (catalog.Sink: "retrying it is safe";
//     state.Store: a checkpoint that is not ahead changes nothing), so a retry
//     repeats the failed step with the same arguments. A Process call has a
//     retry budget (Options.RetryBudget); once spent the worker stops with the
//     last transient error, its checkpoint covering what is durable, and the
//     queue redelivers the shard later (triage decides after maxReceiveCount).
//   - Rate limiting: a token bucket in front of the sink counts rows
//     (Options.SinkRate, SinkBurst, or a shared Options.Limiter). A
//     throttling answer halves its rate (not below a floor), at most once
//     per AdaptHold: the throttles of one episode (every request in flight
//     is refused at once) count once. A successful write adds back a tenth
//     of the configured rate, at most once per AdaptHold and not within
//     AdaptHold of the last change (additive increase, multiplicative
//     decrease). The sink may report throttling as it happens (the DynamoDB
//     sink reports every throttled attempt, before the SDK's and its own
//     retries hide it), not only when a write gives up.
//   - Circuit breaker (when Options.BreakerFailures > 0): sink writes go
//     through a breaker that opens after BreakerFailures consecutive
//     transient failures and lets one trial write through after
//     Options.BreakerTimeout. While it is open the
//     worker turns no row into a failure record: it stops, leaves the
//     checkpoint where it is and reports Status Backoff, so the shard is
//     delivered again later.
//
// Libraries: golang.org/x/time/rate is the Go team's token bucket; it has
// WaitN (wait for n tokens, honouring the context's deadline) and SetLimitAt
// to change the rate at run time, which is all the adaptive limiter needs.
// github.com/sony/gobreaker/v2 is a small, generic, widely used breaker whose
// Settings.ReadyToTrip, IsSuccessful and IsExcluded let the worker count only
// infrastructure-transient errors, with state-change hooks for the logs.
// The limiter and the breaker are per worker (they guard a sink that every
// Process call of the worker shares) and are consulted once per commit,
// never per row.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"
	"golang.org/x/time/rate"

	"github.com/catalog-import/catalog-import/internal/catalog"
	"github.com/catalog-import/catalog-import/internal/failure"
)

// Delay returns the wait before retry number attempt (0 for the first
// retry): exponential backoff with full jitter, a random duration in
// [0, min(limit, base*2^attempt)).
func Delay(attempt int, base, limit time.Duration) time.Duration {
	if base <= 0 {
		return 0
	}
	attempt = max(attempt, 0)
	ceil := limit
	if attempt < 62 && base <= limit>>attempt {
		ceil = base << attempt
	}
	if ceil <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(ceil)))
}

// AdaptHold is how long an AdaptiveLimiter keeps its rate after a change
// before it changes it again: throttles within it belong to the episode that
// already halved the rate, and recovery adds one step per AdaptHold at most.
const AdaptHold = time.Second

// AdaptiveLimiter is a token bucket of rows per second whose rate backs off
// when the sink throttles and recovers as writes succeed. A nil
// *AdaptiveLimiter is unlimited. It is safe for concurrent use.
type AdaptiveLimiter struct {
	l     *rate.Limiter
	burst int

	mu         sync.Mutex
	max, floor rate.Limit
	cur        rate.Limit
	lowest     rate.Limit
	step       rate.Limit
	hold       time.Duration
	down, last time.Time // the last decrease and the last change (zero: none)
	stats      LimiterStats
	log        *slog.Logger
	now        func() time.Time // the clock of SetLimitAt and the hold (tests fix it)
}

// LimiterStats say what an AdaptiveLimiter did.
type LimiterStats struct {
	Limit     float64 // the rate now, rows per second
	Lowest    float64 // the lowest rate it ran at
	Throttles int64   // throttling signals received
	Decreases int64   // times the rate was halved
	Increases int64   // times a step was added back
}

// NewAdaptiveLimiter returns a limiter of perSecond rows per second with the
// given burst (default: perSecond rounded up, at least 1). perSecond <= 0
// means unlimited: the result is nil. The rate never falls below
// perSecond/32 (or 1 row/s, whichever is lower than perSecond).
func NewAdaptiveLimiter(perSecond float64, burst int) *AdaptiveLimiter {
	if perSecond <= 0 {
		return nil
	}
	if burst <= 0 {
		burst = max(int(perSecond+0.999999), 1)
	}
	limit := rate.Limit(perSecond)
	floor := max(limit/32, min(1, limit))
	return &AdaptiveLimiter{
		l: rate.NewLimiter(limit, burst), burst: burst,
		max: limit, floor: floor, cur: limit, lowest: limit, step: limit / 10, hold: AdaptHold, now: time.Now,
		log: slog.New(slog.DiscardHandler),
	}
}

// WithLog has the limiter log its changes of rate to log (a decrease as a
// warning, the return to the configured rate as info) and returns it.
// Call it before the limiter is shared.
func (a *AdaptiveLimiter) WithLog(log *slog.Logger) *AdaptiveLimiter {
	if a != nil && log != nil {
		a.log = log
	}
	return a
}

// Wait blocks until n rows may be written (n is taken in pieces of at most
// the burst), or the context is done or its deadline would pass first.
func (a *AdaptiveLimiter) Wait(ctx context.Context, n int) error {
	if a == nil {
		return nil
	}
	for n > 0 {
		k := min(n, a.burst)
		if err := a.l.WaitN(ctx, k); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// Throttled halves the rate, not below the floor, unless it was halved
// less than AdaptHold ago (the same episode of throttling).
func (a *AdaptiveLimiter) Throttled() {
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stats.Throttles++
	now := a.now()
	if !a.down.IsZero() && now.Sub(a.down) < a.hold {
		return
	}
	a.down = now
	if a.cur == a.floor {
		return
	}
	from := a.cur
	a.set(max(a.cur/2, a.floor), now)
	a.stats.Decreases++
	a.lowest = min(a.lowest, a.cur)
	a.log.Warn("write rate lowered after throttling", "rows_per_second", float64(a.cur), "was", float64(from),
		"configured", float64(a.max))
}

// Succeeded adds a tenth of the configured rate back, up to the configured
// rate, unless the rate changed less than AdaptHold ago.
func (a *AdaptiveLimiter) Succeeded() {
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	if a.cur >= a.max || (!a.last.IsZero() && now.Sub(a.last) < a.hold) {
		return
	}
	a.set(min(a.cur+a.step, a.max), now)
	a.stats.Increases++
	if a.cur == a.max {
		a.log.Info("write rate recovered", "rows_per_second", float64(a.cur))
	}
}

func (a *AdaptiveLimiter) set(l rate.Limit, now time.Time) {
	a.cur, a.last = l, now
	a.l.SetLimitAt(now, l)
}

// Limit returns the current rate in rows per second (0 for a nil limiter,
// which is unlimited).
func (a *AdaptiveLimiter) Limit() float64 {
	if a == nil {
		return 0
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return float64(a.cur)
}

// Stats returns what the limiter did so far (zero for a nil limiter).
func (a *AdaptiveLimiter) Stats() LimiterStats {
	if a == nil {
		return LimiterStats{}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.stats
	s.Limit, s.Lowest = float64(a.cur), float64(a.lowest)
	return s
}

// newBreaker returns the sink's circuit breaker, nil when o turns it off.
// Only transient errors count as failures; context errors are ignored.
func newBreaker(o Options, w *Worker) *gobreaker.CircuitBreaker[[]catalog.Outcome] {
	if o.BreakerFailures <= 0 {
		return nil
	}
	return gobreaker.NewCircuitBreaker[[]catalog.Outcome](gobreaker.Settings{
		Name:    "sink",
		Timeout: o.BreakerTimeout,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.ConsecutiveFailures >= uint32(o.BreakerFailures)
		},
		IsSuccessful: func(err error) bool { return err == nil || !failure.ReasonOf(err).Transient() },
		IsExcluded: func(err error) bool {
			return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
		},
		OnStateChange: func(name string, from, to gobreaker.State) {
			w.log.Warn("circuit breaker state change", "breaker", name, "from", from.String(), "to", to.String())
			w.metrics.BreakerChanged(from.String(), to.String())
		},
	})
}

// breakerErr maps the breaker's own refusals to CircuitOpen.
func breakerErr(err error) error {
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return failure.Wrap(failure.CircuitOpen, "", err, "the product sink's circuit breaker is open: "+err.Error())
	}
	return err
}

// errBudget marks an error returned because the retry budget is spent.
type errBudget struct {
	budget int
	err    error
}

func (e *errBudget) Error() string {
	return fmt.Sprintf("retry budget of %d spent: %v", e.budget, e.err)
}

func (e *errBudget) Unwrap() error { return e.err }

// retry runs step until it succeeds, fails with an error that is not
// transient, the run's retry budget is spent, or ctx is done. A CircuitOpen
// error (the breaker refused the call) is returned at once: waiting for the
// breaker is the queue's job, not this call's.
func (r *run) retry(ctx context.Context, op string, step func() error) error {
	o := r.w.opt
	for attempt := 0; ; attempt++ {
		err := step()
		if err == nil {
			return nil
		}
		reason := failure.ReasonOf(err)
		if !reason.Transient() || reason == failure.CircuitOpen || ctx.Err() != nil {
			return err
		}
		if reason == failure.Throttled {
			r.w.limiter.Throttled()
		}
		if r.retries >= o.RetryBudget {
			return &errBudget{budget: o.RetryBudget, err: err}
		}
		d := Delay(attempt, o.BaseDelay, o.MaxDelay)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl)-d < o.DeadlineMargin {
			// Sleeping would eat into the deadline margin (invariant 8):
			// stop now; the checkpoint covers what is durable and the
			// redelivery retries.
			return err
		}
		r.retries++
		r.w.metrics.Retried(ctx, r.m, op, reason)
		r.log.Warn("transient error, retrying", "op", op,
			"reason", string(reason), "attempt", attempt+1, "delay", d.String(), "error", err.Error())
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
	}
}

// write writes products through the limiter and the breaker, retrying
// transient failures. The rows are paid for once, before the first attempt;
// retries are paced by the backoff.
func (r *run) write(ctx context.Context, products []catalog.Product, prepared []any) ([]catalog.Outcome, error) {
	if err := r.w.limiter.Wait(ctx, len(products)); err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		// The wait would outlast ctx's deadline: hand the shard on.
		return nil, failure.Wrap(failure.Throttled, "", err, "rate limiter: "+err.Error())
	}
	write := func() ([]catalog.Outcome, error) {
		if r.w.prep != nil && len(prepared) > 0 {
			return r.w.prep.WritePrepared(ctx, r.p.WriteMode(), products, prepared)
		}
		return r.w.sink.Write(ctx, r.p.WriteMode(), products)
	}
	var outs []catalog.Outcome
	ctx, end := r.w.span(ctx, SpanSinkWrite)
	err := r.retry(ctx, "write", func() error {
		var err error
		if r.w.breaker == nil {
			outs, err = write()
			return err
		}
		outs, err = r.w.breaker.Execute(write)
		return breakerErr(err)
	})
	end(err)
	if err == nil {
		r.w.limiter.Succeeded()
	}
	return outs, err
}
