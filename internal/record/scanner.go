package record

import (
	"bytes"
	"io"
)

const (
	// DefaultMaxRecord is a sensible maximum record size for NewScanner:
	// 1 MiB, far more than any product row needs.
	DefaultMaxRecord = 1 << 20

	// defaultBufSize is the size of the scanner's reused read buffer.
	defaultBufSize = 256 << 10
	// tooLargePrefix is how much of a too-large record is kept.
	tooLargePrefix = 1 << 10
	// maxEmptyReads bounds the number of (0, nil) reads in a row.
	maxEmptyReads = 100

	// DefaultMaxQuotedLines is the default of Limits.MaxQuotedLines (the
	// profile's max_quoted_lines): a quoted cell may hold up to 1,000 line
	// breaks, far more than any real multi-line product description.
	DefaultMaxQuotedLines = 1000
	// DefaultMaxQuotedBytes is the default of Limits.MaxQuotedBytes (the
	// profile's max_quoted_bytes): 256 KiB from the opening quote to the
	// closing one.
	DefaultMaxQuotedBytes = 256 << 10
)

// Limits bound what one record may hold. Zero fields take their defaults.
//
// The quote limits are the unbalanced-quote rule (README "Limits"): a quoted
// cell whose closing quote is not within MaxQuotedLines line breaks and
// MaxQuotedBytes bytes of its opening quote, nor before the record exceeds
// MaxRecord bytes, nor before the end of the input, is unclosed. Its record
// then ends at the first line break after the opening quote (Raw.Unclosed:
// the Parser reports MalformedRow "unbalanced quote" naming the column) and
// the next record starts on the next line, so one stray quote costs one row
// instead of swallowing the rest of the file. The rule depends only on the
// bytes from the record's start, never on buffer or read sizes, so the
// splitter and a worker that use the same Limits find the same records.
type Limits struct {
	MaxRecord      int // largest record returned whole, in bytes (default DefaultMaxRecord)
	MaxQuotedLines int // line breaks a quoted cell may hold (default DefaultMaxQuotedLines)
	MaxQuotedBytes int // bytes from a cell's opening quote to its closing one (default DefaultMaxQuotedBytes)
}

// Defaults returns l with zero (or negative) fields set to their defaults.
func (l Limits) Defaults() Limits {
	if l.MaxRecord <= 0 {
		l.MaxRecord = DefaultMaxRecord
	}
	if l.MaxQuotedLines <= 0 {
		l.MaxQuotedLines = DefaultMaxQuotedLines
	}
	if l.MaxQuotedBytes <= 0 {
		l.MaxQuotedBytes = DefaultMaxQuotedBytes
	}
	return l
}

// Scanner finds records in a stream, starting at a known record boundary.
//
// It reads through one reused buffer and never holds more than
// max(256 KiB, maxRecord) bytes (plus a few bytes of terminator): a record
// longer than maxRecord is returned with TooLarge set and only a 1 KiB
// prefix, and the rest of it is skipped without being buffered.
//
// A Scanner is not safe for concurrent use.
type Scanner struct {
	r      io.Reader
	u16    bool // UTF-16: scan in 2-byte code units
	be     bool // UTF-16BE
	quotes bool // csv/tsv: boundaries are quote-aware
	unit   int  // code unit size: 1 or 2
	delim  byte // cell delimiter (' ' for jsonl, so that blank lines are spaces only)
	max    int  // maximum record size in bytes (terminator excluded)
	qLines int  // Limits.MaxQuotedLines
	qBytes int  // Limits.MaxQuotedBytes

	bufSize int // initial buffer size
	limit   int // maximum buffer size
	buf     []byte
	start   int   // buf index of the current record's first retained byte
	pos     int   // buf index where scanning resumes (all before it is classified)
	w       int   // end of the data in buf
	bufOff  int64 // object offset of buf[0]

	recOff     int64 // object offset of the current record
	next       int64 // object offset of the next record
	row        int64 // row number of the next record
	inQuote    bool  // inside a quoted cell
	atRecStart bool  // buf[start] is the current record's first byte
	prev       byte  // ASCII value of the unit before buf[start] when !atRecStart (0xFF: not ASCII)
	big        bool  // the current record overflowed the buffer and is being skipped
	unclosed   bool  // the open quote is unclosed: the record ends at the first '\n' after it
	qOff       int64 // object offset of the open quote
	qNL        int64 // object offset of the first '\n' after the open quote (-1: not seen yet)
	qCount     int64 // object offset up to which the open cell's line breaks are counted
	qSeen      int   // line breaks counted in the open cell
	prefix     []byte

	eof  bool
	done bool
	err  error
	raw  Raw
}

// NewScanner returns a Scanner reading r, whose first byte is at object
// offset offset and is the first byte of a record with row number row.
// maxRecord is the largest record (in bytes, without its terminator) that is
// returned whole; zero or less means DefaultMaxRecord. If d is not a valid
// dialect, Next returns false and Err says why.
//
// The quote limits are the defaults (see Limits): callers that read a file
// under a profile use NewScannerLimits with the profile's limits, the same
// in the splitter and the worker.
func NewScanner(r io.Reader, d Dialect, offset int64, row int64, maxRecord int) *Scanner {
	return newScanner(r, d, offset, row, Limits{MaxRecord: maxRecord}, defaultBufSize)
}

// NewScannerLimits is NewScanner with explicit limits (zero fields take
// their defaults).
func NewScannerLimits(r io.Reader, d Dialect, offset, row int64, l Limits) *Scanner {
	return newScanner(r, d, offset, row, l, defaultBufSize)
}

// newScanner is NewScannerLimits with a chosen initial buffer size (tests use
// tiny buffers to exercise every refill path).
func newScanner(r io.Reader, d Dialect, offset, row int64, l Limits, bufSize int) *Scanner {
	l = l.Defaults()
	maxRecord := l.MaxRecord
	s := &Scanner{
		r:          r,
		u16:        d.unitSize() == 2,
		be:         d.Encoding == UTF16BE,
		quotes:     d.Format != JSONL,
		unit:       d.unitSize(),
		delim:      d.delim(),
		max:        maxRecord,
		qLines:     l.MaxQuotedLines,
		qBytes:     l.MaxQuotedBytes,
		bufSize:    bufSize,
		limit:      max(bufSize, maxRecord+4),
		bufOff:     offset,
		next:       offset,
		row:        row,
		atRecStart: true,
	}
	if d.Format == JSONL {
		s.delim = ' '
	}
	if s.bufSize < 4 {
		s.bufSize = 4
	}
	s.err = d.Validate()
	return s
}

// Next advances to the next record, which is then available through Raw.
// It returns false at the end of the input or on a read error (see Err).
func (s *Scanner) Next() bool {
	if s.err != nil || s.done {
		return false
	}
	if s.buf == nil {
		s.buf = make([]byte, s.bufSize)
	}
	s.start = s.pos
	s.recOff = s.bufOff + int64(s.start)
	s.inQuote, s.big, s.atRecStart, s.unclosed = false, false, true, false
	s.prefix = s.prefix[:0]
	for {
		if end, ok := s.scan(); ok {
			s.emit(end, end+s.unit)
			return true
		}
		if s.eof {
			if s.w == s.start && !s.big {
				s.done = true
				return false
			}
			s.emit(s.w, s.w)
			return true
		}
		if !s.fill() {
			return false
		}
	}
}

// Raw returns the current record. Its Bytes are valid until the next call
// to Next.
func (s *Scanner) Raw() Raw { return s.raw }

// Offset returns the object offset of the next record (Raw().End after a
// successful Next; the starting offset before the first one).
func (s *Scanner) Offset() int64 { return s.next }

// Row returns the row number the next record will have.
func (s *Scanner) Row() int64 { return s.row }

// Err returns the first read error (never io.EOF), or the dialect error.
func (s *Scanner) Err() error { return s.err }

// scan looks for the terminator of the current record in buf[pos:w]. It
// returns the buf index of the terminating '\n' code unit, or false when
// more data (or EOF) is needed; s.pos is then where scanning resumes.
func (s *Scanner) scan() (int, bool) {
	switch {
	case s.u16 && s.quotes:
		return s.scanCSV16()
	case s.u16:
		return s.scanLines16()
	case s.quotes:
		return s.scanCSV8()
	default:
		j := bytes.IndexByte(s.buf[s.pos:s.w], '\n')
		if j < 0 {
			s.pos = s.w
			return 0, false
		}
		e := s.pos + j
		s.pos = e + 1
		return e, true
	}
}

// scanCSV8 is the quote-aware scan of byte-oriented encodings (UTF-8,
// GB18030): a quote opens a quoted cell only at the start of a cell; inside
// it "" is an escaped quote and newlines belong to the cell, unless the cell
// is unclosed (see Limits and quoteOver).
func (s *Scanner) scanCSV8() (int, bool) {
	buf := s.buf[:s.w]
	i := s.pos
	nl := -1 // index of the next '\n' at or after i (len(buf): none); -1: unknown
	for {
		if s.unclosed {
			j := bytes.IndexByte(buf[i:], '\n')
			if j < 0 {
				s.pos = len(buf)
				return 0, false
			}
			s.pos = i + j + 1
			return i + j, true
		}
		if s.inQuote {
			j := bytes.IndexByte(buf[i:], '"')
			end := len(buf)
			if j >= 0 {
				end = i + j
			}
			if s.quoteOver(i, end, j >= 0) {
				i = s.pos
				continue
			}
			if j < 0 {
				s.pos = len(buf)
				return 0, false
			}
			q := end
			if q+1 < len(buf) {
				if buf[q+1] == '"' {
					i = q + 2
				} else {
					s.inQuote = false
					i = q + 1
				}
				continue
			}
			if !s.eof { // is it "" or a closing quote? wait for the next byte
				s.pos = q
				return 0, false
			}
			s.inQuote = false
			s.pos = len(buf)
			return 0, false
		}
		if nl < i {
			if j := bytes.IndexByte(buf[i:], '\n'); j < 0 {
				nl = len(buf)
			} else {
				nl = i + j
			}
		}
		j := bytes.IndexByte(buf[i:nl], '"')
		if j < 0 {
			if nl < len(buf) {
				s.pos = nl + 1
				return nl, true
			}
			s.pos = len(buf)
			return 0, false
		}
		q := i + j
		if q > s.start {
			s.inQuote = buf[q-1] == s.delim
		} else {
			s.inQuote = s.atRecStart || s.prev == s.delim
		}
		if s.inQuote {
			s.openQuote(q, nl, len(buf))
		}
		i = q + 1
	}
}

// openQuote records a quoted cell opening at buf index q; nl is the index of
// the first '\n' after it (n, the end of the data: none yet).
func (s *Scanner) openQuote(q, nl, n int) {
	s.qOff = s.bufOff + int64(q)
	s.qCount = s.qOff + int64(s.unit)
	s.qSeen = 0
	s.qNL = -1
	if nl < n {
		s.qNL = s.bufOff + int64(nl)
	}
}

// quoteOver applies the unbalanced-quote rule to the open quoted cell, whose
// buf[i:end] holds no quote: end is either a quote (closed: the earliest the
// cell can close) or the end of the data. It reports whether the cell is
// unclosed, that is, whether even a closing quote at end would be too far:
// more than s.qLines line breaks or s.qBytes bytes after the opening quote,
// or a record longer than s.max; or there is no quote before the end of the
// input. Each condition only grows with end, so the answer does not depend
// on how much of the input is buffered. Then the cell is closed as unclosed,
// and s.pos is where the record's terminator is looked for: the first '\n'
// after the opening quote when it is known (it is always still buffered:
// this check fires before the buffer could drop it), else end.
func (s *Scanner) quoteOver(i, end int, closed bool) bool {
	abs := s.bufOff + int64(end)
	if s.qNL < 0 {
		if k := s.indexNL(i, end); k >= 0 {
			s.qNL = s.bufOff + int64(k)
		}
	}
	if s.qNL >= 0 && abs-s.qOff > int64(s.qLines) && abs > s.qCount {
		// Fewer bytes than the line limit cannot hold too many line
		// breaks: count only past it, and each byte once.
		s.qSeen += s.countNL(int(s.qCount-s.bufOff), end)
		s.qCount = abs
	}
	if s.qSeen <= s.qLines && abs-s.qOff <= int64(s.qBytes) && abs-s.recOff <= int64(s.max) && (closed || !s.eof) {
		return false
	}
	s.inQuote, s.unclosed = false, true
	s.pos = end
	if s.qNL >= 0 {
		s.pos = int(s.qNL - s.bufOff)
	}
	return true
}

// indexNL returns the buf index of the first '\n' code unit in buf[i:end],
// or -1.
func (s *Scanner) indexNL(i, end int) int {
	if s.u16 {
		return index16(s.buf[:end], i, '\n', s.be)
	}
	if k := bytes.IndexByte(s.buf[i:end], '\n'); k >= 0 {
		return i + k
	}
	return -1
}

// countNL counts the '\n' code units in buf[i:end].
func (s *Scanner) countNL(i, end int) int {
	if !s.u16 {
		return bytes.Count(s.buf[i:end], []byte{'\n'})
	}
	n := 0
	for {
		k := index16(s.buf[:end], i, '\n', s.be)
		if k < 0 {
			return n
		}
		n++
		i = k + 2
	}
}

// index16 returns the buf index of the first UTF-16 code unit at or after i
// (a code unit start, even) that is the ASCII character c, or -1. Only
// complete code units are considered.
func index16(b []byte, i int, c byte, be bool) int {
	lim := len(b) &^ 1
	for i < lim {
		j := bytes.IndexByte(b[i:lim], c)
		if j < 0 {
			return -1
		}
		p := i + j
		if be {
			if p&1 == 1 && b[p-1] == 0 {
				return p - 1
			}
		} else if p&1 == 0 && b[p+1] == 0 {
			return p
		}
		i = p + 1
	}
	return -1
}

// ascii16 returns the ASCII value of the code unit at i, or 0xFF.
func (s *Scanner) ascii16(i int) byte {
	hi, lo := s.buf[i+1], s.buf[i]
	if s.be {
		hi, lo = lo, hi
	}
	if hi != 0 || lo >= 0x80 {
		return 0xFF
	}
	return lo
}

// scanCSV16 is scanCSV8 in UTF-16 code units. Code units start at even
// buffer indexes (every shift of the buffer is by an even amount).
func (s *Scanner) scanCSV16() (int, bool) {
	buf := s.buf[:s.w]
	lim := len(buf) &^ 1
	i := s.pos
	nl := -1
	for {
		if s.unclosed {
			e := index16(buf, i, '\n', s.be)
			if e < 0 {
				s.pos = lim
				return 0, false
			}
			s.pos = e + 2
			return e, true
		}
		if s.inQuote {
			q := index16(buf, i, '"', s.be)
			end := lim
			if q >= 0 {
				end = q
			}
			if s.quoteOver(i, end, q >= 0) {
				i = s.pos
				continue
			}
			if q < 0 {
				s.pos = lim
				return 0, false
			}
			if q+4 <= lim {
				if s.ascii16(q+2) == '"' {
					i = q + 4
				} else {
					s.inQuote = false
					i = q + 2
				}
				continue
			}
			if !s.eof {
				s.pos = q
				return 0, false
			}
			s.inQuote = false
			s.pos = lim
			return 0, false
		}
		if nl < i {
			if nl = index16(buf, i, '\n', s.be); nl < 0 {
				nl = lim
			}
		}
		q := index16(buf[:nl], i, '"', s.be)
		if q < 0 {
			if nl < lim {
				s.pos = nl + 2
				return nl, true
			}
			s.pos = lim
			return 0, false
		}
		if q > s.start {
			s.inQuote = s.ascii16(q-2) == s.delim
		} else {
			s.inQuote = s.atRecStart || s.prev == s.delim
		}
		if s.inQuote {
			s.openQuote(q, nl, lim)
		}
		i = q + 2
	}
}

// scanLines16 finds the next '\n' code unit (JSON Lines in UTF-16).
func (s *Scanner) scanLines16() (int, bool) {
	buf := s.buf[:s.w]
	q := index16(buf, s.pos, '\n', s.be)
	if q < 0 {
		s.pos = len(buf) &^ 1
		return 0, false
	}
	s.pos = q + 2
	return q, true
}

// fill makes room in the buffer and reads more data. It returns false on a
// read error.
func (s *Scanner) fill() bool {
	if s.start > 0 {
		n := copy(s.buf, s.buf[s.start:s.w])
		s.pos -= s.start
		s.bufOff += int64(s.start)
		s.w = n
		s.start = 0
	}
	if s.w == len(s.buf) {
		if len(s.buf) < s.limit {
			nb := make([]byte, min(2*len(s.buf), s.limit))
			copy(nb, s.buf[:s.w])
			s.buf = nb
		} else {
			s.discard()
		}
	}
	for range maxEmptyReads {
		n, err := s.r.Read(s.buf[s.w:])
		s.w += n
		if err == io.EOF {
			s.eof = true
			return true
		}
		if err != nil {
			s.err = err
			return false
		}
		if n > 0 {
			return true
		}
	}
	s.err = io.ErrNoProgress
	return false
}

// discard drops the scanned part of a record that does not fit in the
// buffer, keeping its first bytes in s.prefix and the code unit before the
// kept data in s.prev (needed to know whether a quote opens a cell).
func (s *Scanner) discard() {
	s.big = true
	if s.pos == s.start {
		return
	}
	if n := tooLargePrefix - len(s.prefix); n > 0 {
		s.prefix = append(s.prefix, s.buf[s.start:s.start+min(n, s.pos-s.start)]...)
	}
	if s.u16 {
		s.prev = s.ascii16(s.pos - 2)
	} else {
		s.prev = s.buf[s.pos-1]
	}
	s.atRecStart = false
	n := copy(s.buf, s.buf[s.pos:s.w])
	s.bufOff += int64(s.pos)
	s.w = n
	s.start, s.pos = 0, 0
}

// emit makes the record that ends at buf index end (where its terminator,
// if any, starts) the current one; next is the buf index of the next record.
func (s *Scanner) emit(end, next int) {
	u := s.unit
	contentEnd := end
	crBefore := false // the CR of a CRLF was already discarded
	if (end-s.start)%u == 0 {
		if end-s.start >= u {
			if s.isCR(end - u) {
				contentEnd -= u
			}
		} else if !s.atRecStart && s.prev == '\r' {
			crBefore = true
		}
	}
	length := s.bufOff + int64(contentEnd) - s.recOff
	if crBefore {
		length -= int64(u)
	}
	raw := Raw{Offset: s.recOff, End: s.bufOff + int64(next), Row: s.row, Unclosed: s.unclosed, limit: s.max}
	if s.unclosed {
		raw.quoteLines, raw.quoteBytes = s.qLines, s.qBytes
	}
	if s.big || length > int64(s.max) {
		raw.TooLarge = true
		n := int(min(length, tooLargePrefix))
		if s.big {
			if k := n - len(s.prefix); k > 0 {
				s.prefix = append(s.prefix, s.buf[s.start:s.start+min(k, contentEnd-s.start)]...)
			}
			raw.Bytes = s.prefix[:n]
		} else {
			raw.Bytes = s.buf[s.start : s.start+n]
		}
	} else {
		raw.Bytes = s.buf[s.start:contentEnd]
		raw.Blank = s.blank(raw.Bytes)
	}
	s.raw = raw
	s.row++
	s.next = raw.End
	s.pos = next
	s.start = next
}

// isCR reports whether the code unit at buf index i is '\r'.
func (s *Scanner) isCR(i int) bool {
	if s.u16 {
		return s.ascii16(i) == '\r'
	}
	return s.buf[i] == '\r'
}

// blank reports whether a record holds only delimiters, spaces, tabs and CRs.
func (s *Scanner) blank(b []byte) bool {
	if !s.u16 {
		for _, c := range b {
			if c != ' ' && c != '\t' && c != '\r' && c != s.delim {
				return false
			}
		}
		return true
	}
	if len(b)%2 != 0 {
		return false
	}
	for i := 0; i < len(b); i += 2 {
		c, z := b[i], b[i+1]
		if s.be {
			c, z = z, c
		}
		if z != 0 || c != ' ' && c != '\t' && c != '\r' && c != s.delim {
			return false
		}
	}
	return true
}
