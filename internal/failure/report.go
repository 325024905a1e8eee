package failure

import (
	"encoding/csv"
	"io"
	"strconv"
	"strings"
)

// Neutralize makes a cell safe to open in a spreadsheet: a cell starting with
// = + - @ tab, CR or NUL is prefixed with a single quote so it is shown as
// text, never evaluated as a formula (OWASP CSV injection).
func Neutralize(cell string) string {
	if cell == "" {
		return cell
	}
	switch cell[0] {
	case '=', '+', '-', '@', '\t', '\r', 0:
		return "'" + cell
	}
	return cell
}

// ReportWriter writes the error report of a batch: one CSV line per failed
// row with its position, reason, field and message, followed by the row's
// original cells under the file's own header (or the raw line when the file
// has no header or the row could not be split). Every cell is neutralized.
type ReportWriter struct {
	w      *csv.Writer
	header []string
	sheets bool
	line   []string
}

// NewReportWriter writes the report's header line. header is the source
// file's header (nil for JSON Lines); sheets adds a sheet column.
func NewReportWriter(w io.Writer, header []string, sheets bool) (*ReportWriter, error) {
	rw := &ReportWriter{w: csv.NewWriter(w), header: header, sheets: sheets}
	cols := []string{"row", "reason", "layer", "field", "message"}
	if sheets {
		cols = append([]string{"sheet"}, cols...)
	}
	if header == nil {
		cols = append(cols, "raw_line")
	} else {
		cols = append(cols, header...)
	}
	return rw, rw.write(cols)
}

// Write adds one failure record.
func (rw *ReportWriter) Write(r Record) error {
	line := rw.line[:0]
	if rw.sheets {
		line = append(line, r.Sheet)
	}
	line = append(line, strconv.FormatInt(r.Row, 10), string(r.Reason), string(r.Layer), r.Field, r.Message)
	switch {
	case rw.header == nil:
		line = append(line, r.RawLine)
	case len(r.Cells) > 0:
		line = append(line, r.Cells...)
	default: // the row could not be split: keep the raw text in the first cell
		line = append(line, strings.TrimRight(r.RawLine, "\r\n"))
	}
	rw.line = line
	return rw.write(line)
}

func (rw *ReportWriter) write(cells []string) error {
	for i, c := range cells {
		cells[i] = Neutralize(c)
	}
	return rw.w.Write(cells)
}

// Flush writes buffered lines and returns the first error.
func (rw *ReportWriter) Flush() error {
	rw.w.Flush()
	return rw.w.Error()
}
