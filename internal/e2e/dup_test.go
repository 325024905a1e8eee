package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestDuplicateSKUsAcrossShards: 50 SKUs repeated through 20 shards run 4 at
// a time give exactly the outcome of one shard run alone: for each SKU the
// lowest row is the product, and every other row is a DuplicateSKU failure
// (invariant 5), whatever order the shards finished in.
func TestDuplicateSKUsAcrossShards(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "dups.csv")
	var b strings.Builder
	b.WriteString("sku,name,category,price\n")
	for i := range 2000 {
		fmt.Fprintf(&b, "D-%02d,Item %d,Home,%d.00\n", (i*7)%50, i, i+1)
	}
	os.WriteFile(file, []byte(b.String()), 0o644)

	one := filepath.Join(dir, "one.db")
	many := filepath.Join(dir, "many.db")
	r1, s1 := runImport(t, one, file, "--shards", "1", "--shard-rows", "100000")
	for round := range 3 { // several schedules of the same shards
		db := fmt.Sprintf("%s.%d", many, round)
		r2, s2 := runImport(t, db, file, "--shards", "4", "--shard-rows", "100", "--checkpoint-every", "10")
		if s1.Status != "COMPLETED_WITH_ERRORS" || s2.Status != "COMPLETED_WITH_ERRORS" || // reconciled
			s1.RowsImported != 50 || s2.RowsImported != 50 || s2.FailuresByReason["DuplicateSKU"] != 1950 {
			t.Fatalf("one shard: %+v; 20 shards: %+v", s1, s2)
		}
		rows := func(o outcome) []string {
			var out []string
			for _, f := range o.Failures {
				out = append(out, strings.SplitN(f, " sku:", 2)[0]) // row and reason; messages name other rows
			}
			slices.Sort(out)
			return out
		}
		if diff := cmp.Diff(rows(r1), rows(r2)); diff != "" {
			t.Errorf("failed rows differ (-one shard +20 shards):\n%s", diff)
		}
		q := `SELECT sku, name, price, source_row FROM products_view ORDER BY sku`
		if diff := cmp.Diff(dump(t, openRaw(t, one), q), dump(t, openRaw(t, db), q)); diff != "" {
			t.Errorf("products differ (-one shard +20 shards):\n%s", diff)
		}
	}
}
