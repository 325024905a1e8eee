package xlsx

import (
	"testing"

	"github.com/catalog-import/catalog-import/internal/failure"
)

// fuzzSST and fuzzStyles are the shared strings and styles every fuzzed
// sheet is read with.
const (
	fuzzSST    = `<sst><si><t>a</t></si><si><r><t>b</t></r><rPh><t>c</t></rPh></si><si><t>x_x000D_y</t></si></sst>`
	fuzzStyles = `<styleSheet><numFmts><numFmt numFmtId="164" formatCode="yyyy-mm-dd"/></numFmts><cellXfs><xf numFmtId="0"/><xf numFmtId="164"/><xf numFmtId="20"/><xf numFmtId="22"/></cellXfs></styleSheet>`
)

// FuzzSheet: any worksheet XML is read without a panic, and either refused
// with an ImportError of the syntax layer or read as numbered rows whose
// last cell is not empty (Rows refuses rows out of order).
func FuzzSheet(f *testing.F) {
	for _, s := range []string{
		sheetXML(`<row r="1"><c t="s"><v>0</v></c><c r="C1" t="s"><v>1</v></c></row><row><c s="1"><v>45651</v></c><c s="2"><v>0.5</v></c><c s="3"><v>1.25</v></c></row>`),
		sheetXML(`<row r="2"><c t="inlineStr"><is><t>a&amp;b_x0041_</t></is></c><c t="b"><v>1</v></c><c t="e"><v>#N/A</v></c><c><f>1</f><v>12.499999999999998</v></c></row>`),
		sheetXML(`<row r="3"><c r="XFD3"><v>1e308</v></c></row><row r="3"/>`),
		`<x:worksheet xmlns:x="u"><x:sheetData><x:row><x:c t="s"><x:v>2</x:v></x:c></x:row></x:sheetData></x:worksheet>`,
		`<!DOCTYPE x [<!ENTITY a "b">]><worksheet/>`,
		sheetXML(`<row r="1"><c t="s"><v>7</v></c></row>`),
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ws string) {
		got, err := readBytes(zipBytes(t, book([]sheetDef{{name: "S", xml: ws}}, fuzzSST, fuzzStyles, false)), Limits{MaxCells: 10_000, MaxRowBytes: 1 << 16})
		if err != nil {
			ie, ok := failure.As(err)
			if !ok || ie.Layer != failure.LayerSyntax {
				t.Fatalf("error %v (%T), want an ImportError of the syntax layer", err, err)
			}
		}
		for _, s := range got {
			for n, cells := range s.Rows {
				if n < 1 || n > maxRows {
					t.Fatalf("row number %d", n)
				}
				if len(cells) == 0 || cells[len(cells)-1] == "" {
					t.Fatalf("row %d cells %q: empty, or ending with an empty cell", n, cells)
				}
			}
		}
	})
}

// FuzzOpen: any file is opened without a panic; a refusal is an
// ImportError.
func FuzzOpen(f *testing.F) {
	f.Add(zipBytes(f, book([]sheetDef{{name: "S", xml: sheetXML(`<row r="1"><c t="s"><v>0</v></c></row>`)}}, fuzzSST, fuzzStyles, true)))
	f.Add([]byte("PK\x03\x04"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := readBytes(data, Limits{MaxCells: 10_000, MaxUncompressed: 1 << 20, MaxRowBytes: 1 << 16})
		if err != nil {
			if _, ok := failure.As(err); !ok {
				t.Fatalf("error %v (%T), want an ImportError", err, err)
			}
		}
	})
}
