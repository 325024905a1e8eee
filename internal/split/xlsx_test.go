package split

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/record"
	"github.com/catalog-import/catalog-import/internal/state"
	"github.com/catalog-import/catalog-import/internal/xlsx"
)

// FuzzStagedLine: a row of cells (UTF-8, as XML gives them) written as a
// staged line reads back, with the Scanner and Parser workers use, as the
// same cells, byte for byte (a CR LF inside a cell stays CR LF), or as a
// blank record when every cell is only spaces and tabs; it is always
// exactly one record. A cell staged as an uncomputed formula (UncomputedMark
// and the formula; here every cell starting with "=") reads back, after
// UncomputedFormula, as "=" and the formula, and no mark is left in the
// row's text.
func FuzzStagedLine(f *testing.F) {
	for _, s := range []string{"a\x00b", "", " \x00\t", "say \"hi\"\x00x,y\x00multi\nline", "\r\n\x00\r\x00\"", "商品\x00 lead", "a\x00\x00", "bell\a\x00ok",
		"A-3\x00=B2*2\x00=", "=IF(A1=\"\",\"x\",\"y\")\x00line1\rline2", "\uFFFF\x00=\uFFFF"} {
		f.Add(s, 3)
	}
	f.Fuzz(func(t *testing.T, joined string, width int) {
		joined = strings.ToValidUTF8(joined, "\uFFFD")                // cell text from XML is always UTF-8
		joined = strings.ReplaceAll(joined, UncomputedMark, "\uFFFD") // and never holds U+FFFF
		cells := strings.Split(joined, "\x00")
		width = min(max(width, 0), 64)
		staged := slices.Clone(cells)
		for i, c := range staged {
			if f, ok := strings.CutPrefix(c, "="); ok {
				staged[i] = UncomputedMark + f
			}
		}
		line := appendCSV(nil, staged, width)
		sc := record.NewScanner(bytes.NewReader(line), stagedDialect, 0, 7, 1<<20)
		if !sc.Next() {
			t.Fatalf("%q: no record (%v)", line, sc.Err())
		}
		raw := sc.Raw()
		if raw.Row != 7 || raw.End != int64(len(line)) {
			t.Fatalf("%q: record row %d ends at %d, want row 7 ending at %d", line, raw.Row, raw.End, len(line))
		}
		if sc.Next() {
			t.Fatalf("%q: a second record %q", line, sc.Raw().Bytes)
		}
		blank := strings.Trim(strings.Join(cells, ""), " \t") == "" && !strings.ContainsAny(joined, ",\"\r\n")
		if raw.Blank != blank {
			t.Fatalf("%q: blank %v, want %v", line, raw.Blank, blank)
		}
		if raw.Blank {
			return
		}
		row := record.NewParser(stagedDialect, nil).Parse(raw)
		if err := UncomputedFormula(nil, &row); err != nil {
			t.Fatalf("%q: %v without a header mapping", line, err)
		}
		if strings.Contains(row.Text, UncomputedMark) {
			t.Fatalf("%q: the mark is left in the row's text %q", line, row.Text)
		}
		control := strings.ContainsFunc(joined, func(r rune) bool { return r < 0x20 && r != 0 && r != '\t' && r != '\r' && r != '\n' })
		if control != (failure.ReasonOf(row.Err) == failure.InvalidValue) || !control && row.Err != nil {
			t.Fatalf("%q: %v (a control character: %v)", line, row.Err, control)
		}
		want := slices.Clone(cells)
		for len(want) < width {
			want = append(want, "")
		}
		if !slices.Equal(row.Cells, want) {
			t.Fatalf("%q: cells %q, want %q", line, row.Cells, want)
		}
	})
}

// TestWarningsAreBounded: however many columns without a header hold
// cells, a batch gets at most state.MaxWarnings warnings of at most
// state.MaxWarningBytes bytes, the last one saying how many more there were (15 columns: 9 and 6 more),
// and a long cell is cut at a character boundary.
func TestWarningsAreBounded(t *testing.T) {
	t.Parallel()
	n := &notes{}
	s := xlsx.Sheet{Index: 0, Name: strings.Repeat("表", 31)}
	for col := 20; col > 5; col-- { // noted right to left, shown by column
		n.ignored(s, col, 7, strings.Repeat("备注", 100))
		n.ignored(s, col, 9, "x")
	}
	got := n.warnings()
	if len(got) != state.MaxWarnings || got[len(got)-1] != "and 6 more warnings like these" {
		t.Fatalf("%d warnings, the last %q; want %d, the last saying 6 more", len(got), got[len(got)-1], state.MaxWarnings)
	}
	for i, w := range got {
		if len(w) > state.MaxWarningBytes || !utf8.ValidString(w) {
			t.Errorf("warning %d is %d bytes (valid UTF-8: %v): %q", i, len(w), utf8.ValidString(w), w)
		}
	}
	if !strings.HasPrefix(got[0], `sheet "`+s.Name+`", column F has no header: 2 cells ignored (F7 holds "备注备注`) {
		t.Errorf("first warning %q, want column F's", got[0])
	}
}
