package split

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/record"
)

// FuzzStagedLine: a row of cells (UTF-8, as XML gives them) written as a
// staged line reads back, with the Scanner and Parser workers use, as the
// same cells, byte for byte (a CR LF inside a cell stays CR LF), or as a
// blank record when every cell is only spaces and tabs; it is always
// exactly one record.
func FuzzStagedLine(f *testing.F) {
	for _, s := range []string{"a\x00b", "", " \x00\t", "say \"hi\"\x00x,y\x00multi\nline", "\r\n\x00\r\x00\"", "商品\x00 lead", "a\x00\x00", "bell\a\x00ok"} {
		f.Add(s, 3)
	}
	f.Fuzz(func(t *testing.T, joined string, width int) {
		joined = strings.ToValidUTF8(joined, "\uFFFD") // cell text from XML is always UTF-8
		cells := strings.Split(joined, "\x00")
		width = min(max(width, 0), 64)
		line := appendCSV(nil, cells, width)
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
