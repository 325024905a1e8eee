package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/state"
)

// This file keeps the shards' progress history (state.Shard.Progress) in
// the shard_progress table: one row per sample, so that a checkpoint appends
// with one small INSERT instead of rewriting the history.

const sampleCols = `at, rows_done, rows_failed, failed_syntax, failed_semantic, failed_business, failed_infrastructure`

func scanSample(sc scanner, dst ...any) (state.Sample, error) {
	var (
		s  state.Sample
		at sql.NullString
	)
	err := sc.Scan(append(dst, &at, &s.Done, &s.Failed, &s.ByLayer.Syntax, &s.ByLayer.Semantic,
		&s.ByLayer.Business, &s.ByLayer.Infrastructure)...)
	if err != nil {
		return state.Sample{}, err
	}
	s.At, err = parseTime(at)
	return s, err
}

// tailKey names a shard in DB.tails.
type tailKey struct {
	batch string
	shard int
}

// progressTail is what appending to a shard's history needs to know: the
// newest sample, its seq, and how many samples there are. DB.tails keeps it
// for shards this process checkpoints, so that a checkpoint appends with one
// INSERT (the two reads it saves cost about as much again, by
// BenchmarkCheckpoint). An entry holds for one lease epoch only: another
// process can append to the shard only after claiming it, with a newer epoch.
type progressTail struct {
	epoch, seq, n int64
	last          state.Sample
}

// appendSample appends the sample of the lease's shard moving from prev to
// cp (state.NextSample) in the write transaction, thinning the history
// first when it is full (state.AppendSample's rule: state.Dropped). finished
// says the shard is being finished: its cache entry is dropped.
func appendSample(tx *wtx, lease state.Lease, prev, cp state.Checkpoint, records []failure.Record, now time.Time, finished bool) error {
	k := tailKey{lease.BatchID, lease.Shard}
	tail, cached := tx.db.tails[k]
	if cached || finished {
		// Whatever happens next, the entry is rebuilt from the table if
		// this transaction does not commit.
		tx.undo = append(tx.undo, func() { delete(tx.db.tails, k) })
	}
	if finished {
		delete(tx.db.tails, k)
	}
	if cp.Counts.Done() <= prev.Counts.Done() {
		return nil // nothing moved
	}
	if !cached || tail.epoch != lease.Epoch {
		tail = progressTail{epoch: lease.Epoch}
		var err error
		tail.last, err = scanSample(tx.queryRow(`SELECT seq, (SELECT count(*) FROM shard_progress WHERE batch_id = ?1 AND shard = ?2), `+
			sampleCols+` FROM shard_progress WHERE batch_id = ?1 AND shard = ?2 ORDER BY seq DESC LIMIT 1`,
			lease.BatchID, lease.Shard), &tail.seq, &tail.n)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
	}
	s, ok := state.NextSample(tail.last, prev, cp, records, now)
	if !ok {
		return nil
	}
	if tail.n >= state.MaxSamples {
		if _, err := tx.exec(`DELETE FROM shard_progress WHERE batch_id = ?1 AND shard = ?2 AND seq IN (
			SELECT seq FROM (SELECT seq, row_number() OVER (ORDER BY seq) - 1 AS i
				FROM shard_progress WHERE batch_id = ?1 AND shard = ?2) WHERE i % 2 = 1)`,
			lease.BatchID, lease.Shard); err != nil {
			return err
		}
		tail.n -= tail.n / 2 // the odd positions of 0..n-1
	}
	l := s.ByLayer
	if _, err := tx.exec(`INSERT INTO shard_progress (batch_id, shard, seq, `+sampleCols+`) VALUES `+placeholders(1, 10),
		lease.BatchID, lease.Shard, tail.seq+1, timeArg(s.At), s.Done, s.Failed, l.Syntax, l.Semantic, l.Business, l.Infrastructure); err != nil {
		return err
	}
	if !finished {
		tail.seq, tail.n, tail.last = tail.seq+1, tail.n+1, s
		tx.db.tails[k] = tail
		tx.undo = append(tx.undo, func() { delete(tx.db.tails, k) })
	}
	return nil
}

// loadProgress fills the Progress of shards (sorted by index) from the
// batch's samples.
func loadProgress(ctx context.Context, q querier, batchID string, shards []state.Shard) error {
	at := make(map[int]int, len(shards))
	for i, s := range shards {
		at[s.Index] = i
	}
	rows, err := q.QueryContext(ctx, `SELECT shard, `+sampleCols+` FROM shard_progress WHERE batch_id = ? ORDER BY shard, seq`, batchID)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var shard int
		s, err := scanSample(rows, &shard)
		if err != nil {
			return err
		}
		if i, ok := at[shard]; ok {
			shards[i].Progress = append(shards[i].Progress, s)
		}
	}
	return rows.Err()
}
