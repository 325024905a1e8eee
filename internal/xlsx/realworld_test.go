package xlsx

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/xuri/excelize/v2"
)

// TestWorkbookWrittenByAProgram reads cells as a program writes them
// (excelize's stream writer: formula results stored as text, or not at
// all) and as suppliers format them, and checks each against what Excel
// shows in the cell: 11 for a formula 10*1.1 stored as the text
// "11.000000000000002", 2.1 for a stored 2.09999999999999, 000123 for 123
// under the format 000000, a note for a formula nobody computed and for a
// number of 17 digits, carriage returns kept.
func TestWorkbookWrittenByAProgram(t *testing.T) {
	t.Parallel()
	f := excelize.NewFile()
	defer f.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	sixDigits := "000000"
	padded, err := f.NewStyle(&excelize.Style{CustomNumFmt: &sixDigits})
	must(err)
	date, err := f.NewStyle(&excelize.Style{NumFmt: 14})
	must(err)
	sw, err := f.NewStreamWriter("Sheet1")
	must(err)
	must(sw.SetRow("A1", []any{"sku", "price", "stock", "name", "code", "listed", "joined"}))
	// excelize's CalcCellValue gives a formula's result as text: a program
	// that computes its formulas that way writes each result as a string
	// (<c t="str"><f>10*1.1</f><v>11.000000000000002</v></c>).
	must(sw.SetRow("A2", []any{
		excelize.Cell{Value: 123, StyleID: padded},
		excelize.Cell{Formula: "10*1.1", Value: "11.000000000000002"},
		excelize.Cell{Formula: "B2*2"}, // no value: never computed
		"line 1\rline 2\r\nline 3",
		int64(12345678901234567),
		excelize.Cell{Formula: "DATE(2024,12,26)", Value: "45652", StyleID: date},
		excelize.Cell{Formula: `A3&"0"`, Value: "1234567890123456789"}, // text: stays text
	}))
	must(sw.SetRow("A3", []any{"A-3", 2.09999999999999, 0.1 + 0.2, "x", -2.09999999999999, nil, excelize.Cell{Formula: `TEXT(7,"000")`, Value: "007"}}))
	must(sw.SetRow("A4", []any{nil, excelize.Cell{Formula: "B2+B3"}}))
	must(sw.Flush())
	var buf bytes.Buffer
	must(f.Write(&buf))

	got, err := readAll(t, writeFile(t, "program.xlsx", buf.Bytes()), Limits{})
	must(err)
	want := []sheetRows{{Name: "Sheet1",
		Rows: map[int64][]string{
			1: {"sku", "price", "stock", "name", "code", "listed", "joined"},
			2: {"000123", "11", "", "line 1\rline 2\r\nline 3", "12345678901234600", "2024-12-26", "1234567890123456789"},
			3: {"A-3", "2.1", "0.3", "x", "-2.1", "", "007"},
			4: nil, // only an uncomputed formula: still a row, with its note
		},
		Notes: map[int64][]Note{
			2: {{Col: 3, Kind: NoteUncomputed, Text: "B2*2"}, {Col: 5, Kind: NoteLongNumber, Text: "12345678901234567"}},
			4: {{Col: 2, Kind: NoteUncomputed, Text: "B2+B3"}},
		},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
}

// TestFormulaCells reads formula cells as writers other than Excel store
// them, by hand: the cell of the issue (t="str" holding a number), a shared
// formula's dependent cell without a value, an empty cached text result
// (an Excel formula that gives ""), a number stored as text under a date or
// zero-padded format, a text result that looks like a number, and an
// _xFFFF_ escape.
func TestFormulaCells(t *testing.T) {
	t.Parallel()
	styles := `<styleSheet><numFmts><numFmt numFmtId="164" formatCode="000000"/></numFmts><cellXfs><xf numFmtId="0"/><xf numFmtId="164"/><xf numFmtId="14"/></cellXfs></styleSheet>`
	rows := `<row r="1"><c r="A1" t="str"><f>10*1.1</f><v>11.000000000000002</v></c><c r="B1" t="str"><f>IF(1,"","x")</f><v></v></c>` +
		`<c r="C1"><f t="shared" ref="C1:C2" si="0">A1*2</f><v>22</v></c><c r="D1" s="1"><v>42</v></c><c r="E1" t="str" s="2"><f>TODAY()</f><v>45651</v></c></row>` +
		`<row r="2"><c r="A2" t="str"><f>"x"</f><v>a_xFFFF_b</v></c><c r="C2"><f t="shared" si="0"/></c><c r="D2" s="1"><v>1234567</v></c><c r="E2" t="str"><f>1/3</f><v>0.3333333333333333</v></c>` +
		`<c r="F2" t="str" s="1"><f>A1*11</f><v>121</v></c><c r="G2" t="str"><f>TEXT(7,"000")</f><v>007</v></c></row>`
	got, err := readAll(t, writeFile(t, "f.xlsx", zipBytes(t, book([]sheetDef{{name: "S", xml: sheetXML(rows)}}, "", styles, false))), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := []sheetRows{{Name: "S",
		Rows: map[int64][]string{
			1: {"11", "", "22", "000042", "2024-12-25"},
			2: {"a\uFFFDb", "", "", "1234567", "0.3333333333", "000121", "007"},
		},
		Notes: map[int64][]Note{2: {{Col: 3, Kind: NoteUncomputed, Text: ""}}},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
}
