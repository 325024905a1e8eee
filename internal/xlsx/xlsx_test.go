package xlsx

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/xuri/excelize/v2"
)

// TestExcelWorkbook reads a workbook written by excelize the way Excel
// writes one (shared strings, styles, merged cells, a hidden sheet) and
// checks every cell as a person looking at the sheet would read it.
func TestExcelWorkbook(t *testing.T) {
	t.Parallel()
	f := excelize.NewFile()
	defer f.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(f.SetSheetName("Sheet1", "商品"))
	must(f.SetSheetRow("商品", "A1", &[]any{"SKU", "名称", "", "价格", "库存", "上架日期", "时间", "更新于", "在售", "金额"}))
	must(f.MergeCell("商品", "B1", "C1")) // a merged header cell keeps its value in B1 only
	isoDate := "yyyy/m/d"
	dateStyle, err := f.NewStyle(&excelize.Style{CustomNumFmt: &isoDate})
	must(err)
	builtinDate, err := f.NewStyle(&excelize.Style{NumFmt: 14})
	must(err)
	timeStyle, err := f.NewStyle(&excelize.Style{NumFmt: 20}) // h:mm
	must(err)
	money := "¥#,##0.00"
	moneyStyle, err := f.NewStyle(&excelize.Style{CustomNumFmt: &money})
	must(err)
	must(f.SetSheetRow("商品", "A2", &[]any{"A-1", "台灯", "", 12.5, 7, nil, nil, time.Date(2024, 12, 25, 10, 30, 0, 0, time.UTC), true, 1234.5}))
	must(f.SetCellValue("商品", "F2", 45651)) // 2024-12-25 as a serial number
	must(f.SetCellStyle("商品", "F2", "F2", dateStyle))
	must(f.SetCellValue("商品", "G2", 0.4375)) // 10:30
	must(f.SetCellStyle("商品", "G2", "G2", timeStyle))
	must(f.SetCellStyle("商品", "J2", "J2", moneyStyle))
	must(f.SetCellFloat("商品", "D4", 12.5, 2, 64))
	must(f.SetCellValue("商品", "A4", "A-3"))
	must(f.SetCellValue("商品", "E4", int64(123456789012345)))
	must(f.SetCellValue("商品", "F4", 60))
	must(f.SetCellStyle("商品", "F4", "F4", builtinDate))
	must(f.SetCellFloat("商品", "D5", 0.3, -1, 64))
	must(f.SetCellValue("商品", "A5", "  "))
	must(f.SetCellStyle("商品", "A7", "Z9", moneyStyle)) // styled but empty: no rows, no columns
	_, err = f.NewSheet("hidden")
	must(err)
	must(f.SetCellValue("hidden", "A1", "lists"))
	must(f.SetSheetVisible("hidden", false))
	_, err = f.NewSheet("空表")
	must(err)
	var buf bytes.Buffer
	must(f.Write(&buf))

	path := writeFile(t, "book.xlsx", buf.Bytes())
	wb, err := Open(path, Limits{})
	must(err)
	defer wb.Close()
	var sheets []string
	for _, s := range wb.Sheets() {
		sheets = append(sheets, s.Name)
		if s.Hidden != (s.Name == "hidden") {
			t.Errorf("sheet %q Hidden = %v", s.Name, s.Hidden)
		}
	}
	if diff := cmp.Diff([]string{"商品", "hidden", "空表"}, sheets); diff != "" {
		t.Errorf("sheets (-want +got):\n%s", diff)
	}
	got, err := readAll(t, path, Limits{})
	must(err)
	want := []sheetRows{
		{Name: "商品", Rows: map[int64][]string{
			1: {"SKU", "名称", "", "价格", "库存", "上架日期", "时间", "更新于", "在售", "金额"},
			2: {"A-1", "台灯", "", "12.5", "7", "2024-12-25", "10:30:00", "2024-12-25T10:30:00", "TRUE", "1234.5"},
			4: {"A-3", "", "", "12.5", "123456789012345", "1900-02-29"},
			5: {"  ", "", "", "0.3"},
		}},
		{Name: "hidden", Rows: map[int64][]string{1: {"lists"}}},
		{Name: "空表", Rows: map[int64][]string{}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
}

// TestHandMadeParts reads the parts other writers produce: inline and rich
// text, phonetic runs, escapes, rows and cells without references, a
// prefixed namespace, formula results, errors and the 1904 date system.
func TestHandMadeParts(t *testing.T) {
	t.Parallel()
	sst := `<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="3" uniqueCount="3">` +
		`<si><t>plain</t></si>` +
		`<si><r><rPr><b/></rPr><t>rich </t></r><r><t xml:space="preserve">text</t></r><rPh sb="0" eb="1"><t>ルビ</t></rPh></si>` +
		`<si><t>line1_x000D_&#10;line2 _x005F_x0041_</t></si></sst>`
	styles := `<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">` +
		`<numFmts count="2"><numFmt numFmtId="164" formatCode="[$-409]d\-mmm\-yy;@"/><numFmt numFmtId="165" formatCode="&quot;d&quot;0.00_);[Red]\(0.00\)"/></numFmts>` +
		`<cellStyleXfs count="1"><xf numFmtId="14"/></cellStyleXfs>` +
		`<cellXfs count="4"><xf numFmtId="0"/><xf numFmtId="164"/><xf numFmtId="165"/><xf numFmtId="22"/></cellXfs></styleSheet>`
	rows := `<x:row><x:c t="s"><x:v>0</x:v></x:c><x:c t="s"><x:v>1</x:v></x:c><x:c r="D1" t="s"><x:v>2</x:v></x:c></x:row>` +
		`<x:row><x:c t="inlineStr"><x:is><x:t>inline &amp; &lt;escaped&gt;</x:t></x:is></x:c><x:c><x:f>1+1</x:f><x:v>2</x:v></x:c><x:c t="str"><x:f>A1</x:f><x:v>text result</x:v></x:c><x:c t="e"><x:v>#N/A</x:v></x:c></x:row>` +
		`<x:row r="5"><x:c r="A5" s="1"><x:v>0</x:v></x:c><x:c r="B5" s="2"><x:v>3.5</x:v></x:c><x:c r="C5" s="3"><x:v>1.5</x:v></x:c><x:c r="D5" t="b"><x:v>0</x:v></x:c><x:c r="E5" t="d"><x:v>2024-01-02T03:04:05</x:v></x:c></x:row>` +
		`<x:row r="6"><x:c r="B6"><x:f>NA()</x:f></x:c></x:row>` +
		`<x:row r="7"><x:c r="A7"><x:f>A5*1.1</x:f><x:v>12.499999999999998</x:v></x:c><x:c r="B7"><x:v>0.30000000000000004</x:v></x:c><x:c r="C7"><x:v>7</x:v></x:c></x:row>`
	ws := `<?xml version="1.0"?><x:worksheet xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><x:dimension ref="A1:E6"/><x:sheetData>` + rows + `</x:sheetData><x:mergeCells count="1"><x:mergeCell ref="A1:B1"/></x:mergeCells></x:worksheet>`
	path := writeFile(t, "hand.xlsx", zipBytes(t, book([]sheetDef{{name: "S", xml: ws}}, sst, styles, true)))
	got, err := readAll(t, path, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := []sheetRows{{Name: "S", Rows: map[int64][]string{
		1: {"plain", "rich text", "", "line1\r\nline2 _x0041_"},
		2: {"inline & <escaped>", "2", "text result", "#N/A"},
		5: {"1904-01-01", "3.5", "1904-01-02T12:00:00", "FALSE", "2024-01-02T03:04:05"},
		6: nil,                  // a formula without a value: a row, with a note
		7: {"12.5", "0.3", "7"}, // Excel's 15 digits, without the binary noise
	}, Notes: map[int64][]Note{6: {{Col: 2, Kind: NoteUncomputed, Text: "NA()"}}}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
}

// TestNumberText: stored numbers read as Excel's General format shows
// them (15 significant digits, then 10 for a number with a fraction, whole
// numbers in full), and which ones have digits Excel does not keep.
func TestNumberText(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in, want string
		long     bool
	}{
		{"7", "7", false},
		{"-7", "-7", false},
		{"12.5", "12.5", false},
		{"12.499999999999998", "12.5", false},
		{strconv.FormatFloat(0.1+0.2, 'g', -1, 64), "0.3", false}, // 0.30000000000000004
		{"1.1000000000000001", "1.1", false},
		{"11.000000000000002", "11", false},
		{"2.09999999999999", "2.1", false},   // 15 digits: General shows 10
		{"-2.09999999999999", "-2.1", false}, // negative: the same digits
		{"99.99999999", "99.99999999", false},
		{"99.999999999", "100", false}, // 33.333333333*3 shows as 100
		{"0.3333333333333333", "0.3333333333", false},
		{"2.675", "2.675", false}, // stored 2.67499999999999982…: decimal, not binary, rounding
		{"0.125", "0.125", false},
		{"1234567.891234", "1234567.891", false},
		{"9999999999.5", "10000000000", false},
		{"12345678901.25", "12345678901", false}, // never rounded into the whole part
		{"1E-3", "0.001", false},
		{"1E-7", "0.0000001", false}, // General shows 1E-07; no exponent here
		{"1.23456789012e-7", "0.000000123456789", false},
		{"-0.000012345678901", "-0.0000123456789", false},
		{"1e-10", "1e-10", false},
		{"1.5E+2", "150", false},
		{"123456789012345", "123456789012345", false},
		{"-123456789012345", "-123456789012345", false},
		{"999999999999999", "999999999999999", false},
		{"1234567890123456", "1234567890123460", true},
		{"12345678901234567", "12345678901234600", true},
		{"1.2345678901234568E+16", "12345678901234600", true},
		{"-12345678901234567", "-12345678901234600", true},
		{"123456789012345678", "123456789012346000", true},
		{"1E+15", "1000000000000000", true},
		{"1e25", "1e+25", true},
		{"-0", "0", false},
		{"0", "0", false},
		{"007", "7", false},
		{"not a number", "not a number", false},
		{"NaN", "NaN", false},
	} {
		got, long := numberValue(c.in)
		if got != c.want || long != c.long {
			t.Errorf("numberValue(%q) = %q, %v; want %q, %v", c.in, got, long, c.want, c.long)
		}
	}
}

func TestPadZeros(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in    string
		width int
		want  string
	}{
		{"123", 6, "000123"},
		{"-123", 6, "-000123"},
		{"0", 6, "000000"},
		{"1234567", 6, "1234567"},
		{"12.5", 6, "12.5"}, // only whole numbers
		{"1e+25", 6, "1e+25"},
	} {
		if got := padZeros(c.in, c.width); got != c.want {
			t.Errorf("padZeros(%q, %d) = %q, want %q", c.in, c.width, got, c.want)
		}
	}
	for code, want := range map[string]uint8{"000000": 6, "00": 2, "0": 0, "000000;-000000": 6, "0.00": 0, `"SKU"0000`: 0, "General": 0, "#0000": 0} {
		if got := zeroPad(code); got != want {
			t.Errorf("zeroPad(%q) = %d, want %d", code, got, want)
		}
	}
}

func TestNumberLiteral(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in       string
		sig      int
		frac, ok bool
	}{
		{"11.000000000000002", 17, true, true},
		{"0.30000000000000004", 17, true, true},
		{"-2.5", 2, true, true},
		{"45652", 5, false, true},
		{"1e+21", 1, true, true},
		{"1234567890123456789", 19, false, true},
		{"00123", 0, false, false}, // =TEXT(A1,"00000"): text
		{"+1", 0, false, false},
		{" 1", 0, false, false},
		{"1.", 0, false, false},
		{"1e", 0, false, false},
		{"", 0, false, false},
		{"12 kg", 0, false, false},
	} {
		sig, frac, ok := numberLiteral(c.in)
		if ok != c.ok || ok && (sig != c.sig || frac != c.frac) {
			t.Errorf("numberLiteral(%q) = %d, %v, %v; want %d, %v, %v", c.in, sig, frac, ok, c.sig, c.frac, c.ok)
		}
	}
}

func TestDateText(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in       string
		k        numKind
		date1904 bool
		want     string
	}{
		{"1", numDate, false, "1900-01-01"},
		{"59", numDate, false, "1900-02-28"},
		{"60", numDate, false, "1900-02-29"},
		{"61", numDate, false, "1900-03-01"},
		{"45651", numDate, false, "2024-12-25"},
		{"45651.999999", numDateTime, false, "2024-12-26T00:00:00"},
		{"45651.4375", numDateTime, false, "2024-12-25T10:30:00"},
		{"0.1", numTime, false, "02:24:00"},
		{"1.25", numTime, false, "30:00:00"},
		{"0", numDate, true, "1904-01-01"},
		{"-1", numDate, false, "-1"},
		{"3000000", numDate, false, "3000000"},
		{"abc", numDate, false, "abc"},
	} {
		if got := dateText(c.in, c.k, c.date1904); got != c.want {
			t.Errorf("dateText(%q, %d, %v) = %q, want %q", c.in, c.k, c.date1904, got, c.want)
		}
	}
}

func TestFormatKind(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		code string
		want numKind
	}{
		{"General", numPlain},
		{"0.00", numPlain},
		{"#,##0", numPlain},
		{"¥#,##0.00;[Red]-¥#,##0.00", numPlain},
		{`0.00" days"`, numPlain},
		{`\d0`, numPlain},
		{"0.00E+00", numPlain},
		{"@", numPlain},
		{"_(* #,##0_);_(* (#,##0);_(* \"-\"_);_(@_)", numPlain},
		{"yyyy-mm-dd", numDate},
		{"yyyy/m/d;@", numDate},
		{"[$-409]mmm-yy", numDate},
		{"mmm", numDate},
		{`yyyy"年"m"月"d"日"`, numDate},
		{"h:mm", numTime},
		{"mm:ss", numTime},
		{"[h]:mm:ss", numTime},
		{"h:mm AM/PM", numTime},
		{"yyyy-mm-dd hh:mm:ss", numDateTime},
		{"m/d/yy h:mm", numDateTime},
		{"[Red][<=100]0;0", numPlain},
	} {
		if got := formatKind(c.code); got != c.want {
			t.Errorf("formatKind(%q) = %d, want %d", c.code, got, c.want)
		}
	}
}

func TestSheetOrderAndShape(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, rows, want string
	}{
		{"row out of order", `<row r="3"><c><v>1</v></c></row><row r="2"><c><v>1</v></c></row>`, "row 2 comes after row 3"},
		{"row past the last", `<row r="1048577"><c><v>1</v></c></row>`, "past Excel's last row"},
		{"bad shared string", `<row r="1"><c t="s"><v>9</v></c></row>`, `cell A1 of sheet "S" refers to shared string "9"`},
		{"column past XFD", `<row r="1"><c r="XFE1"><v>1</v></c></row>`, "past Excel's last column"},
		{"not XML", `<row r=1><c><v>1</v></c></row>`, "is not valid XML"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			path := writeFile(t, "s.xlsx", zipBytes(t, book([]sheetDef{{name: "S", xml: sheetXML(c.rows)}}, "", "", false)))
			_, err := readAll(t, path, Limits{})
			wantRejected(t, err, "SchemaMismatch", c.want)
		})
	}
}

// wantRejected checks that err is an ImportError with the reason whose
// message contains want.
func wantRejected(t *testing.T, err error, reason, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s containing %q", reason, want)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, reason+": ") || !strings.Contains(msg, want) {
		t.Fatalf("error %q, want %s containing %q", msg, reason, want)
	}
}

// TestLargeSharedStrings: a shared strings table over the heap threshold is
// read from its mapped file.
func TestLargeSharedStrings(t *testing.T) {
	t.Parallel()
	var sst strings.Builder
	sst.WriteString("<sst>")
	n := spillThreshold/1000 + 10
	for i := range n {
		fmt.Fprintf(&sst, "<si><t>%04d%s</t></si>", i, strings.Repeat("x", 996))
	}
	sst.WriteString("</sst>")
	ws := sheetXML(fmt.Sprintf(`<row r="1"><c t="s"><v>0</v></c><c t="s"><v>%d</v></c></row>`, n-1))
	path := writeFile(t, "big.xlsx", zipBytes(t, book([]sheetDef{{name: "S", xml: ws}}, sst.String(), "", false)))
	wb, err := Open(path, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer wb.Close()
	if !wb.sst.mapped {
		t.Fatalf("%d bytes of shared strings stayed on the heap", n*1000)
	}
	got, err := readBook(wb)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"0000" + strings.Repeat("x", 996), fmt.Sprintf("%04d", n-1) + strings.Repeat("x", 996)}
	if diff := cmp.Diff(want, got[0].Rows[1]); diff != "" {
		t.Errorf("row 1 (-want +got):\n%s", diff)
	}
}

// TestOpenNamesTheFileOnce: a missing workbook's error names the file
// once ("open X: no such file", not "open X: open X: ...").
func TestOpenNamesTheFileOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nosuch.xlsx")
	_, err := Open(path, Limits{})
	if err == nil {
		t.Fatal("Open of a missing file: no error")
	}
	if n := strings.Count(err.Error(), path); n != 1 {
		t.Errorf("%q names the file %d times, want once", err, n)
	}
}
