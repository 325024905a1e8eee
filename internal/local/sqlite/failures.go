package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/state"
)

// This file implements state.Store's failure records: PutFailures,
// Failures, CountFailures and ResolveFailures.

const failureCols = `batch_id, sheet, row, layer, reason, field, message, raw_line, cells, field_mapping,
	rule_version, retry_count, failure_at, trace_id, shard`

const numFailureCols = 15

// failureReadCols are failureCols and the resolution, which only
// ResolveFailures writes.
const failureReadCols = failureCols + `, resolved_by, resolved_at`

// failureChunk is how many failure records one INSERT carries.
const failureChunk = 60

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
