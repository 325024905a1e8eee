package record

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"unicode/utf8"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/text"
)

// Row is a parsed record.
type Row struct {
	Num    int64 // row number (Raw.Row)
	Offset int64 // byte offset of the record in the object
	Length int64 // End - Offset: the record's size with its terminator
	// Names are the column names: csv/tsv: the header (shared between rows;
	// never modify it); jsonl: the object's keys in order.
	Names []string
	// Values are the cells aligned with Names, decoded to UTF-8, not trimmed.
	Values []string
	// Cells are the cells as they were in the file, in file order: csv/tsv:
	// Values plus any extra (empty) cells; jsonl: the values in key order.
	Cells []string
	// Text is the whole record decoded to UTF-8 (bytes that do not decode are
	// replaced by U+FFFD): the raw_line of a failure record.
	Text string
	// Err is nil or a *failure.ImportError: of the syntax layer
	// (MalformedRow, SchemaMismatch, InvalidEncoding, RowTooLarge), or
	// InvalidValue for a cell holding a control character (C0 other than
	// tab, CR, LF), wherever the row is in the file. Names, Values and Cells
	// may then be partial or empty.
	Err error
}

// Parser turns Raw records into Rows. It reuses its buffers and decoders
// from row to row, so it is not safe for concurrent use: use one Parser per
// goroutine. The Rows it returns share nothing mutable with the Parser.
type Parser struct {
	d     Dialect
	err   error
	delim byte
	names []string
	dec   *decoder

	spans   []cellSpan
	slab    []string
	scratch []byte

	// jsonl scratch
	keys   []string
	vals   []string
	jspans []int
	seen   map[string]struct{}
}

// cellSpan is where a csv/tsv cell is in a decoded record.
type cellSpan struct {
	start, end int  // the cell's extent, quotes included (up to its delimiter)
	vs, ve     int  // the value's bytes (inside the quotes of a quoted cell)
	esc        bool // the value needs unescaping ("" in quotes, or malformed)
}

// Kinds of malformed csv/tsv records.
const (
	malformedNone = iota
	malformedAfterQuote
	malformedUnbalanced
)

// NewParser returns a Parser for records of dialect d. header is the
// decoded header (from Header) that csv/tsv rows are checked against; with
// a nil header the field count is not checked and Names is nil. It is not
// used for jsonl.
func NewParser(d Dialect, header []string) *Parser {
	p := &Parser{d: d, delim: d.delim(), names: header, err: d.Validate()}
	p.dec = newDecoder(d.Encoding)
	return p
}

// Parse splits and decodes one record. Blank records are not rows: callers
// skip them before parsing (a blank record parses as a row of empty cells).
func (p *Parser) Parse(raw Raw) Row {
	row := Row{Num: raw.Row, Offset: raw.Offset, Length: raw.End - raw.Offset}
	if p.err != nil {
		row.Text = string(bytes.ToValidUTF8(raw.Bytes, replacement))
		row.Err = failure.Wrap(failure.Internal, "", p.err, "")
		return row
	}
	if raw.TooLarge {
		b := raw.Bytes
		if p.d.Encoding == UTF8 {
			b = trimCutRune(b)
		}
		text, _ := p.dec.decode(b)
		row.Text = string(text)
		if raw.limit > 0 {
			row.Err = failure.New(failure.RowTooLarge, "", "row is %d bytes, over the limit of %d bytes", row.Length, raw.limit)
		} else {
			row.Err = failure.New(failure.RowTooLarge, "", "row is %d bytes, over the size limit", row.Length)
		}
		return row
	}
	text, bad := p.dec.decode(raw.Bytes)
	// A UTF-8 row in a GB18030 file (decision 21): read it as the UTF-8 it
	// is, for the failure record, and fail it InvalidEncoding below.
	mixed := p.d.Encoding == GB18030 && utf8Row(raw.Bytes)
	if mixed {
		text, bad = raw.Bytes, -1
	}
	if p.d.Format == JSONL {
		p.parseJSON(&row, text, bad)
		if mixed {
			row.Err = p.mixedError(raw.Bytes, "", "the line")
		}
		if row.Err == nil {
			for i, c := range row.Cells {
				if k := controlIndex(c); k >= 0 {
					name := ""
					if i < len(row.Names) {
						name = row.Names[i]
					}
					row.Err = controlError(name, fmt.Sprintf("key %q", name), c[k])
					break
				}
			}
		}
		return row
	}

	var kind, at int
	p.spans, kind, at = splitCells(p.spans[:0], text, p.delim)
	row.Text = string(text)
	cells := p.alloc(len(p.spans))
	for i := range p.spans {
		c := &p.spans[i]
		if c.esc {
			cells[i] = p.unescape(text[c.vs:c.ve])
		} else {
			cells[i] = row.Text[c.vs:c.ve]
		}
	}
	row.Cells = cells
	switch {
	case mixed:
		i := p.spanAt(utf8Lead(text))
		c := p.spans[i]
		row.Err = p.mixedError(raw.Bytes[c.vs:c.ve], p.field(i), p.column(i))
	case bad >= 0:
		i := p.spanAt(bad)
		row.Err = failure.New(failure.InvalidEncoding, p.field(i), "bytes that are not valid %s in %s", p.d.Encoding, p.column(i))
	case kind == malformedAfterQuote:
		row.Err = failure.New(failure.MalformedRow, p.field(at), "unexpected text after the closing quote in %s", p.column(at))
	case raw.Unclosed:
		// The scanner ended the record at the end of the quote's line: the
		// open quote is in the last cell (its bytes reach the record's end).
		at := len(p.spans) - 1
		row.Err = failure.New(failure.MalformedRow, p.field(at),
			"unbalanced quote in %s: the quoted cell does not close within %d lines and %d bytes (max_quoted_lines, max_quoted_bytes); reading resumes at the next line",
			p.column(at), raw.quoteLines, raw.quoteBytes)
	case kind == malformedUnbalanced:
		row.Err = failure.New(failure.MalformedRow, p.field(at), "unbalanced quote in %s", p.column(at))
	default:
		if k := controlIndexBytes(text); k >= 0 {
			i := p.spanAt(k)
			row.Err = controlError(p.field(i), p.column(i), text[k])
		}
	}

	n, m := len(cells), len(p.names)
	switch {
	case p.names == nil:
		row.Values = cells
	case n == m:
		row.Names, row.Values = p.names, cells
	case n > m:
		row.Names, row.Values = p.names, cells[:m:m]
		if row.Err == nil {
			for i := m; i < n; i++ {
				if cells[i] != "" {
					row.Err = failure.New(failure.SchemaMismatch, "", "row has %d cells, header has %d (cell %d is not empty)", n, m, i+1)
					break
				}
			}
		}
	default:
		row.Names, row.Values = p.names[:n:n], cells
		if row.Err == nil {
			row.Err = failure.New(failure.SchemaMismatch, "", "row has %d cells, header has %d", n, m)
		}
	}
	return row
}

// utf8Row reports whether b, a record of a GB18030 file, is really UTF-8
// text: valid UTF-8 holding at least one 3- or 4-byte sequence (Chinese in
// UTF-8 is 3 bytes a character). GBK text is almost never valid UTF-8 with
// such a sequence: GB2312 characters would have to chain lead and trail
// bytes into UTF-8 shapes over several characters in a row.
func utf8Row(b []byte) bool {
	return utf8Lead(b) >= 0 && utf8.Valid(b)
}

// utf8Lead returns the index of the first byte of b that can start a 3- or
// 4-byte UTF-8 sequence, or -1.
func utf8Lead(b []byte) int {
	for i, c := range b {
		if c >= 0xE0 {
			return i
		}
	}
	return -1
}

// mixedError is the InvalidEncoding of a UTF-8 row in a GB18030 file; cell
// is the UTF-8 bytes of the first cell that shows it (where names it).
func (p *Parser) mixedError(cell []byte, field, where string) error {
	want := string(cell)
	got, _ := p.dec.decode(cell)
	return failure.New(failure.InvalidEncoding, field,
		"%s is UTF-8 but the file is %s: read as %s, %q would be %q; save the whole file in one encoding (CSV UTF-8)",
		where, p.d.Encoding, p.d.Encoding, want, string(got))
}

// controlIndex returns the index of the first control character of s that
// text does not hold (C0 codes other than tab, LF and CR), or -1. UTF-8
// multi-byte sequences never hold bytes below 0x80, so a byte scan is exact.
func controlIndex[T string | []byte](s T) int {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
			return i
		}
	}
	return -1
}

// controlIndexBytes is controlIndex of a row's text, eight bytes at a
// time: a word with no byte below 0x20 (the usual "has a byte less than n"
// test) is skipped; a word with one, which may be a tab, CR or LF, is
// looked at byte by byte. Measured: 30 ns for a 228-byte row against the
// byte loop's 105 ns.
func controlIndexBytes(s []byte) int {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		if !text.HasLess(binary.LittleEndian.Uint64(s[i:]), 0x20) {
			continue
		}
		if k := controlIndex(s[i : i+8]); k >= 0 {
			return i + k
		}
	}
	if k := controlIndex(s[i:]); k >= 0 {
		return i + k
	}
	return -1
}

// controlError is the InvalidValue of a control character c in a cell
// (decision 21: the same wherever it is in the file; never stored).
func controlError(field, where string, c byte) error {
	return failure.New(failure.InvalidValue, field, "control character U+%04X in %s: cells may not hold control characters other than tab, CR and LF", c, where)
}

// splitCells appends the cells of a decoded csv/tsv record to sp and
// reports the first malformation and the cell it is in.
func splitCells(sp []cellSpan, t []byte, delim byte) (_ []cellSpan, kind, at int) {
	n, i := len(t), 0
	at = -1
	for {
		c := cellSpan{start: i}
		if i < n && t[i] == '"' {
			c.vs = i + 1
			j := i + 1
			for {
				k := bytes.IndexByte(t[j:], '"')
				if k < 0 {
					c.ve, c.end, c.esc = n, n, true
					if kind == malformedNone {
						kind, at = malformedUnbalanced, len(sp)
					}
					sp = append(sp, c)
					return sp, kind, at
				}
				q := j + k
				if q+1 < n && t[q+1] == '"' {
					c.esc = true
					j = q + 2
					continue
				}
				if q+1 == n {
					c.ve, c.end = q, n
					sp = append(sp, c)
					return sp, kind, at
				}
				if t[q+1] == delim {
					c.ve, c.end = q, q+1
					sp = append(sp, c)
					i = q + 2
					break
				}
				// Text after the closing quote: keep it in the value, as
				// encoding/csv's LazyQuotes would, up to the next delimiter.
				if kind == malformedNone {
					kind, at = malformedAfterQuote, len(sp)
				}
				c.esc = true
				d := bytes.IndexByte(t[q+1:], delim)
				if d < 0 {
					c.ve, c.end = n, n
					sp = append(sp, c)
					return sp, kind, at
				}
				c.ve = q + 1 + d
				c.end = c.ve
				sp = append(sp, c)
				i = c.ve + 1
				break
			}
			continue
		}
		k := bytes.IndexByte(t[i:], delim)
		if k < 0 {
			c.vs, c.ve, c.end = i, n, n
			sp = append(sp, c)
			return sp, kind, at
		}
		c.vs, c.ve, c.end = i, i+k, i+k
		sp = append(sp, c)
		i += k + 1
	}
}

// unescape returns a quoted cell's value with "" turned into ". Every
// other byte is kept as it is: a CRLF inside quotes stays CRLF (the cell's
// bytes, as the csv-spectrum corpus expects; encoding/csv would turn it into
// LF).
func (p *Parser) unescape(v []byte) string {
	out := p.scratch[:0]
	for {
		i := bytes.IndexByte(v, '"')
		if i < 0 {
			break
		}
		out = append(out, v[:i+1]...)
		if i+1 < len(v) && v[i+1] == '"' {
			i++
		}
		v = v[i+1:]
	}
	out = append(out, v...)
	p.scratch = out
	return string(out)
}

// spanAt returns the index of the cell whose extent holds text index x.
func (p *Parser) spanAt(x int) int {
	for i := len(p.spans) - 1; i > 0; i-- {
		if p.spans[i].start <= x {
			return i
		}
	}
	return 0
}

// field returns the header name of cell i, or "".
func (p *Parser) field(i int) string {
	if i >= 0 && i < len(p.names) {
		return p.names[i]
	}
	return ""
}

// column describes cell i for messages: `column "price" (cell 5)`.
func (p *Parser) column(i int) string {
	if f := p.field(i); f != "" {
		return fmt.Sprintf("column %q (cell %d)", f, i+1)
	}
	return fmt.Sprintf("cell %d", i+1)
}

// alloc returns a slice of n strings carved from a shared slab, so that a
// row costs one allocation every few hundred cells rather than one per row.
func (p *Parser) alloc(n int) []string {
	if n > len(p.slab) {
		if n > 128 {
			return make([]string, n)
		}
		p.slab = make([]string, 1024)
	}
	s := p.slab[:n:n]
	p.slab = p.slab[n:]
	return s
}

// trimCutRune drops an incomplete UTF-8 sequence at the end of b (a prefix
// cut at an arbitrary byte).
func trimCutRune(b []byte) []byte {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return b[:i]
			}
			break
		}
	}
	return b
}
