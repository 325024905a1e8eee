package shard

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/catalog-import/catalog-import/internal/catalog"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/lineage"
	"github.com/catalog-import/catalog-import/internal/profile"
	"github.com/catalog-import/catalog-import/internal/queue"
	"github.com/catalog-import/catalog-import/internal/record"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/state"
)

// This file runs one claimed shard: the reader, the validation pool and
// the committer connected by bounded channels (invariant 9).

// run is the state of one Process call.
type run struct {
	w     *Worker
	m     queue.Manifest
	lease state.Lease
	until time.Time // the lease's end as last set (claim, checkpoint or renewal), by the worker's clock
	shard state.Shard
	cp    state.Checkpoint
	p     *profile.Profile
	v     *profile.Validator

	dialect record.Dialect
	header  *profile.Columns // csv/tsv: the header's mapping
	// marked: the file is a fix file whose formula cells carry the mark
	// its writer added (lineage.Marked); validate removes it.
	marked  bool
	mapping map[string]string
	shards  []state.Shard // loaded lazily to place displaced rows
	retries int           // transient errors retried so far (budget: Options.RetryBudget)
	log     *slog.Logger  // with batch_id, shard and trace_id
	lastCP  time.Time     // when the previous checkpoint (or the claim) was durable
	// checking is set in the check phase (check.go): rows are validated
	// and collected, nothing is written. checked is set in the write phase
	// of a batch whose check passed: max_error_ratio was applied there.
	checking *checkRun
	checked  bool

	work chan *chunk // chunks for the pool (wait looks at its backlog)
	// spares are the buffers of committed chunks, for the reader's next
	// chunks (recycle): a chunk's record bytes, records, products and
	// snapshots are a quarter of what an import allocates.
	spares chan spare

	// Deadline pacing (reader and committer goroutines): chunks read but not
	// yet committed, and how long committing one chunk has been taking.
	pending  atomic.Int64
	perChunk atomic.Int64 // nanoseconds, a moving average
}

// chunk is CheckpointEvery rows on their way through the pipeline.
type chunk struct {
	raws    []record.Raw
	buf     []byte
	end     int64 // offset of the next record after the chunk
	nextRow int64
	done    chan struct{} // closed once validated
	taken   atomic.Bool   // a goroutine is validating it (a pool goroutine, or the committer: see wait)

	products []catalog.Product
	snaps    []snapshot // the raw text and cells of products[i]
	failures []failure.Record
	prepared []any // Preparer.Prepare of products (one per chunk merged; nil: none)
}

// wait returns once c is validated. When the pool has a backlog (chunks
// no pool goroutine has taken yet) and c is one of them, the caller (the
// committer, waiting for the chunk it must commit next) validates it
// itself with parser, made on first use: a committer never idles behind
// pool goroutines that are busy or that the OS has not scheduled, so a
// shard keeps moving on a busy machine, at worst at the speed of one
// goroutine doing everything. Without a backlog a pool goroutine is about
// to take c, and the committer, usually the bottleneck, leaves it to it
// (decision 28).
func (r *run) wait(ctx context.Context, c *chunk, parser **record.Parser) error {
	select {
	case <-c.done:
		return nil
	default:
	}
	if len(r.work) > 0 && c.taken.CompareAndSwap(false, true) {
		if *parser == nil {
			*parser = record.NewParser(r.dialect, r.m.Layout.Header)
		}
		r.validate(*parser, c)
		close(c.done)
		return nil
	}
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// spare is a committed chunk's buffers (run.spares).
type spare struct {
	raws     []record.Raw
	buf      []byte
	products []catalog.Product
	snaps    []snapshot
}

// recycle hands the buffers of committed chunks to the reader. Only the
// buffers: a chunk struct may still sit in the pool's channel after the
// committer validated it itself (wait), where a pool goroutine only looks
// at its taken flag. What a spare's products and snapshots still point to
// (the rows' texts) is overwritten when it is used again.
func (r *run) recycle(cs []*chunk) {
	for _, c := range cs {
		select {
		case r.spares <- spare{raws: c.raws, buf: c.buf, products: c.products, snaps: c.snaps}:
		default:
			return
		}
		c.raws, c.buf, c.products, c.snaps = nil, nil, nil, nil
	}
}

type snapshot struct {
	text  string
	cells []string
}

func (r *run) process(ctx context.Context) (Result, error) {
	o := r.w.opt
	r.dialect = r.m.Layout.Dialect()
	if r.dialect.Format != record.JSONL {
		cols, err := r.v.Header(r.m.Layout.Header)
		if err != nil {
			return Result{}, err
		}
		r.header, r.mapping = cols, cols.Mapping()
		r.marked = lineage.Marked(r.m.Layout.Header)
	}
	if r.cp.NextOffset < r.m.Start {
		r.cp = state.Checkpoint{NextOffset: r.m.Start, NextRow: r.m.FirstRow}
	}
	fromStart := r.cp.NextOffset == r.m.Start
	info := r.m.Source.Info()
	var body io.ReadCloser
	if r.cp.NextOffset < r.m.End {
		var err error
		if body, err = r.w.src.Open(ctx, info, r.cp.NextOffset, r.m.End); err != nil {
			return Result{}, err // the source names the file
		}
		defer body.Close()
	}

	work := make(chan *chunk, o.Pool)
	r.work = work
	r.spares = make(chan spare, 2*o.Pool+maxGroup)
	ordered := make(chan *chunk, 2*o.Pool) // bounds the chunks in flight
	readErr := make(chan error, 1)
	sum := split.NewChecksum()
	stopped := false
	rctx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	from := r.cp // the reader's own copy: the committer moves r.cp
	// The goroutines carry a pprof label "stage" (reader, pool, committer),
	// so that a CPU profile splits by stage (`importctl run --cpuprofile`,
	// `go tool pprof -tags`; docs/performance.md).
	go pprof.Do(ctx, pprof.Labels("stage", "reader"), func(context.Context) { // cut the range into chunks, in file order
		defer close(ordered)
		defer close(work)
		if body == nil {
			readErr <- nil
			return
		}
		readErr <- r.read(rctx, body, from, sum, work, ordered, &stopped)
	})
	var wg sync.WaitGroup
	for range o.Pool { // pool: parse and validate chunks, any order
		wg.Go(func() {
			pprof.Do(ctx, pprof.Labels("stage", "pool"), func(context.Context) {
				parser := record.NewParser(r.dialect, r.m.Layout.Header)
				for c := range work {
					if c.taken.CompareAndSwap(false, true) {
						r.validate(parser, c)
						close(c.done)
					}
				}
			})
		})
	}
	var res Result
	var err error
	pprof.Do(ctx, pprof.Labels("stage", "committer"), func(ctx context.Context) {
		if r.checking != nil {
			res, err = r.checkAll(ctx, ordered)
		} else {
			res, err = r.commitAll(ctx, ordered)
		}
	})
	stopReading()
	for range ordered { // drain after an early return so the reader can exit
	}
	wg.Wait()
	rerr := <-readErr
	if err == nil && res.Status == Backoff {
		// Hand the shard on, as after a deadline (best effort: the store
		// may be failing too, and then the lease simply runs out).
		_ = r.w.store.Checkpoint(ctx, r.lease, r.cp, nil, r.w.now())
	}
	if err != nil || res.Status != "" || res.Abort != "" {
		return res, err
	}
	if rerr != nil {
		return Result{Status: Partial, Counts: r.cp.Counts}, rerr // the source names the file
	}
	if stopped {
		// Hand the shard on: end the lease now (same checkpoint, lease until
		// now), so that the continuation's worker can claim it at once
		// instead of waiting for this lease to run out.
		if err := r.w.store.Checkpoint(ctx, r.lease, r.cp, nil, r.w.now()); err != nil && !errors.Is(err, state.ErrFenced) {
			return Result{Status: Partial, Counts: r.cp.Counts}, err // the store names the shard
		}
		return Result{Status: Partial, Counts: r.cp.Counts}, nil
	}
	if fromStart && r.shard.Checksum != "" && sum.String() != r.shard.Checksum {
		return Result{}, failure.New(failure.SourceChanged, "", "shard %d of %s: content checksum %s, split saw %s: the source changed after the split", r.m.Shard, r.m.BatchID, sum, r.shard.Checksum)
	}
	rows := r.cp.Counts.Done()
	if r.checking != nil {
		rows = r.checking.rows
	}
	if rows != r.m.Rows {
		// The split and this read disagree on the rows of the range: never
		// finish (or check) such a shard silently.
		return Result{}, failure.New(failure.SourceChanged, "", "shard %d of %s: read %d rows, split counted %d", r.m.Shard, r.m.BatchID, rows, r.m.Rows)
	}
	if r.checking != nil {
		return r.recordCheck(ctx)
	}
	fctx, end := r.w.span(ctx, SpanFinish)
	b, err := r.w.store.FinishShard(fctx, r.lease, state.ShardDone, r.cp, "")
	end(err)
	if errors.Is(err, state.ErrFenced) {
		return Result{Status: Fenced, Counts: r.cp.Counts}, nil
	}
	if err != nil {
		return Result{}, err // the store names the shard
	}
	return Result{Status: Done, Counts: r.cp.Counts, Batch: b, Last: b.ShardsDone == b.Shards}, nil
}
