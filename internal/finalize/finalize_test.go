package finalize_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/catalog-import/catalog-import/internal/catalog"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/finalize"
	"github.com/catalog-import/catalog-import/internal/local/sqlite"
	"github.com/catalog-import/catalog-import/internal/report"
	"github.com/catalog-import/catalog-import/internal/state"
)

// shardRun is what a worker leaves for one shard of the seeded batch: its
// final checkpoint's counts and the failure records it wrote.
type shardRun struct {
	counts   state.Counts
	failures []int64 // rows with an InvalidNumber record
	skipped  string  // when set, triage skipped the shard with this message
}

// seed stores a batch "b" of two finished shards (rows 2-11 and 12-21), the
// way workers leave it with runs: shard 0 by default has 9 imported rows and
// one failure (row 5), shard 1 ten imported rows.
func seed(t *testing.T, runs ...shardRun) *sqlite.DB {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(sqlite.Memory, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if runs == nil {
		runs = []shardRun{{state.Counts{Total: 10, Imported: 9, Failed: 1}, []int64{5}, ""}, {state.Counts{Total: 10, Imported: 10}, nil, ""}}
	}
	now := time.Now()
	shards := []state.Shard{
		{BatchID: "b", Index: 0, Sheet: "-", Start: 10, End: 100, FirstRow: 2, Rows: 10, Status: state.ShardPending},
		{BatchID: "b", Index: 1, Sheet: "-", Start: 100, End: 200, FirstRow: 12, Rows: 10, Status: state.ShardPending},
	}
	if _, _, err := db.CreateBatch(ctx, state.Batch{ID: "b", Status: state.BatchRunning, Shards: 2, Counts: state.Counts{Total: 20},
		Layout: state.Layout{Format: "csv", Header: []string{"sku", "name"}}}, shards); err != nil {
		t.Fatal(err)
	}
	var products []catalog.Product
	for row := int64(2); row <= 21; row++ {
		if row != 5 {
			products = append(products, product("b", row))
		}
	}
	if _, err := db.Write(ctx, "upsert", products); err != nil {
		t.Fatal(err)
	}
	for i, s := range shards {
		l, _, err := db.Claim(ctx, "b", i, "w", time.Minute, now)
		if err != nil {
			t.Fatal(err)
		}
		var fails []failure.Record
		for _, row := range runs[i].failures {
			fails = append(fails, failure.Record{BatchID: "b", Sheet: "-", Row: row, Layer: failure.LayerSemantic, Reason: failure.InvalidNumber,
				Field: "price", Message: "bad", RawLine: "X-5,=cmd", Cells: []string{"X-5", "=cmd"}, FailureAt: now, Shard: i})
		}
		cp := state.Checkpoint{NextOffset: s.End, NextRow: s.FirstRow + 10, Counts: runs[i].counts}
		if runs[i].skipped != "" { // triage's skip: the checkpoint stays where the rows stopped
			c := runs[i].counts
			cp.NextRow, cp.NextOffset = s.FirstRow+c.Imported+c.Superseded+c.Failed, s.Start+1
			cp.Counts.Skipped = 0
		}
		if err := db.Checkpoint(ctx, l, cp, fails, now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		status, msg := state.ShardDone, ""
		if runs[i].skipped != "" {
			status, msg = state.ShardSkipped, runs[i].skipped
			cp.Counts.Skipped = runs[i].counts.Skipped
		}
		if _, err := db.FinishShard(ctx, l, status, cp, msg); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

// memReports keeps the error report (got) and the batch report (html) in
// memory.
type memReports struct{ got, html strings.Builder }

func (r *memReports) Put(_ context.Context, batchID, name string, write func(io.Writer) error) (string, error) {
	w := &r.got
	if name == report.Name {
		w = &r.html
	}
	return "mem://" + batchID + "/" + name, write(w)
}

func product(batch string, row int64) catalog.Product {
	return catalog.Product{SKU: fmt.Sprintf("P-%d", row), Name: "Lamp", Category: "Home", Price: "1.00", Currency: "CNY",
		Status: "active", BatchID: batch, Source: catalog.Position{Sheet: "-", Row: row}}
}

func TestFinalize(t *testing.T) {
	t.Parallel()
	def := []shardRun{{state.Counts{Total: 10, Imported: 9, Failed: 1}, []int64{5}, ""}, {state.Counts{Total: 10, Imported: 10}, nil, ""}}
	cases := []struct {
		name       string
		runs       []shardRun
		overwrite  bool // another batch writes every SKU afterwards
		abort      string
		wantStatus state.BatchStatus
		wantCounts state.Counts
		wantMsg    string
	}{
		{"reconciles", def, false, "", state.BatchCompletedWithErrors, state.Counts{Total: 20, Imported: 19, Failed: 1}, ""},
		{"another batch owning the products changes nothing", def, true, "", state.BatchCompletedWithErrors,
			state.Counts{Total: 20, Imported: 19, Failed: 1}, ""},
		{"superseded rows are an outcome", []shardRun{def[0], {state.Counts{Total: 10, Imported: 4, Superseded: 6}, nil, ""}}, false, "",
			state.BatchCompletedWithErrors, state.Counts{Total: 20, Imported: 13, Superseded: 6, Failed: 1}, ""},
		{"a displaced row moves from imported to failed", []shardRun{
			{state.Counts{Total: 10, Imported: 9, Failed: 1}, []int64{5}, ""},
			{state.Counts{Total: 10, Imported: 10}, []int64{15}, ""}, // row 15's record was put by another shard
		}, false, "", state.BatchCompletedWithErrors, state.Counts{Total: 20, Imported: 18, Failed: 2}, ""},
		{"a lost failure record fails the batch and is named", []shardRun{def[0], {state.Counts{Total: 10, Imported: 9, Failed: 1}, nil, ""}}, false, "",
			state.BatchFailed, state.Counts{Total: 20, Imported: 18, Failed: 1}, "shard 1: 10 rows but 9 imported + 0 superseded + 0 failed + 0 skipped (-1)"},
		{"a checkpoint short of the rows fails the batch", []shardRun{def[0], {state.Counts{Total: 9, Imported: 9}, nil, ""}}, false, "",
			state.BatchFailed, state.Counts{Total: 20, Imported: 18, Failed: 1}, "shard 1: 10 rows but 9 imported"},
		{"abort counts the rest as skipped", []shardRun{def[0], {state.Counts{Total: 9, Imported: 9}, nil, ""}}, false, "too many errors",
			state.BatchAborted, state.Counts{Total: 20, Imported: 18, Failed: 1, Skipped: 1}, "too many errors"},
		{"skipped rows complete with errors", []shardRun{def[0], {state.Counts{Total: 10, Imported: 3, Skipped: 7}, nil, "skipped by triage: SourceChanged"}}, false, "",
			state.BatchCompletedWithErrors, state.Counts{Total: 20, Imported: 12, Failed: 1, Skipped: 7},
			"7 rows skipped, not imported (shard 1 rows 15 to the end: skipped by triage: SourceChanged)"},
		{"skipped rows without a failed row complete with errors", []shardRun{{state.Counts{Total: 10, Imported: 10}, nil, ""},
			{state.Counts{Total: 10, Skipped: 10}, nil, "skipped by triage: SchemaMismatch"}}, false, "",
			state.BatchCompletedWithErrors, state.Counts{Total: 20, Imported: 10, Skipped: 10}, "10 rows skipped"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := seed(t, tc.runs...)
			if tc.overwrite {
				var ps []catalog.Product
				for row := int64(2); row <= 21; row++ {
					ps = append(ps, product("other", row))
				}
				if _, err := db.Write(context.Background(), "upsert", ps); err != nil {
					t.Fatal(err)
				}
			}
			rep := &memReports{}
			d := finalize.Deps{Store: db, Reports: rep}
			b, err := finalize.Finalize(context.Background(), d, "b", tc.abort)
			if err != nil {
				t.Fatal(err)
			}
			if b.Status != tc.wantStatus || b.Counts != tc.wantCounts || !strings.Contains(b.Message, tc.wantMsg) {
				t.Errorf("got %s %+v %q, want %s %+v containing %q", b.Status, b.Counts, b.Message, tc.wantStatus, tc.wantCounts, tc.wantMsg)
			}
			if tc.name == "skipped rows complete with errors" {
				want := "row,reason,layer,field,message,sku,name\n5,InvalidNumber,semantic,price,bad,X-5,'=cmd\n" +
					"15,ShardSkipped,infrastructure,,\"rows 15 to the end not imported (7 rows, shard 1): skipped by triage: SourceChanged\",\n"
				if b.Report != "mem://b/errors.csv" || rep.got.String() != want {
					t.Errorf("report %q:\n%s\nwant:\n%s", b.Report, rep.got.String(), want)
				}
				if b.ByReason[failure.ShardSkipped] != 0 || b.ByReason[failure.InvalidNumber] != 1 {
					t.Errorf("failures by reason %v: a skip is not a failure record", b.ByReason)
				}
				for _, want := range []string{`<section id="skipped">`, `data-first-row="15" data-count="7"`, "rows 15 to the end", "skipped by triage: SourceChanged"} {
					if !strings.Contains(rep.html.String(), want) {
						t.Errorf("report.html lacks %q", want)
					}
				}
			}
			if tc.name != "reconciles" {
				return
			}
			if b.ByReason[failure.InvalidNumber] != 1 || b.Report != "mem://b/errors.csv" {
				t.Errorf("by reason %v, report %q", b.ByReason, b.Report)
			}
			want := "row,reason,layer,field,message,sku,name\n5,InvalidNumber,semantic,price,bad,X-5,'=cmd\n"
			if rep.got.String() != want {
				t.Errorf("report:\n%s\nwant:\n%s", rep.got.String(), want)
			}
		})
	}
}
