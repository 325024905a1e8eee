package sqlite

import (
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/catalog-import/catalog-import/internal/catalog"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/state"
)

// benchDB opens a file database in b.TempDir() (WAL, synchronous=NORMAL: what
// `importctl run` uses).
func benchDB(b *testing.B, driver string) *DB {
	b.Helper()
	db, err := Open(filepath.Join(b.TempDir(), "bench.db"), Options{Driver: driver})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

// benchProducts fills ps with rows [row, row+len(ps)) of a batch. Every
// dupEvery-th row (0: none) repeats the SKU of a row of the previous call,
// which is then a Duplicate.
func benchProducts(ps []catalog.Product, batch string, row int64, dupEvery int) {
	for i := range ps {
		r := row + int64(i)
		k := r
		if dupEvery > 0 && i%dupEvery == dupEvery-1 && r > int64(len(ps))+2 {
			k = r - int64(len(ps)) - 1 // a row of the previous call that is not a duplicate
		}
		sku := "SKU-" + strconv.FormatInt(1_000_000_000+k, 10)
		ps[i] = catalog.Product{
			SKU: sku, Name: "Wireless mouse " + sku, Category: "electronics/mice", Brand: "Logi",
			Price: "129.00", Currency: "CNY", Stock: r % 500, Status: "active",
			Description: "2.4 GHz wireless mouse, 1600 dpi, silent buttons, \"ergonomic\" shape, 18 months battery",
			ImageURLs:   []string{"https://img.example.com/" + sku + "/1.jpg", "https://img.example.com/" + sku + "/2.jpg"},
			BatchID:     batch, Source: catalog.Position{Sheet: "-", Row: r}, Offset: r * 180, Length: 178,
		}
	}
}

// BenchmarkSinkWrite measures Write calls of 100 products (the worker's batch
// size) into a file database: all new SKUs, and 5% duplicates of the
// previous call's rows; and, to show what the per-call transaction costs,
// calls of 1000 new SKUs. A Write of new SKUs takes the fresh path (no
// state lookup); with duplicates of earlier calls the fresh path misses and
// the lookup path runs (decision 28). The worker itself calls Prepare in its
// pool and WritePrepared (BenchmarkPrepare is the pool's share).
func BenchmarkSinkWrite(b *testing.B) {
	for _, driver := range drivers() {
		for _, tc := range []struct {
			name           string
			size, dupEvery int
		}{{"new", 100, 0}, {"dup5pct", 100, 20}, {"new-1000", 1000, 0}} {
			b.Run(driver+"/"+tc.name, func(b *testing.B) {
				db := benchDB(b, driver)
				ps := make([]catalog.Product, tc.size)
				row, dups := int64(2), 0
				for b.Loop() {
					benchProducts(ps, "b-bench", row, tc.dupEvery)
					out, err := db.Write(b.Context(), catalog.Upsert, ps)
					if err != nil {
						b.Fatal(err)
					}
					for _, o := range out {
						if o.Result == catalog.Duplicate {
							dups++
						}
					}
					row += int64(len(ps))
				}
				rows := float64(row - 2)
				b.ReportMetric(rows/b.Elapsed().Seconds(), "rows/s")
				b.ReportMetric(float64(dups)/rows*100, "%dup")
			})
		}
	}
}

// BenchmarkCheckpoint measures checkpoints of one shard, each moving 100 rows
// on with 2 failure records (a 2% failure rate).
func BenchmarkCheckpoint(b *testing.B) {
	for _, driver := range drivers() {
		b.Run(driver, func(b *testing.B) {
			db := benchDB(b, driver)
			ctx := b.Context()
			now := time.Now()
			batch := state.Batch{ID: "b-bench", Source: state.Source{URI: "bench.csv"}, CreatedAt: now}
			shard := state.Shard{Index: 0, Sheet: "-", FirstRow: 2, Rows: 1 << 40, End: 1 << 50}
			if _, _, err := db.CreateBatch(ctx, batch, []state.Shard{shard}); err != nil {
				b.Fatal(err)
			}
			lease, _, err := db.Claim(ctx, batch.ID, 0, "bench", time.Hour, now)
			if err != nil {
				b.Fatal(err)
			}
			var cp state.Checkpoint
			rs := make([]failure.Record, 2)
			for b.Loop() {
				for i := range rs {
					row := cp.NextRow + 2 + int64(50*i)
					rs[i] = failure.Record{BatchID: batch.ID, Sheet: "-", Row: row, Layer: failure.LayerSemantic,
						Reason: failure.InvalidNumber, Field: "price", Message: "price: not a number",
						RawLine: fmt.Sprintf("SKU-%d,name,cat,abc", row), Cells: []string{"SKU", "name", "cat", "abc"},
						FieldMapping: map[string]string{"SKU": "sku", "price": "price"}, RuleVersion: "rv", FailureAt: now}
				}
				cp.NextRow += 100
				cp.NextOffset += 18000
				cp.Counts = cp.Counts.Add(state.Counts{Total: 100, Imported: 98, Failed: 2})
				if err := db.Checkpoint(ctx, lease, cp, rs, now.Add(time.Hour)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checkpoints/s")
		})
	}
}

// BenchmarkPrepare measures Prepare of 100 new products (the worker's chunk),
// the sink's share of the validation pool's work.
func BenchmarkPrepare(b *testing.B) {
	db := benchDB(b, DefaultDriver)
	ps := make([]catalog.Product, 100)
	benchProducts(ps, "b-0123456789abcdef0123", 2, 0)
	for i := range ps {
		ps[i].Order = 7
	}
	b.ReportAllocs()
	for b.Loop() {
		if db.Prepare(catalog.Upsert, ps) == nil {
			b.Fatal("nothing prepared")
		}
	}
	b.ReportMetric(float64(b.N*len(ps))/b.Elapsed().Seconds(), "rows/s")
}
