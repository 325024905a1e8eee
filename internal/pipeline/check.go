package pipeline

import (
	"context"
	"fmt"

	"github.com/catalog-import/catalog-import/internal/queue"
	"github.com/catalog-import/catalog-import/internal/shard"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/state"
)

// This file ends the check phase of a batch with max_error_ratio (decision
// 20): when every shard is checked, the delivery that made it so (or a
// redelivery, a rerun, a resume that finds it so) decides the batch.

// Decide decides a batch whose every shard is checked: over the profile's
// max_error_ratio it is finalized ABORTED before anything was written
// (shard.CheckAbort's message), otherwise the write phase's manifests are
// sent, one per unfinished shard. Deciding again is harmless: a finished
// batch is left alone, and a manifest sent twice is a duplicate delivery,
// which the shard's lease makes a no-op. It reports whether it finalized
// the batch, and does nothing for a batch without a check phase or whose
// check is not complete.
func (p *Pipeline) Decide(ctx context.Context, b state.Batch) (finished bool, err error) {
	return p.decide(ctx, b, false)
}

// decide is Decide; with handOn an ABORTED batch is not finalized here but
// handed to a shard worker (a write-phase manifest of its first shard: the
// worker finds the budget exceeded and finalizes), as the splitter does on
// AWS, whose role and timeout are not a finalization's (decision 24).
func (p *Pipeline) decide(ctx context.Context, b state.Batch, handOn bool) (finished bool, err error) {
	if b.Status.Finished() || b.Check == nil || !b.Check.Done(b.Shards) {
		return false, nil
	}
	if msg := shard.CheckAbort(b, split.MaxErrorRatio(b)); msg != "" {
		if handOn {
			return false, p.handOnAbort(ctx, b)
		}
		if _, err := p.Finalize(ctx, b.ID, msg); err != nil {
			return false, err
		}
		return true, nil
	}
	shards, err := p.p.Store.ListShards(ctx, b.ID)
	if err != nil {
		return false, err // the store names the batch
	}
	ms := split.Pending(b, shards, b.TraceID)
	if err := p.p.Queue.Send(ctx, 0, ms...); err != nil {
		return false, fmt.Errorf("send %d write manifests of %s: %w", len(ms), b.ID, err)
	}
	p.log.Info("batch checked", "batch_id", b.ID, "trace_id", b.TraceID, "rows_checked", b.Check.Rows,
		"rows_failed", b.Check.Failed, "write_manifests", len(ms))
	return false, nil
}

// handOnAbort sends a write-phase manifest of the first shard of b, whose
// check exceeded its budget, for a shard worker to finalize it ABORTED.
func (p *Pipeline) handOnAbort(ctx context.Context, b state.Batch) error {
	shards, err := p.p.Store.ListShards(ctx, b.ID)
	if err != nil {
		return fmt.Errorf("list shards of %s: %w", b.ID, err)
	}
	if len(shards) == 0 {
		return fmt.Errorf("hand the finalization of %s on: no shard stored", b.ID)
	}
	if err := p.sendFinalizer(ctx, b, shards[0]); err != nil {
		return err
	}
	p.log.Info("batch over its error budget: finalization handed on to a shard worker", "batch_id", b.ID, "trace_id", b.TraceID)
	return nil
}

// sendFinalizer puts a manifest of shard sh of b on the shard queue for a
// shard worker to finalize b: the worker finds the shard finished, or the
// check over its budget, and finalizes with a worker's time and memory.
func (p *Pipeline) sendFinalizer(ctx context.Context, b state.Batch, sh state.Shard) error {
	m := split.Manifest(b, sh, b.TraceID)
	if b.Check != nil {
		m.Phase = queue.PhaseWrite // a check manifest would decide, not finalize
	}
	if err := p.p.Queue.Send(ctx, 0, m); err != nil {
		return fmt.Errorf("hand the finalization of %s on to a worker: %w", b.ID, err)
	}
	return nil
}
