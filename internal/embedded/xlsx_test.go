package embedded

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/xuri/excelize/v2"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/local/sqlite"
	"github.com/catalog-import/catalog-import/internal/profile"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/state"
)

// sheetData is a sheet of a test workbook: rows[i] is Excel row i+1 (nil:
// an empty row), cells as Excel stores them (numbers as numbers).
type sheetData struct {
	name   string
	hidden bool
	rows   [][]any
	merge  string // a merged range, e.g. a title over the header
}

// faultySheets are two sheets with faults, an empty one and a hidden one.
var faultySheets = []sheetData{
	{name: "商品", rows: [][]any{
		{"商品编码", "商品名称", "类目", "价格", "库存", "描述"},
		{"X-1", "台灯", "家居", 12.5, 7, "LED"},
		{"X-2", "", "家居", 3, 1},
		nil,
		{"X-3", "椅子", "家居", "abc", 1},
		{"X-1", "台灯 2", "家居", 1, 1},
		{"X-4", "桌子", "家居", 99.99, 0, "a, \"quoted\"\nmulti-line description"},
		{"X-5", "灯泡", "家居", 10, -1},
		{"X-6", "沙发", "家居", 100000000},
		nil, nil,
		{"X-7", "衣架", "家居", 0.5, 12},
	}},
	{name: "空白"},
	{name: "Sheet 2", merge: "A1:E1", rows: [][]any{
		{"ACME price list 2024"},
		{"SKU", "Name", "Category", "Price", "Stock"},
		{"Y-1", "Lamp", "Home", 5, 3},
		{"bad sku!", "X", "Home", 1, 1},
		{"Y-2", "Y", "Home", 1.005, 1},
		{"Y-3", "Mug", "Kitchen", 2, 2.5},
		{"Y-4", "Cup", "Kitchen", 2, 2}, // a cell right of the header is no fault in a workbook: TestWorkbookFromAProgram
		{"Y-5", "Bowl", "", 2},
	}},
	{name: "lists", hidden: true, rows: [][]any{{"家居"}, {"Kitchen"}}},
}

// writeWorkbook writes sheets as an .xlsx with excelize.
func writeWorkbook(t testing.TB, path string, sheets []sheetData) {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	for i, s := range sheets {
		if i == 0 {
			if err := f.SetSheetName("Sheet1", s.name); err != nil {
				t.Fatal(err)
			}
		} else if _, err := f.NewSheet(s.name); err != nil {
			t.Fatal(err)
		}
		for r, row := range s.rows {
			for c, v := range row {
				if v == nil {
					continue
				}
				cell, _ := excelize.CoordinatesToCellName(c+1, r+1)
				if err := f.SetCellValue(s.name, cell, v); err != nil {
					t.Fatal(err)
				}
			}
		}
		if s.merge != "" {
			from, to, _ := strings.Cut(s.merge, ":")
			if err := f.MergeCell(s.name, from, to); err != nil {
				t.Fatal(err)
			}
		}
		if s.hidden {
			if err := f.SetSheetVisible(s.name, false); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := f.SaveAs(path); err != nil {
		t.Fatal(err)
	}
}

// csvOf is the CSV a person would save the sheet as: numbers as Excel
// shows them, every line as wide as the sheet's widest row (as Excel saves
// its used range), a title row above the header left out (an empty line
// keeps the row numbers).
func csvOf(s sheetData) string {
	var b strings.Builder
	width := 0
	for _, row := range s.rows[1:] {
		width = max(width, len(row))
	}
	for i, row := range s.rows {
		if i == 0 && s.merge != "" {
			b.WriteString("\n")
			continue
		}
		if len(row) == 0 {
			b.WriteString(strings.Repeat(",", width-1) + "\n")
			continue
		}
		for j := range width {
			if j > 0 {
				b.WriteByte(',')
			}
			var v any
			if j < len(row) {
				v = row[j]
			}
			var c string
			switch v := v.(type) {
			case float64:
				c = strconv.FormatFloat(v, 'f', -1, 64)
			case int:
				c = strconv.Itoa(v)
			case string:
				c = v
			}
			if strings.ContainsAny(c, ",\"\n") {
				c = `"` + strings.ReplaceAll(c, `"`, `""`) + `"`
			}
			b.WriteString(c)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// outcome is what a person checks after an import: each failure by row,
// reason and field, and the products.
type outcome struct {
	Counts   state.Counts
	Failures []string
	Products map[string]string
}

func outcomeOf(t *testing.T, dbPath, batchID, sheet string, skus []string) outcome {
	t.Helper()
	db, err := sqlite.Open(dbPath, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	recs, err := db.Failures(ctx, batchID, state.FailureFilter{})
	if err != nil {
		t.Fatal(err)
	}
	o := outcome{Products: map[string]string{}}
	for _, r := range recs {
		if r.Sheet != sheet {
			continue
		}
		o.Failures = append(o.Failures, fmt.Sprintf("row %d %s %s", r.Row, r.Reason, r.Field))
		o.Counts.Failed++
	}
	for _, sku := range skus {
		p, ok, err := db.Get(ctx, sku)
		if err != nil {
			t.Fatal(err)
		}
		if ok && p.BatchID == batchID && p.Source.Sheet == sheet {
			o.Products[sku] = fmt.Sprintf("row %d: %s|%s|%s|%s|%d|%s", p.Source.Row, p.Name, p.Category, p.Price, p.Currency, p.Stock, p.Description)
			o.Counts.Imported++
		}
	}
	o.Counts.Total = o.Counts.Failed + o.Counts.Imported
	return o
}

// TestWorkbookFailsLikeItsCSVs: a workbook with faults on two sheets (and an
// empty and a hidden sheet, which are not imported) gives, sheet by sheet,
// the failures (row, reason, field) and products that importing each sheet
// saved as CSV gives.
func TestWorkbookFailsLikeItsCSVs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	book := filepath.Join(dir, "products.xlsx")
	writeWorkbook(t, book, faultySheets)
	skus := []string{"X-1", "X-2", "X-3", "X-4", "X-5", "X-6", "X-7", "Y-1", "bad sku!", "Y-2", "Y-3", "Y-4", "Y-5"}

	db := filepath.Join(dir, "book.db")
	sum, err := Run(context.Background(), Config{DB: db, Split: split.Options{ShardRows: 3}}, book)
	if err != nil {
		t.Fatal(err)
	}
	b := sum.Batch
	if b.Status != state.BatchCompletedWithErrors || b.Layout.Format != "xlsx" {
		t.Fatalf("batch %s %s (%s): %+v", b.Status, b.Layout.Format, b.Message, b.Counts)
	}
	if b.Counts.Total != 14 || b.Counts.Done() != 14 {
		t.Errorf("counts %+v, want 14 rows of two sheets, all done", b.Counts)
	}
	shards, err := readShards(db, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(shards) < 4 {
		t.Errorf("%d shards, want the sheets cut at 3 rows", len(shards))
	}
	for _, sh := range shards {
		if sh.Staged == nil || (sh.Sheet != "商品" && sh.Sheet != "Sheet 2") {
			t.Errorf("shard %d of sheet %q: staged %v", sh.Index, sh.Sheet, sh.Staged)
		}
	}
	if entries, err := os.ReadDir(filepath.Join(dir, "staging", b.ID)); err == nil || !os.IsNotExist(err) {
		t.Errorf("staging after the batch finished: %d entries, %v; want it removed", len(entries), err)
	}
	report, err := os.ReadFile(b.Report)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(string(report), "\n"); lines[0] != "sheet,row,reason,layer,field,message,raw_line" || !strings.HasPrefix(lines[1], "Sheet 2,4,InvalidValue,") {
		t.Errorf("error report starts %q, want the sheet of each row (the sheets' headers differ: raw lines)", lines[:2])
	}

	var byReason map[failure.Reason]int64
	for _, s := range faultySheets {
		if len(s.rows) == 0 || s.hidden {
			continue
		}
		path := filepath.Join(dir, s.name+".csv")
		if err := os.WriteFile(path, []byte(csvOf(s)), 0o644); err != nil {
			t.Fatal(err)
		}
		csvDB := filepath.Join(dir, s.name+".db")
		csum, err := Run(context.Background(), Config{DB: csvDB}, path)
		if err != nil {
			t.Fatal(err)
		}
		want := outcomeOf(t, csvDB, csum.Batch.ID, failure.NoSheet, skus)
		got := outcomeOf(t, db, b.ID, s.name, skus)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("sheet %q: workbook (+) against its CSV (-):\n%s", s.name, diff)
		}
		if len(want.Failures) < 3 {
			t.Errorf("sheet %q: only %d failures; the test wants faults on it", s.name, len(want.Failures))
		}
		if byReason == nil {
			byReason = map[failure.Reason]int64{}
		}
		for r, n := range csum.Batch.ByReason {
			byReason[r] += n
		}
	}
	if diff := cmp.Diff(byReason, b.ByReason); diff != "" {
		t.Errorf("failures by reason: workbook (+) against the CSVs (-):\n%s", diff)
	}
}

func readShards(path, id string) ([]state.Shard, error) {
	db, err := sqlite.Open(path, sqlite.Options{})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return db.ListShards(context.Background(), id)
}

// TestWorkbookRerunAndRejections: running a workbook again reports the
// finished batch without staging it again; a workbook whose sheet lacks
// required columns is rejected naming the sheet, with nothing staged; a
// profile's sheets pick what is imported.
func TestWorkbookRerunAndRejections(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "w.db")
	book := filepath.Join(dir, "w.xlsx")
	writeWorkbook(t, book, faultySheets)
	first, err := Run(context.Background(), Config{DB: db}, book)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Run(context.Background(), Config{DB: db}, book)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Existing || again.Batch.ID != first.Batch.ID || again.Batch.Status != first.Batch.Status {
		t.Errorf("rerun: existing %v, batch %s %s; want the first run's %s %s", again.Existing, again.Batch.ID, again.Batch.Status, first.Batch.ID, first.Batch.Status)
	}
	if _, err := os.Stat(filepath.Join(dir, "staging", first.Batch.ID)); !os.IsNotExist(err) {
		t.Errorf("staging of the rerun: %v, want none", err)
	}

	bad := slices.Clone(faultySheets)
	bad[2].rows = [][]any{{"SKU", "Name"}, {"Z-1", "z"}}
	badBook := filepath.Join(dir, "bad.xlsx")
	writeWorkbook(t, badBook, bad)
	rej, err := Run(context.Background(), Config{DB: db}, badBook)
	if err != nil {
		t.Fatal(err)
	}
	if rej.Batch.Status != state.BatchRejected || !strings.Contains(rej.Batch.Message, `sheet "Sheet 2", header row 1: missing required columns: name (any of: name, 名称, 商品名称), category`) {
		t.Errorf("bad sheet: %s %q", rej.Batch.Status, rej.Batch.Message)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "staging")); len(entries) != 0 {
		t.Errorf("staging after a rejection: %d entries", len(entries))
	}

	for _, c := range []struct {
		sheets     string
		status     state.BatchStatus
		rows       int64
		message    string
		onlySheets []string
	}{
		{"[' sheet 2 ']", state.BatchCompletedWithErrors, 6, "", []string{"Sheet 2"}},
		{"[lists]", state.BatchRejected, 0, `sheet "lists", header row 1: missing required columns`, nil},
		{"[商品, 价格表]", state.BatchRejected, 0, `the profile imports sheet "价格表", the workbook has no such sheet (it has: "商品", "空白", "Sheet 2", "lists")`, nil},
	} {
		p, err := profile.Parse([]byte("name: some sheets\nsheets: " + c.sheets + "\n"))
		if err != nil {
			t.Fatal(err)
		}
		sum, err := Run(context.Background(), Config{DB: db, Profile: p}, book)
		if err != nil {
			t.Fatal(err)
		}
		if b := sum.Batch; b.Status != c.status || b.Counts.Total != c.rows || !strings.Contains(b.Message, c.message) {
			t.Errorf("sheets %s: %s, %d rows, %q; want %s, %d rows, %q", c.sheets, b.Status, b.Counts.Total, b.Message, c.status, c.rows, c.message)
		}
		if c.onlySheets != nil {
			shards, err := readShards(db, sum.Batch.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, sh := range shards {
				if !slices.Contains(c.onlySheets, sh.Sheet) {
					t.Errorf("sheets %s: a shard of sheet %q", c.sheets, sh.Sheet)
				}
			}
		}
	}
}

// zipOf writes parts (name, content pairs) as a zip.
func zipOf(t *testing.T, parts ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := 0; i < len(parts); i += 2 {
		w, err := zw.Create(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(parts[i+1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestHostileWorkbookIsRejected: a zip bomb and a billion-laughs workbook
// end as REJECTED batches that name the problem, with nothing staged.
func TestHostileWorkbookIsRejected(t *testing.T) {
	t.Parallel()
	rels := `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>`
	wb := `<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>`
	wbRels := `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>`
	laughs := `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">` +
		`<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">]>` +
		`<worksheet><sheetData><row r="1"><c t="inlineStr"><is><t>sku</t></is></c></row><row r="2"><c t="inlineStr"><is><t>&lol2;</t></is></c></row></sheetData></worksheet>`
	for _, c := range []struct {
		name, want string
		data       []byte
	}{
		{"zip bomb", "RowTooLarge: workbook rejected: part xl/worksheets/sheet1.xml expands from",
			zipOf(t, "_rels/.rels", rels, "xl/workbook.xml", wb, "xl/_rels/workbook.xml.rels", wbRels,
				"xl/worksheets/sheet1.xml", "<worksheet><sheetData>"+strings.Repeat(" ", 32<<20)+"</sheetData></worksheet>")},
		{"billion laughs", "SchemaMismatch: workbook rejected: part xl/worksheets/sheet1.xml declares a DTD",
			zipOf(t, "_rels/.rels", rels, "xl/workbook.xml", wb, "xl/_rels/workbook.xml.rels", wbRels, "xl/worksheets/sheet1.xml", laughs)},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "hostile.xlsx")
			if err := os.WriteFile(path, c.data, 0o644); err != nil {
				t.Fatal(err)
			}
			sum, err := Run(context.Background(), Config{DB: filepath.Join(dir, "h.db")}, path)
			if err != nil {
				t.Fatal(err)
			}
			if b := sum.Batch; b.Status != state.BatchRejected || !strings.HasPrefix(b.Message, c.want) || b.Counts.Total != 0 {
				t.Errorf("%s %q (%d rows), want REJECTED %q", b.Status, b.Message, b.Counts.Total, c.want)
			}
			if entries, _ := os.ReadDir(filepath.Join(dir, "staging")); len(entries) != 0 {
				t.Errorf("staged %d batches", len(entries))
			}
		})
	}
}

// TestWorkbookFromAProgram imports a workbook as programs and suppliers
// write them (excelize's stream writer) and checks what a person checks
// after the import: formula results stored as text and stored binary noise
// are the prices Excel shows (11, 2.1), a formula nobody computed fails its
// row saying so and how to fix it, a zero-padded SKU keeps its zeros,
// cells without a header (under a merged header cell, right of the header)
// are ignored and warned about like a 17-digit SKU and a hidden sheet, a CR
// in a cell is kept, and the warnings are on the batch as the database and
// the report show it.
func TestWorkbookFromAProgram(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	book := filepath.Join(dir, "program.xlsx")
	f := excelize.NewFile()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	sixDigits := "000000"
	padded, err := f.NewStyle(&excelize.Style{CustomNumFmt: &sixDigits})
	must(err)
	sw, err := f.NewStreamWriter("Sheet1")
	must(err)
	for i, row := range [][]any{
		{"SKU", "Name", nil, "Category", "Price", "Stock", "Description"},
		{"A-1", "Lamp", nil, "Home", excelize.Cell{Formula: "10*1.1", Value: "11.000000000000002"}, 3, "line 1\rline 2\r\nline 3"},
		{"A-2", "Mug", nil, "Home", 2.09999999999999, 1, nil, "note: discontinued"},
		{"A-3", "Cup", nil, "Home", excelize.Cell{Formula: "E2*2"}, 1},
		{excelize.Cell{Value: 123, StyleID: padded}, "Bowl", "under the merge", "Home", 1, 1},
		{int64(12345678901234567), "Plate", nil, "Home", 1, 1},
		{nil, nil, nil, nil, nil, nil, nil, "only a note"},
	} {
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		must(sw.SetRow(cell, row))
	}
	must(sw.MergeCell("B1", "C1"))
	must(sw.Flush())
	_, err = f.NewSheet("lists")
	must(err)
	must(f.SetCellValue("lists", "A1", "Home"))
	must(f.SetSheetVisible("lists", false))
	must(f.SaveAs(book))

	db := filepath.Join(dir, "p.db")
	sum, err := Run(context.Background(), Config{DB: db}, book)
	must(err)
	b := sum.Batch
	if b.Status != state.BatchCompletedWithErrors || b.Counts != (state.Counts{Total: 5, Imported: 4, Failed: 1}) {
		t.Fatalf("batch %s %+v (%s), want 5 rows, 4 imported, 1 failed", b.Status, b.Counts, b.Message)
	}
	got := outcomeOf(t, db, b.ID, "Sheet1", []string{"A-1", "A-2", "A-3", "000123", "12345678901234600"})
	want := outcome{
		Counts:   state.Counts{Total: 5, Imported: 4, Failed: 1},
		Failures: []string{"row 4 InvalidValue price"},
		Products: map[string]string{
			"A-1":               "row 2: Lamp|Home|11.00|CNY|3|line 1\rline 2\r\nline 3",
			"A-2":               "row 3: Mug|Home|2.10|CNY|1|",
			"000123":            "row 5: Bowl|Home|1.00|CNY|1|",
			"12345678901234600": "row 6: Plate|Home|1.00|CNY|1|",
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("outcome (-want +got):\n%s", diff)
	}

	sdb, err := sqlite.Open(db, sqlite.Options{})
	must(err)
	defer sdb.Close()
	recs, err := sdb.Failures(context.Background(), b.ID, state.FailureFilter{})
	must(err)
	wantMsg := "price is the formula =E2*2 in cell E4, which has no computed value: the program that wrote the workbook did not calculate its formulas; open the workbook in Excel or LibreOffice, save it, and import it again"
	if len(recs) != 1 || recs[0].Message != wantMsg || !slices.Contains(recs[0].Cells, "=E2*2") || strings.Contains(recs[0].RawLine, "\uFFFF") {
		t.Errorf("failure records %+v, want one with message %q and the formula in its cells", recs, wantMsg)
	}

	wantWarnings := []string{
		`sheet "lists" is hidden and was not imported (a profile's sheets: list imports the sheets it names, hidden ones too)`,
		`sheet "Sheet1", column "SKU": 1 number of 16 digits or more, of which Excel keeps 15 (A6 reads 12345678901234600, stored as 12345678901234567); store such codes as text (format the column as Text before typing them)`,
		`sheet "Sheet1", column C has no header: 1 cell ignored (C5 holds "under the merge"); give the column a header the profile maps to import it`,
		`sheet "Sheet1", column H has no header: 2 cells ignored (H3 holds "note: discontinued"); give the column a header the profile maps to import it`,
	}
	stored, err := sdb.GetBatch(context.Background(), b.ID)
	must(err)
	for name, w := range map[string][]string{"summary": b.Warnings, "database": stored.Warnings} {
		if diff := cmp.Diff(wantWarnings, w); diff != "" {
			t.Errorf("warnings in the %s (-want +got):\n%s", name, diff)
		}
	}
	page, err := os.ReadFile(filepath.Join(filepath.Dir(b.Report), "report.html"))
	must(err)
	if !strings.Contains(string(page), `column C has no header: 1 cell ignored (C5 holds &#34;under the merge&#34;)`) {
		t.Errorf("the batch report does not show the warnings")
	}
}
