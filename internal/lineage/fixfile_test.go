package lineage_test

import (
	"bytes"
	"testing"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/unicode"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/lineage"
	"github.com/catalog-import/catalog-import/internal/state"
)

var records = []failure.Record{
	{BatchID: "b-7f3a", Row: 3, Reason: failure.InvalidNumber, Field: "price", Message: "not a number", Cells: []string{"A-1", "杯子", "=1+1", "abc"}},
	{BatchID: "b-7f3a", Row: 7, Reason: failure.SchemaMismatch, Message: "2 cells, header has 4", Cells: []string{"B-2", "短"}},
	{BatchID: "b-7f3a", Row: 9, Reason: failure.MalformedRow, Message: "unbalanced quote", RawLine: "C-3,\"broken,x,1\r\n"},
}

// TestFixWriter: the fix file has the original header and cells (formulas
// untouched: the file is imported again), trailing _source_row, _error
// and _batch columns, CRLF, the original delimiter, in the original encoding.
func TestFixWriter(t *testing.T) {
	header := []string{"商品编码", "商品名称", "类目", "价格"}
	want := "商品编码,商品名称,类目,价格,_source_row,_error,_batch\r\n" +
		"A-1,杯子,=1+1,abc,3,InvalidNumber: not a number (price),b-7f3a\r\n" +
		"B-2,短,,,7,\"SchemaMismatch: 2 cells, header has 4\",b-7f3a\r\n" +
		"\"C-3,\"\"broken,x,1\",,,,9,MalformedRow: unbalanced quote,b-7f3a\r\n"
	cases := []struct {
		encoding string
		bom      []byte
		dec      encoding.Encoding
		delim    string
		want     string
	}{
		{"utf-8", []byte{0xEF, 0xBB, 0xBF}, encoding.Nop, ",", want},
		{"gb18030", nil, simplifiedchinese.GB18030, ",", want},
		{"utf-16le", []byte{0xFF, 0xFE}, unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM), "\t",
			"商品编码\t商品名称\t类目\t价格\t_source_row\t_error\t_batch\r\n" +
				"A-1\t杯子\t=1+1\tabc\t3\tInvalidNumber: not a number (price)\tb-7f3a\r\n" +
				"B-2\t短\t\t\t7\tSchemaMismatch: 2 cells, header has 4\tb-7f3a\r\n" +
				"\"C-3,\"\"broken,x,1\"\t\t\t\t9\tMalformedRow: unbalanced quote\tb-7f3a\r\n"},
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
			if string(got) != c.want {
				t.Errorf("got:\n%q\nwant:\n%q", got, c.want)
			}
		})
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
	want := "\xef\xbb\xbfSKU,名称,_source_sheet,_source_row,_error,_batch\r\n" +
		"A-1,,商品,4,MissingField: required (name),b-w\r\n" +
		"-x,y,Sheet 2,2,InvalidValue: pattern (sku),b-w\r\n"
	if buf.String() != want {
		t.Errorf("got:\n%q\nwant:\n%q", buf.String(), want)
	}
	if _, err := lineage.NewFixWriter(&buf, state.Layout{Format: "xlsx"}); err == nil {
		t.Error("a fix file for sheets with different headers")
	}
}
