package lineage_test

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/lineage"
	"github.com/catalog-import/catalog-import/internal/record"
	"github.com/catalog-import/catalog-import/internal/state"
)

// TestMark: a formula cell gets one apostrophe, a cell that already starts
// with apostrophes before a formula character one more, anything else none;
// Unmark gives every cell back, and leaves unmarked text (a "'abc", a "5")
// alone.
func TestMark(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ cell, marked string }{
		{`=HYPERLINK("http://x.example/","x")`, `'=HYPERLINK("http://x.example/","x")`},
		{"+SUM(1;2)", "'+SUM(1;2)"},
		{"-5", "'-5"},
		{"@cmd", "'@cmd"},
		{"\tx", "'\tx"},
		{"\rx", "'\rx"},
		{"\x00", "'\x00"},
		{"'=x", "''=x"},   // the source's own apostrophe is kept
		{"''-1", "'''-1"}, // and two of them
		{"'abc", "'abc"},  // no formula after the apostrophe: no mark
		{"'", "'"},
		{"", ""},
		{"5", "5"},
		{"a=b", "a=b"},
		{" =x", " =x"}, // a leading space: Excel shows it as text
	} {
		if got := lineage.Mark(c.cell); got != c.marked {
			t.Errorf("Mark(%q) = %q, want %q", c.cell, got, c.marked)
		}
		if got := lineage.Unmark(c.marked); got != c.cell {
			t.Errorf("Unmark(%q) = %q, want %q", c.marked, got, c.cell)
		}
	}
}

// TestMarkSetIsTheReports: the fix file marks exactly the cells the error
// report neutralises (failure.Neutralize), whatever their first byte.
func TestMarkSetIsTheReports(t *testing.T) {
	t.Parallel()
	for b := range 256 {
		cell := string([]byte{byte(b), 'x'})
		if b == '\'' {
			continue // the mark itself: Neutralize does not look past it
		}
		report := failure.Neutralize(cell) != cell
		fix := lineage.Mark(cell) != cell
		if report != fix {
			t.Errorf("byte %#x: error report neutralises %v, fix file marks %v", b, report, fix)
		}
	}
}

// TestUnmarkRow: a row without marks is returned as it is (no copy); a
// marked one is copied, its input untouched; a header is unmarked only when
// it is a marked fix file's.
func TestUnmarkRow(t *testing.T) {
	t.Parallel()
	row := []string{"A-1", "'-5", "x"}
	got := lineage.UnmarkRow(row)
	if !slices.Equal(got, []string{"A-1", "-5", "x"}) || row[1] != "'-5" {
		t.Errorf("UnmarkRow = %q (input now %q)", got, row)
	}
	plain := []string{"A-1", "5"}
	if got := lineage.UnmarkRow(plain); &got[0] != &plain[0] {
		t.Error("UnmarkRow copied a row without marks")
	}
	if got := lineage.UnmarkHeader([]string{"'=备注", "sku"}); got[0] != "'=备注" {
		t.Errorf("an ordinary header was unmarked: %q", got)
	}
	if got := lineage.UnmarkHeader([]string{"'=备注", "sku", lineage.ColMarked}); got[0] != "'=备注" {
		t.Errorf("a header with a _marked column but no link columns was unmarked: %q", got)
	}
	if got := lineage.UnmarkHeader([]string{"'=备注", "sku", lineage.ColMarked, lineage.ColSourceRow, lineage.ColError, lineage.ColBatch}); got[0] != "=备注" {
		t.Errorf("a fix file's header kept its mark: %q", got)
	}
}

// FuzzMark: Unmark(Mark(c)) == c for every cell, and no marked cell starts
// with a character a spreadsheet takes as a formula.
func FuzzMark(f *testing.F) {
	for _, s := range []string{"=1+1", "'=1", "''", "-5", "'abc", "@", "\t", "", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cell string) {
		m := lineage.Mark(cell)
		if u := lineage.Unmark(m); u != cell {
			t.Fatalf("Unmark(Mark(%q)) = %q", cell, u)
		}
		if m != "" && strings.ContainsRune("=+-@\t\r\x00", rune(m[0])) {
			t.Fatalf("Mark(%q) = %q starts with a formula character", cell, m)
		}
	})
}

// FuzzFixFileRoundTrip: any cells written to a csv or tsv fix file and
// read back by the importer's own scanner and parser, with the marks
// removed as a shard worker removes them, are the cells written, byte for
// byte (line breaks, quotes, formulas, apostrophes included).
func FuzzFixFileRoundTrip(f *testing.F) {
	f.Add("=HYPERLINK(\"http://x\")", "a\r\nb", "'-5", false)
	f.Add("+SUM(1;2)", "line1\nline2", "@cmd", true)
	f.Add("\"", "x\ry", "'", false)
	f.Add("a\tb", ",", " lead", true)
	f.Fuzz(func(t *testing.T, a, b, c string, tsv bool) {
		cells := []string{a, b, c}
		for _, s := range cells {
			if !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r < ' ' && r != '\t' && r != '\r' && r != '\n' }) {
				return // invalid UTF-8 or a control character is a failure of its own on import
			}
		}
		layout := state.Layout{Format: "csv", Encoding: "utf-8", Delimiter: ",", Header: []string{"=a", "b", "c"}}
		if tsv {
			layout.Format, layout.Delimiter = "tsv", "\t"
		}
		var buf bytes.Buffer
		w, err := lineage.NewFixWriter(&buf, layout)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(failure.Record{BatchID: "b-1", Row: 2, Reason: failure.InvalidValue, Message: "x", Cells: cells}); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		header, got := readBack(t, buf.Bytes(), layout.Format)
		if len(got) != 1 || !slices.Equal(got[0][:3], cells) || !slices.Equal(header[:3], layout.Header) {
			t.Fatalf("wrote %q, read back %q\nfile %q", cells, got, buf.String())
		}
	})
}

// readBack reads a UTF-8 fix file as an import reads it: the record
// scanner and parser under its detected dialect, the header and the cells
// unmarked.
func readBack(t *testing.T, data []byte, format string) (header []string, rows [][]string) {
	t.Helper()
	d, err := record.Detect("fix."+format, data)
	if err != nil {
		t.Fatal(err)
	}
	header, start, row, err := record.Header(bytes.NewReader(data), d, len(data))
	if err != nil {
		t.Fatal(err)
	}
	header = lineage.UnmarkHeader(header)
	sc := record.NewScanner(bytes.NewReader(data[start:]), d, start, row, 1<<20)
	p := record.NewParser(d, header)
	for sc.Next() {
		raw := sc.Raw()
		if raw.Blank {
			continue
		}
		r := p.Parse(raw)
		if r.Err != nil {
			t.Fatalf("row %d: %v\nfile %q", r.Num, r.Err, data)
		}
		rows = append(rows, lineage.UnmarkRow(r.Values))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return header, rows
}
