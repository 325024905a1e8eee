package shard

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/catalog-import/catalog-import/internal/catalog"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/record"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/state"
)

// This file commits chunks in file order: products through the sink, then
// failure records and the checkpoint in one fenced write (invariants 3, 4, 5).

// commitAll commits chunks in file order. A non-empty Status in the result
// means the shard stopped for a reason that is not an error.
//
// Group commit: when the chunks after the one in hand are already validated
// (the store is the bottleneck), they are committed together, up to
// maxGroup chunks, with one checkpoint at the end of the last. That does not
// widen the rework bound after a crash: those chunks were in flight anyway.
func (r *run) commitAll(ctx context.Context, ordered <-chan *chunk) (Result, error) {
	var next *chunk           // taken from ordered but not yet validated
	var merged chunk          // a group's chunks joined (its buffers are reused)
	var parser *record.Parser // to validate a chunk no pool goroutine has taken (wait)
	for {
		c := next
		next = nil
		if c == nil {
			var ok bool
			if c, ok = <-ordered; !ok {
				return Result{}, nil
			}
		}
		if err := r.wait(ctx, c, &parser); err != nil {
			return Result{}, err
		}
		group := []*chunk{c}
		limit := r.groupLimit(ctx)
	more:
		for len(group) < limit {
			select {
			case n, ok := <-ordered:
				if !ok {
					break more
				}
				select {
				case <-n.done:
					group = append(group, n)
				default:
					next = n
					break more
				}
			default:
				break more
			}
		}
		start := time.Now()
		res, err := r.commit(ctx, merge(&merged, group))
		merged.release()
		r.recycle(group)
		r.paced(len(group), time.Since(start))
		if err != nil || res.Status != "" || res.Abort != "" {
			return res, err
		}
	}
}

// maxGroup is the most chunks committed in one step.
const maxGroup = 8

// merge joins consecutive validated chunks into one, m (reused from group
// to group: the committer's buffers, so that a group allocates nothing).
func merge(m *chunk, cs []*chunk) *chunk {
	if len(cs) == 1 {
		return cs[0]
	}
	*m = chunk{raws: m.raws[:0], products: m.products[:0], snaps: m.snaps[:0], failures: m.failures[:0], prepared: m.prepared[:0],
		end: cs[len(cs)-1].end, nextRow: cs[len(cs)-1].nextRow}
	for _, c := range cs {
		m.raws = append(m.raws, c.raws...)
		m.products = append(m.products, c.products...)
		m.snaps = append(m.snaps, c.snaps...)
		m.failures = append(m.failures, c.failures...)
		if len(c.products) > 0 {
			m.prepared = append(m.prepared, c.prepared...)
		}
	}
	return m
}

// release drops what the merged chunk m refers to, keeping its buffers.
func (m *chunk) release() {
	clear(m.raws)
	clear(m.products)
	clear(m.snaps)
	clear(m.failures)
	clear(m.prepared)
}

// commit makes one chunk durable: products, then failure records and the
// checkpoint together (fenced by the lease's epoch).
func (r *run) commit(ctx context.Context, c *chunk) (Result, error) {
	fails := c.failures
	imported, superseded := int64(0), int64(0)
	if len(c.products) > 0 {
		if res, stop, err := r.holdLease(ctx); stop {
			return res, err
		}
		outs, err := r.write(ctx, c.products, c.prepared)
		if failure.ReasonOf(err) == failure.CircuitOpen {
			return Result{Status: Backoff, Counts: r.cp.Counts}, nil
		}
		if err != nil {
			return Result{}, fmt.Errorf("rows %d-%d: %w", c.raws[0].Row, c.nextRow-1, err)
		}
		var displaced []failure.Record
		for i, out := range outs {
			p := c.products[i]
			switch out.Result {
			case catalog.Written:
				imported++
			case catalog.Superseded:
				superseded++ // newer uploads hold every field it would change: not a failure
			case catalog.Unknown:
				fails = append(fails, r.businessFailure(p, c.snaps[i], failure.New(failure.UnknownSKU, "sku",
					"SKU %q is not in the catalog and the profile's write_mode is update (it changes existing products only)", p.SKU)))
			case catalog.Duplicate:
				fails = append(fails, r.businessFailure(p, c.snaps[i], failure.New(failure.DuplicateSKU, "sku",
					"SKU %q is already imported from %s of this file (the lowest row wins)", p.SKU, out.Holder)))
			case catalog.Exists:
				fails = append(fails, r.businessFailure(p, c.snaps[i], failure.New(failure.SKUExists, "sku",
					"SKU %q already exists in the catalog and the profile is create-only", p.SKU)))
			}
			for _, d := range out.Displaced {
				rec, err := r.displacedFailure(ctx, p, d)
				if err != nil {
					return Result{}, err
				}
				displaced = append(displaced, rec)
			}
		}
		if len(displaced) > 0 {
			if res, stop, err := r.holdLease(ctx); stop {
				return res, err
			}
			if err := r.retry(ctx, "put failures", func() error { return r.w.store.PutFailures(ctx, displaced) }); err != nil {
				return Result{}, fmt.Errorf("record displaced duplicates: %w", err)
			}
		}
	}
	cp := state.Checkpoint{NextOffset: c.end, NextRow: c.nextRow, Counts: r.cp.Counts.Add(state.Counts{
		Total: int64(len(c.raws)), Imported: imported, Superseded: superseded, Failed: int64(len(c.raws)) - imported - superseded,
	})}
	var until time.Time
	cpctx, end := r.w.span(ctx, SpanCheckpoint)
	err := r.retry(cpctx, "checkpoint", func() error {
		until = r.w.now().Add(r.w.opt.LeaseTTL)
		return r.w.store.Checkpoint(cpctx, r.lease, cp, fails, until)
	})
	end(err)
	switch {
	case errors.Is(err, state.ErrFenced):
		return Result{Status: Fenced, Counts: r.cp.Counts}, nil
	case errors.Is(err, state.ErrBatchFinished), errors.Is(err, state.ErrBatchSuspended):
		return Result{Status: BatchFinished, Counts: r.cp.Counts}, nil
	case err != nil:
		return Result{}, err // the store names the shard and the row
	}
	r.cp, r.until = cp, until
	r.checkpointed(ctx, imported, superseded, int64(len(c.raws))-imported-superseded, fails, c.nextRow)
	return r.overRatio(ctx, cp)
}

// overRatio applies max_error_ratio after a checkpoint of a batch that has
// no check phase (registered before decision 20; a batch with one applied
// the ratio to the whole file before writing): it reads the batch's counts
// (GetBatch: the sum of its shards' checkpoints, decision 30) and asks the
// caller to abort when the failed rows are over the ratio. Only such
// batches pay this read, one per checkpoint.
func (r *run) overRatio(ctx context.Context, cp state.Checkpoint) (Result, error) {
	ratio := r.p.MaxErrorRatio()
	if ratio <= 0 || r.checked {
		return Result{}, nil
	}
	var b state.Batch
	if err := r.retry(ctx, "read the batch's counts", func() error {
		var err error
		b, err = r.w.store.GetBatch(ctx, r.m.BatchID)
		return err
	}); err != nil {
		return Result{}, err // the store names the batch
	}
	c := b.Counts
	if c.Done() >= minSample && float64(c.Failed) > ratio*float64(c.Done()) {
		return Result{Counts: cp.Counts, Abort: fmt.Sprintf("%d of %d rows failed (%.1f%%), over the profile's max_error_ratio %.1f%%",
			c.Failed, c.Done(), 100*float64(c.Failed)/float64(c.Done()), 100*ratio)}, nil
	}
	return Result{}, nil
}

// holdLease is called before every product and failure-record write: the
// write is made only while the lease has at least LeaseMargin to run by the
// worker's clock. Closer to its end (a stalled store, a long pause) the
// lease is renewed first — a checkpoint at the current checkpoint, fenced
// by the lease's epoch — so a worker whose lease a newer owner holds stops
// before writing anything (Fenced) instead of writing until its next
// checkpoint is refused. stop says the shard stops here with res and err.
func (r *run) holdLease(ctx context.Context) (res Result, stop bool, err error) {
	now := r.w.now()
	if now.Add(r.w.opt.LeaseMargin).Before(r.until) {
		return Result{}, false, nil
	}
	var until time.Time
	err = r.retry(ctx, "renew lease", func() error {
		until = r.w.now().Add(r.w.opt.LeaseTTL)
		return r.w.store.Checkpoint(ctx, r.lease, r.cp, nil, until)
	})
	switch {
	case errors.Is(err, state.ErrFenced):
		r.log.Warn("lease lost before a write: stopping, the newer owner continues", "lease_until", r.until, "epoch", r.lease.Epoch)
		return Result{Status: Fenced, Counts: r.cp.Counts}, true, nil
	case errors.Is(err, state.ErrBatchFinished):
		return Result{Status: BatchFinished, Counts: r.cp.Counts}, true, nil
	case err != nil:
		return Result{}, true, fmt.Errorf("renew the lease: %w", err) // the store names the shard
	}
	r.until = until
	return Result{}, false, nil
}

// checkpointed reports a durable checkpoint: metrics, and one log line for
// its failures.
func (r *run) checkpointed(ctx context.Context, imported, superseded, failed int64, fails []failure.Record, nextRow int64) {
	now := time.Now()
	counts := byReason(fails)
	r.w.metrics.Checkpointed(ctx, Checkpointed{BatchID: r.m.BatchID, Shard: r.m.Shard, TraceID: r.m.TraceID,
		Imported: imported, Superseded: superseded, Failed: failed, ByReason: counts, Lag: now.Sub(r.lastCP), NextRow: nextRow})
	r.lastCP = now
	r.logFailures(ctx, fails, counts, nextRow)
}

// minSample is how many rows must have an outcome before max_error_ratio is
// applied, so that one bad row at the start does not abort a batch. Only a
// batch without a check phase (registered before decision 20) is aborted
// while it writes; with one, the ratio is applied to the whole file's check
// before the first write (check.go), and the write phase never aborts.
const minSample = 100

func (r *run) businessFailure(p catalog.Product, s snapshot, err error) failure.Record {
	rec := failure.Record{
		BatchID: r.m.BatchID, Sheet: r.m.Sheet, Row: p.Source.Row,
		RawLine: s.text, Cells: s.cells, FieldMapping: r.mapping,
		RuleVersion: r.m.RuleVersion, RetryCount: r.m.RetryCount,
		FailureAt: r.w.now().UTC(), TraceID: r.m.TraceID, Shard: r.m.Shard,
	}
	rec.FromError(err)
	return rec
}

// displacedFailure builds the DuplicateSKU record of a row that p displaced
// (a later row of this batch that another shard had written first). The row's
// bytes are read back from the source, so the record is as complete as any.
func (r *run) displacedFailure(ctx context.Context, p catalog.Product, d catalog.Product) (failure.Record, error) {
	rec := failure.Record{
		BatchID: r.m.BatchID, Sheet: d.Source.Sheet, Row: d.Source.Row, FieldMapping: r.mapping,
		RuleVersion: r.m.RuleVersion, RetryCount: r.m.RetryCount,
		FailureAt: r.w.now().UTC(), TraceID: r.m.TraceID, Shard: -1,
	}
	if rec.Sheet == "" {
		rec.Sheet = failure.NoSheet
	}
	rec.FromError(failure.New(failure.DuplicateSKU, "sku", "SKU %q is also on %s of this file (the lowest row wins)", d.SKU, p.Source))
	if r.shards == nil {
		s, err := r.w.store.ListShards(ctx, r.m.BatchID)
		if err != nil {
			return rec, err // the store names the batch
		}
		r.shards = s
	}
	src, layout, dialect := r.m.Source, r.m.Layout, r.dialect
	for _, s := range r.shards {
		if s.SheetIndex == d.Source.SheetIndex && s.FirstRow <= d.Source.Row {
			rec.Shard = s.Index
			if s.Staged != nil { // a workbook: the row is in its own shard's staged chunk
				src, layout = split.StagedSource(s)
				dialect = layout.Dialect()
			}
		}
	}
	body, err := r.w.src.Open(ctx, src.Info(), d.Offset, d.Offset+d.Length)
	if err != nil {
		return rec, fmt.Errorf("read displaced %s: %w", d.Source, err)
	}
	defer body.Close()
	sc := record.NewScannerLimits(body, dialect, d.Offset, d.Source.Row, split.ScanLimits(r.v.Profile(), r.w.opt.MaxRecord))
	if sc.Next() {
		row := record.NewParser(dialect, layout.Header).Parse(sc.Raw())
		rec.RawLine, rec.Cells = row.Text, row.Cells
	}
	if err := sc.Err(); err != nil {
		return rec, fmt.Errorf("read displaced %s: %w", d.Source, err)
	}
	return rec, nil
}
