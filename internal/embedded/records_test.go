package embedded

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/local/sqlite"
	"github.com/catalog-import/catalog-import/internal/profile"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/state"
	"golang.org/x/text/encoding/simplifiedchinese"
)

// This file holds the end-to-end tests of files from the real world
// (issue 13, decision 21): a stray quote, control characters, mixed
// encodings.

// runFile imports content (written as name) under the default profile, in
// shards of shardRows, and returns the finished batch and its failures.
func runFile(t *testing.T, name string, content []byte, shardRows int64) (state.Batch, []failure.Record) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "i.db")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg := Config{DB: db, Profile: profile.Default(), Every: 1000, Shards: 2, Split: split.Options{ShardRows: shardRows}}
	sum, err := Run(ctx, cfg, path)
	if err != nil {
		t.Fatalf("run %s: %v", name, err)
	}
	st, err := sqlite.Open(db, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	recs, err := st.Failures(ctx, sum.Batch.ID, state.FailureFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return sum.Batch, recs
}

// TestUnbalancedQuoteCostsOneRow: a 100,000-row CSV (header + 99,999 data
// rows) whose row 5 opens a quote that nothing closes imports every other
// row; row 5 is one MalformedRow naming the quote and its column. Before
// the quote limits the open quote swallowed the rest of the file into one
// RowTooLarge record (rows_total 4).
func TestUnbalancedQuoteCostsOneRow(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("100,000 rows")
	}
	var b strings.Builder
	b.WriteString("sku,name,category,price,stock\n")
	for row := 2; row <= 100_000; row++ {
		name := fmt.Sprintf("Item %d", row)
		if row == 5 {
			name = `"Bad quote start`
		}
		fmt.Fprintf(&b, "SKU-%06d,%s,Home,%d.%02d,%d\n", row, name, row%500, row%100, row%7)
	}
	batch, recs := runFile(t, "quote.csv", []byte(b.String()), 30_000)
	want := state.Counts{Total: 99_999, Imported: 99_998, Failed: 1}
	if batch.Status != state.BatchCompletedWithErrors || batch.Counts != want {
		t.Fatalf("batch %s %+v %q, want COMPLETED_WITH_ERRORS %+v", batch.Status, batch.Counts, batch.Message, want)
	}
	if len(recs) != 1 {
		t.Fatalf("%d failure records, want 1: %+v", len(recs), recs)
	}
	r := recs[0]
	if r.Row != 5 || r.Reason != failure.MalformedRow || r.Field != "name" ||
		!strings.Contains(r.Message, `unbalanced quote in column "name"`) || r.RawLine != `SKU-000005,"Bad quote start,Home,5.05,5` {
		t.Errorf("failure %+v, want row 5 MalformedRow on name naming the unbalanced quote", r)
	}
}

// TestControlCharactersFailTheirRow: a NUL (or another C0 control
// character but tab, CR, LF) fails its row InvalidValue on its column,
// the same at row 2 (inside the head that Detect sniffs) as at row
// 150,000; the file is not rejected as binary and nothing with a control
// character reaches the catalog.
func TestControlCharactersFailTheirRow(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("150,000 rows")
	}
	bad := map[int]string{2: "a\x00b", 77: "\x1b[1mBold", 150_000: "x\x00y"}
	var b strings.Builder
	b.WriteString("sku,name,category,price,stock\n")
	for row := 2; row <= 150_001; row++ {
		name := fmt.Sprintf("Item %d", row)
		if s, ok := bad[row]; ok {
			name = s
		}
		fmt.Fprintf(&b, "SKU-%06d,%s,Home,1.%02d,3\n", row, name, row%100)
	}
	batch, recs := runFile(t, "ctrl.csv", []byte(b.String()), 60_000)
	want := state.Counts{Total: 150_000, Imported: 149_997, Failed: 3}
	if batch.Status != state.BatchCompletedWithErrors || batch.Counts != want {
		t.Fatalf("batch %s %+v %q, want COMPLETED_WITH_ERRORS %+v", batch.Status, batch.Counts, batch.Message, want)
	}
	for _, r := range recs {
		if _, ok := bad[int(r.Row)]; !ok || r.Reason != failure.InvalidValue || r.Field != "name" || !strings.Contains(r.Message, "control character") {
			t.Errorf("failure %+v, want InvalidValue on name at rows 2, 77, 150000", r)
		}
	}
	if len(recs) != 3 {
		t.Errorf("%d failure records, want 3", len(recs))
	}
}

// TestUTF8RowInGBKFile: a GBK export with one row pasted in as UTF-8
// (mojibake when read as GBK: 鍟嗗搧10) imports its GBK rows with the
// right names and fails the UTF-8 row InvalidEncoding, with the row's
// UTF-8 text in the failure record (decision 21).
func TestUTF8RowInGBKFile(t *testing.T) {
	t.Parallel()
	enc := simplifiedchinese.GBK.NewEncoder()
	var b bytes.Buffer
	gbkLine := func(s string) {
		out, err := enc.String(s)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(out)
	}
	gbkLine("商品编码,商品名称,类目,价格\r\n")
	for i := 1; i <= 30; i++ {
		if i == 10 {
			b.WriteString("SKU-10,商品10,家居,10.00\r\n") // UTF-8 bytes
			continue
		}
		gbkLine(fmt.Sprintf("SKU-%d,无线耳机%d,家居,%d.00\r\n", i, i, i))
	}
	batch, recs := runFile(t, "gbk.csv", b.Bytes(), 1000)
	want := state.Counts{Total: 30, Imported: 29, Failed: 1}
	if batch.Counts != want || batch.Layout.Encoding != "gb18030" {
		t.Fatalf("batch %s %+v %s, want %+v gb18030", batch.Status, batch.Counts, batch.Layout.Encoding, want)
	}
	if len(recs) != 1 || recs[0].Row != 11 || recs[0].Reason != failure.InvalidEncoding || recs[0].Field != "商品名称" ||
		!strings.Contains(recs[0].Message, `"商品10" would be "鍟嗗搧10"`) || recs[0].RawLine != "SKU-10,商品10,家居,10.00" {
		t.Fatalf("failures %+v, want row 11 InvalidEncoding on 商品名称 with its UTF-8 text", recs)
	}
}
