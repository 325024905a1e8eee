package sqlite

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/catalog-import/catalog-import/internal/catalog"
)

// This file is the format of products.meta (schema 7): everything the
// catalog keeps of a SKU besides its values, in one column, so that a
// product is 11 bound values instead of 19 (decision 28). It is a JSON
// array, readable and queryable with SQLite's JSON functions (the table's
// virtual columns batch_id, source_row, ... are json_extract of it):
//
//	[batch_id, source_row, source_sheet, source_sheet_index, source_offset,
//	 source_length, stamps, displaced, holders]
//
// stamps is catalog.EncodeStamps' text; displaced (the rows of the batch
// this product displaced) and holders (catalog.EncodeHolders) are JSON
// arrays or null.

// metaFields is the number of elements of a meta array.
const metaFields = 9

// appendMeta appends the meta text of st (st.Holders[0] is the provenance).
func appendMeta(b []byte, st *catalog.State) ([]byte, error) {
	h := &st.Holders[0]
	b = append(b, '[')
	b = appendJSONString(b, h.BatchID)
	b = append(b, ',')
	b = strconv.AppendInt(b, h.Source.Row, 10)
	b = append(b, ',')
	b = appendJSONString(b, h.Source.Sheet)
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(h.Source.SheetIndex), 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, h.Offset, 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, h.Length, 10)
	b = append(b, ',')
	b = append(b, '"')
	b = catalog.AppendStamps(b, st) // nothing to escape in it
	b = append(b, '"')
	b = append(b, ',')
	if len(h.Displaced) > 0 {
		ds := make([]displacedRow, len(h.Displaced))
		for j, d := range h.Displaced {
			ds[j] = displacedRow{Sheet: d.Source.Sheet, SheetIndex: d.Source.SheetIndex, Row: d.Source.Row, Offset: d.Offset, Length: d.Length}
		}
		j, err := json.Marshal(ds)
		if err != nil {
			return b, err
		}
		b = append(b, j...)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, ',')
	if len(st.Holders) > 1 {
		s, err := catalog.EncodeHolders(st.Holders[1:])
		if err != nil {
			return b, err
		}
		b = append(b, s...)
	} else {
		b = append(b, "null"...)
	}
	return append(b, ']'), nil
}

// displacedRow is how a displaced row is kept in meta's displaced list.
type displacedRow struct {
	Sheet      string `json:"sheet"`
	SheetIndex int    `json:"sheet_index"`
	Row        int64  `json:"row"`
	Offset     int64  `json:"offset"`
	Length     int64  `json:"length"`
}

// parseMeta reads the meta text of SKU sku into st: its stamps, existence
// and holders (the provenance first).
func parseMeta(sku, s string, st *catalog.State) error {
	m := metaReader{s: s}
	var (
		h            catalog.Holder
		stamps       string
		disp, others string
		index        int64
	)
	m.open()
	h.BatchID = m.str()
	h.Source.Row = m.int()
	h.Source.Sheet = m.str()
	index = m.int()
	h.Offset = m.int()
	h.Length = m.int()
	stamps = m.str()
	disp = m.rawValue()
	others = m.rawValue()
	m.close()
	if m.err != nil {
		return fmt.Errorf("product %s: meta %.60q: %w", sku, s, m.err)
	}
	h.Source.SheetIndex = int(index)
	var err error
	if st.Stamps, st.Exists, h.Order, err = catalog.DecodeStamps(stamps); err != nil {
		return fmt.Errorf("product %s: %w", sku, err)
	}
	if disp != "null" {
		var ds []displacedRow
		if err := json.Unmarshal([]byte(disp), &ds); err != nil {
			return fmt.Errorf("product %s: displaced rows: %w", sku, err)
		}
		for _, d := range ds {
			h.Displaced = append(h.Displaced, catalog.Product{SKU: sku, BatchID: h.BatchID,
				Source: catalog.Position{SheetIndex: d.SheetIndex, Sheet: d.Sheet, Row: d.Row}, Offset: d.Offset, Length: d.Length})
		}
	}
	if others == "null" {
		others = ""
	}
	more, err := catalog.DecodeHolders(sku, others)
	if err != nil {
		return err
	}
	st.Holders = append([]catalog.Holder{h}, more...)
	return nil
}

// metaReader reads the elements of a meta array in turn; the first error
// sticks.
type metaReader struct {
	s   string
	i   int
	n   int // elements read
	err error
}

func (m *metaReader) fail(format string, args ...any) {
	if m.err == nil {
		m.err = fmt.Errorf("at byte %d: "+format, append([]any{m.i}, args...)...)
	}
}

func (m *metaReader) open() {
	if !strings.HasPrefix(m.s, "[") {
		m.fail("not a JSON array")
		return
	}
	m.i = 1
}

// next moves past the separator before an element.
func (m *metaReader) next() bool {
	if m.err != nil {
		return false
	}
	if m.n > 0 {
		if m.i >= len(m.s) || m.s[m.i] != ',' {
			m.fail("want %d elements", metaFields)
			return false
		}
		m.i++
	}
	m.n++
	return true
}

func (m *metaReader) str() string {
	if !m.next() {
		return ""
	}
	if m.i >= len(m.s) || m.s[m.i] != '"' {
		m.fail("want a string")
		return ""
	}
	start := m.i
	esc := false
	for m.i++; m.i < len(m.s); m.i++ {
		switch m.s[m.i] {
		case '\\':
			esc = true
			m.i++
		case '"':
			m.i++
			if !esc {
				return m.s[start+1 : m.i-1]
			}
			var v string
			if err := json.Unmarshal([]byte(m.s[start:m.i]), &v); err != nil {
				m.fail("%v", err)
			}
			return v
		}
	}
	m.fail("unterminated string")
	return ""
}

func (m *metaReader) int() int64 {
	if !m.next() {
		return 0
	}
	end := m.i
	for end < len(m.s) && (m.s[end] == '-' || m.s[end] >= '0' && m.s[end] <= '9') {
		end++
	}
	v, err := strconv.ParseInt(m.s[m.i:end], 10, 64)
	if err != nil {
		m.fail("want an integer")
	}
	m.i = end
	return v
}

// rawValue returns the text of a JSON value (null, or an array).
func (m *metaReader) rawValue() string {
	if !m.next() {
		return ""
	}
	if strings.HasPrefix(m.s[m.i:], "null") {
		m.i += 4
		return "null"
	}
	d := json.NewDecoder(strings.NewReader(m.s[m.i:]))
	var v json.RawMessage
	if err := d.Decode(&v); err != nil {
		m.fail("%v", err)
		return ""
	}
	m.i += int(d.InputOffset())
	return string(v)
}

func (m *metaReader) close() {
	if m.err == nil && (m.n != metaFields || m.s[m.i:] != "]") {
		m.fail("want %d elements and the end of the array", metaFields)
	}
}
