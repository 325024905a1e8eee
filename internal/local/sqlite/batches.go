package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/catalog-import/catalog-import/internal/state"
)

// This file implements state.Store's batches and shards: CreateBatch,
// GetBatch, ListBatches, ListShards and FinishBatch. The package
// documentation lists the decisions taken where the port leaves room.

const batchCols = `batch_id, status, source_uri, source_size, source_etag, source_version, source_mod_time,
	layout, profile, rule_version, shards, shards_done, rows_total, rows_imported, rows_failed, rows_skipped,
	by_reason, message, report, trace_id, created_at, updated_at, finished_at, parent, failures_resolved,
	batch_order, rows_superseded, check_shards, check_rows, check_failed, warnings`

const shardCols = `batch_id, shard, sheet, sheet_index, byte_start, byte_end, first_row, rows, checksum, status,
	cp_next_offset, cp_next_row, cp_rows_total, cp_rows_imported, cp_rows_failed, cp_rows_skipped,
	owner, epoch, lease_until, attempts, message, updated_at, staged, cp_rows_superseded, check_rows, check_failed, blocks`

// CreateBatch stores b and its shards unless a batch with b.ID exists; see
// state.Store.
func (db *DB) CreateBatch(ctx context.Context, b state.Batch, shards []state.Shard) (state.Batch, bool, error) {
	b, norm, err := state.PrepareBatch(b, shards, db.opts.Now())
	if err != nil {
		return state.Batch{}, false, err
	}
	var (
		stored  state.Batch
		created bool
	)
	err = db.write(ctx, "create batch "+b.ID, func(tx *wtx) error {
		var err error
		stored, err = loadBatch(ctx, tx, b.ID)
		if err == nil || !errors.Is(err, state.ErrNotFound) {
			return err
		}
		if b.Order == 0 {
			// The next number of the database's sequence, in the creating
			// transaction (write transactions are serial, so no two batches
			// get the same one).
			if err := tx.queryRow(`SELECT COALESCE(MAX(batch_order), 0) + 1 FROM batches`).Scan(&b.Order); err != nil {
				return err
			}
		}
		if err := insertBatch(tx, b); err != nil {
			return err
		}
		for _, s := range norm {
			if err := insertShard(tx, s); err != nil {
				return fmt.Errorf("shard %d: %w", s.Index, err)
			}
		}
		created = true
		stored, err = loadBatch(ctx, tx, b.ID)
		return err
	})
	if err != nil {
		return state.Batch{}, false, err
	}
	return stored, created, nil
}

func insertBatch(tx *wtx, b state.Batch) error {
	layout, err := jsonArg(b.Layout, false)
	if err != nil {
		return err
	}
	byReason, err := jsonArg(b.ByReason, len(b.ByReason) == 0)
	if err != nil {
		return err
	}
	warnings, err := jsonArg(b.Warnings, len(b.Warnings) == 0)
	if err != nil {
		return err
	}
	var check struct {
		shards       sql.NullInt64
		rows, failed int64
	}
	if c := b.Check; c != nil {
		check.shards, check.rows, check.failed = sql.NullInt64{Int64: int64(c.Shards), Valid: true}, c.Rows, c.Failed
	}
	_, err = tx.exec(`INSERT INTO batches (`+batchCols+`) VALUES `+placeholders(1, 31),
		b.ID, string(b.Status), b.Source.URI, b.Source.Size, b.Source.ETag, b.Source.Version, timeArg(b.Source.ModTime),
		layout, b.Profile, b.RuleVersion, b.Shards, b.ShardsDone,
		b.Counts.Total, b.Counts.Imported, b.Counts.Failed, b.Counts.Skipped,
		byReason, b.Message, b.Report, b.TraceID, timeArg(b.CreatedAt), timeArg(b.UpdatedAt), timeArg(b.FinishedAt), b.Parent, b.Resolved,
		b.Order, b.Counts.Superseded, check.shards, check.rows, check.failed, warnings)
	return err
}

func insertShard(tx *wtx, s state.Shard) error {
	cp := s.Checkpoint
	staged, err := jsonArg(s.Staged, s.Staged == nil)
	if err != nil {
		return err
	}
	blocks, err := jsonArg(s.Blocks, s.Blocks == nil)
	if err != nil {
		return err
	}
	checkRows, checkFailed := sql.NullInt64{}, int64(0)
	if c := s.Check; c != nil {
		checkRows, checkFailed = sql.NullInt64{Int64: c.Rows, Valid: true}, c.Failed
	}
	_, err = tx.exec(`INSERT INTO shards (`+shardCols+`) VALUES `+placeholders(1, 27),
		s.BatchID, s.Index, s.Sheet, s.SheetIndex, s.Start, s.End, s.FirstRow, s.Rows, s.Checksum, string(s.Status),
		cp.NextOffset, cp.NextRow, cp.Counts.Total, cp.Counts.Imported, cp.Counts.Failed, cp.Counts.Skipped,
		s.Owner, s.Epoch, timeArg(s.LeaseUntil), s.Attempts, s.Message, timeArg(s.UpdatedAt), staged, cp.Counts.Superseded, checkRows, checkFailed, blocks)
	return err
}

func scanBatch(sc scanner) (state.Batch, error) {
	var (
		b                               state.Batch
		status                          string
		modTime, layout, byReason       sql.NullString
		warnings                        sql.NullString
		created, updated, finished      sql.NullString
		profile                         []byte
		message, report, trace, ruleVer string
		checkShards                     sql.NullInt64
		checkRows, checkFailed          int64
	)
	err := sc.Scan(&b.ID, &status, &b.Source.URI, &b.Source.Size, &b.Source.ETag, &b.Source.Version, &modTime,
		&layout, &profile, &ruleVer, &b.Shards, &b.ShardsDone,
		&b.Counts.Total, &b.Counts.Imported, &b.Counts.Failed, &b.Counts.Skipped,
		&byReason, &message, &report, &trace, &created, &updated, &finished, &b.Parent, &b.Resolved,
		&b.Order, &b.Counts.Superseded, &checkShards, &checkRows, &checkFailed, &warnings)
	if err != nil {
		return state.Batch{}, err
	}
	if checkShards.Valid {
		b.Check = &state.BatchCheck{Shards: int(checkShards.Int64), Rows: checkRows, Failed: checkFailed}
	}
	b.Status, b.RuleVersion, b.Message, b.Report, b.TraceID = state.BatchStatus(status), ruleVer, message, report, trace
	if len(profile) > 0 {
		b.Profile = profile
	}
	if err := parseJSON(layout, &b.Layout); err != nil {
		return state.Batch{}, err
	}
	if err := parseJSON(byReason, &b.ByReason); err != nil {
		return state.Batch{}, err
	}
	if err := parseJSON(warnings, &b.Warnings); err != nil {
		return state.Batch{}, err
	}
	for _, t := range []struct {
		dst *time.Time
		src sql.NullString
	}{{&b.Source.ModTime, modTime}, {&b.CreatedAt, created}, {&b.UpdatedAt, updated}, {&b.FinishedAt, finished}} {
		if *t.dst, err = parseTime(t.src); err != nil {
			return state.Batch{}, err
		}
	}
	return b, nil
}

func loadBatch(ctx context.Context, q querier, id string) (state.Batch, error) {
	b, err := scanBatch(q.QueryRowContext(ctx, `SELECT `+batchCols+` FROM batches WHERE batch_id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return state.Batch{}, fmt.Errorf("batch %w", state.ErrNotFound) // the op names it
	}
	return b, err
}

// GetBatch returns the batch or state.ErrNotFound.
func (db *DB) GetBatch(ctx context.Context, id string) (state.Batch, error) {
	var b state.Batch
	err := db.read(ctx, "get batch "+id, func(q querier) error {
		var err error
		b, err = loadBatch(ctx, q, id)
		return err
	})
	return b, err
}

// ListBatches returns up to limit batches (all when limit <= 0), the most
// recently created first.
func (db *DB) ListBatches(ctx context.Context, limit int) ([]state.Batch, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	var out []state.Batch
	err := db.read(ctx, "list batches", func(q querier) error {
		rows, err := q.QueryContext(ctx, `SELECT `+batchCols+` FROM batches ORDER BY created_at DESC, rowid DESC LIMIT ?`, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			b, err := scanBatch(rows)
			if err != nil {
				return err
			}
			out = append(out, b)
		}
		return rows.Err()
	})
	return out, err
}

func scanShard(sc scanner) (state.Shard, error) {
	var (
		s              state.Shard
		status         string
		lease, updated sql.NullString
		staged, blocks sql.NullString
		checkRows      sql.NullInt64
		checkFailed    int64
	)
	cp := &s.Checkpoint
	err := sc.Scan(&s.BatchID, &s.Index, &s.Sheet, &s.SheetIndex, &s.Start, &s.End, &s.FirstRow, &s.Rows, &s.Checksum, &status,
		&cp.NextOffset, &cp.NextRow, &cp.Counts.Total, &cp.Counts.Imported, &cp.Counts.Failed, &cp.Counts.Skipped,
		&s.Owner, &s.Epoch, &lease, &s.Attempts, &s.Message, &updated, &staged, &cp.Counts.Superseded, &checkRows, &checkFailed, &blocks)
	if err != nil {
		return state.Shard{}, err
	}
	if checkRows.Valid {
		s.Check = &state.Check{Rows: checkRows.Int64, Failed: checkFailed}
	}
	if blocks.Valid {
		s.Blocks = &state.Blocks{}
		if err := parseJSON(blocks, s.Blocks); err != nil {
			return state.Shard{}, err
		}
	}
	if staged.Valid {
		s.Staged = &state.Staged{}
		if err := parseJSON(staged, s.Staged); err != nil {
			return state.Shard{}, err
		}
	}
	s.Status = state.ShardStatus(status)
	if s.LeaseUntil, err = parseTime(lease); err != nil {
		return state.Shard{}, err
	}
	if s.UpdatedAt, err = parseTime(updated); err != nil {
		return state.Shard{}, err
	}
	return s, nil
}

// ListShards returns the batch's shards by index; state.ErrNotFound if there
// is no such batch.
func (db *DB) ListShards(ctx context.Context, batchID string) ([]state.Shard, error) {
	var out []state.Shard
	err := db.read(ctx, "list shards of "+batchID, func(q querier) error {
		var one int
		if err := q.QueryRowContext(ctx, `SELECT 1 FROM batches WHERE batch_id = ?`, batchID).Scan(&one); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return state.ErrNotFound
			}
			return err
		}
		rows, err := q.QueryContext(ctx, `SELECT `+shardCols+` FROM shards WHERE batch_id = ? ORDER BY shard`, batchID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			s, err := scanShard(rows)
			if err != nil {
				return err
			}
			out = append(out, s)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		return loadProgress(ctx, q, batchID, out)
	})
	return out, err
}

// SuspendBatch sets a RUNNING batch SUSPENDED with message; see
// state.Store.
func (db *DB) SuspendBatch(ctx context.Context, id, message string, now time.Time) (state.Batch, error) {
	return db.setRunning(ctx, id, state.BatchRunning, state.BatchSuspended, message, now)
}

// ResumeBatch sets a SUSPENDED batch RUNNING again; see state.Store.
func (db *DB) ResumeBatch(ctx context.Context, id string, now time.Time) (state.Batch, error) {
	return db.setRunning(ctx, id, state.BatchSuspended, state.BatchRunning, "", now)
}

// setRunning moves an unfinished batch from status from to status to with
// message; a batch already in status to is returned unchanged.
func (db *DB) setRunning(ctx context.Context, id string, from, to state.BatchStatus, message string, now time.Time) (state.Batch, error) {
	if now.IsZero() {
		now = db.opts.Now()
	}
	var b state.Batch
	err := db.write(ctx, fmt.Sprintf("set batch %s %s", id, to), func(tx *wtx) error {
		var err error
		if b, err = loadBatch(ctx, tx, id); err != nil {
			return err
		}
		switch b.Status {
		case to:
			return nil
		case from:
		default:
			return fmt.Errorf("%w (%s)", state.ErrBatchFinished, b.Status)
		}
		if _, err := tx.exec(`UPDATE batches SET status = ?, message = ?, updated_at = ? WHERE batch_id = ? AND status = ?`,
			string(to), message, timeArg(now), id, string(from)); err != nil {
			return err
		}
		b, err = loadBatch(ctx, tx, id)
		return err
	})
	return b, err
}

// FinishBatch sets a RUNNING or SUSPENDED batch's final status, counts, message, report
// and ByReason; see state.Store.
func (db *DB) FinishBatch(ctx context.Context, id string, f state.Final, now time.Time) (state.Batch, error) {
	status, counts, message, report := f.Status, f.Counts, f.Message, f.Report
	if !status.Finished() {
		return state.Batch{}, invalid("status", "finish batch %s: status %q is not a final status", id, status)
	}
	if now.IsZero() {
		now = db.opts.Now()
	}
	var b state.Batch
	err := db.write(ctx, fmt.Sprintf("finish batch %s as %s", id, status), func(tx *wtx) error {
		var err error
		if b, err = loadBatch(ctx, tx, id); err != nil {
			return err
		}
		if b.Status.Finished() {
			if b.Status != status {
				return fmt.Errorf("%w (%s)", state.ErrBatchFinished, b.Status)
			}
			return nil
		}
		br, err := jsonArg(f.ByReason, len(f.ByReason) == 0)
		if err != nil {
			return err
		}
		if _, err := tx.exec(`UPDATE batches SET status = ?, rows_total = ?, rows_imported = ?, rows_superseded = ?, rows_failed = ?, rows_skipped = ?,
			message = ?, report = ?, by_reason = ?, finished_at = ?, updated_at = ? WHERE batch_id = ?`,
			string(status), counts.Total, counts.Imported, counts.Superseded, counts.Failed, counts.Skipped,
			message, report, br, timeArg(now), timeArg(now), id); err != nil {
			return err
		}
		b, err = loadBatch(ctx, tx, id)
		return err
	})
	return b, err
}
