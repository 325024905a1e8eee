package sqlite

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/catalog-import/catalog-import/internal/catalog"
)

// This file is the format of products.meta (schema 7): everything the
// catalog keeps of a SKU besides its values, in one column, so that a
// product is 11 bound values instead of 19 (decision 28). It is a JSON
// array, readable and queryable with SQLite's JSON functions (the view
// products_view shows its parts as columns):
//
//	[batch_id, source_row, source_offset, source_length, stamps,
//	 source_sheet, source_sheet_index, displaced, holders]
//
// stamps is catalog.EncodeStamps' text, or just the provenance order (an
// integer) for the stamps of a product its provenance batch created with
// every field (every field and the creation at that order, no tombstone:
// most products). displaced (the rows of the batch this product displaced)
// and holders (catalog.EncodeHolders) are JSON arrays or null. Trailing
// elements that hold their defaults ("", 0, null) are left out: a product
// of a CSV file is ["b-…",2,76,287,1,"-"], about 40 bytes.

// metaRequired and metaFields are the fewest and the most elements of a
// meta array.
const (
	metaRequired = 5
	metaFields   = 9
)

// appendMeta appends the meta text of st (st.Holders[0] is the provenance).
func appendMeta(b []byte, st *catalog.State) ([]byte, error) {
	return appendMetaOf(b, st, nil)
}

// batchText caches the JSON text of the last batch id appendMetaOf wrote:
// the products of a call are almost always of one batch.
type batchText struct {
	id   string
	text []byte
}

// appendMetaOf is appendMeta with a cache of the batch id's text (nil:
// none).
func appendMetaOf(b []byte, st *catalog.State, bt *batchText) ([]byte, error) {
	h := &st.Holders[0]
	b = append(b, '[')
	switch {
	case bt == nil:
		b = appendJSONString(b, h.BatchID)
	case bt.text != nil && bt.id == h.BatchID:
		b = append(b, bt.text...)
	default:
		start := len(b)
		b = appendJSONString(b, h.BatchID)
		bt.id, bt.text = h.BatchID, append(bt.text[:0], b[start:]...)
	}
	b = append(b, ',')
	b = strconv.AppendInt(b, h.Source.Row, 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, h.Offset, 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, h.Length, 10)
	b = append(b, ',')
	if canonicalStamps(st) {
		b = strconv.AppendInt(b, h.Order, 10)
	} else {
		b = append(b, '"')
		b = catalog.AppendStamps(b, st) // nothing to escape in it
		b = append(b, '"')
	}
	var disp, more []byte
	if len(h.Displaced) > 0 {
		ds := make([]displacedRow, len(h.Displaced))
		for j, d := range h.Displaced {
			ds[j] = displacedRow{Sheet: d.Source.Sheet, SheetIndex: d.Source.SheetIndex, Row: d.Source.Row, Offset: d.Offset, Length: d.Length}
		}
		var err error
		if disp, err = json.Marshal(ds); err != nil {
			return b, err
		}
	}
	if len(st.Holders) > 1 {
		s, err := catalog.EncodeHolders(st.Holders[1:])
		if err != nil {
			return b, err
		}
		more = []byte(s)
	}
	// The optional tail, up to its last element that is not a default.
	switch {
	case more != nil:
		b = appendTail(b, h, disp, more, 4)
	case disp != nil:
		b = appendTail(b, h, disp, nil, 3)
	case h.Source.SheetIndex != 0:
		b = appendTail(b, h, nil, nil, 2)
	case h.Source.Sheet != "":
		b = appendTail(b, h, nil, nil, 1)
	}
	return append(b, ']'), nil
}

// appendTail appends the first n of source_sheet, source_sheet_index,
// displaced and holders.
func appendTail(b []byte, h *catalog.Holder, disp, more []byte, n int) []byte {
	b = append(b, ',')
	b = appendJSONString(b, h.Source.Sheet)
	if n > 1 {
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(h.Source.SheetIndex), 10)
	}
	for _, v := range [][]byte{disp, more}[:max(n-2, 0)] {
		b = append(b, ',')
		if v == nil {
			v = []byte("null")
		}
		b = append(b, v...)
	}
	return b
}

// canonicalStamps reports whether st's stamps are those of a product its
// provenance batch created with every field: every field and the creation
// at the provenance order, no tombstone.
func canonicalStamps(st *catalog.State) bool {
	o := st.Holders[0].Order
	if !st.Exists || st.Stamps.Created != o || st.Stamps.Tombstone != 0 {
		return false
	}
	for _, f := range st.Stamps.Fields {
		if f != o {
			return false
		}
	}
	return true
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
		order        int64
		canonical    bool
		disp, others = "null", "null"
		index        int64
	)
	m.open()
	h.BatchID = m.str()
	h.Source.Row = m.int()
	h.Offset = m.int()
	h.Length = m.int()
	if m.more() && m.i+1 < len(m.s) && m.s[m.i+1] == '"' {
		stamps = m.str()
	} else {
		order, canonical = m.int(), true
	}
	if m.more() {
		h.Source.Sheet = m.str()
	}
	if m.more() {
		index = m.int()
	}
	if m.more() {
		disp = m.rawValue()
	}
	if m.more() {
		others = m.rawValue()
	}
	m.close()
	if m.err != nil {
		return fmt.Errorf("product %s: meta %.60q: %w", sku, s, m.err)
	}
	h.Source.SheetIndex = int(index)
	if canonical {
		h.Order, st.Exists = order, true
		st.Stamps = catalog.FieldStamps{Created: order}
		for f := range st.Stamps.Fields {
			st.Stamps.Fields[f] = order
		}
	} else {
		var err error
		if st.Stamps, st.Exists, h.Order, err = catalog.DecodeStamps(stamps); err != nil {
			return fmt.Errorf("product %s: %w", sku, err)
		}
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
			m.fail("want at least %d elements", metaRequired)
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
			v, ok := unescapeJSON(m.s[start+1 : m.i-1])
			if !ok {
				m.fail("bad escape in a string")
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

// unescapeJSON returns the JSON string body s unescaped. Unlike
// encoding/json it keeps bytes that are not UTF-8 as they are, as
// appendJSONString wrote them.
func unescapeJSON(s string) (string, bool) {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b = append(b, c)
			continue
		}
		if i++; i >= len(s) {
			return "", false
		}
		switch c = s[i]; c {
		case '"', '\\', '/':
			b = append(b, c)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, ok := hex4(s, i+1)
			if !ok {
				return "", false
			}
			i += 4
			if utf16.IsSurrogate(r) {
				if r2, ok := hex4(s, i+3); ok && i+2 < len(s) && s[i+1] == '\\' && s[i+2] == 'u' {
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						r, i = d, i+6
					}
				}
			}
			b = utf8.AppendRune(b, r)
		default:
			return "", false
		}
	}
	return string(b), true
}

// hex4 reads the 4 hex digits of a \u escape at s[i:].
func hex4(s string, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	n, err := strconv.ParseUint(s[i:i+4], 16, 16)
	return rune(n), err == nil
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

// more reports whether another element follows.
func (m *metaReader) more() bool {
	return m.err == nil && m.i < len(m.s) && m.s[m.i] == ','
}

func (m *metaReader) close() {
	if m.err == nil && (m.n < metaRequired || m.n > metaFields || m.s[m.i:] != "]") {
		m.fail("want %d to %d elements and the end of the array", metaRequired, metaFields)
	}
}
