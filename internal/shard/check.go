package shard

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/queue"
	"github.com/catalog-import/catalog-import/internal/record"
	"github.com/catalog-import/catalog-import/internal/state"
)

// This file is the check phase of a batch with max_error_ratio (decision
// 20): a shard's rows are read, parsed and validated by the same reader and
// pool as a write, nothing is written to the catalog, and the outcome (rows
// checked, rows failed, a failure record per failed row) is recorded on the
// shard with state.Store.RecordCheck.
//
// What a check finds: every failure of parsing and validation (syntax,
// semantic and the business rules that read no catalog), and duplicate SKUs
// within the shard (a later row whose SKU an earlier valid row of the same
// shard has: DuplicateSKU, the lowest row wins, as in the write). Failures
// that need the catalog (UnknownSKU, SKUExists) and duplicates across
// shards are found by the write phase, as in a batch without a check; the
// per-shard SKU set is bounded by the shard's rows (split.Options.ShardRows).

// checkRun collects one shard's check outcome (the committer's goroutine).
type checkRun struct {
	rows   int64
	failed int64
	fails  []failure.Record // not yet durable (at most about checkFlush)
	seen   map[string]int64 // SKU -> the row that first had it, among valid rows
}

// checkFlush is how many failure records a check holds before it makes
// them durable (invariant 9: never a whole failure list in memory).
const checkFlush = 1000

// check runs the check phase of manifest m's shard.
func (w *Worker) check(ctx context.Context, m queue.Manifest, c *compiled) (Result, error) {
	b, err := w.store.GetBatch(ctx, m.BatchID)
	if err != nil {
		return Result{}, err // the store names the batch
	}
	switch {
	case b.Status.Finished():
		return Result{Status: BatchFinished}, nil
	case b.Check == nil:
		return Result{}, failure.New(failure.Internal, "", "shard %d of %s: a check manifest for a batch without a check phase", m.Shard, m.BatchID)
	case b.Check.Done(b.Shards):
		return Result{Status: AlreadyChecked, Batch: b, Last: true}, nil
	}
	lease, sh, err := w.store.Claim(ctx, m.BatchID, m.Shard, w.opt.Owner, w.opt.LeaseTTL, w.now())
	switch {
	case errors.Is(err, state.ErrShardFinished):
		return Result{Status: AlreadyDone}, nil
	case errors.Is(err, state.ErrLeased):
		return Result{Status: Leased}, nil
	case errors.Is(err, state.ErrBatchFinished):
		return Result{Status: BatchFinished}, nil
	case err != nil:
		return Result{}, err // the store names the shard
	}
	if sh.Check != nil { // checked before (a redelivery): end the lease only
		b, err := w.store.RecordCheck(ctx, lease, *sh.Check, nil)
		if err != nil {
			return Result{}, err
		}
		return Result{Status: AlreadyChecked, Batch: b, Last: b.Check != nil && b.Check.Done(b.Shards)}, nil
	}
	log := w.log.With("batch_id", m.BatchID, "shard", m.Shard, "phase", queue.PhaseCheck)
	if m.TraceID != "" {
		log = log.With("trace_id", m.TraceID)
	}
	sh.Checkpoint = state.Checkpoint{NextOffset: m.Start, NextRow: m.FirstRow} // a check reads the whole range
	r := &run{w: w, m: m, lease: lease, shard: sh, cp: sh.Checkpoint, p: c.p, v: c.v, log: log,
		checking: &checkRun{seen: map[string]int64{}}}
	res, err := r.process(ctx)
	res.Retries = r.retries
	return res, err
}

// checkAll takes the validated chunks in file order and collects their
// failures, adding DuplicateSKU for a SKU an earlier valid row of the shard
// has. It writes nothing.
func (r *run) checkAll(ctx context.Context, ordered <-chan *chunk) (Result, error) {
	cr := r.checking
	var parser *record.Parser
	for c := range ordered {
		if err := r.wait(ctx, c, &parser); err != nil {
			return Result{}, err
		}
		r.pending.Add(-1)
		cr.rows += int64(len(c.raws))
		cr.fails = append(cr.fails, c.failures...)
		for i, p := range c.products {
			if first, ok := cr.seen[p.SKU]; ok {
				cr.fails = append(cr.fails, r.businessFailure(p, c.snaps[i], failure.New(failure.DuplicateSKU, "sku",
					"SKU %q is also on row %d of this file (the lowest row wins)", p.SKU, first)))
				continue
			}
			cr.seen[p.SKU] = p.Source.Row
		}
		r.cp = state.Checkpoint{NextOffset: c.end, NextRow: c.nextRow, Counts: state.Counts{Total: cr.rows}}
		if len(cr.fails) >= checkFlush {
			if err := r.flushChecks(ctx); err != nil {
				return Result{}, err
			}
		}
	}
	return Result{}, nil
}

// flushChecks makes the failure records collected so far durable, outside
// the lease: they are keyed and the same whoever checks the shard, so a
// stale checker's records change nothing (invariant 4). The rest ride in
// RecordCheck.
func (r *run) flushChecks(ctx context.Context) error {
	cr := r.checking
	if err := r.retry(ctx, "put failures", func() error { return r.w.store.PutFailures(ctx, cr.fails) }); err != nil {
		return fmt.Errorf("record the check's failures: %w", err)
	}
	cr.failed += int64(len(cr.fails))
	cr.fails = cr.fails[:0]
	return nil
}

// recordCheck records the shard's check outcome once the whole range is
// read (and its checksum and row count match the split's).
func (r *run) recordCheck(ctx context.Context) (Result, error) {
	cr := r.checking
	out := state.Check{Rows: cr.rows, Failed: cr.failed + int64(len(cr.fails))}
	b, err := r.w.store.RecordCheck(ctx, r.lease, out, cr.fails)
	switch {
	case errors.Is(err, state.ErrFenced):
		return Result{Status: Fenced}, nil
	case errors.Is(err, state.ErrBatchFinished):
		return Result{Status: BatchFinished}, nil
	case err != nil:
		return Result{}, err // the store names the shard
	}
	r.log.Info("shard checked", "rows_checked", out.Rows, "rows_failed", out.Failed,
		"shards_checked", b.Check.Shards, "shards", b.Shards)
	return Result{Status: Checked, Batch: b, Last: b.Check.Done(b.Shards), Counts: state.Counts{Total: out.Rows, Failed: out.Failed}}, nil
}

// CheckAbort returns the message a batch whose check phase ended over the
// profile's max_error_ratio is aborted with, "" when b's check is not
// complete or within the ratio.
func CheckAbort(b state.Batch, ratio float64) string {
	c := b.Check
	if c == nil || !c.Done(b.Shards) || !c.Exceeds(ratio) {
		return ""
	}
	return fmt.Sprintf("aborted: %d of %d rows failed the checks (%.1f%%), over max_error_ratio %s%%: nothing was imported",
		c.Failed, c.Rows, 100*float64(c.Failed)/float64(max(c.Rows, 1)), strconv.FormatFloat(100*ratio, 'f', -1, 64))
}
