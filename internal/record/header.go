package record

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/catalog-import/catalog-import/internal/failure"
)

// Header reads the header record at the start of the file for csv/tsv. r
// must read the object from offset 0 (the BOM, if any, is skipped). The
// cells are decoded, with surrounding spaces trimmed; empty cells at the end
// of the header (Excel's trailing delimiters) are dropped. Blank records
// before the header are skipped (they still use row numbers). It returns the
// offset and row number of the first data record.
//
// JSONL has no header: Header returns nil cells, offset d.BOM and row 1
// without reading r.
//
// A header that is missing, too large, undecodable or malformed is a
// *failure.ImportError with reason SchemaMismatch. Read errors are returned
// as they are (wrapped).
func Header(r io.Reader, d Dialect, maxRecord int) (cells []string, dataStart int64, firstRow int64, err error) {
	if err := d.Validate(); err != nil {
		return nil, 0, 0, err
	}
	if d.Format == JSONL {
		return nil, int64(d.BOM), 1, nil
	}
	if d.BOM > 0 {
		if _, err := io.CopyN(io.Discard, r, int64(d.BOM)); err != nil {
			if errors.Is(err, io.EOF) {
				return nil, 0, 0, failure.New(failure.SchemaMismatch, "", "file is empty")
			}
			return nil, 0, 0, fmt.Errorf("record: reading the header: %w", err)
		}
	}
	s := NewScanner(r, d, int64(d.BOM), 1, maxRecord)
	for s.Next() {
		raw := s.Raw()
		if raw.Blank {
			continue
		}
		if raw.TooLarge {
			return nil, 0, 0, failure.New(failure.SchemaMismatch, "",
				"header (row %d) is larger than %d bytes", raw.Row, s.max)
		}
		row := NewParser(d, nil).Parse(raw)
		if row.Err != nil {
			msg := row.Err.Error()
			if ie, ok := failure.As(row.Err); ok {
				msg = ie.Message
			}
			return nil, 0, 0, failure.Wrap(failure.SchemaMismatch, "", row.Err, fmt.Sprintf("header (row %d) cannot be read: %s", raw.Row, msg))
		}
		cells = make([]string, len(row.Cells))
		for i, c := range row.Cells {
			cells[i] = strings.TrimSpace(c)
		}
		for len(cells) > 0 && cells[len(cells)-1] == "" {
			cells = cells[:len(cells)-1]
		}
		if len(cells) == 0 {
			return nil, 0, 0, failure.New(failure.SchemaMismatch, "", "header (row %d) has no column names", raw.Row)
		}
		return cells, s.Offset(), s.Row(), nil
	}
	if err := s.Err(); err != nil {
		return nil, 0, 0, fmt.Errorf("record: reading the header: %w", err)
	}
	return nil, 0, 0, failure.New(failure.SchemaMismatch, "", "file has no header row")
}
