package lineage_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/unicode"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/lineage"
	"github.com/catalog-import/catalog-import/internal/state"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name (rewriting it under -update).
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\ngot:\n%q\nwant:\n%q", path, got, want)
	}
}

var records = []failure.Record{
	{BatchID: "b-7f3a", Row: 3, Reason: failure.InvalidNumber, Field: "price", Message: "not a number", Cells: []string{"A-1", "杯子", "=1+1", "abc", ""}},
	{BatchID: "b-7f3a", Row: 7, Reason: failure.SchemaMismatch, Message: "2 cells, header has 5", Cells: []string{"B-2", "短"}},
	{BatchID: "b-7f3a", Row: 9, Reason: failure.MalformedRow, Message: "unbalanced quote", RawLine: "C-3,\"broken,x,1\r\n"},
	// Formulas of every kind, the source's own apostrophes, line breaks in
	// cells (kept as they are), a negative number.
	{BatchID: "b-7f3a", Row: 12, Reason: failure.OutOfRange, Field: "price", Message: "below 0", Cells: []string{"D-4", `=HYPERLINK("http://x.example/","点")`, "+SUM(1;2)", "-5", "@cmd"}},
	{BatchID: "b-7f3a", Row: 13, Reason: failure.InvalidNumber, Field: "price", Message: "not a number", Cells: []string{"E-5", "'=quoted", "'abc", "x", "line 1\nline 2\r\nline 3\rend"}},
	{BatchID: "b-7f3a", Row: 14, Reason: failure.InvalidNumber, Field: "price", Message: "not a number", Cells: []string{"F-6", "\ttab", "\rcr", "1", "-"}},
	// More cells than the header: the extra one follows the trailing columns.
	{BatchID: "b-7f3a", Row: 15, Reason: failure.SchemaMismatch, Message: "row has 6 cells, header has 5 (cell 6 is not empty)", Cells: []string{"G-7", "x", "y", "1", "", "=stray"}},
}

// TestFixWriter: the fix file has the original header and cells, formula
// cells (and header names) marked with a leading apostrophe as the error
// report does, the cells' line breaks kept byte for byte, trailing
// _marked, _source_row, _error and _batch columns, CRLF records, the
// original delimiter, in the original encoding (testdata/fixfile.*.golden).
func TestFixWriter(t *testing.T) {
	header := []string{"商品编码", "商品名称", "类目", "价格", "@备注"}
	cases := []struct {
		encoding string
		bom      []byte
		dec      encoding.Encoding
		delim    string
		golden   string
	}{
		{"utf-8", []byte{0xEF, 0xBB, 0xBF}, encoding.Nop, ",", "fixfile.csv.golden"},
		{"gb18030", nil, simplifiedchinese.GB18030, ",", "fixfile.csv.golden"},
		{"utf-16le", []byte{0xFF, 0xFE}, unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM), "\t", "fixfile.tsv.golden"},
	}
	for _, c := range cases {
		t.Run(c.encoding, func(t *testing.T) {
			var buf bytes.Buffer
			w, err := lineage.NewFixWriter(&buf, state.Layout{Format: "csv", Encoding: c.encoding, Delimiter: c.delim, Header: header})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range records {
				if err := w.Write(r); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			out := buf.Bytes()
			if !bytes.HasPrefix(out, c.bom) {
				t.Fatalf("starts % x, want BOM % x", out[:4], c.bom)
			}
			got, err := c.dec.NewDecoder().Bytes(out[len(c.bom):])
			if err != nil {
				t.Fatal(err)
			}
			golden(t, c.golden, got)
		})
	}
}

// TestFixWriterOfAFixFile: the fix file of a fix file's failures has the
// original header and cells once, unmarked and marked again, and its own
// trailing columns only, so that a grandchild resolves the child's
// failures.
func TestFixWriterOfAFixFile(t *testing.T) {
	child := state.Layout{Format: "csv", Encoding: "utf-8", Delimiter: ",",
		Header: []string{"sku", "name", "price", lineage.ColMarked, lineage.ColSourceRow, lineage.ColError, lineage.ColBatch}}
	var buf bytes.Buffer
	w, err := lineage.NewFixWriter(&buf, child)
	if err != nil {
		t.Fatal(err)
	}
	// The child's failure record keeps the row as the fix file had it.
	rec := failure.Record{BatchID: "b-child", Row: 2, Reason: failure.InvalidNumber, Field: "price", Message: "not a number",
		Cells: []string{"A-1", "'=HYPERLINK(1)", "abc", "name", "7", "InvalidNumber: x (price)", "b-parent"}}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want := "\xef\xbb\xbfsku,name,price,_marked,_source_row,_error,_batch\r\n" +
		"A-1,'=HYPERLINK(1),abc,name,2,InvalidNumber: not a number (price),b-child\r\n"
	if buf.String() != want {
		t.Errorf("got:\n%q\nwant:\n%q", buf.String(), want)
	}
}

// TestFixWriterJSONLines: each failed object comes back with two more keys; a
// line that was not an object is kept as a string.
func TestFixWriterJSONLines(t *testing.T) {
	var buf bytes.Buffer
	w, err := lineage.NewFixWriter(&buf, state.Layout{Format: "jsonl", Encoding: "utf-8"})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(failure.Record{BatchID: "b-7f3a", Row: 2, Reason: failure.MissingField, Field: "sku", Message: "required", RawLine: `{"name": "x"}`})
	w.Write(failure.Record{BatchID: "b-7f3a", Row: 4, Reason: failure.MalformedRow, Message: "invalid JSON", RawLine: `{"name": `})
	w.Close()
	want := "\xEF\xBB\xBF" + `{"name": "x","_batch":"b-7f3a","_error":"MissingField: required (sku)","_source_row":2}` + "\n" +
		`{"_raw":"{\"name\":","_batch":"b-7f3a","_error":"MalformedRow: invalid JSON","_source_row":4}` + "\n"
	if buf.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", buf.String(), want)
	}
}

// TestFixWriterWorkbook: a workbook's fix file is one UTF-8 CSV under the
// header its sheets share, each row naming its sheet; sheets with different
// headers have none.
func TestFixWriterWorkbook(t *testing.T) {
	var buf bytes.Buffer
	w, err := lineage.NewFixWriter(&buf, state.Layout{Format: "xlsx", Header: []string{"SKU", "名称"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []failure.Record{
		{BatchID: "b-w", Sheet: "商品", Row: 4, Reason: failure.MissingField, Field: "name", Message: "required", Cells: []string{"A-1", ""}},
		{BatchID: "b-w", Sheet: "Sheet 2", Row: 2, Reason: failure.InvalidValue, Field: "sku", Message: "pattern", Cells: []string{"-x", "y"}},
	} {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want := "\xef\xbb\xbfSKU,名称,_marked,_source_sheet,_source_row,_error,_batch\r\n" +
		"A-1,,,商品,4,MissingField: required (name),b-w\r\n" +
		"'-x,y,SKU,Sheet 2,2,InvalidValue: pattern (sku),b-w\r\n"
	if buf.String() != want {
		t.Errorf("got:\n%q\nwant:\n%q", buf.String(), want)
	}
	if _, err := lineage.NewFixWriter(&buf, state.Layout{Format: "xlsx"}); err == nil {
		t.Error("a fix file for sheets with different headers")
	}
}
