package report

import (
	"fmt"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/state"
)

// Skip is a range of rows a batch did not import because triage skipped
// the rest of their shard (state.ShardSkipped): the rows from the shard's
// checkpoint to its end. Finalization writes one line of errors.csv per
// Skip (reason failure.ShardSkipped), the batch report lists them, and
// `importctl status` shows them.
type Skip struct {
	Shard int    `json:"shard"`
	Sheet string `json:"sheet"`     // "-" for files without sheets
	First int64  `json:"first_row"` // the first row skipped
	// Last is the last row number of the range, 0 when the shard is the
	// last of its sheet (the range runs to the end of the sheet or file).
	Last int64  `json:"last_row,omitempty"`
	Rows int64  `json:"rows"`   // rows skipped (blank lines are not rows)
	Why  string `json:"reason"` // the shard's message: who skipped it and why
}

// Skips returns the skipped ranges of a batch's shards (by index, as
// ListShards returns them): one per SKIPPED shard with rows left, in shard
// order.
func Skips(shards []state.Shard) []Skip {
	var out []Skip
	for i, s := range shards {
		if s.Status != state.ShardSkipped {
			continue
		}
		c := s.Checkpoint.Counts
		rows := s.Rows - c.Imported - c.Superseded - c.Failed
		if rows <= 0 {
			continue
		}
		k := Skip{Shard: s.Index, Sheet: s.Sheet, First: max(s.Checkpoint.NextRow, s.FirstRow), Rows: rows, Why: s.Message}
		if i+1 < len(shards) && shards[i+1].Sheet == s.Sheet && shards[i+1].FirstRow > k.First {
			k.Last = shards[i+1].FirstRow - 1
		}
		out = append(out, k)
	}
	return out
}

// Range says which rows the skip covers, as a person reads them: "rows
// 401-800", "rows 401 to the end", with the sheet of a workbook ("sheet
// Prices rows 2-500").
func (k Skip) Range() string {
	s := ""
	if k.Sheet != "" && k.Sheet != failure.NoSheet {
		s = "sheet " + k.Sheet + " "
	}
	switch {
	case k.Last == k.First:
		return fmt.Sprintf("%srow %d", s, k.First)
	case k.Last > k.First:
		return fmt.Sprintf("%srows %d-%d", s, k.First, k.Last)
	}
	return fmt.Sprintf("%srows %d to the end", s, k.First)
}

// Record is the skip as a line of the error report: layer infrastructure,
// reason failure.ShardSkipped, at the range's first row, the message
// naming the range, its rows and why. It is not a failure record: no store
// holds it and it is not counted as failed.
func (k Skip) Record(batchID string) failure.Record {
	return failure.Record{BatchID: batchID, Sheet: k.Sheet, Row: k.First, Shard: k.Shard,
		Layer: failure.ShardSkipped.Layer(), Reason: failure.ShardSkipped,
		Message: fmt.Sprintf("%s not imported (%d rows, shard %d): %s", k.Range(), k.Rows, k.Shard, k.Why)}
}
