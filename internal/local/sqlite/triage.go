package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/triage"
)

// TriageLog is the SQLite adapter of the triage log port (triage.Log), in
// the table triage_log of its database.
type TriageLog struct{ db *DB }

var _ triage.Log = (*TriageLog)(nil)

// TriageLog returns the database's triage log.
func (db *DB) TriageLog() *TriageLog { return &TriageLog{db: db} }

const triageCols = `batch_id, shard, at, kind, layer, reason, message, action, delay_ns, receive_count, retry_count, message_id`

// Append adds e to its batch's log; see triage.Log.
func (l *TriageLog) Append(ctx context.Context, e triage.Entry) error {
	if e.BatchID == "" {
		return invalid("batch_id", "append to the triage log: empty batch id")
	}
	if e.At.IsZero() {
		e.At = l.db.opts.Now()
	}
	return l.db.write(ctx, "append to the triage log of "+e.BatchID, func(tx *wtx) error {
		_, err := tx.exec(`INSERT INTO triage_log (`+triageCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			e.BatchID, e.Shard, timeArg(e.At), e.Kind, string(e.Layer), string(e.Reason), e.Message, string(e.Action),
			int64(e.Delay), e.ReceiveCount, e.RetryCount, e.MessageID)
		return err
	})
}

// List returns the batch's entries oldest first (equal times in the order
// appended); see triage.Log.
func (l *TriageLog) List(ctx context.Context, batchID string) ([]triage.Entry, error) {
	var out []triage.Entry
	err := l.db.read(ctx, "list the triage log of "+batchID, func(q querier) error {
		rows, err := q.QueryContext(ctx, `SELECT `+triageCols+` FROM triage_log WHERE batch_id = ? ORDER BY at, id`, batchID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				e                     triage.Entry
				at                    sql.NullString
				layer, reason, action string
				delay                 int64
			)
			if err := rows.Scan(&e.BatchID, &e.Shard, &at, &e.Kind, &layer, &reason, &e.Message, &action, &delay,
				&e.ReceiveCount, &e.RetryCount, &e.MessageID); err != nil {
				return err
			}
			if e.At, err = parseTime(at); err != nil {
				return fmt.Errorf("triage log of %s: %w", batchID, err)
			}
			e.Layer, e.Reason, e.Action, e.Delay = failure.Layer(layer), failure.Reason(reason), triage.Action(action), time.Duration(delay)
			out = append(out, e)
		}
		return rows.Err()
	})
	return out, err
}
