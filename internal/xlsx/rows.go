package xlsx

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// Rows streams the rows of one sheet that hold at least one value, in
// sheet order.
type Rows struct {
	wb    *Workbook
	sheet Sheet
	d     *xml.Decoder
	c     io.Closer
	err   error
	done  bool

	num   int64 // current row number
	cells []string
	notes []Note

	// decoding state
	inData   bool
	inRow    bool
	rowNum   int64
	prevRow  int64
	rowBytes int
	col      int // 1-based column of the current cell
	lastCol  int
	style    int
	kind     string // the cell's t attribute
	inCell   bool
	inV      bool
	inIS     bool
	inT      bool
	inF      bool
	hasF     bool // the cell has a formula
	hasV     bool // the cell has a value element (a formula's cached result)
	phon     int
	v, is, f []byte
	ref      string
}

// NoteKind is a kind of Note.
type NoteKind uint8

// Kinds of notes.
const (
	// NoteUncomputed: the cell holds a formula without a computed (cached)
	// value, as programs that write formulas without calculating them
	// leave it (Excel and LibreOffice store the result of every formula
	// they save). The cell's text is ""; Note.Text is the formula.
	NoteUncomputed NoteKind = iota + 1
	// NoteLongNumber: the cell holds a number of 16 digits or more before
	// its decimal point. Excel keeps 15 significant digits, so the digits
	// after the 15th are lost (a 17-digit code typed into Excel is stored
	// as 12345678901234500); the cell's text is the number as Excel shows
	// it, Note.Text the number as stored.
	NoteLongNumber
)

// Note is something about a cell of the current row that its text does
// not say.
type Note struct {
	Col  int // 1-based column
	Kind NoteKind
	Text string // the formula (NoteUncomputed) or the stored number (NoteLongNumber)
}

// Rows returns an iterator over the rows of s. Close it when done.
func (wb *Workbook) Rows(s Sheet) (*Rows, error) {
	r := &Rows{wb: wb, sheet: s}
	if !s.Worksheet {
		r.done = true
		return r, nil
	}
	f := wb.file(s.part)
	if f == nil {
		return nil, shapeError("sheet %q has no part %s", s.Name, s.part)
	}
	d, c, err := wb.decoder(f)
	if err != nil {
		return nil, err
	}
	r.d, r.c = d, c
	return r, nil
}

// Next moves to the next row with a value. It returns false at the end of
// the sheet or on an error (see Err).
func (r *Rows) Next() bool {
	if r.done || r.err != nil {
		return false
	}
	part := r.sheet.part
	for {
		t, err := token(r.d, part)
		if errors.Is(err, io.EOF) {
			r.done = true
			return false
		}
		if err != nil {
			r.err = err
			return false
		}
		switch t := t.(type) {
		case xml.StartElement:
			if err := r.start(t); err != nil {
				r.err = err
				return false
			}
		case xml.EndElement:
			emit, err := r.end(t)
			if err != nil {
				r.err = err
				return false
			}
			if emit {
				return true
			}
			if r.done {
				return false
			}
		case xml.CharData:
			switch {
			case r.inV:
				r.v = append(r.v, t...)
			case r.inT:
				r.is = append(r.is, t...)
			case r.inF:
				r.f = append(r.f, t...)
			default:
				continue
			}
			if r.rowBytes+len(r.v)+len(r.is)+len(r.f) > r.wb.lim.MaxRowBytes {
				return r.fail(limitError("row %d of sheet %q holds over %s of cell text, over the limit", r.rowNum, r.sheet.Name, bytesText(int64(r.wb.lim.MaxRowBytes))))
			}
		}
	}
}

func (r *Rows) fail(err error) bool {
	r.err = err
	return false
}

func (r *Rows) start(t xml.StartElement) error {
	switch t.Name.Local {
	case "sheetData":
		r.inData = true
	case "row":
		if !r.inData {
			return nil
		}
		n := r.prevRow + 1
		for _, a := range t.Attr {
			if a.Name.Local == "r" {
				v, err := strconv.ParseInt(a.Value, 10, 64)
				if err != nil || v < 1 {
					return shapeError("sheet %q has a row numbered %q", r.sheet.Name, a.Value)
				}
				n = v
			}
		}
		if n <= r.prevRow {
			return shapeError("sheet %q: row %d comes after row %d", r.sheet.Name, n, r.prevRow)
		}
		if n > maxRows {
			return shapeError("sheet %q has a row %d, past Excel's last row %d", r.sheet.Name, n, maxRows)
		}
		r.inRow, r.rowNum, r.prevRow = true, n, n
		r.cells, r.notes, r.rowBytes, r.lastCol = r.cells[:0], r.notes[:0], 0, 0
	case "c":
		if !r.inRow {
			return nil
		}
		r.col, r.style, r.kind, r.ref = r.lastCol+1, 0, "", ""
		for _, a := range t.Attr {
			switch a.Name.Local {
			case "r":
				r.ref = a.Value
				if c := column(a.Value); c > 0 {
					r.col = c
				}
			case "s":
				r.style, _ = strconv.Atoi(a.Value)
			case "t":
				r.kind = a.Value
			}
		}
		if r.col > maxColumns {
			return shapeError("sheet %q row %d has a cell past Excel's last column XFD", r.sheet.Name, r.rowNum)
		}
		r.lastCol, r.inCell = r.col, true
		r.v, r.is, r.f, r.inIS, r.inT, r.inV, r.inF, r.phon = r.v[:0], r.is[:0], r.f[:0], false, false, false, false, 0
		r.hasF, r.hasV = false, false
	case "v":
		r.inV = r.inCell
		r.hasV = r.hasV || r.inCell
	case "f":
		r.inF = r.inCell
		r.hasF = r.hasF || r.inCell
	case "is":
		r.inIS = r.inCell
	case "rPh":
		r.phon++
	case "t":
		r.inT = r.inIS && r.phon == 0
	}
	return nil
}

// end handles an end element; emit is true when a row with a value ended.
func (r *Rows) end(t xml.EndElement) (emit bool, err error) {
	switch t.Name.Local {
	case "v":
		r.inV = false
	case "f":
		r.inF = false
	case "t":
		r.inT = false
	case "is":
		r.inIS = false
	case "rPh":
		r.phon--
	case "c":
		if !r.inCell {
			return false, nil
		}
		r.inCell, r.inV, r.inIS, r.inT, r.inF = false, false, false, false, false
		v, err := r.value()
		if err != nil {
			return false, err
		}
		if r.hasF && !r.hasV && r.kind != "inlineStr" {
			// A formula nobody computed: say so (the cell's text is "").
			formula := string(unescapeOOXML(r.f))
			r.notes = append(r.notes, Note{Col: r.col, Kind: NoteUncomputed, Text: formula})
			r.wb.cells++
			r.rowBytes += len(formula)
			if r.wb.cells > r.wb.lim.MaxCells {
				return false, limitError("the workbook has over %d cells with a value, over the limit", r.wb.lim.MaxCells)
			}
			return false, nil
		}
		if v == "" {
			return false, nil
		}
		r.wb.cells++
		if r.wb.cells > r.wb.lim.MaxCells {
			return false, limitError("the workbook has over %d cells with a value, over the limit", r.wb.lim.MaxCells)
		}
		r.rowBytes += len(v)
		if r.rowBytes > r.wb.lim.MaxRowBytes {
			return false, limitError("row %d of sheet %q holds over %s of cell text, over the limit", r.rowNum, r.sheet.Name, bytesText(int64(r.wb.lim.MaxRowBytes)))
		}
		for len(r.cells) < r.col {
			r.cells = append(r.cells, "")
		}
		r.cells[r.col-1] = v
	case "row":
		if !r.inRow {
			return false, nil
		}
		r.inRow, r.inCell = false, false
		if len(r.cells) > 0 || len(r.notes) > 0 {
			r.num = r.rowNum
			return true, nil
		}
	case "sheetData":
		r.done = true
	}
	return false, nil
}

// value is the text of the cell just read.
func (r *Rows) value() (string, error) {
	switch r.kind {
	case "s":
		s := strings.TrimSpace(string(r.v))
		if s == "" {
			return "", nil
		}
		i, err := strconv.Atoi(s)
		v, ok := r.wb.sst.get(i)
		if err != nil || !ok {
			return "", shapeError("cell %s of sheet %q refers to shared string %q, the workbook has %d", r.cellName(), r.sheet.Name, s, r.wb.sst.len())
		}
		return v, nil
	case "inlineStr":
		return string(unescapeOOXML(r.is)), nil
	case "str":
		v := string(unescapeOOXML(r.v))
		if r.hasF {
			// Some writers (excelize) store every formula result as text:
			// a number they wrote is read as the number Excel computes.
			sig, frac, ok := numberLiteral(v)
			if f := r.format(); ok && (f.kind != numPlain || f.pad > 0 || frac && sig > 15) {
				return r.number(v), nil
			}
		}
		return v, nil
	case "e", "d":
		return string(unescapeOOXML(r.v)), nil
	case "b":
		switch strings.TrimSpace(string(r.v)) {
		case "1", "true":
			return "TRUE", nil
		case "0", "false":
			return "FALSE", nil
		}
		return string(r.v), nil
	}
	v := strings.TrimSpace(string(r.v))
	if v == "" {
		return "", nil
	}
	return r.number(v), nil
}

// format is the number format of the cell just read.
func (r *Rows) format() numFormat {
	if r.style >= 0 && r.style < len(r.wb.styles) {
		return r.wb.styles[r.style]
	}
	return numFormat{}
}

// number is the text of a stored number v in the cell just read: a date
// or time under a date format, else as Excel's General format shows it,
// padded with zeros under a zero-padded integer format. A number of 16
// digits or more gets a NoteLongNumber.
func (r *Rows) number(v string) string {
	f := r.format()
	if f.kind != numPlain {
		return dateText(v, f.kind, r.wb.date1904)
	}
	t, long := numberValue(v)
	if long {
		r.notes = append(r.notes, Note{Col: r.col, Kind: NoteLongNumber, Text: storedNumber(v)})
	}
	if f.pad > 0 {
		t = padZeros(t, int(f.pad))
	}
	return t
}

// storedNumber is a stored number v in plain digits when it has an
// exponent ("1.2345678901234568E+16" -> "12345678901234568").
func storedNumber(v string) string {
	if !strings.ContainsAny(v, "eE") {
		return v
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil && math.Abs(f) < 1e21 {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return v
}

// padZeros pads the digits of t, a whole number, with leading zeros to
// width, as a zero-padded format ("000000") shows it; other text is
// returned as it is.
func padZeros(t string, width int) string {
	digits := strings.TrimPrefix(t, "-")
	if len(digits) >= width || strings.Trim(digits, "0123456789") != "" {
		return t
	}
	return t[:len(t)-len(digits)] + strings.Repeat("0", width-len(digits)) + digits
}

// numberLiteral parses s as a number written by a program: an optional
// minus, digits without leading zeros, an optional fraction and exponent.
// It returns the number of significant digits written and whether there
// is a fraction or an exponent.
func numberLiteral(s string) (sig int, frac, ok bool) {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	start := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	whole := s[start:i]
	if whole == "" || len(whole) > 1 && whole[0] == '0' {
		return 0, false, false
	}
	digits := len(strings.TrimLeft(whole, "0"))
	if i < len(s) && s[i] == '.' {
		i++
		from := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		if i == from {
			return 0, false, false
		}
		fraction := s[from:i]
		if digits == 0 {
			fraction = strings.TrimLeft(fraction, "0")
		}
		digits += len(fraction)
		frac = true
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		from := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		if i == from {
			return 0, false, false
		}
		frac = true
	}
	return digits, frac, i == len(s)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func (r *Rows) cellName() string {
	if r.ref != "" {
		return r.ref
	}
	return ColumnName(r.col) + strconv.FormatInt(r.rowNum, 10)
}

// Row returns the current row's number (as Excel shows it).
func (r *Rows) Row() int64 { return r.num }

// Cells returns the current row's cells (column A first), without trailing
// empty cells. The slice is reused by Next. Cell text never holds U+FFFE or
// U+FFFF (XML cannot, and an _xFFFF_ escape is read as U+FFFD).
func (r *Rows) Cells() []string { return r.cells }

// Notes returns what the current row's cells hold that their text does not
// say, by column: formulas without a computed value, numbers of 16 digits
// or more. A row with an uncomputed formula is a row even when it has no
// value. The slice is reused by Next.
func (r *Rows) Notes() []Note { return r.notes }

// Err returns the error that stopped the iteration, if any.
func (r *Rows) Err() error { return r.err }

// Close closes the sheet's part.
func (r *Rows) Close() error {
	r.done = true
	if r.c == nil {
		return nil
	}
	err := r.c.Close()
	r.c = nil
	return err
}

// column returns the 1-based column of a cell reference ("B5" -> 2), or 0.
func column(ref string) int {
	c := 0
	for i := 0; i < len(ref); i++ {
		ch := ref[i]
		switch {
		case 'A' <= ch && ch <= 'Z':
			c = c*26 + int(ch-'A') + 1
		case 'a' <= ch && ch <= 'z':
			c = c*26 + int(ch-'a') + 1
		case ch == '$':
		default:
			return c
		}
		if c > maxColumns {
			return maxColumns + 1
		}
	}
	return c
}

// ColumnName returns the letters of a 1-based column (2 -> "B"), as Excel
// names it.
func ColumnName(c int) string {
	var b []byte
	for c > 0 {
		c--
		b = append([]byte{byte('A' + c%26)}, b...)
		c /= 26
	}
	return string(b)
}

// generalDigits is how many digits Excel's General format shows of a
// number with a fraction: ten, on either side of the decimal point
// (33.333333333*3 shows as 100, 33.33333333*3 as 99.99999999).
const generalDigits = 10

// numberText returns a stored number as Excel's General format shows it;
// see numberValue.
func numberText(v string) string {
	t, _ := numberValue(v)
	return t
}

// numberValue returns a stored number as Excel's General format shows it,
// and whether it has 16 digits or more before its decimal point (digits
// Excel does not keep). The rule, in decimal arithmetic on the stored
// value:
//
//   - Excel's precision first: the number rounded to 15 significant digits
//     (12.499999999999998 is 12.5, 0.30000000000000004 is 0.3,
//     12345678901234567 is 12345678901234600).
//   - A whole number is then written in full, without exponent (General
//     shows 12 digits and more as 1.23457E+11; a SKU or barcode is a whole
//     number that must not be cut).
//   - A number with a fraction is rounded half away from zero to 10
//     significant digits, as General shows it (2.09999999999999 is 2.1,
//     1/3 is 0.3333333333), but never into its whole part: 12345678901.25
//     is 12345678901.
//   - No exponent between 1e-9 and 1e21 (1E-07 is 0.0000001); outside that
//     range Go's shortest form ("1e+25").
//
// Text that is not a number is returned as it is.
func numberValue(v string) (text string, long bool) {
	if isPlainInt(v) {
		return v, false
	}
	if shortDecimal(v) {
		return v, false // a price as typed: the rule gives it back as it is
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return v, false
	}
	if f == 0 {
		return "0", false
	}
	neg := f < 0
	// d.dddddddddddddde±XX: the 15 significant digits and the exponent.
	e := strconv.FormatFloat(math.Abs(f), 'e', 14, 64)
	mant, expText, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(expText)
	digits := []byte(mant[:1] + mant[2:])
	digits = bytesTrimZeros(digits)
	long = exp >= 15
	if len(digits) > exp+1 { // a fraction: General's 10 digits, not into the whole part
		digits, exp = roundDigits(digits, exp, max(generalDigits, exp+1))
	}
	if exp >= 21 || exp < -9 {
		g, _ := strconv.ParseFloat(string(digits[:1])+"."+string(digits[1:])+"e"+strconv.Itoa(exp), 64)
		if neg {
			g = -g
		}
		return strconv.FormatFloat(g, 'g', -1, 64), long
	}
	var b []byte
	if neg {
		b = append(b, '-')
	}
	switch {
	case exp < 0:
		b = append(b, "0."...)
		b = append(b, strings.Repeat("0", -exp-1)...)
		b = append(b, digits...)
	case len(digits) <= exp+1:
		b = append(b, digits...)
		b = append(b, strings.Repeat("0", exp+1-len(digits))...)
	default:
		b = append(b, digits[:exp+1]...)
		b = append(b, '.')
		b = append(b, digits[exp+1:]...)
	}
	return string(b), long
}

// shortDecimal reports whether v is a decimal the rule of numberValue
// gives back as it is: written without exponent, leading or trailing zeros,
// with a fraction, at most 10 significant digits, and at least 1e-9 ("12.5",
// "-0.03").
func shortDecimal(v string) bool {
	sig, frac, ok := numberLiteral(v)
	if !ok || !frac || sig > generalDigits || v[len(v)-1] == '0' || strings.ContainsAny(v, "eE") {
		return false
	}
	if f, ok := strings.CutPrefix(strings.TrimPrefix(v, "-"), "0."); ok {
		return len(f)-len(strings.TrimLeft(f, "0")) < 9 // under 1e-9: an exponent
	}
	return true
}

// roundDigits rounds the significant digits of a number (d.ddd × 10^exp)
// half away from zero to n digits, returning them without trailing zeros
// and the exponent (which grows when 9.99 rounds to 10).
func roundDigits(digits []byte, exp, n int) ([]byte, int) {
	if len(digits) <= n {
		return digits, exp
	}
	up := digits[n] >= '5'
	digits = digits[:n]
	for i := n - 1; up && i >= 0; i-- {
		if digits[i] == '9' {
			digits[i] = '0'
			continue
		}
		digits[i]++
		up = false
	}
	if up { // every digit was 9
		digits = append([]byte{'1'}, digits...)
		exp++
	}
	return bytesTrimZeros(digits), exp
}

// bytesTrimZeros drops trailing zeros, keeping at least one digit.
func bytesTrimZeros(d []byte) []byte {
	for len(d) > 1 && d[len(d)-1] == '0' {
		d = d[:len(d)-1]
	}
	return d
}

// isPlainInt reports whether v is an integer of at most 15 digits without
// leading zeros: such a stored number is shown as it is.
func isPlainInt(v string) bool {
	d := strings.TrimPrefix(v, "-")
	if d == "" || len(d) > 15 || (d[0] == '0' && len(d) > 1) || d == "0" && v != d {
		return false
	}
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return false
		}
	}
	return true
}

// Last serial number Excel shows as a date: 9999-12-31.
const maxSerial = 2958465

// dateText returns a stored serial number in a date or time format as ISO
// 8601 text, to the second: "2006-01-02", "15:04:05" (elapsed hours past 24
// for a time format: "26:00:00") or "2006-01-02T15:04:05". Serials before
// 1900-03-01 follow Excel's 1900 calendar (serial 60 is the 29 February
// 1900 that Excel shows). A serial that is not a date Excel can show is
// returned as a number (numberText).
func dateText(v string, k numKind, date1904 bool) string {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > maxSerial+1 {
		return numberText(v)
	}
	days := math.Floor(f)
	secs := int64(math.Round((f - days) * 86400))
	if secs >= 86400 {
		days, secs = days+1, secs-86400
	}
	clock := fmt.Sprintf("%02d:%02d:%02d", secs/3600, secs/60%60, secs%60)
	if k == numTime {
		h := int64(days)*24 + secs/3600
		return fmt.Sprintf("%02d:%02d:%02d", h, secs/60%60, secs%60)
	}
	var date string
	switch {
	case date1904:
		date = time.Date(1904, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, int(days)).Format(time.DateOnly)
	case days == 60:
		date = "1900-02-29" // Excel's (Lotus's) leap day
	case days < 60:
		date = time.Date(1899, 12, 31, 0, 0, 0, 0, time.UTC).AddDate(0, 0, int(days)).Format(time.DateOnly)
	default:
		date = time.Date(1899, 12, 30, 0, 0, 0, 0, time.UTC).AddDate(0, 0, int(days)).Format(time.DateOnly)
	}
	if k == numDate {
		return date
	}
	return date + "T" + clock
}
