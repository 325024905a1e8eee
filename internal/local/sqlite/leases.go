package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/state"
)

// This file implements state.Store's leases and checkpoints: Claim,
// Checkpoint, FinishShard and ReleaseLeases, each fenced by the lease's
// epoch (invariant 2) and never moving a checkpoint back (invariant 3).

// shardAndBatch loads a shard and its batch's status in the transaction.
func shardAndBatch(tx *wtx, batchID string, index int) (state.Shard, state.BatchStatus, error) {
	var bs string
	if err := tx.queryRow(`SELECT status FROM batches WHERE batch_id = ?`, batchID).Scan(&bs); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return state.Shard{}, "", fmt.Errorf("batch %w", state.ErrNotFound) // the op names it
		}
		return state.Shard{}, "", err
	}
	s, err := scanShard(tx.queryRow(`SELECT `+shardCols+` FROM shards WHERE batch_id = ? AND shard = ?`, batchID, index))
	if errors.Is(err, sql.ErrNoRows) {
		return state.Shard{}, "", fmt.Errorf("shard %w", state.ErrNotFound)
	}
	return s, state.BatchStatus(bs), err
}

// fence loads the shard lease names and checks that lease is current.
func fence(tx *wtx, lease state.Lease) (state.Shard, state.BatchStatus, error) {
	s, bs, err := shardAndBatch(tx, lease.BatchID, lease.Shard)
	if err != nil {
		return s, bs, err
	}
	if lease.Epoch < 1 || s.Epoch != lease.Epoch || s.Owner != lease.Owner {
		return s, bs, fmt.Errorf("%w: lease of %q at epoch %d, shard now held by %q at epoch %d",
			state.ErrFenced, lease.Owner, lease.Epoch, s.Owner, s.Epoch)
	}
	return s, bs, nil
}

// fenceCheckpoint is fence for Checkpoint, which is called for every chunk
// group: one query of the columns it needs (not the shard's layout and
// block checksums), joined with the batch's status. A missing batch or
// shard is reported as fence reports it.
func fenceCheckpoint(tx *wtx, lease state.Lease) (state.Shard, state.BatchStatus, error) {
	var (
		s          state.Shard
		bs, status string
		c          = &s.Checkpoint.Counts
	)
	err := tx.queryRow(`SELECT b.status, s.status, s.owner, s.epoch, s.cp_next_offset, s.cp_next_row,
		s.cp_rows_total, s.cp_rows_imported, s.cp_rows_superseded, s.cp_rows_failed, s.cp_rows_skipped
		FROM shards s JOIN batches b ON b.batch_id = s.batch_id WHERE s.batch_id = ? AND s.shard = ?`, lease.BatchID, lease.Shard).Scan(
		&bs, &status, &s.Owner, &s.Epoch, &s.Checkpoint.NextOffset, &s.Checkpoint.NextRow,
		&c.Total, &c.Imported, &c.Superseded, &c.Failed, &c.Skipped)
	if errors.Is(err, sql.ErrNoRows) {
		return fence(tx, lease)
	}
	if err != nil {
		return s, "", err
	}
	s.BatchID, s.Index, s.Status = lease.BatchID, lease.Shard, state.ShardStatus(status)
	if lease.Epoch < 1 || s.Epoch != lease.Epoch || s.Owner != lease.Owner {
		return s, state.BatchStatus(bs), fmt.Errorf("%w: lease of %q at epoch %d, shard now held by %q at epoch %d",
			state.ErrFenced, lease.Owner, lease.Epoch, s.Owner, s.Epoch)
	}
	return s, state.BatchStatus(bs), nil
}

// Claim takes the shard for owner until now+ttl and bumps its epoch; see
// state.Store.
func (db *DB) Claim(ctx context.Context, batchID string, shard int, owner string, ttl time.Duration, now time.Time) (state.Lease, state.Shard, error) {
	if owner == "" {
		return state.Lease{}, state.Shard{}, invalid("owner", "claim shard %s/%d: empty owner", batchID, shard)
	}
	if ttl <= 0 {
		return state.Lease{}, state.Shard{}, invalid("ttl", "claim shard %s/%d: ttl %v is not positive", batchID, shard, ttl)
	}
	var s state.Shard
	err := db.write(ctx, fmt.Sprintf("claim shard %s/%d", batchID, shard), func(tx *wtx) error {
		var (
			bs  state.BatchStatus
			err error
		)
		if s, bs, err = shardAndBatch(tx, batchID, shard); err != nil {
			return err
		}
		if err := bs.WriteErr(); err != nil {
			return err
		}
		switch {
		case s.Status.Finished():
			return fmt.Errorf("%w (%s)", state.ErrShardFinished, s.Status)
		case s.Owner != owner && s.LeaseUntil.After(now):
			return fmt.Errorf("%w: %q until %s", state.ErrLeased, s.Owner, s.LeaseUntil.Format(time.RFC3339Nano))
		}
		s.Status, s.Owner, s.Epoch, s.Attempts = state.ShardRunning, owner, s.Epoch+1, s.Attempts+1
		s.LeaseUntil, s.UpdatedAt = now.Add(ttl).UTC(), now.UTC()
		_, err = tx.exec(`UPDATE shards SET status = ?, owner = ?, epoch = ?, attempts = ?, lease_until = ?, updated_at = ?
			WHERE batch_id = ? AND shard = ?`,
			string(s.Status), s.Owner, s.Epoch, s.Attempts, timeArg(s.LeaseUntil), timeArg(s.UpdatedAt), batchID, shard)
		return err
	})
	if err != nil {
		return state.Lease{}, state.Shard{}, err
	}
	return state.Lease{BatchID: batchID, Shard: shard, Owner: owner, Epoch: s.Epoch, Until: s.LeaseUntil}, s, nil
}

// Checkpoint upserts failures, moves the shard's checkpoint to cp, extends
// the lease to until and adds the counts' delta to the batch, in one
// transaction, if lease is current; see state.Store and the package
// documentation.
func (db *DB) Checkpoint(ctx context.Context, lease state.Lease, cp state.Checkpoint, failures []failure.Record, until time.Time) error {
	op := fmt.Sprintf("checkpoint shard %s/%d at row %d", lease.BatchID, lease.Shard, cp.NextRow)
	return db.run(ctx, op, checkpointCall, 0, func(tx *wtx) error {
		s, bs, err := fenceCheckpoint(tx, lease)
		if err != nil {
			return err
		}
		if s.Status.Finished() {
			return fmt.Errorf("%w (%s)", state.ErrShardFinished, s.Status)
		}
		if err := bs.WriteErr(); err != nil {
			return err
		}
		if err := putFailures(tx, failures); err != nil {
			return err
		}
		at := db.opts.Now()
		now := timeArg(at)
		if state.Behind(cp, s.Checkpoint) {
			_, err := tx.exec(`UPDATE shards SET lease_until = ?, updated_at = ? WHERE batch_id = ? AND shard = ?`,
				timeArg(until), now, lease.BatchID, lease.Shard)
			return err
		}
		if err := appendSample(tx, lease, s.Checkpoint, cp, failures, at, false); err != nil {
			return err
		}
		if err := setCheckpoint(tx, lease, cp, "lease_until = ?, updated_at = ?", timeArg(until), now); err != nil {
			return err
		}
		return addCounts(tx, lease.BatchID, cp.Counts.Sub(s.Checkpoint.Counts), 0, now)
	})
}

// setCheckpoint stores cp on the lease's shard with more assignments.
func setCheckpoint(tx *wtx, lease state.Lease, cp state.Checkpoint, more string, args ...any) error {
	c := cp.Counts
	args = append([]any{cp.NextOffset, cp.NextRow, c.Total, c.Imported, c.Superseded, c.Failed, c.Skipped}, args...)
	args = append(args, lease.BatchID, lease.Shard)
	_, err := tx.exec(`UPDATE shards SET cp_next_offset = ?, cp_next_row = ?, cp_rows_total = ?, cp_rows_imported = ?,
		cp_rows_superseded = ?, cp_rows_failed = ?, cp_rows_skipped = ?, `+more+` WHERE batch_id = ? AND shard = ?`, args...)
	return err
}

// addCounts adds d's outcomes to the batch's counters (a batch's total is
// the split's row count; only outcomes move) and shardsDone to its
// ShardsDone. A missing batch is sql.ErrNoRows.
func addCounts(tx *wtx, batchID string, d state.Counts, shardsDone int, now any) error {
	res, err := tx.exec(`UPDATE batches SET rows_imported = rows_imported + ?,
		rows_superseded = rows_superseded + ?, rows_failed = rows_failed + ?, rows_skipped = rows_skipped + ?,
		shards_done = shards_done + ?, updated_at = ?
		WHERE batch_id = ?`,
		d.Imported, d.Superseded, d.Failed, d.Skipped, shardsDone, now, batchID)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return cmp.Or(err, sql.ErrNoRows)
	}
	return nil
}

// FinishShard sets the lease's shard to status with a final checkpoint and
// message; see state.Store and the package
// documentation.
func (db *DB) FinishShard(ctx context.Context, lease state.Lease, status state.ShardStatus, cp state.Checkpoint, message string) (state.Batch, error) {
	if status != state.ShardDone && status != state.ShardSkipped && status != state.ShardEscalated {
		return state.Batch{}, invalid("status", "finish shard %s/%d: status %q is not DONE, SKIPPED or ESCALATED", lease.BatchID, lease.Shard, status)
	}
	var b state.Batch
	err := db.write(ctx, fmt.Sprintf("finish shard %s/%d as %s", lease.BatchID, lease.Shard, status), func(tx *wtx) error {
		s, bs, err := fence(tx, lease)
		if err != nil {
			return err
		}
		if s.Status.Finished() {
			if s.Status != status {
				return fmt.Errorf("%w (%s)", state.ErrShardFinished, s.Status)
			}
			b, err = loadBatch(ctx, tx, lease.BatchID)
			return err
		}
		if err := bs.WriteErr(); err != nil {
			return err
		}
		var d state.Counts
		at := db.opts.Now()
		if state.Behind(cp, s.Checkpoint) {
			cp = s.Checkpoint
		} else {
			d = cp.Counts.Sub(s.Checkpoint.Counts)
			if err := appendSample(tx, lease, s.Checkpoint, cp, nil, at, true); err != nil {
				return err
			}
		}
		now := timeArg(at)
		if err := setCheckpoint(tx, lease, cp, "status = ?, message = ?, lease_until = NULL, updated_at = ?",
			string(status), message, now); err != nil {
			return err
		}
		done := 0
		if status.Finished() {
			done = 1
		}
		if err := addCounts(tx, lease.BatchID, d, done, now); err != nil {
			return err
		}
		b, err = loadBatch(ctx, tx, lease.BatchID)
		return err
	})
	return b, err
}

// ReleaseLeases ends the live leases of the batch's unfinished shards without
// bumping epochs; state.ErrNotFound if there is no such batch.
func (db *DB) ReleaseLeases(ctx context.Context, batchID string) error {
	return db.write(ctx, "release leases of "+batchID, func(tx *wtx) error {
		var one int
		if err := tx.queryRow(`SELECT 1 FROM batches WHERE batch_id = ?`, batchID).Scan(&one); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return state.ErrNotFound
			}
			return err
		}
		_, err := tx.exec(`UPDATE shards SET lease_until = NULL
			WHERE batch_id = ? AND status NOT IN ('DONE', 'SKIPPED') AND lease_until IS NOT NULL`, batchID)
		return err
	})
}

// RecordCheck records the check-phase outcome c of the lease's shard,
// upserts failures, ends the lease and adds the outcome to the batch's check
// phase, in one transaction; see state.Store. A shard checked already keeps
// its first outcome.
func (db *DB) RecordCheck(ctx context.Context, lease state.Lease, c state.Check, failures []failure.Record) (state.Batch, error) {
	var b state.Batch
	err := db.write(ctx, fmt.Sprintf("record check of shard %s/%d", lease.BatchID, lease.Shard), func(tx *wtx) error {
		s, bs, err := fence(tx, lease)
		if err != nil {
			return err
		}
		if bs.Finished() {
			return fmt.Errorf("%w (%s)", state.ErrBatchFinished, bs)
		}
		if b, err = loadBatch(ctx, tx, lease.BatchID); err != nil {
			return err
		}
		if b.Check == nil {
			return failure.New(failure.Internal, "", "record check of shard %s/%d: the batch has no check phase", lease.BatchID, lease.Shard)
		}
		now := timeArg(db.opts.Now())
		status := s.Status
		if status == state.ShardRunning {
			status = state.ShardPending // checked, not yet written
		}
		if s.Check != nil { // checked before: only end the lease
			_, err := tx.exec(`UPDATE shards SET status = ?, lease_until = NULL, updated_at = ? WHERE batch_id = ? AND shard = ?`,
				string(status), now, lease.BatchID, lease.Shard)
			return err
		}
		if err := putFailures(tx, failures); err != nil {
			return err
		}
		if _, err := tx.exec(`UPDATE shards SET status = ?, check_rows = ?, check_failed = ?, lease_until = NULL, updated_at = ?
			WHERE batch_id = ? AND shard = ?`, string(status), c.Rows, c.Failed, now, lease.BatchID, lease.Shard); err != nil {
			return err
		}
		if _, err := tx.exec(`UPDATE batches SET check_shards = check_shards + 1, check_rows = check_rows + ?,
			check_failed = check_failed + ?, updated_at = ? WHERE batch_id = ?`, c.Rows, c.Failed, now, lease.BatchID); err != nil {
			return err
		}
		b, err = loadBatch(ctx, tx, lease.BatchID)
		return err
	})
	return b, err
}
