package lineage_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/lineage"
	"github.com/catalog-import/catalog-import/internal/state"
)

// pagedFailures serves records in (sheet, row) order, a page at a time, as
// a state store does.
type pagedFailures struct {
	recs  []failure.Record
	calls int
}

func (p *pagedFailures) Failures(_ context.Context, _ string, f state.FailureFilter) ([]failure.Record, error) {
	p.calls++
	var out []failure.Record
	for _, r := range p.recs {
		if r.Row <= f.AfterRow {
			continue
		}
		if len(out) == f.Limit {
			break
		}
		out = append(out, r)
	}
	return out, nil
}

// TestWriteRetryFile: every selected record, across pages, is one row of
// the fix file, counted by reason.
func TestWriteRetryFile(t *testing.T) {
	t.Parallel()
	const n = 5001 // more than a page
	store := &pagedFailures{}
	for i := range int64(n) {
		reason := failure.InvalidNumber
		if i%3 == 0 {
			reason = failure.MissingField
		}
		store.recs = append(store.recs, failure.Record{BatchID: "p", Sheet: failure.NoSheet, Row: i + 2, Reason: reason,
			Message: "x", Cells: []string{"A", "1"}})
	}
	parent := state.Batch{ID: "p", Layout: state.Layout{Format: "csv", Encoding: "utf-8", Header: []string{"sku", "price"}}}
	var buf bytes.Buffer
	got, err := lineage.WriteRetryFile(context.Background(), &buf, store, parent, state.FailureFilter{})
	if err != nil {
		t.Fatal(err)
	}
	want := lineage.Retried{Rows: n, ByReason: map[failure.Reason]int64{failure.MissingField: 1667, failure.InvalidNumber: 3334}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Retried (-want +got):\n%s", d)
	}
	if store.calls != 2 {
		t.Errorf("%d Failures calls, want 2 pages", store.calls)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\r\n"), "\r\n")
	if len(lines) != n+1 || !strings.HasSuffix(lines[0], "sku,price,_marked,_source_row,_error,_batch") || lines[n] != "A,1,,5002,InvalidNumber: x,p" {
		t.Errorf("fix file: %d lines, first %q, last %q", len(lines), lines[0], lines[len(lines)-1])
	}
}

func TestRetryName(t *testing.T) {
	t.Parallel()
	at := time.Date(2031, 3, 14, 23, 9, 26, 535_000_000, time.FixedZone("CST", 8*3600))
	for format, want := range map[string]string{
		"csv":   "retry-20310314T150926.535Z.csv",
		"tsv":   "retry-20310314T150926.535Z.tsv",
		"jsonl": "retry-20310314T150926.535Z.jsonl",
		"xlsx":  "retry-20310314T150926.535Z.csv",
	} {
		l := state.Layout{Format: format}
		if got := lineage.RetryName(l, at); got != want {
			t.Errorf("RetryName(%s) = %q, want %q", format, got, want)
		}
		if !strings.HasPrefix(want, lineage.RetryPrefix) || !strings.HasSuffix(want, lineage.RetryExt(l)) {
			t.Errorf("RetryName(%s) = %q: not RetryPrefix ... RetryExt", format, want)
		}
	}
}
