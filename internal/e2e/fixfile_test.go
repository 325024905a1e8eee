package e2e

import (
	"bytes"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/text/encoding/simplifiedchinese"
)

// TestFixFileRoundTrip: `failures --format fixfile` of the GBK demo file is
// a GBK CSV of just the failed rows (duplicates left out) under the original
// header; with the bad prices fixed in it, importing it into the same catalog
// imports exactly those rows, marks their failures in the parent resolved,
// and every other row fails again. A second fix file has only the rows left.
func TestFixFileRoundTrip(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "shop.db")
	_, parent := runImport(t, db, "../../testdata/demo/products-gbk.csv")
	code, out, errOut := importctl(t, "failures", "--db", db, "--format", "fixfile", parent.BatchID)
	if code != 0 {
		t.Fatalf("failures: exit %d %s", code, errOut)
	}
	text, err := simplifiedchinese.GB18030.NewDecoder().String(out)
	if err != nil {
		t.Fatalf("not GB18030: %v", err)
	}
	rows, err := csv.NewReader(strings.NewReader(text)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	header := rows[0]
	if header[0] != "商品编码" || header[len(header)-3] != "_source_row" || header[len(header)-2] != "_error" || header[len(header)-1] != "_batch" {
		t.Fatalf("header %q", header)
	}
	want := parent.RowsFailed - parent.FailuresByReason["DuplicateSKU"] // duplicates are left out
	if int64(len(rows)-1) != want {
		t.Fatalf("%d rows in the fix file, want %d (%d failed)", len(rows)-1, want, parent.RowsFailed)
	}
	if !strings.Contains(out, "\r\n") {
		t.Error("not CRLF")
	}
	for _, r := range rows[1:] {
		if r[len(r)-1] != parent.BatchID {
			t.Fatalf("_batch %q, want %s", r[len(r)-1], parent.BatchID)
		}
	}
	fix := filepath.Join(dir, "fix.csv")
	fixed := fixPrices(t, out, fix)

	_, child := runImport(t, db, fix) // into the same catalog
	if child.RowsTotal != want || child.RowsImported != int64(fixed) || child.RowsFailed != want-int64(fixed) {
		t.Errorf("fix file import: %d rows, %d imported, %d failed; want %d, %d, %d",
			child.RowsTotal, child.RowsImported, child.RowsFailed, want, fixed, want-int64(fixed))
	}
	if child.Parent != parent.BatchID {
		t.Errorf("child's parent %q, want %s", child.Parent, parent.BatchID)
	}
	if p := batchJSON(t, parent.BatchID, "--db", db); p.Resolved != int64(fixed) {
		t.Errorf("parent resolved %d, want %d", p.Resolved, fixed)
	}
	_, again, _ := importctl(t, "failures", "--db", db, "--format", "fixfile", parent.BatchID)
	text, _ = simplifiedchinese.GB18030.NewDecoder().String(again)
	if rows, err := csv.NewReader(strings.NewReader(text)).ReadAll(); err != nil || len(rows)-1 != int(want)-fixed {
		t.Errorf("second fix file has %d rows (%v), want %d", len(rows)-1, err, int(want)-fixed)
	}
}

// fixPrices is the merchant's edit of the GBK demo's fix file (GB18030
// text as `failures --format fixfile` printed it): every row whose error is
// a bad price gets a good one. It writes the edited file to path, in
// GB18030 again, and returns how many rows it fixed.
func fixPrices(t *testing.T, fixFile, path string) int {
	t.Helper()
	text, err := simplifiedchinese.GB18030.NewDecoder().String(fixFile)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(strings.NewReader(text)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	price, errCol := -1, -1
	for i, h := range rows[0] {
		switch h {
		case "售价", "价格":
			price = i
		case "_error":
			errCol = i
		}
	}
	fixed := 0
	for _, r := range rows[1:] {
		if e := r[errCol]; strings.HasPrefix(e, "InvalidNumber") && strings.Contains(e, "(price)") {
			r[price] = "19.90"
			fixed++
		}
	}
	if fixed == 0 {
		t.Fatal("the demo file has no bad price to fix")
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.UseCRLF = true
	w.WriteAll(rows)
	gbk, _ := simplifiedchinese.GB18030.NewEncoder().String(buf.String())
	if err := os.WriteFile(path, []byte(gbk), 0o644); err != nil {
		t.Fatal(err)
	}
	return fixed
}
