package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/catalog-import/catalog-import/internal/state"
)

// TestStockFeedThroughCLI: what a user sees of a feed: the profile shows its
// write mode, a stock-only file imports with write_mode update, the --json
// summary and status carry the upload order and rows_superseded.
func TestStockFeedThroughCLI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "i.db")
	write := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	prof := write("stock.yaml", "name: stock-feed\nwrite_mode: update\n")
	if code, out, errs := importctl(t, "profile", prof); code != 0 || !strings.Contains(out, "# write mode update: existing SKUs only") || !strings.Contains(out, "write_mode: update") {
		t.Errorf("profile: exit %d %s %s", code, out, errs)
	}
	full := write("full.csv", "sku,name,category,price,stock\nA-1,Lamp,Home,10.00,5\nA-2,Mug,Home,3.50,7\n")
	o1, s1 := runImport(t, db, full)
	stock := write("stock.csv", "sku,stock\nA-1,0\nA-2,9\n")
	if o, _ := runImport(t, db, stock); o.Status != string(state.BatchRejected) {
		t.Errorf("stock-only file under the default profile: %+v, want REJECTED", o)
	}
	o2, s2 := runImport(t, db, stock, "--profile", prof)
	if o1.Status != "COMPLETED" || o2.Status != "COMPLETED" || o2.Rows != [4]int64{2, 2, 0, 0} || s2.Order <= s1.Order {
		t.Fatalf("full %+v (order %d), stock feed %+v (order %d)", o1, s1.Order, o2, s2.Order)
	}
	_, out, _ := importctl(t, "run", "--json", "--quiet", "--db", db, "--profile", prof, stock)
	if !strings.Contains(out, `"rows_superseded":0`) || !strings.Contains(out, `"already_finished":true`) {
		t.Errorf("--json summary of a finished feed: %s", out)
	}
	_, out, _ = importctl(t, "status", "--json", "--db", db, s2.BatchID)
	var st state.Batch
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Order != s2.Order || !strings.Contains(out, `"rows_superseded":0`) {
		t.Errorf("status --json: order %d, want %d (%v): %s", st.Order, s2.Order, err, out)
	}
	_, out, _ = importctl(t, "status", "--db", db)
	if !strings.Contains(out, "SUPERSEDED") || !strings.Contains(out, "ORDER") {
		t.Errorf("status list has no ORDER and SUPERSEDED columns:\n%s", out)
	}
}
