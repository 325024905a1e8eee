package lineage

// This file writes the round-trip fix file of a batch: only its failed
// rows, with their original cells in the original column order, delimiter
// and encoding, plus trailing columns naming the source row, the error and
// the batch (so that importing the file marks those failures resolved), so
// that a merchant opens it in Excel, fixes the cells and imports the file
// again (the trailing columns are not mapped by any profile and are ignored
// on import).
//
// Cells are written as they were, not neutralised like the error report's:
// the file exists to be imported again, and a neutralised cell (a leading ')
// would import changed. Only the _error column, which is our text, is
// neutralised.

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
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

// FixWriter writes the fix file of one batch.
type FixWriter struct {
	out   io.Writer
	close func() error
	csv   *csv.Writer // nil for JSON Lines
	width int         // header cells
	sheet bool        // a workbook: the _source_sheet column
	line  []string
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
	fw.csv = csv.NewWriter(tw)
	fw.csv.UseCRLF = true
	if d := []rune(layout.Delimiter); len(d) == 1 {
		fw.csv.Comma = d[0]
	}
	fw.width, fw.sheet = len(layout.Header), layout.Format == "xlsx"
	header := append([]string{}, layout.Header...)
	if fw.sheet {
		header = append(header, ColSourceSheet)
	}
	header = append(header, ColSourceRow, ColError, ColBatch)
	return fw, fw.csv.Write(header)
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
// (a malformed line) keeps its raw text in the first cell.
func (w *FixWriter) Write(r failure.Record) error {
	if w.csv == nil {
		return w.writeJSON(r)
	}
	line := w.line[:0]
	if len(r.Cells) > 0 {
		line = append(line, r.Cells...)
	} else {
		line = append(line, strings.TrimRight(r.RawLine, "\r\n"))
	}
	for len(line) < w.width { // short (ragged) rows: pad to the header
		line = append(line, "")
	}
	if w.sheet {
		line = append(line, r.Sheet)
	}
	line = append(line, strconv.FormatInt(r.Row, 10), errorText(r), r.BatchID)
	w.line = line
	return w.csv.Write(line)
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
func (w *FixWriter) Close() error {
	if w.csv != nil {
		w.csv.Flush()
		if err := w.csv.Error(); err != nil {
			return err
		}
	}
	return w.close()
}
