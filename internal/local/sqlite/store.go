package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/state"
)

// This file implements state.Store; the package documentation lists the
// decisions taken where the port leaves room.

const batchCols = `batch_id, status, source_uri, source_size, source_etag, source_version, source_mod_time,
	layout, profile, rule_version, shards, shards_done, rows_total, rows_imported, rows_failed, rows_skipped,
	by_reason, message, report, trace_id, created_at, updated_at, finished_at, parent, failures_resolved`

const shardCols = `batch_id, shard, sheet, sheet_index, byte_start, byte_end, first_row, rows, checksum, status,
	cp_next_offset, cp_next_row, cp_rows_total, cp_rows_imported, cp_rows_failed, cp_rows_skipped,
	owner, epoch, lease_until, attempts, message, updated_at, staged`

const failureCols = `batch_id, sheet, row, layer, reason, field, message, raw_line, cells, field_mapping,
	rule_version, retry_count, failure_at, trace_id, shard`

const numFailureCols = 15

// failureReadCols are failureCols and the resolution, which only
// ResolveFailures writes.
const failureReadCols = failureCols + `, resolved_by, resolved_at`

// failureChunk is how many failure records one INSERT carries.
const failureChunk = 60

type scanner interface{ Scan(dest ...any) error }

// QueryContext runs a query in the transaction with a cached statement.
func (tx *wtx) QueryContext(_ context.Context, query string, args ...any) (*sql.Rows, error) {
	return tx.query(query, args...)
}

// QueryRowContext runs a one-row query in the transaction with a cached statement.
func (tx *wtx) QueryRowContext(_ context.Context, query string, args ...any) *sql.Row {
	return tx.queryRow(query, args...)
}

func invalid(field, format string, args ...any) error {
	return failure.New(failure.Internal, field, "invalid argument: "+format, args...)
}

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
	_, err = tx.exec(`INSERT INTO batches (`+batchCols+`) VALUES `+placeholders(1, 25),
		b.ID, string(b.Status), b.Source.URI, b.Source.Size, b.Source.ETag, b.Source.Version, timeArg(b.Source.ModTime),
		layout, b.Profile, b.RuleVersion, b.Shards, b.ShardsDone,
		b.Counts.Total, b.Counts.Imported, b.Counts.Failed, b.Counts.Skipped,
		byReason, b.Message, b.Report, b.TraceID, timeArg(b.CreatedAt), timeArg(b.UpdatedAt), timeArg(b.FinishedAt), b.Parent, b.Resolved)
	return err
}

func insertShard(tx *wtx, s state.Shard) error {
	cp := s.Checkpoint
	staged, err := jsonArg(s.Staged, s.Staged == nil)
	if err != nil {
		return err
	}
	_, err = tx.exec(`INSERT INTO shards (`+shardCols+`) VALUES `+placeholders(1, 23),
		s.BatchID, s.Index, s.Sheet, s.SheetIndex, s.Start, s.End, s.FirstRow, s.Rows, s.Checksum, string(s.Status),
		cp.NextOffset, cp.NextRow, cp.Counts.Total, cp.Counts.Imported, cp.Counts.Failed, cp.Counts.Skipped,
		s.Owner, s.Epoch, timeArg(s.LeaseUntil), s.Attempts, s.Message, timeArg(s.UpdatedAt), staged)
	return err
}

func scanBatch(sc scanner) (state.Batch, error) {
	var (
		b                               state.Batch
		status                          string
		modTime, layout, byReason       sql.NullString
		created, updated, finished      sql.NullString
		profile                         []byte
		message, report, trace, ruleVer string
	)
	err := sc.Scan(&b.ID, &status, &b.Source.URI, &b.Source.Size, &b.Source.ETag, &b.Source.Version, &modTime,
		&layout, &profile, &ruleVer, &b.Shards, &b.ShardsDone,
		&b.Counts.Total, &b.Counts.Imported, &b.Counts.Failed, &b.Counts.Skipped,
		&byReason, &message, &report, &trace, &created, &updated, &finished, &b.Parent, &b.Resolved)
	if err != nil {
		return state.Batch{}, err
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
		return state.Batch{}, fmt.Errorf("batch %s: %w", id, state.ErrNotFound)
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
		staged         sql.NullString
	)
	cp := &s.Checkpoint
	err := sc.Scan(&s.BatchID, &s.Index, &s.Sheet, &s.SheetIndex, &s.Start, &s.End, &s.FirstRow, &s.Rows, &s.Checksum, &status,
		&cp.NextOffset, &cp.NextRow, &cp.Counts.Total, &cp.Counts.Imported, &cp.Counts.Failed, &cp.Counts.Skipped,
		&s.Owner, &s.Epoch, &lease, &s.Attempts, &s.Message, &updated, &staged)
	if err != nil {
		return state.Shard{}, err
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

// shardAndBatch loads a shard and its batch's status in the transaction.
func shardAndBatch(tx *wtx, batchID string, index int) (state.Shard, state.BatchStatus, error) {
	var bs string
	if err := tx.queryRow(`SELECT status FROM batches WHERE batch_id = ?`, batchID).Scan(&bs); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return state.Shard{}, "", fmt.Errorf("batch %s: %w", batchID, state.ErrNotFound)
		}
		return state.Shard{}, "", err
	}
	s, err := scanShard(tx.queryRow(`SELECT `+shardCols+` FROM shards WHERE batch_id = ? AND shard = ?`, batchID, index))
	if errors.Is(err, sql.ErrNoRows) {
		return state.Shard{}, "", fmt.Errorf("shard %d: %w", index, state.ErrNotFound)
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
		switch {
		case bs.Finished():
			return fmt.Errorf("%w (%s)", state.ErrBatchFinished, bs)
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

// behind reports whether cp is before the stored checkpoint in any respect.
func behind(cp, stored state.Checkpoint) bool {
	c, s := cp.Counts, stored.Counts
	return cp.NextRow < stored.NextRow || cp.NextOffset < stored.NextOffset ||
		c.Total < s.Total || c.Imported < s.Imported || c.Failed < s.Failed || c.Skipped < s.Skipped
}

func sub(a, b state.Counts) state.Counts {
	return state.Counts{Total: a.Total - b.Total, Imported: a.Imported - b.Imported, Failed: a.Failed - b.Failed, Skipped: a.Skipped - b.Skipped}
}

// Checkpoint upserts failures, moves the shard's checkpoint to cp, extends
// the lease to until and adds the counts' delta to the batch, in one
// transaction, if lease is current; see state.Store and the package
// documentation.
func (db *DB) Checkpoint(ctx context.Context, lease state.Lease, cp state.Checkpoint, failures []failure.Record, until time.Time) (state.Counts, error) {
	var counts state.Counts
	op := fmt.Sprintf("checkpoint shard %s/%d at row %d", lease.BatchID, lease.Shard, cp.NextRow)
	err := db.write(ctx, op, func(tx *wtx) error {
		s, bs, err := fence(tx, lease)
		if err != nil {
			return err
		}
		if s.Status.Finished() {
			return fmt.Errorf("%w (%s)", state.ErrShardFinished, s.Status)
		}
		if bs.Finished() {
			return fmt.Errorf("%w (%s)", state.ErrBatchFinished, bs)
		}
		if err := putFailures(tx, failures); err != nil {
			return err
		}
		at := db.opts.Now()
		now := timeArg(at)
		if behind(cp, s.Checkpoint) {
			if _, err := tx.exec(`UPDATE shards SET lease_until = ?, updated_at = ? WHERE batch_id = ? AND shard = ?`,
				timeArg(until), now, lease.BatchID, lease.Shard); err != nil {
				return err
			}
			return tx.queryRow(`SELECT rows_total, rows_imported, rows_failed, rows_skipped FROM batches WHERE batch_id = ?`,
				lease.BatchID).Scan(&counts.Total, &counts.Imported, &counts.Failed, &counts.Skipped)
		}
		if err := appendSample(tx, lease, s.Checkpoint, cp, failures, at, false); err != nil {
			return err
		}
		if err := setCheckpoint(tx, lease, cp, "lease_until = ?, updated_at = ?", timeArg(until), now); err != nil {
			return err
		}
		counts, err = addCounts(tx, lease.BatchID, sub(cp.Counts, s.Checkpoint.Counts), 0, now)
		return err
	})
	return counts, err
}

// setCheckpoint stores cp on the lease's shard with more assignments.
func setCheckpoint(tx *wtx, lease state.Lease, cp state.Checkpoint, more string, args ...any) error {
	c := cp.Counts
	args = append([]any{cp.NextOffset, cp.NextRow, c.Total, c.Imported, c.Failed, c.Skipped}, args...)
	args = append(args, lease.BatchID, lease.Shard)
	_, err := tx.exec(`UPDATE shards SET cp_next_offset = ?, cp_next_row = ?, cp_rows_total = ?, cp_rows_imported = ?,
		cp_rows_failed = ?, cp_rows_skipped = ?, `+more+` WHERE batch_id = ? AND shard = ?`, args...)
	return err
}

// addCounts adds d to the batch's counters and shardsDone to its ShardsDone,
// and returns the counters.
func addCounts(tx *wtx, batchID string, d state.Counts, shardsDone int, now any) (state.Counts, error) {
	d.Total = 0 // a batch's total is the split's row count; only outcomes move
	var c state.Counts
	err := tx.queryRow(`UPDATE batches SET rows_total = rows_total + ?, rows_imported = rows_imported + ?,
		rows_failed = rows_failed + ?, rows_skipped = rows_skipped + ?, shards_done = shards_done + ?, updated_at = ?
		WHERE batch_id = ? RETURNING rows_total, rows_imported, rows_failed, rows_skipped`,
		d.Total, d.Imported, d.Failed, d.Skipped, shardsDone, now, batchID).Scan(&c.Total, &c.Imported, &c.Failed, &c.Skipped)
	return c, err
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
		if bs.Finished() {
			return fmt.Errorf("%w (%s)", state.ErrBatchFinished, bs)
		}
		var d state.Counts
		at := db.opts.Now()
		if behind(cp, s.Checkpoint) {
			cp = s.Checkpoint
		} else {
			d = sub(cp.Counts, s.Checkpoint.Counts)
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
		if _, err := addCounts(tx, lease.BatchID, d, done, now); err != nil {
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

// FinishBatch sets a RUNNING batch's final status, counts, message, report
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
		if _, err := tx.exec(`UPDATE batches SET status = ?, rows_total = ?, rows_imported = ?, rows_failed = ?, rows_skipped = ?,
			message = ?, report = ?, by_reason = ?, finished_at = ?, updated_at = ? WHERE batch_id = ?`,
			string(status), counts.Total, counts.Imported, counts.Failed, counts.Skipped,
			message, report, br, timeArg(now), timeArg(now), id); err != nil {
			return err
		}
		b, err = loadBatch(ctx, tx, id)
		return err
	})
	return b, err
}

// putFailures upserts records by (batch, sheet, row), several per statement.
func putFailures(tx *wtx, records []failure.Record) error {
	for len(records) > 0 {
		n := min(len(records), failureChunk)
		args := make([]any, 0, n*numFailureCols)
		for _, r := range records[:n] {
			fm, err := jsonArg(r.FieldMapping, len(r.FieldMapping) == 0)
			if err != nil {
				return err
			}
			args = append(args, r.BatchID, r.Sheet, r.Row, string(r.Layer), string(r.Reason), r.Field, r.Message, r.RawLine,
				stringsArg(r.Cells), fm, r.RuleVersion, r.RetryCount, timeArg(r.FailureAt), r.TraceID, r.Shard)
		}
		if _, err := tx.exec(`INSERT INTO failures (`+failureCols+`) VALUES `+placeholders(n, numFailureCols)+`
			ON CONFLICT (batch_id, sheet, row) DO UPDATE SET layer = excluded.layer, reason = excluded.reason,
			field = excluded.field, message = excluded.message, raw_line = excluded.raw_line, cells = excluded.cells,
			field_mapping = excluded.field_mapping, rule_version = excluded.rule_version,
			retry_count = excluded.retry_count, failure_at = excluded.failure_at, trace_id = excluded.trace_id,
			shard = excluded.shard`, args...); err != nil {
			return err
		}
		records = records[n:]
	}
	return nil
}

// PutFailures upserts failure records outside any lease.
func (db *DB) PutFailures(ctx context.Context, records []failure.Record) error {
	if len(records) == 0 {
		return nil
	}
	return db.write(ctx, fmt.Sprintf("put %d failure records", len(records)), func(tx *wtx) error {
		return putFailures(tx, records)
	})
}

func scanFailure(sc scanner) (failure.Record, error) {
	var (
		r                    failure.Record
		layer, reason        string
		cells, fm, failureAt sql.NullString
		resolvedAt           sql.NullString
	)
	err := sc.Scan(&r.BatchID, &r.Sheet, &r.Row, &layer, &reason, &r.Field, &r.Message, &r.RawLine, &cells, &fm,
		&r.RuleVersion, &r.RetryCount, &failureAt, &r.TraceID, &r.Shard, &r.ResolvedBy, &resolvedAt)
	if err != nil {
		return failure.Record{}, err
	}
	r.Layer, r.Reason = failure.Layer(layer), failure.Reason(reason)
	if r.Cells, err = parseStrings(cells); err != nil {
		return failure.Record{}, err
	}
	if err := parseJSON(fm, &r.FieldMapping); err != nil {
		return failure.Record{}, err
	}
	if r.FailureAt, err = parseTime(failureAt); err != nil {
		return failure.Record{}, err
	}
	if r.ResolvedAt, err = parseTime(resolvedAt); err != nil {
		return failure.Record{}, err
	}
	return r, nil
}

// Failures returns the batch's failure records that f selects, in (sheet,
// row) order (sheets compared bytewise). Paging continues after (AfterSheet,
// AfterRow) when either is set.
func (db *DB) Failures(ctx context.Context, batchID string, f state.FailureFilter) ([]failure.Record, error) {
	var (
		q    strings.Builder
		args = []any{batchID}
	)
	q.WriteString(`SELECT ` + failureReadCols + ` FROM failures WHERE batch_id = ?`)
	if len(f.Reasons) > 0 {
		q.WriteString(` AND reason IN (` + strings.TrimSuffix(strings.Repeat("?,", len(f.Reasons)), ",") + `)`)
		for _, r := range f.Reasons {
			args = append(args, string(r))
		}
	}
	if len(f.Layers) > 0 {
		q.WriteString(` AND layer IN (` + strings.TrimSuffix(strings.Repeat("?,", len(f.Layers)), ",") + `)`)
		for _, l := range f.Layers {
			args = append(args, string(l))
		}
	}
	if f.Shard != nil {
		q.WriteString(` AND shard = ?`)
		args = append(args, *f.Shard)
	}
	if f.Unresolved {
		q.WriteString(` AND resolved_by = ''`)
	}
	if f.AfterSheet != "" || f.AfterRow != 0 {
		q.WriteString(` AND (sheet, row) > (?, ?)`)
		args = append(args, f.AfterSheet, f.AfterRow)
	}
	q.WriteString(` ORDER BY sheet, row`)
	if f.Limit > 0 {
		q.WriteString(` LIMIT ?`)
		args = append(args, f.Limit)
	}
	var out []failure.Record
	err := db.read(ctx, "list failures of "+batchID, func(qr querier) error {
		rows, err := qr.QueryContext(ctx, q.String(), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			r, err := scanFailure(rows)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return rows.Err()
	})
	return out, err
}

// CountFailures counts the batch's failure records per shard index.
func (db *DB) CountFailures(ctx context.Context, batchID string) (map[int]int64, error) {
	out := map[int]int64{}
	err := db.read(ctx, "count failures of "+batchID, func(q querier) error {
		rows, err := q.QueryContext(ctx, `SELECT shard, count(*) FROM failures WHERE batch_id = ? GROUP BY shard`, batchID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				shard int
				n     int64
			)
			if err := rows.Scan(&shard, &n); err != nil {
				return err
			}
			out[shard] = n
		}
		return rows.Err()
	})
	return out, err
}

// ResolveFailures marks unresolved failure records at keys as resolved by
// `by` and counts them in the batch's failures_resolved, in one transaction
// per chunk of keys; see state.Store.
func (db *DB) ResolveFailures(ctx context.Context, batchID string, keys []failure.Key, by string, at time.Time) (int, error) {
	if by == "" {
		return 0, invalid("resolved_by", "resolve failures of %s: empty resolving batch", batchID)
	}
	if at.IsZero() {
		at = db.opts.Now()
	}
	total := 0
	for len(keys) > 0 {
		n := min(len(keys), 500)
		chunk := keys[:n]
		keys = keys[n:]
		err := db.write(ctx, fmt.Sprintf("resolve %d failures of %s", n, batchID), func(tx *wtx) error {
			if _, err := loadBatch(ctx, tx, batchID); err != nil {
				return err
			}
			marked := 0
			for _, k := range chunk {
				res, err := tx.exec(`UPDATE failures SET resolved_by = ?, resolved_at = ?
					WHERE batch_id = ? AND sheet = ? AND row = ? AND resolved_by = ''`, by, timeArg(at), batchID, k.Sheet, k.Row)
				if err != nil {
					return err
				}
				m, err := res.RowsAffected()
				if err != nil {
					return err
				}
				marked += int(m)
			}
			if marked > 0 {
				if _, err := tx.exec(`UPDATE batches SET failures_resolved = failures_resolved + ?, updated_at = ? WHERE batch_id = ?`,
					marked, timeArg(at), batchID); err != nil {
					return err
				}
			}
			total += marked
			return nil
		})
		if err != nil {
			return total, err
		}
	}
	return total, nil
}
