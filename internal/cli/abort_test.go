package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/catalog-import/catalog-import/internal/state"
)

// TestRunAbortedImportsNothing: with max_error_ratio a file over the budget
// exits 2, ABORTED, and every output says nothing was imported; each bad row
// is in `importctl failures` and in the fix file, which then imports.
func TestRunAbortedImportsNothing(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "i.db")
	prof := filepath.Join(dir, "strict.yaml")
	if err := os.WriteFile(prof, []byte("name: strict\nmax_error_ratio: 0.05\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var csv strings.Builder
	csv.WriteString("sku,name,category,price\n")
	for i := range 200 {
		price := fmt.Sprintf("%d.50", i+1)
		if i >= 188 { // 12 of 200 (6%), all at the end of the file
			price = "-1"
		}
		fmt.Fprintf(&csv, "SKU-%03d,Item %d,Home,%s\n", i, i, price)
	}
	file := filepath.Join(dir, "p.csv")
	if err := os.WriteFile(file, []byte(csv.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	o, s := runImport(t, db, file, "--profile", prof, "--shard-rows", "50")
	msg := "aborted: 12 of 200 rows failed the checks (6.0%), over max_error_ratio 5%: nothing was imported"
	if o.Exit != 2 || o.Status != string(state.BatchAborted) || o.Message != msg || o.Rows != [4]int64{200, 0, 12, 188} || len(o.Failures) != 12 {
		t.Fatalf("aborted run: %+v", o)
	}
	if s.Check == nil || *s.Check != (state.BatchCheck{Shards: 4, Rows: 200, Failed: 12}) {
		t.Errorf("--json check %+v, want 4 shards, 200 rows, 12 failed", s.Check)
	}
	code, out, _ := importctl(t, "status", "--db", db, s.BatchID)
	if code != 0 || !strings.Contains(out, "ABORTED") || !strings.Contains(out, msg) ||
		!strings.Contains(out, "checked   200 rows in 4 of 4 shards before writing, 12 failed the checks") ||
		!strings.Contains(out, "200 total, 0 imported, 12 failed, 188 skipped") {
		t.Errorf("status of the aborted batch:\n%s", out)
	}
	code, fix, stderr := importctl(t, "failures", "--db", db, "--format", "fixfile", s.BatchID)
	if code != 0 || strings.Count(strings.TrimSpace(fix), "\n") != 12 {
		t.Fatalf("fix file (exit %d, %s):\n%s", code, stderr, fix)
	}
	// Fixed, the file imports whole: no row of the aborted batch got in.
	fixed := filepath.Join(dir, "p-fixed.csv")
	if err := os.WriteFile(fixed, []byte(strings.ReplaceAll(csv.String(), ",-1\n", ",1.00\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	if o, _ := runImport(t, db, fixed, "--profile", prof); o.Exit != 0 || o.Rows != [4]int64{200, 200, 0, 0} {
		t.Errorf("fixed file: %+v, want all 200 imported", o)
	}
}
