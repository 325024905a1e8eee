package shard_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/catalog-import/catalog-import/internal/catalog"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/shard"
	"github.com/catalog-import/catalog-import/internal/state"
)

// fakeClock is a worker's clock that a test moves.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// stallingStore stalls the worker right after its stallAfter-th durable
// checkpoint, until released; after that it records every write the worker
// makes (failure records, checkpoints that carry some).
type stallingStore struct {
	shard.Store
	stallAfter int
	n          int
	stalled    chan struct{}
	released   chan struct{}
	woke       atomic.Bool
	lateWrites atomic.Int64
}

func (s *stallingStore) Checkpoint(ctx context.Context, l state.Lease, cp state.Checkpoint, fs []failure.Record, until time.Time) error {
	if s.woke.Load() && len(fs) > 0 {
		s.lateWrites.Add(int64(len(fs)))
	}
	err := s.Store.Checkpoint(ctx, l, cp, fs, until)
	if err == nil {
		s.n++
		if s.n == s.stallAfter {
			close(s.stalled)
			<-s.released
			s.woke.Store(true)
		}
	}
	return err
}

func (s *stallingStore) PutFailures(ctx context.Context, rs []failure.Record) error {
	if s.woke.Load() {
		s.lateWrites.Add(int64(len(rs)))
	}
	return s.Store.PutFailures(ctx, rs)
}

// lateSink counts the products written once the store woke up.
type lateSink struct {
	catalog.Sink
	st   *stallingStore
	late atomic.Int64
}

func (s *lateSink) Write(ctx context.Context, mode catalog.WriteMode, ps []catalog.Product) ([]catalog.Outcome, error) {
	if s.st.woke.Load() {
		s.late.Add(int64(len(ps)))
	}
	return s.Sink.Write(ctx, mode, ps)
}

// TestZombieStopsBeforeWriting: worker A stalls between two chunks (right
// after a checkpoint) past its lease; B claims the shard and finishes it.
// When A wakes, its clock says its lease is over: it renews the lease
// before its next write, is fenced, and stops without writing a product or
// a failure record — where before it wrote every chunk it had in hand
// (up to 8 grouped chunks) until its next checkpoint was refused.
func TestZombieStopsBeforeWriting(t *testing.T) {
	t.Parallel()
	b := setup(t, rowsCSV(600, func(i int) bool { return i%7 == 0 }), nil)
	clock := &fakeClock{now: time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)}
	st := &stallingStore{Store: b.db, stallAfter: 2, stalled: make(chan struct{}), released: make(chan struct{})}
	sink := &lateSink{Sink: b.db, st: st}
	a := shard.New(shard.Deps{Source: b.src, Store: st, Sink: sink, Now: clock.Now},
		shard.Options{Owner: "a", CheckpointEvery: 50, LeaseTTL: time.Minute, Pool: 2})
	type result struct {
		res shard.Result
		err error
	}
	aDone := make(chan result, 1)
	go func() {
		res, err := a.Process(context.Background(), b.m)
		aDone <- result{res, err}
	}()
	select {
	case <-st.stalled:
	case <-time.After(30 * time.Second):
		t.Fatal("worker A never checkpointed twice")
	}
	clock.Add(5 * time.Minute) // A's lease ran out while it stalled
	later := func() time.Time { return clock.Now() }
	resB, err := b.worker("b", later, nil, shard.Options{CheckpointEvery: 50}).Process(context.Background(), b.m)
	if err != nil || resB.Status != shard.Done {
		t.Fatalf("B: %+v %v", resB, err)
	}
	before, _ := b.db.ListShards(context.Background(), "b-1")
	close(st.released)
	var ra result
	select {
	case ra = <-aDone:
	case <-time.After(30 * time.Second):
		t.Fatal("zombie A never returned")
	}
	if ra.err != nil || ra.res.Status != shard.Fenced {
		t.Errorf("zombie A: %+v %v, want fenced", ra.res, ra.err)
	}
	if n := sink.late.Load(); n != 0 {
		t.Errorf("zombie A wrote %d products after its lease moved to B", n)
	}
	if n := st.lateWrites.Load(); n != 0 {
		t.Errorf("zombie A sent %d failure records after its lease moved to B", n)
	}
	after, _ := b.db.ListShards(context.Background(), "b-1")
	if after[0].Owner != "b" || after[0].Checkpoint != before[0].Checkpoint || after[0].Status != state.ShardDone {
		t.Errorf("shard after the zombie woke: %+v, want B's DONE shard unchanged", after[0])
	}
}
