package lineage

import (
	"context"
	"io"
	"time"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/record"
	"github.com/catalog-import/catalog-import/internal/state"
)

// This file writes the retry file of `importctl retry-failures`: the fix
// file of a finished batch's failures, imported as its child batch.

// RetryPrefix starts the name of every retry file (RetryName).
const RetryPrefix = "retry-"

// Retried is what a retry file holds: its rows, and how many of them failed
// for each reason in the parent.
type Retried struct {
	Rows     int64
	ByReason map[failure.Reason]int64
}

// Failures is what WriteRetryFile needs of the state store.
type Failures interface {
	Failures(ctx context.Context, batchID string, f state.FailureFilter) ([]failure.Record, error)
}

// retryPage is how many failure records WriteRetryFile reads at a time.
const retryPage = 5000

// WriteRetryFile writes to w the fix file (FixWriter) of parent's failure
// records that f selects, paging through them so memory stays flat (f's
// Limit and After fields are its own), and says what it wrote.
func WriteRetryFile(ctx context.Context, w io.Writer, store Failures, parent state.Batch, f state.FailureFilter) (Retried, error) {
	out := Retried{ByReason: map[failure.Reason]int64{}}
	fw, err := NewFixWriter(w, parent.Layout)
	if err != nil {
		return out, err
	}
	f.Limit = retryPage
	for {
		recs, err := store.Failures(ctx, parent.ID, f)
		if err != nil {
			return out, err
		}
		for _, r := range recs {
			if err := fw.Write(r); err != nil {
				return out, err
			}
			out.Rows++
			out.ByReason[r.Reason]++
		}
		if len(recs) < f.Limit {
			break
		}
		f.AfterSheet, f.AfterRow = recs[len(recs)-1].Sheet, recs[len(recs)-1].Row
	}
	return out, fw.Close()
}

// RetryExt is the file extension of a retry file of a batch read with l:
// a workbook's, like any other's but JSON Lines and TSV, is ".csv".
func RetryExt(l state.Layout) string {
	switch l.Format {
	case string(record.JSONL):
		return ".jsonl"
	case string(record.TSV):
		return ".tsv"
	}
	return ".csv"
}

// RetryName is the file name of a retry file of a batch read with l,
// written at: RetryPrefix, the UTC time to the millisecond, RetryExt.
func RetryName(l state.Layout, at time.Time) string {
	return RetryPrefix + at.UTC().Format("20060102T150405.000Z") + RetryExt(l)
}
