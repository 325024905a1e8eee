package e2e

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/xuri/excelize/v2"

	"github.com/catalog-import/catalog-import/internal/record/recordtest"
)

// writeProductWorkbook writes the rows of a generated product CSV (with
// faults) as a workbook of sheets sheets, each with the header, numbers
// stored as numbers. The first row of every sheet after the first repeats a
// SKU of the first sheet: a duplicate across sheets, which the first sheet
// wins whatever order the shards run in.
func writeProductWorkbook(t *testing.T, path string, rows, sheets int) {
	t.Helper()
	var buf bytes.Buffer
	if err := recordtest.WriteProductCSV(&buf, rows, 5, true); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	header, data := recs[0], recs[1:]
	f := excelize.NewFile()
	defer f.Close()
	per := (len(data) + sheets - 1) / sheets
	for s := range sheets {
		name := fmt.Sprintf("第%d批", s+1)
		if s == 0 {
			if err := f.SetSheetName("Sheet1", name); err != nil {
				t.Fatal(err)
			}
		} else if _, err := f.NewSheet(name); err != nil {
			t.Fatal(err)
		}
		sw, err := f.NewStreamWriter(name)
		if err != nil {
			t.Fatal(err)
		}
		cells := make([]any, len(header))
		for i, h := range header {
			cells[i] = h
		}
		if err := sw.SetRow("A1", cells); err != nil {
			t.Fatal(err)
		}
		chunk := data[min(s*per, len(data)):min((s+1)*per, len(data))]
		for r, rec := range chunk {
			cells := make([]any, len(rec))
			for i, c := range rec {
				cells[i] = c
				if v, err := strconv.ParseFloat(c, 64); err == nil && (header[i] == "price" || header[i] == "stock") {
					cells[i] = v
				}
			}
			if s > 0 && r == 0 {
				cells[0] = data[3][0]
			}
			cell, _ := excelize.CoordinatesToCellName(1, r+2)
			if err := sw.SetRow(cell, cells); err != nil {
				t.Fatal(err)
			}
		}
		if err := sw.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.SaveAs(path); err != nil {
		t.Fatal(err)
	}
}

// TestCrashResumeWorkbook kills `importctl run` (SIGKILL) twice in the middle
// of a three-sheet workbook with faults, reruns it until it finishes, and
// checks that the products and failure records (sheet and row included) are
// those of a clean run, that the reruns resumed, and that the staged sheets
// are gone once the batch finished.
func TestCrashResumeWorkbook(t *testing.T) {
	if testing.Short() {
		t.Skip("builds importctl and imports a 60k-row workbook several times")
	}
	t.Parallel()
	dir := t.TempDir()
	bin := sharedImportctl(t)
	book := filepath.Join(dir, "products.xlsx")
	writeProductWorkbook(t, book, 60_000, 3)
	args := []string{"run", "--json", "--quiet", "--shard-rows", "4000", "--checkpoint-every", "100"}

	for _, d := range []string{"clean", "crash"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	clean := runBin(t, bin, append(args, "--db", filepath.Join(dir, "clean", "c.db"), book)...)
	crashDB := filepath.Join(dir, "crash", "c.db")
	var done int64
	for i, more := range []int64{8_000, 15_000} {
		cmd := exec.Command(bin, append(args, "--db", crashDB, book)...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done = waitRows(t, crashDB, done+more, 120*time.Second)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		t.Logf("killed run %d with %d rows checkpointed", i+1, done)
		if entries, err := os.ReadDir(filepath.Join(dir, "crash", "staging", clean.BatchID)); err != nil || len(entries) == 0 {
			t.Fatalf("staging of the unfinished batch: %d entries, %v", len(entries), err)
		}
	}
	final := runBin(t, bin, append(args, "--db", crashDB, book)...)
	if !final.Resumed || final.BatchID != clean.BatchID || final.Status != clean.Status {
		t.Errorf("final run %+v, clean run %+v", final, clean)
	}
	if clean.RowsTotal != 60_000 || final.RowsImported+final.RowsFailed+final.RowsSkipped != final.RowsTotal ||
		!cmp.Equal(clean.FailuresByReason, final.FailuresByReason) || clean.RowsImported != final.RowsImported {
		t.Errorf("clean %+v\ncrashed %+v", clean, final)
	}
	cdb, kdb := openRaw(t, filepath.Join(dir, "clean", "c.db")), openRaw(t, crashDB)
	if n := count(t, kdb, `SELECT count(*) FROM failures WHERE row = 2 AND reason = 'DuplicateSKU' AND sheet IN ('第2批', '第3批')`); n != 2 {
		t.Errorf("%d of the two duplicates across sheets recorded", n)
	}
	const products = `SELECT sku, name, category, brand, price, currency, stock, status, description, image_urls, batch_id, source_sheet, source_row FROM products_view ORDER BY sku`
	const failures = `SELECT batch_id, sheet, row, layer, reason, field, message, raw_line, rule_version, shard FROM failures ORDER BY batch_id, sheet, row`
	for _, q := range []string{products, failures} {
		want, got := dump(t, cdb, q), dump(t, kdb, q)
		if len(want) == 0 {
			t.Fatalf("clean run stored nothing for %s", q)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("crashed run differs from the clean run for %q (-clean +crashed):\n%.3000s", q, diff)
		}
	}
	for _, d := range []string{"clean", "crash"} {
		if entries, _ := os.ReadDir(filepath.Join(dir, d, "staging")); len(entries) != 0 {
			t.Errorf("%s: staging left after the batch finished: %v", d, entries)
		}
	}
}
