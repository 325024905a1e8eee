package lineage

// This file writes the round-trip fix file of a batch: only its failed
// rows, with their original cells in the original column order, delimiter
// and encoding, plus trailing columns naming the marked cells, the source
// row, the error and the batch (so that importing the file marks those
// failures resolved), so that a merchant opens it in Excel, fixes the cells
// and imports the file again (the trailing columns are not mapped by any
// profile and are ignored on import).
//
// A csv/tsv fix file marks formula cells (mark.go): the header's names and
// the row's cells that start with = + - @ tab or CR get a leading
// apostrophe, so that Excel shows them as text, and the import of a file
// with the ColMarked column removes exactly those marks, so the round trip
// gives every cell back byte for byte. Line breaks inside cells are kept as
// they are (LF stays LF, CRLF stays CRLF); records end with CRLF. A JSON
// Lines fix file keeps each object as it was: no spreadsheet opens it.

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/state"
)

// Trailing column names added after the file's own header.
const (
	ColSourceSheet = "_source_sheet" // the sheet (workbooks only)
	ColSourceRow   = "_source_row"   // the row number in the original file
	ColError       = "_error"        // reason: message (field)
	ColBatch       = "_batch"        // the batch the row failed in (its parent, when imported again)
)

// linkColumns are the trailing columns a fix file adds: a fix file of a
// fix file's failures drops its source's own and adds them again.
var linkColumns = []string{ColMarked, ColSourceSheet, ColSourceRow, ColError, ColBatch}

// FixWriter writes the fix file of one batch.
type FixWriter struct {
	out   io.Writer
	close func() error
	csv   *csv.Writer // nil for JSON Lines; writes one record to buf
	buf   bytes.Buffer
	names []string // the data columns' names, for the _marked cell
	keep  []int    // positions of the source's data columns (nil: all)
	// srcWidth is the source header's width (with keep: cells past it
	// follow the trailing columns).
	srcWidth int
	// unmark: the source is itself a marked fix file, whose cells are
	// unmarked before they are marked again.
	unmark bool
	sheet  bool // a workbook: the _source_sheet column
	cells  []string
	line   []string
}

// NewFixWriter starts a fix file for a batch read with layout: the header
// first (CSV/TSV), in the layout's encoding (UTF-8 files get a BOM so that
// Excel reads them as UTF-8; UTF-16 files get theirs). A workbook's fix file
// is a UTF-8 CSV with the header its sheets share and a _source_sheet
// column; a workbook whose sheets have different headers has no fix file.
func NewFixWriter(w io.Writer, layout state.Layout) (*FixWriter, error) {
	if layout.Format == "xlsx" && len(layout.Header) == 0 {
		return nil, fmt.Errorf("fix file: the workbook's sheets have different headers, so no one file holds their rows (use the csv format)")
	}
	enc, bom, err := encoder(layout.Encoding)
	if err != nil {
		return nil, err
	}
	bw := bufio.NewWriter(w)
	if _, err := bw.Write(bom); err != nil {
		return nil, err
	}
	tw := transform.NewWriter(bw, enc.NewEncoder())
	fw := &FixWriter{out: tw, close: func() error {
		if err := tw.Close(); err != nil {
			return err
		}
		return bw.Flush()
	}}
	if layout.Format == "jsonl" {
		return fw, nil
	}
	fw.csv = csv.NewWriter(&fw.buf)
	if d := []rune(layout.Delimiter); len(d) == 1 {
		fw.csv.Comma = d[0]
	}
	fw.sheet = layout.Format == "xlsx"
	fw.unmark = Marked(layout.Header)
	fw.names, fw.srcWidth = layout.Header, len(layout.Header)
	if hasColumns(layout) { // a fix file of a fix file: its own link columns go
		fw.names = nil
		for i, h := range layout.Header {
			if !slices.Contains(linkColumns, h) {
				fw.keep = append(fw.keep, i)
				fw.names = append(fw.names, h)
			}
		}
	}
	header := make([]string, 0, len(fw.names)+len(linkColumns))
	for _, h := range fw.names {
		header = append(header, Mark(h))
	}
	header = append(header, ColMarked)
	if fw.sheet {
		header = append(header, ColSourceSheet)
	}
	header = append(header, ColSourceRow, ColError, ColBatch)
	return fw, fw.writeLine(header)
}

// writeLine writes one CSV record whose cells keep their bytes: the
// encoding/csv writer's UseCRLF would turn a cell's LF into CRLF (and drop
// its lone CRs), so the record is written with LF and only its terminator
// made CRLF.
func (w *FixWriter) writeLine(cells []string) error {
	w.buf.Reset()
	if err := w.csv.Write(cells); err != nil {
		return err
	}
	w.csv.Flush()
	if err := w.csv.Error(); err != nil {
		return err
	}
	b := w.buf.Bytes()
	b = append(b[:len(b)-1], '\r', '\n') // the record's final "\n"
	_, err := w.out.Write(b)
	return err
}

func encoder(name string) (encoding.Encoding, []byte, error) {
	switch name {
	case "", "utf-8":
		return encoding.Nop, []byte{0xEF, 0xBB, 0xBF}, nil
	case "gb18030", "gbk":
		return simplifiedchinese.GB18030, nil, nil
	case "utf-16le":
		return unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM), []byte{0xFF, 0xFE}, nil
	case "utf-16be":
		return unicode.UTF16(unicode.BigEndian, unicode.IgnoreBOM), []byte{0xFE, 0xFF}, nil
	}
	return nil, nil, fmt.Errorf("fix file: unknown encoding %q", name)
}

// errorText is the _error cell of r.
func errorText(r failure.Record) string {
	s := string(r.Reason) + ": " + r.Message
	if r.Field != "" {
		s += " (" + r.Field + ")"
	}
	return failure.Neutralize(s)
}

// Write adds the failed row of r. A row that could not be split into cells
// (a malformed line) keeps its raw text in the first cell. Cells right of
// the header (a row with more cells than its header) follow the trailing
// columns, so that those stay under their names.
func (w *FixWriter) Write(r failure.Record) error {
	if w.csv == nil {
		return w.writeJSON(r)
	}
	cells := w.cells[:0]
	switch {
	case len(r.Cells) == 0:
		cells = append(cells, strings.TrimRight(r.RawLine, "\r\n"))
	case w.keep != nil:
		for _, i := range w.keep {
			if i < len(r.Cells) {
				cells = append(cells, r.Cells[i])
			}
		}
		if len(r.Cells) > w.srcWidth {
			cells = append(cells, r.Cells[w.srcWidth:]...)
		}
	default:
		cells = append(cells, r.Cells...)
	}
	w.cells = cells
	width := len(w.names)
	line := w.line[:0]
	var marked []string
	for i, c := range cells {
		if w.unmark {
			c = Unmark(c)
		}
		m := Mark(c)
		if len(m) != len(c) && i < width {
			marked = append(marked, columnName(w.names, i))
		}
		line = append(line, m)
	}
	var extra []string
	if len(line) > width && width > 0 {
		extra = append(extra, line[width:]...)
		line = line[:width]
	}
	for len(line) < width { // short (ragged) rows: pad to the header
		line = append(line, "")
	}
	line = append(line, Mark(strings.Join(marked, ", ")))
	if w.sheet {
		line = append(line, Mark(r.Sheet))
	}
	line = append(line, strconv.FormatInt(r.Row, 10), errorText(r), Mark(r.BatchID))
	line = append(line, extra...)
	w.line = line
	return w.writeLine(line)
}

// columnName names column i of header in the _marked cell: its header
// name, or "column N" when the name is empty.
func columnName(header []string, i int) string {
	if i < len(header) && strings.TrimSpace(header[i]) != "" {
		return header[i]
	}
	return "column " + strconv.Itoa(i+1)
}

// writeJSON writes the original object with the two trailing keys added;
// a line that is not an object is written as a JSON string under "_raw".
func (w *FixWriter) writeJSON(r failure.Record) error {
	raw := strings.TrimSpace(r.RawLine)
	extra, _ := json.Marshal(map[string]any{ColSourceRow: r.Row, ColError: errorText(r), ColBatch: r.BatchID})
	var line string
	if strings.HasPrefix(raw, "{") && strings.HasSuffix(raw, "}") && json.Valid([]byte(raw)) {
		body := strings.TrimSpace(raw[1 : len(raw)-1])
		if body == "" {
			line = string(extra)
		} else {
			line = "{" + body + "," + string(extra[1:])
		}
	} else {
		rawJSON, _ := json.Marshal(map[string]any{"_raw": raw})
		line = "{" + string(rawJSON[1:len(rawJSON)-1]) + "," + string(extra[1:])
	}
	_, err := io.WriteString(w.out, line+"\n")
	return err
}

// Close flushes the file.
func (w *FixWriter) Close() error { return w.close() }
