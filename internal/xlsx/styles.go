package xlsx

import (
	"encoding/xml"
	"errors"
	"io"
	"strconv"
	"strings"
)

// numKind is what a cell style's number format makes of a number.
type numKind uint8

const (
	numPlain    numKind = iota // a number: shown as Excel's General format shows it (numberText)
	numDate                    // a date: 2006-01-02
	numTime                    // a time of day: 15:04:05
	numDateTime                // both: 2006-01-02T15:04:05
)

// numFormat is what a cell style's number format makes of a number: its
// kind, and for a zero-padded integer format ("000000") the number of
// digits a whole number is padded to.
type numFormat struct {
	kind numKind
	pad  uint8
}

// maxPad is the widest zero-padded format applied (Excel shows at most 15
// significant digits; a longer run of zeros only adds leading zeros).
const maxPad = 64

// builtinKinds are the built-in number formats that show dates or times
// (ECMA-376 Part 1, 18.8.30, plus the East Asian ids Excel writes for
// zh-CN, ja-JP and ko-KR workbooks).
var builtinKinds = map[int]numKind{
	14: numDate, 15: numDate, 16: numDate, 17: numDate,
	18: numTime, 19: numTime, 20: numTime, 21: numTime, 22: numDateTime,
	27: numDate, 28: numDate, 29: numDate, 30: numDate, 31: numDate,
	32: numTime, 33: numTime, 34: numTime, 35: numTime, 36: numDate,
	45: numTime, 46: numTime, 47: numTime,
	50: numDate, 51: numDate, 52: numDate, 53: numDate, 54: numDate,
	55: numTime, 56: numTime, 57: numDate, 58: numDate,
}

// readStyles reads the number format of every cell style (cellXfs).
func (wb *Workbook) readStyles(name string) ([]numFormat, error) {
	d, c, err := wb.metaPart(name)
	if err != nil || d == nil {
		return nil, err
	}
	defer c.Close()
	custom := map[int]numFormat{}
	var xfIDs []int
	inCellXfs := false
	for {
		t, err := token(d, name)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := t.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "numFmt":
				id, code := -1, ""
				for _, a := range t.Attr {
					switch a.Name.Local {
					case "numFmtId":
						id, _ = strconv.Atoi(a.Value)
					case "formatCode":
						code = a.Value
					}
				}
				if id >= 0 {
					custom[id] = numFormat{kind: formatKind(code), pad: zeroPad(code)}
				}
			case "cellXfs":
				inCellXfs = true
			case "xf":
				if inCellXfs {
					id := 0
					for _, a := range t.Attr {
						if a.Name.Local == "numFmtId" {
							id, _ = strconv.Atoi(a.Value)
						}
					}
					xfIDs = append(xfIDs, id)
				}
			}
		case xml.EndElement:
			if t.Name.Local == "cellXfs" {
				inCellXfs = false
			}
		}
	}
	formats := make([]numFormat, len(xfIDs))
	for i, id := range xfIDs {
		if f, ok := custom[id]; ok {
			formats[i] = f
		} else {
			formats[i] = numFormat{kind: builtinKinds[id]}
		}
	}
	return formats, nil
}

// zeroPad returns the width of a zero-padded integer format: a code whose
// first section is only zeros, at least two ("000000" shows 123 as
// 000123), as suppliers format SKU, barcode and postcode columns. 0 for
// any other code.
func zeroPad(code string) uint8 {
	first, _, _ := strings.Cut(code, ";")
	if len(first) < 2 || len(first) > maxPad || strings.Trim(first, "0") != "" {
		return 0
	}
	return uint8(len(first))
}

// formatKind classifies a number format code: the first section, without
// its quoted text, escaped and padding characters and [bracketed] parts
// (colours, locales, conditions; but [h] [m] [s] elapsed time counts), shows
// a date when it has y, d or a month m, and a time when it has h or s
// (then m means minutes).
func formatKind(code string) numKind {
	var b strings.Builder
	for i := 0; i < len(code); i++ {
		c := code[i]
		switch c {
		case ';':
			i = len(code) // first section only
		case '"':
			if j := strings.IndexByte(code[i+1:], '"'); j >= 0 {
				i += j + 1
			} else {
				i = len(code)
			}
		case '\\', '_', '*':
			i++ // the next character is literal, padding or fill
		case '[':
			j := strings.IndexByte(code[i:], ']')
			if j < 0 {
				i = len(code)
				break
			}
			inner := strings.ToLower(code[i+1 : i+j])
			if inner != "" && strings.Trim(inner, "hms") == "" {
				b.WriteString(inner) // elapsed time: [h]:mm:ss
			}
			i += j
		default:
			b.WriteByte(c)
		}
	}
	s := strings.ToLower(b.String())
	s = strings.ReplaceAll(s, "general", "")
	s = strings.ReplaceAll(s, "am/pm", "h")
	s = strings.ReplaceAll(s, "a/p", "h")
	hasTime := strings.ContainsAny(s, "hs")
	hasDate := strings.ContainsAny(s, "yd") || (!hasTime && strings.Contains(s, "m"))
	switch {
	case hasDate && hasTime:
		return numDateTime
	case hasDate:
		return numDate
	case hasTime:
		return numTime
	}
	return numPlain
}
