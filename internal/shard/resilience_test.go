package shard_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/catalog-import/catalog-import/internal/catalog"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/shard"
	"github.com/catalog-import/catalog-import/internal/state"
)

// faultySink fails the Write calls for which fail returns a reason.
type faultySink struct {
	catalog.Sink
	mu    sync.Mutex
	calls int
	fail  func(call int, ps []catalog.Product) failure.Reason
}

func (s *faultySink) Write(ctx context.Context, mode catalog.WriteMode, ps []catalog.Product) ([]catalog.Outcome, error) {
	s.mu.Lock()
	s.calls++
	reason := s.fail(s.calls, ps)
	s.mu.Unlock()
	if reason != "" {
		return nil, failure.New(reason, "", "injected %s", reason)
	}
	return s.Sink.Write(ctx, mode, ps)
}

// faultyStore fails the Checkpoint calls for which fail returns a reason.
type faultyStore struct {
	shard.Store
	mu    sync.Mutex
	calls int
	fail  func(call int) failure.Reason
}

func (s *faultyStore) Checkpoint(ctx context.Context, lease state.Lease, cp state.Checkpoint, fs []failure.Record, until time.Time) error {
	s.mu.Lock()
	s.calls++
	reason := s.fail(s.calls)
	s.mu.Unlock()
	if reason != "" {
		return failure.New(reason, "", "injected %s", reason)
	}
	return s.Store.Checkpoint(ctx, lease, cp, fs, until)
}

// outcome is what an import left in the stores, for comparing runs.
type outcome struct {
	Products []catalog.Product
	Failures []failure.Record
}

func (b *bundle) outcome(t *testing.T, n int) outcome {
	t.Helper()
	ctx := context.Background()
	var o outcome
	for i := range n {
		p, ok, err := b.db.Get(ctx, sku(i))
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			o.Products = append(o.Products, p)
		}
	}
	fs, err := b.db.Failures(ctx, "b-1", state.FailureFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range fs {
		fs[i].FailureAt = time.Time{}
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].Row < fs[j].Row })
	o.Failures = fs
	return o
}

func sku(i int) string { return fmt.Sprintf("S-%05d", i) }

// fast keeps test retries quick.
var fast = shard.Options{CheckpointEvery: 50, Pool: 2, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond}

// cleanRun imports content with no faults and returns what it left.
func cleanRun(t *testing.T, content string, n int) (shard.Result, outcome) {
	t.Helper()
	b := setup(t, content, nil)
	res, err := b.worker("a", nil, nil, fast).Process(context.Background(), b.m)
	if err != nil || res.Status != shard.Done {
		t.Fatalf("clean run: %+v %v", res, err)
	}
	return res, b.outcome(t, n)
}

// TestTransientErrorsAreRetried: transient failures of the sink or the store
// are retried in-process; the shard ends exactly as a clean run does.
func TestTransientErrorsAreRetried(t *testing.T) {
	t.Parallel()
	const n = 400
	content := rowsCSV(n, func(i int) bool { return i%10 == 3 })
	cleanRes, clean := cleanRun(t, content, n)
	firstN := func(k int, r failure.Reason) func(int) failure.Reason {
		return func(call int) failure.Reason {
			if call <= k {
				return r
			}
			return ""
		}
	}
	tests := []struct {
		name        string
		sinkFail    func(call int) failure.Reason
		storeFail   func(call int) failure.Reason
		wantRetries int
	}{
		{name: "sink throttled 3 times", sinkFail: firstN(3, failure.Throttled), wantRetries: 3},
		{name: "sink timeout then throttled", sinkFail: func(call int) failure.Reason {
			return map[int]failure.Reason{1: failure.NetworkTimeout, 2: failure.Throttled}[call]
		}, wantRetries: 2},
		{name: "checkpoint unavailable twice", storeFail: firstN(2, failure.ServiceUnavailable), wantRetries: 2},
		{name: "both", sinkFail: firstN(2, failure.Throttled), storeFail: firstN(1, failure.NetworkTimeout), wantRetries: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, content, nil)
			var sink catalog.Sink = b.db
			if tc.sinkFail != nil {
				sink = &faultySink{Sink: b.db, fail: func(call int, _ []catalog.Product) failure.Reason { return tc.sinkFail(call) }}
			}
			var store shard.Store = b.db
			if tc.storeFail != nil {
				store = &faultyStore{Store: b.db, fail: tc.storeFail}
			}
			o := fast
			o.Owner = "a"
			w := shard.New(shard.Deps{Source: b.src, Store: store, Sink: sink}, o)
			res, err := w.Process(context.Background(), b.m)
			if err != nil || res.Status != shard.Done {
				t.Fatalf("got %+v %v, want done", res, err)
			}
			if res.Retries != tc.wantRetries {
				t.Errorf("%d retries, want %d", res.Retries, tc.wantRetries)
			}
			if res.Counts != cleanRes.Counts {
				t.Errorf("counts %+v, clean run %+v", res.Counts, cleanRes.Counts)
			}
			if d := cmp.Diff(clean, b.outcome(t, n)); d != "" {
				t.Errorf("stores differ from a clean run (-clean +got):\n%s", d)
			}
		})
	}
}

// TestRetryBudgetSpent: a sink that keeps throttling spends the budget; the
// worker stops with the transient reason, and its checkpoint covers exactly
// the durable prefix. A later delivery with a healthy sink finishes the shard.
func TestRetryBudgetSpent(t *testing.T) {
	t.Parallel()
	const n = 300
	b := setup(t, rowsCSV(n, nil), nil)
	broken := true
	sink := &faultySink{Sink: b.db, fail: func(_ int, ps []catalog.Product) failure.Reason {
		if broken && ps[len(ps)-1].Source.Row > 101 {
			return failure.Throttled
		}
		return ""
	}}
	o := fast
	o.Pool, o.RetryBudget = 1, 3 // no breaker
	res, err := b.worker("a", nil, sink, o).Process(context.Background(), b.m)
	if failure.ReasonOf(err) != failure.Throttled || res.Retries != 3 {
		t.Fatalf("got %+v %v, want a Throttled error after 3 retries", res, err)
	}
	shards, _ := b.db.ListShards(context.Background(), "b-1")
	cp := shards[0].Checkpoint
	if done := cp.Counts.Done(); done > 100 || done%50 != 0 || cp.Counts.Imported != done || cp.NextRow != done+2 {
		t.Errorf("checkpoint %+v: not the durable prefix before row 102", cp)
	}
	if got := b.products(t); got != cp.Counts.Imported {
		t.Errorf("%d products stored, checkpoint says %d", got, cp.Counts.Imported)
	}

	sink.mu.Lock()
	broken = false
	sink.mu.Unlock()
	res, err = b.worker("a", nil, sink, o).Process(context.Background(), b.m)
	if err != nil || res.Status != shard.Done || res.Counts != (state.Counts{Total: n, Imported: n}) {
		t.Fatalf("redelivery: %+v %v", res, err)
	}
	if got := b.products(t); got != n {
		t.Errorf("%d products, want %d", got, n)
	}
}

// TestBreakerOpensThenBackoff: under sustained ServiceUnavailable the breaker
// opens and the worker reports Backoff without recording any failure for the
// rows it could not write; once the sink heals and the breaker's open period
// ends, the shard finishes exactly as a clean run.
func TestBreakerOpensThenBackoff(t *testing.T) {
	t.Parallel()
	const n = 400
	content := rowsCSV(n, func(i int) bool { return i%10 == 3 })
	cleanRes, clean := cleanRun(t, content, n)
	b := setup(t, content, nil)
	var mu sync.Mutex
	broken := true
	sink := &faultySink{Sink: b.db, fail: func(_ int, ps []catalog.Product) failure.Reason {
		mu.Lock()
		defer mu.Unlock()
		if broken && ps[len(ps)-1].Source.Row > 151 {
			return failure.ServiceUnavailable
		}
		return ""
	}}
	o := fast
	o.BreakerFailures, o.BreakerTimeout = 3, 100*time.Millisecond
	w := b.worker("a", nil, sink, o)
	ctx := context.Background()
	res, err := w.Process(ctx, b.m)
	if err != nil || res.Status != shard.Backoff {
		t.Fatalf("got %+v %v, want backoff", res, err)
	}
	if res.Retries < 2 || res.Retries > 3 {
		t.Errorf("%d retries before the breaker opened, want 2-3", res.Retries)
	}
	shards, _ := b.db.ListShards(ctx, "b-1")
	cp := shards[0].Checkpoint
	if res.Counts != cp.Counts || cp.Counts.Done() > 150 {
		t.Errorf("result %+v, stored checkpoint %+v: want the durable prefix before row 152", res.Counts, cp)
	}
	fs, _ := b.db.Failures(ctx, "b-1", state.FailureFilter{})
	for _, f := range fs {
		if f.Row >= cp.NextRow || f.Layer == failure.LayerInfrastructure {
			t.Errorf("failure record %d %s %s beyond the checkpoint or for the outage", f.Row, f.Layer, f.Reason)
		}
	}
	if int64(len(fs)) != cp.Counts.Failed {
		t.Errorf("%d failure records, checkpoint counts %d failed", len(fs), cp.Counts.Failed)
	}

	// Still open: the next delivery claims nothing.
	if res, err := w.Process(ctx, b.m); err != nil || res.Status != shard.Backoff || res.Counts != (state.Counts{}) {
		t.Errorf("delivery while open: %+v %v, want an empty backoff", res, err)
	}

	mu.Lock()
	broken = false
	mu.Unlock()
	time.Sleep(150 * time.Millisecond) // past the open period: half-open
	res, err = w.Process(ctx, b.m)
	if err != nil || res.Status != shard.Done || res.Counts != cleanRes.Counts {
		t.Fatalf("after healing: %+v %v, want done with %+v", res, err, cleanRes.Counts)
	}
	if d := cmp.Diff(clean, b.outcome(t, n)); d != "" {
		t.Errorf("stores differ from a clean run (-clean +got):\n%s", d)
	}
}

// TestNonTransientIsNotRetried: an Internal error from the sink stops the
// worker at once and does not count toward the breaker.
func TestNonTransientIsNotRetried(t *testing.T) {
	t.Parallel()
	b := setup(t, rowsCSV(100, nil), nil)
	sink := &faultySink{Sink: b.db, fail: func(int, []catalog.Product) failure.Reason { return failure.Internal }}
	o := fast
	o.BreakerFailures = 1
	w := b.worker("a", nil, sink, o)
	for range 3 {
		res, err := w.Process(context.Background(), b.m)
		if failure.ReasonOf(err) != failure.Internal || res.Retries != 0 {
			t.Fatalf("got %+v %v, want an Internal error without retries", res, err)
		}
	}
	var ie *failure.ImportError
	if _, err := w.Process(context.Background(), b.m); !errors.As(err, &ie) {
		t.Errorf("error %v is not an ImportError", err)
	}
}

// TestRetryRespectsDeadline: a retry whose backoff would run into the
// deadline margin is not taken; the transient error is returned at once, so
// the message is redelivered (invariant 8).
func TestRetryRespectsDeadline(t *testing.T) {
	t.Parallel()
	b := setup(t, rowsCSV(100, nil), nil)
	sink := &faultySink{Sink: b.db, fail: func(call int, _ []catalog.Product) failure.Reason {
		if call == 1 {
			return failure.Throttled
		}
		return ""
	}}
	o := fast
	o.DeadlineMargin = time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute) // within the margin
	defer cancel()
	res, err := b.worker("a", nil, sink, o).Process(ctx, b.m)
	if failure.ReasonOf(err) != failure.Throttled || res.Retries != 0 {
		t.Fatalf("got %+v %v, want the Throttled error without a retry", res, err)
	}
}
