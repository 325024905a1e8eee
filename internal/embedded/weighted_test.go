package embedded

import (
	"bufio"
	"context"
	"maps"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/catalog-import/catalog-import/internal/catalog"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/local/sqlite"
	"github.com/catalog-import/catalog-import/internal/profile"
	"github.com/catalog-import/catalog-import/internal/record/recordtest"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/state"
)

// TestWeightedImportImportsTheSame: a weighted import of a file with faults
// (duplicate SKUs across shards included) and a cluster of heavy rows cuts
// other shards than the unweighted one, and ends with the same products and
// the same failure records, row for row.
func TestWeightedImportImportsTheSame(t *testing.T) {
	t.Parallel()
	const rows = 3000
	dir := t.TempDir()
	path := filepath.Join(dir, "products.csv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	heavy := func(row int64) bool { return row >= 1500 && row < 1650 }
	if err := recordtest.WriteProducts(w, recordtest.Options{Rows: rows, Seed: 21, Faults: true, Heavy: heavy}); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()

	weighted, err := profile.Parse([]byte(`
name: weighted
weight:
  expression: '1 + len(image_urls) / 4 + len(description) / 1000 + (price > 4000 ? 0.5 : 0)'
`))
	if err != nil {
		t.Fatal(err)
	}
	type outcome struct {
		sum      Summary
		shards   []state.Shard
		products map[string]catalog.Product
		failures []failure.Record
	}
	runWith := func(name string, p *profile.Profile) outcome {
		db := filepath.Join(dir, name+".db")
		sum, err := Run(context.Background(), Config{DB: db, Profile: p, Shards: 3, Every: 50, Split: split.Options{ShardRows: 250}}, path)
		if err != nil {
			t.Fatal(err)
		}
		s, err := sqlite.Open(db, sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		ctx := context.Background()
		out := outcome{sum: sum, products: map[string]catalog.Product{}}
		if out.shards, err = s.ListShards(ctx, sum.Batch.ID); err != nil {
			t.Fatal(err)
		}
		for r := int64(2); r < rows+2; r++ {
			prod, ok, err := s.Get(ctx, recordtest.SKU(r))
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				prod.BatchID, prod.Offset, prod.Length = "", 0, 0
				out.products[prod.SKU] = prod
			}
		}
		recs, err := s.Failures(ctx, sum.Batch.ID, state.FailureFilter{})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			// Not compared: the batch, its rules, when and in which shard;
			// and a DuplicateSKU's message, which says whether the winning
			// row was written first or displaced this one (shard order).
			r.BatchID, r.RuleVersion, r.FailureAt, r.Shard, r.TraceID = "", "", time.Time{}, 0, ""
			if r.Reason == failure.DuplicateSKU {
				r.Message = ""
			}
			out.failures = append(out.failures, r)
		}
		return out
	}
	plain, heavyRun := runWith("plain", profile.Default()), runWith("weighted", weighted)

	if len(plain.shards) != len(heavyRun.shards) || len(plain.shards) < 10 {
		t.Fatalf("%d shards weighted, %d plain: want the same number, at least 10", len(heavyRun.shards), len(plain.shards))
	}
	moved := false
	for i := range plain.shards {
		moved = moved || plain.shards[i].End != heavyRun.shards[i].End
	}
	if !moved {
		t.Fatal("the weighted plan cut where the plain one did: the test shows nothing")
	}
	for _, o := range []outcome{plain, heavyRun} {
		c := o.sum.Batch.Counts
		if o.sum.Batch.Status != state.BatchCompletedWithErrors || c.Total != rows || c.Failed == 0 ||
			int64(len(o.products)) != c.Imported || int64(len(o.failures)) != c.Failed {
			t.Fatalf("batch %s: %+v, %d products and %d failure records", o.sum.Batch.Status, c, len(o.products), len(o.failures))
		}
	}
	if plain.sum.Batch.Counts != heavyRun.sum.Batch.Counts || !maps.Equal(plain.sum.Batch.ByReason, heavyRun.sum.Batch.ByReason) {
		t.Errorf("counts %+v %v weighted, %+v %v plain", heavyRun.sum.Batch.Counts, heavyRun.sum.Batch.ByReason, plain.sum.Batch.Counts, plain.sum.Batch.ByReason)
	}
	if d := cmp.Diff(plain.products, heavyRun.products); d != "" {
		t.Errorf("products differ (-plain +weighted):\n%s", d)
	}
	if d := cmp.Diff(plain.failures, heavyRun.failures); d != "" {
		t.Errorf("failure records differ (-plain +weighted):\n%s", d)
	}
}
