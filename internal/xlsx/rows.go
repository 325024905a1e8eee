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
	phon     int
	v, is    []byte
	ref      string
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
			default:
				continue
			}
			if r.rowBytes+len(r.v)+len(r.is) > r.wb.lim.MaxRowBytes {
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
		r.cells, r.rowBytes, r.lastCol = r.cells[:0], 0, 0
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
		r.v, r.is, r.inIS, r.inT, r.inV, r.phon = r.v[:0], r.is[:0], false, false, false, 0
	case "v":
		r.inV = r.inCell
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
		r.inCell, r.inV, r.inIS, r.inT = false, false, false, false
		v, err := r.value()
		if err != nil || v == "" {
			return false, err
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
		if len(r.cells) > 0 {
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
	case "str", "e", "d":
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
	if r.style >= 0 && r.style < len(r.wb.styles) {
		if k := r.wb.styles[r.style]; k != numPlain {
			return dateText(v, k, r.wb.date1904), nil
		}
	}
	return numberText(v), nil
}

func (r *Rows) cellName() string {
	if r.ref != "" {
		return r.ref
	}
	return columnName(r.col) + strconv.FormatInt(r.rowNum, 10)
}

// Row returns the current row's number (as Excel shows it).
func (r *Rows) Row() int64 { return r.num }

// Cells returns the current row's cells (column A first), without trailing
// empty cells. The slice is reused by Next.
func (r *Rows) Cells() []string { return r.cells }

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

// columnName returns the letters of a 1-based column (2 -> "B").
func columnName(c int) string {
	var b []byte
	for c > 0 {
		c--
		b = append([]byte{byte('A' + c%26)}, b...)
		c /= 26
	}
	return string(b)
}

// numberText returns a stored number as Excel shows it in General format:
// at most 15 significant digits (so the binary noise of 12.499999999999998
// is gone: "12.5"), no exponent in the usual range, integers without a
// decimal point. Text that is not a number is returned as it is.
func numberText(v string) string {
	if isPlainInt(v) {
		return v
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return v
	}
	f, _ = strconv.ParseFloat(strconv.FormatFloat(f, 'g', 15, 64), 64)
	if f == 0 {
		return "0"
	}
	if a := math.Abs(f); a >= 1e21 || a < 1e-9 {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
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
