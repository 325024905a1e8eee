package report_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/report"
	"github.com/catalog-import/catalog-import/internal/state"
)

// TestSkips: each SKIPPED shard with rows left is one range, from its
// checkpoint to the row before the next shard of its sheet (or to the end),
// and one ShardSkipped line of the error report.
func TestSkips(t *testing.T) {
	t.Parallel()
	sh := func(i int, sheet string, first, rows int64, status state.ShardStatus, next int64, c state.Counts) state.Shard {
		return state.Shard{Index: i, Sheet: sheet, FirstRow: first, Rows: rows, Status: status, Message: "skipped by triage: why",
			Checkpoint: state.Checkpoint{NextRow: next, Counts: c}}
	}
	shards := []state.Shard{
		sh(0, "A", 2, 10, state.ShardSkipped, 0, state.Counts{}),                                       // never started: rows 2-11
		sh(1, "A", 12, 10, state.ShardDone, 22, state.Counts{Total: 10, Imported: 10}),                 // done
		sh(2, "A", 22, 10, state.ShardSkipped, 25, state.Counts{Total: 3, Imported: 2, Superseded: 1}), // rows 25 to the end of A
		sh(3, "B", 2, 1, state.ShardSkipped, 2, state.Counts{}),                                        // one row, then sheet C
		sh(4, "C", 5, 5, state.ShardSkipped, 10, state.Counts{Total: 5, Imported: 5}),                  // nothing left
		sh(5, "C", 10, 5, state.ShardEscalated, 10, state.Counts{}),                                    // not skipped
	}
	shards[3].FirstRow, shards[3].Sheet = 2, "B"
	got := report.Skips(shards)
	want := []report.Skip{
		{Shard: 0, Sheet: "A", First: 2, Last: 11, Rows: 10, Why: "skipped by triage: why"},
		{Shard: 2, Sheet: "A", First: 25, Rows: 7, Why: "skipped by triage: why"},
		{Shard: 3, Sheet: "B", First: 2, Rows: 1, Why: "skipped by triage: why"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("Skips (-want +got):\n%s", d)
	}
	ranges := []string{"sheet A rows 2-11", "sheet A rows 25 to the end", "sheet B rows 2 to the end"}
	for i, k := range got {
		if k.Range() != ranges[i] {
			t.Errorf("skip %d: Range %q, want %q", i, k.Range(), ranges[i])
		}
	}
	one := report.Skip{Sheet: failure.NoSheet, First: 7, Last: 7, Rows: 1, Why: "w"}
	if one.Range() != "row 7" {
		t.Errorf("one-row range %q", one.Range())
	}
	r := got[0].Record("b-1")
	if r.Reason != failure.ShardSkipped || r.Layer != failure.LayerInfrastructure || r.Row != 2 || r.Sheet != "A" ||
		r.Message != "sheet A rows 2-11 not imported (10 rows, shard 0): skipped by triage: why" {
		t.Errorf("record %+v", r)
	}
}
