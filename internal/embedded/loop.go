package embedded

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/local/memqueue"
	"github.com/catalog-import/catalog-import/internal/local/sqlite"
	"github.com/catalog-import/catalog-import/internal/pipeline"
	"github.com/catalog-import/catalog-import/internal/queue"
	"github.com/catalog-import/catalog-import/internal/shard"
	"github.com/catalog-import/catalog-import/internal/state"
)

// work runs shard workers until the queue is empty and the batch finalized.
func work(ctx context.Context, cfg Config, pl *pipeline.Pipeline, db *sqlite.DB, q *memqueue.Queue, id string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if cfg.Progress != nil {
		stop := progress(ctx, cfg, db, id)
		defer stop()
	}
	var (
		mu       sync.Mutex
		firstErr error
		finished bool
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		cancel()
	}
	var wg sync.WaitGroup
	for range cfg.Shards {
		wg.Go(func() {
			for ctx.Err() == nil {
				msgs, err := q.Receive(ctx, 1, 50*time.Millisecond)
				if err != nil {
					if ctx.Err() == nil {
						fail(err)
					}
					return
				}
				if len(msgs) == 0 {
					if q.Len() == 0 && q.InFlight() == 0 {
						return
					}
					continue
				}
				done, err := deliver(ctx, cfg, pl, q, msgs[0])
				if done {
					mu.Lock()
					finished = true
					mu.Unlock()
					cancel() // nothing left to do for the other workers
				}
				if err != nil {
					fail(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if err := context.Cause(ctx); err != nil && !finished && !errors.Is(err, context.Canceled) {
		return err
	}
	// A run killed after the last shard finished but before finalization
	// leaves every shard done and the batch RUNNING: finish it now.
	stopped := ctx.Err() != nil
	ctx = context.WithoutCancel(ctx)
	if done, err := pl.FinishIfDone(ctx, id); err != nil || done {
		return err
	}
	b, err := db.GetBatch(ctx, id)
	if err != nil {
		return err
	}
	if b.Status == state.BatchSuspended {
		return nil // its source changed: the summary says so
	}
	if !b.Status.Finished() && !stopped {
		return fmt.Errorf("batch %s: %d of %d shards finished and no work is left", id, b.ShardsDone, b.Shards)
	}
	return nil
}

// deliver processes one delivery and settles the message; done says the
// delivery finalized the batch. A failed finalization stops the run; a
// failed delivery is retried after a growing delay, up to Config.Attempts
// deliveries (a permanent error stops the run at once). A shard that stops
// with Backoff (the sink's circuit breaker is open) goes back to the queue
// with a delay past the breaker's open period, growing with its
// deliveries; the run gives up on it (CircuitOpen) after
// backoffDeliveries x Config.Attempts deliveries. A shard stopped early is
// delivered again at once.
func deliver(ctx context.Context, cfg Config, pl *pipeline.Pipeline, q *memqueue.Queue, m queue.Message) (done bool, err error) {
	start := time.Now()
	out, err := pl.Deliver(ctx, m)
	if res := out.Result; res.Status != "" && res.Status != shard.Leased && res.Status != shard.AlreadyDone {
		cfg.Log.Info("shard processed", "batch_id", m.Manifest.BatchID, "shard", m.Manifest.Shard, "status", string(res.Status),
			"rows", res.Counts.Done(), "duration_ms", float64(time.Since(start).Microseconds())/1000)
	}
	if err != nil && out.Result.Status != "" {
		return false, err // the shard is done, its batch's finalization failed
	}
	if err != nil {
		if ctx.Err() != nil {
			return false, nil
		}
		if m.ReceiveCount >= cfg.Attempts || !failure.ReasonOf(err).Transient() {
			return false, err
		}
		cfg.Log.Warn("shard attempt failed, retrying", "batch_id", m.Manifest.BatchID, "shard", m.Manifest.Shard, "attempt", m.ReceiveCount, "error", err)
		return false, q.Retry(ctx, m, time.Duration(m.ReceiveCount)*100*time.Millisecond)
	}
	switch {
	case out.Settle == pipeline.HandOn:
		return false, q.Retry(ctx, m, 0)
	case errors.Is(out.Err, pipeline.ErrBackoff):
		if m.ReceiveCount >= backoffDeliveries*cfg.Attempts {
			return false, fmt.Errorf("shard %d: %w", m.Manifest.Shard, failure.New(failure.CircuitOpen, "",
				"the product sink kept failing: circuit breaker still open after %d deliveries", m.ReceiveCount))
		}
		delay := cfg.breakerTimeout + shard.Delay(m.ReceiveCount-1, cfg.breakerTimeout, 30*time.Second)
		cfg.Log.Warn("sink failing, shard delayed", "batch_id", m.Manifest.BatchID, "shard", m.Manifest.Shard, "attempt", m.ReceiveCount, "delay", delay.String())
		return false, q.Retry(ctx, m, delay)
	}
	// Finished, Ack, and a shard another worker holds (in one process: a
	// duplicate delivery of it) are settled.
	if err := q.Ack(ctx, m); err != nil && ctx.Err() == nil {
		return out.Settle == pipeline.Finished, err
	}
	return out.Settle == pipeline.Finished, nil
}

// progress polls the batch's counters until stopped.
func progress(ctx context.Context, cfg Config, db *sqlite.DB, id string) func() {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(cfg.Tick)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if b, err := db.GetBatch(ctx, id); err == nil {
					cfg.Progress(b.Counts)
				}
			}
		}
	})
	return func() { close(done); wg.Wait() }
}
