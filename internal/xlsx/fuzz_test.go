package xlsx

import (
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/catalog-import/catalog-import/internal/failure"
)

// fuzzSST and fuzzStyles are the shared strings and styles every fuzzed
// sheet is read with.
const (
	fuzzSST    = `<sst><si><t>a</t></si><si><r><t>b</t></r><rPh><t>c</t></rPh></si><si><t>x_x000D_y</t></si></sst>`
	fuzzStyles = `<styleSheet><numFmts><numFmt numFmtId="164" formatCode="yyyy-mm-dd"/><numFmt numFmtId="165" formatCode="000000"/></numFmts><cellXfs><xf numFmtId="0"/><xf numFmtId="164"/><xf numFmtId="20"/><xf numFmtId="22"/><xf numFmtId="165"/></cellXfs></styleSheet>`
)

// FuzzSheet: any worksheet XML is read without a panic, and either refused
// with an ImportError of the syntax layer or read as numbered rows whose
// last cell is not empty or that have notes (Rows refuses rows out of
// order); no cell holds U+FFFE or U+FFFF (the splitter's marker), and
// notes name a column.
func FuzzSheet(f *testing.F) {
	for _, s := range []string{
		sheetXML(`<row r="1"><c t="s"><v>0</v></c><c r="C1" t="s"><v>1</v></c></row><row><c s="1"><v>45651</v></c><c s="2"><v>0.5</v></c><c s="3"><v>1.25</v></c></row>`),
		sheetXML(`<row r="2"><c t="inlineStr"><is><t>a&amp;b_x0041_</t></is></c><c t="b"><v>1</v></c><c t="e"><v>#N/A</v></c><c><f>1</f><v>12.499999999999998</v></c></row>`),
		sheetXML(`<row r="3"><c r="XFD3"><v>1e308</v></c></row><row r="3"/>`),
		`<x:worksheet xmlns:x="u"><x:sheetData><x:row><x:c t="s"><x:v>2</x:v></x:c></x:row></x:sheetData></x:worksheet>`,
		`<!DOCTYPE x [<!ENTITY a "b">]><worksheet/>`,
		sheetXML(`<row r="1"><c t="s"><v>7</v></c></row>`),
		// Issue 13: formulas as programs write them, long and padded numbers.
		sheetXML(`<row r="1"><c t="str"><f>10*1.1</f><v>11.000000000000002</v></c><c t="str"><f>A1&amp;""</f><v>1234567890123456789</v></c><c><f>B1*2</f></c></row>`),
		sheetXML(`<row r="2"><c r="B2"><f t="shared" si="0"/></c></row><row r="3"><c t="str" s="1"><f>TODAY()</f><v>45651</v></c><c t="str"><f>1</f><v></v></c></row>`),
		sheetXML(`<row r="4"><c><v>2.09999999999999</v></c><c><v>12345678901234567</v></c><c><v>1.2345678901234568E+16</v></c><c s="4"><v>123</v></c><c s="4"><v>-1.5</v></c><c><v>-1E-7</v></c></row>`),
		sheetXML(`<row r="5"><c t="inlineStr"><is><t>a_xFFFF_b_xFFFE_&#13;c</t></is></c><c t="str"><v>x&#xD;&#xA;y</v></c></row>`),
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
				if (len(cells) == 0 || cells[len(cells)-1] == "") && len(s.Notes[n]) == 0 {
					t.Fatalf("row %d cells %q: empty, or ending with an empty cell, without notes", n, cells)
				}
				for _, c := range cells {
					if strings.ContainsAny(c, "\uFFFE\uFFFF") {
						t.Fatalf("row %d cell %q holds U+FFFE or U+FFFF", n, c)
					}
				}
				for _, note := range s.Notes[n] {
					if note.Col < 1 || note.Col > maxColumns || note.Kind != NoteUncomputed && note.Kind != NoteLongNumber {
						t.Fatalf("row %d cells %q: note %+v", n, cells, note)
					}
				}
			}
		}
	})
}

// FuzzOpen: any file is opened without a panic; a refusal is an
// ImportError.
func FuzzOpen(f *testing.F) {
	f.Add(zipBytes(f, book([]sheetDef{{name: "S", xml: sheetXML(`<row r="1"><c t="s"><v>0</v></c></row>`)}}, fuzzSST, fuzzStyles, true)))
	f.Add(zipBytes(f, book([]sheetDef{{name: "S", xml: sheetXML(`<row r="1"><c t="str"><f>10*1.1</f><v>11.000000000000002</v></c><c><f>A1*2</f></c><c s="4"><v>123</v></c></row>`)},
		{name: "lists", state: "hidden", xml: sheetXML(`<row r="1"><c t="inlineStr"><is><t>a_xFFFF_&#13;</t></is></c></row>`)}}, fuzzSST, fuzzStyles, false)))
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

// FuzzNumberText: a stored number reads the same whatever way it is
// spelled (plain, with an exponent, as Excel's 17 digits: the fast path for
// short decimals gives what the full rule gives), within Excel's General
// rounding of the value (10 significant digits of a fraction, 15 of a
// whole number), and reads back as itself once read.
func FuzzNumberText(f *testing.F) {
	for _, v := range []float64{2.09999999999999, 0.1 + 0.2, 1e-7, 12345678901234567, -2.09999999999999, 123.99, 2.675, 99.999999999, 1e21, 5e-324, 0.5} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v float64) {
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return
		}
		spellings := []string{strconv.FormatFloat(v, 'f', -1, 64), strconv.FormatFloat(v, 'e', -1, 64), strconv.FormatFloat(v, 'g', 17, 64)}
		want, long := numberValue(spellings[0])
		for _, s := range spellings[1:] {
			if got, l := numberValue(s); got != want || l != long {
				t.Fatalf("numberValue(%q) = %q, %v; numberValue(%q) = %q, %v", s, got, l, spellings[0], want, long)
			}
		}
		if again, _ := numberValue(want); again != want {
			t.Fatalf("numberValue(%q) = %q, read again %q", spellings[0], want, again)
		}
		got, err := strconv.ParseFloat(want, 64)
		if err != nil {
			t.Fatalf("numberValue(%q) = %q: not a number", spellings[0], want)
		}
		if d := math.Abs(got - v); d > 5e-9*math.Abs(v) && d > 0.5 || long != (math.Abs(got) >= 1e15) {
			t.Fatalf("numberValue(%q) = %q (%v), long %v: too far from %v", spellings[0], want, got, long, v)
		}
	})
}
