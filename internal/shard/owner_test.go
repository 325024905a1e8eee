package shard_test

import (
	"context"
	"testing"
	"time"

	"github.com/catalog-import/catalog-import/internal/shard"
)

// TestOneProcessPerShardPerWorker: a worker (one lease owner) runs one
// Process call per shard at a time. A second call for a shard it is
// working on (a duplicate manifest given to another goroutine of the same
// process) is Leased and writes nothing, instead of re-claiming as the same
// owner and so taking the live lease over.
func TestOneProcessPerShardPerWorker(t *testing.T) {
	t.Parallel()
	b := setup(t, rowsCSV(100, nil), nil)
	sink := &blockingSink{Sink: b.db, stallAt: 50, stalled: make(chan struct{}), released: make(chan struct{})}
	w := b.worker("a", nil, sink, shard.Options{CheckpointEvery: 10, LeaseTTL: time.Minute, Pool: 1})
	type result struct {
		res shard.Result
		err error
	}
	first := make(chan result, 1)
	go func() {
		res, err := w.Process(context.Background(), b.m)
		first <- result{res, err}
	}()
	select {
	case <-sink.stalled:
	case <-time.After(30 * time.Second):
		t.Fatal("the first call never reached row 50")
	}
	second := make(chan result, 1)
	go func() {
		res, err := w.Process(context.Background(), b.m)
		second <- result{res, err}
	}()
	select {
	case r := <-second:
		if r.err != nil || r.res.Status != shard.Leased {
			t.Errorf("second call while the first works: %+v %v, want leased", r.res, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Error("second call while the first works did not return: it took the shard over")
	}
	close(sink.released)
	r := <-first
	if r.err != nil || r.res.Status != shard.Done {
		t.Errorf("first call: %+v %v, want done", r.res, r.err)
	}
	s, _ := b.db.ListShards(context.Background(), "b-1")
	if s[0].Attempts != 1 {
		t.Errorf("%d claims, want 1", s[0].Attempts)
	}
}

// TestSameOwnerReclaimsAfterItsOwnCrash: a lease left live by its owner's
// earlier call (the call failed or the process died and the sandbox came
// back with the same owner) does not keep that owner out: the holder
// coming back claims again at once and continues from the checkpoint.
func TestSameOwnerReclaimsAfterItsOwnCrash(t *testing.T) {
	t.Parallel()
	b := setup(t, rowsCSV(40, nil), nil)
	if _, _, err := b.db.Claim(context.Background(), "b-1", 0, "a", time.Hour, time.Now()); err != nil {
		t.Fatal(err)
	}
	res, err := b.worker("a", nil, nil, shard.Options{CheckpointEvery: 10}).Process(context.Background(), b.m)
	if err != nil || res.Status != shard.Done {
		t.Errorf("the holder coming back: %+v %v, want done", res, err)
	}
}
