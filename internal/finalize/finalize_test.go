package finalize_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/catalog-import/catalog-import/internal/catalog"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/finalize"
	"github.com/catalog-import/catalog-import/internal/local/sqlite"
	"github.com/catalog-import/catalog-import/internal/report"
	"github.com/catalog-import/catalog-import/internal/state"
)

// lossy hides one product of shard 1, as if a write had been lost.
type lossy struct{ *sqlite.DB }

func (l lossy) CountBatch(ctx context.Context, batchID, sheet string, from, to int64) (int64, error) {
	n, err := l.DB.CountBatch(ctx, batchID, sheet, from, to)
	if from == 12 {
		n--
	}
	return n, err
}

// lagging hides one product of shard 1 from the first calls, as an
// eventually consistent index does right after the write.
type lagging struct {
	*sqlite.DB
	calls atomic.Int64
}

func (l *lagging) CountBatch(ctx context.Context, batchID, sheet string, from, to int64) (int64, error) {
	n, err := l.DB.CountBatch(ctx, batchID, sheet, from, to)
	if from == 12 && l.calls.Add(1) <= 2 {
		n--
	}
	return n, err
}

// seed stores a batch of two finished shards (rows 2-11 and 12-21) with
// 9 + 10 products and one failure, the way workers leave it.
func seed(t *testing.T) *sqlite.DB {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(sqlite.Memory, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
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
			products = append(products, product(row))
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
		c := state.Counts{Total: 10, Imported: 10}
		if i == 0 {
			fails = []failure.Record{{BatchID: "b", Sheet: "-", Row: 5, Layer: failure.LayerSemantic, Reason: failure.InvalidNumber,
				Field: "price", Message: "bad", RawLine: "X-5,=cmd", Cells: []string{"X-5", "=cmd"}, FailureAt: now, Shard: 0}}
			c = state.Counts{Total: 10, Imported: 9, Failed: 1}
		}
		cp := state.Checkpoint{NextOffset: s.End, NextRow: s.FirstRow + 10, Counts: c}
		if _, err := db.Checkpoint(ctx, l, cp, fails, now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if _, err := db.FinishShard(ctx, l, state.ShardDone, cp, ""); err != nil {
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

func product(row int64) catalog.Product {
	return catalog.Product{SKU: fmt.Sprintf("P-%d", row), Name: "Lamp", Category: "Home", Price: "1.00", Currency: "CNY",
		Status: "active", BatchID: "b", Source: catalog.Position{Sheet: "-", Row: row}}
}

func TestFinalize(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		lose       bool
		lag        bool
		abort      string
		wantStatus state.BatchStatus
		wantCounts state.Counts
		wantMsg    string
	}{
		{"reconciles", false, false, "", state.BatchCompletedWithErrors, state.Counts{Total: 20, Imported: 19, Failed: 1}, ""},
		{"a lagging count is counted again", false, true, "", state.BatchCompletedWithErrors, state.Counts{Total: 20, Imported: 19, Failed: 1}, ""},
		{"a lost row fails the batch and is named", true, false, "", state.BatchFailed, state.Counts{Total: 20, Imported: 18, Failed: 1},
			"shard 1: 10 rows but 9 imported + 0 failed + 0 skipped (-1)"},
		{"abort counts the rest as skipped", true, false, "too many errors", state.BatchAborted, state.Counts{Total: 20, Imported: 18, Failed: 1, Skipped: 1}, "too many errors"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := seed(t)
			var products finalize.Products = db
			if tc.lose {
				products = lossy{db}
			}
			if tc.lag {
				products = &lagging{DB: db}
			}
			rep := &memReports{}
			d := finalize.Deps{Store: db, Products: products, Reports: rep, Settle: 500 * time.Millisecond}
			b, err := finalize.Finalize(context.Background(), d, "b", tc.abort)
			if err != nil {
				t.Fatal(err)
			}
			if b.Status != tc.wantStatus || b.Counts != tc.wantCounts || !strings.Contains(b.Message, tc.wantMsg) {
				t.Errorf("got %s %+v %q, want %s %+v containing %q", b.Status, b.Counts, b.Message, tc.wantStatus, tc.wantCounts, tc.wantMsg)
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
