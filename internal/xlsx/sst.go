package xlsx

import (
	"bufio"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"syscall"
)

// sharedStrings is the shared strings table: the text of every entry, one
// after the other, and the end offset of each entry. Up to spillThreshold
// the text is on the heap; a larger table is in a temporary file mapped
// into memory, so it is paged by the kernel, not held on the Go heap.
type sharedStrings struct {
	ends   []uint32
	data   []byte // the text: on the heap, or the mapping of file
	mapped bool
	file   *os.File
}

// get returns entry i.
func (s *sharedStrings) get(i int) (string, bool) {
	if s == nil || i < 0 || i >= len(s.ends) {
		return "", false
	}
	start := uint32(0)
	if i > 0 {
		start = s.ends[i-1]
	}
	return string(s.data[start:s.ends[i]]), true
}

func (s *sharedStrings) len() int {
	if s == nil {
		return 0
	}
	return len(s.ends)
}

func (s *sharedStrings) close() error {
	var errs []error
	if s.mapped {
		errs = append(errs, syscall.Munmap(s.data))
		s.mapped = false
	}
	s.data = nil
	if s.file != nil {
		errs = append(errs, s.file.Close(), os.Remove(s.file.Name()))
		s.file = nil
	}
	return errors.Join(errs...)
}

// readSharedStrings streams the shared strings part into a temporary file,
// counting entries and bytes against the limits as it goes (the part's
// count attributes are checked first, for an early and clear refusal, but
// not trusted).
func (wb *Workbook) readSharedStrings(name string) (_ *sharedStrings, err error) {
	f := wb.file(name)
	if f == nil {
		return nil, nil
	}
	d, c, err := wb.decoder(f)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	s := &sharedStrings{}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	w := &spillWriter{dir: wb.lim.TempDir, s: s}
	var (
		size    int64
		inSI    bool
		inText  bool
		inPhon  int // depth inside <rPh> (phonetic runs are not the text)
		text    []byte
		maxN    = wb.lim.MaxSharedStrings
		maxSize = wb.lim.MaxSharedBytes
	)
	for {
		t, err := token(d, f.Name)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := t.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "sst":
				for _, a := range t.Attr {
					if a.Name.Local == "uniqueCount" {
						if n, err := strconv.ParseInt(a.Value, 10, 64); err == nil && n > int64(maxN) {
							return nil, limitError("the shared strings table declares %d strings, over the limit of %d", n, maxN)
						}
					}
				}
			case "si":
				inSI, text = true, text[:0]
				if len(s.ends) == maxN {
					return nil, limitError("the shared strings table has over %d strings, the limit", maxN)
				}
			case "rPh":
				inPhon++
			case "t":
				inText = inSI && inPhon == 0
			}
		case xml.EndElement:
			switch t.Name.Local {
			case "si":
				if !inSI {
					continue
				}
				inSI = false
				v := unescapeOOXML(text)
				size += int64(len(v))
				if size > maxSize {
					return nil, limitError("the shared strings hold over %s of text, over the limit of %s", bytesText(size), bytesText(maxSize))
				}
				if _, err := w.Write(v); err != nil {
					return nil, fmt.Errorf("xlsx: shared strings: %w", err)
				}
				s.ends = append(s.ends, uint32(size))
			case "rPh":
				inPhon--
			case "t":
				inText = false
			}
		case xml.CharData:
			if inText {
				text = append(text, t...)
				if len(text) > wb.lim.MaxRowBytes {
					return nil, limitError("a shared string is over %s, the row limit", bytesText(int64(wb.lim.MaxRowBytes)))
				}
			}
		}
	}
	if err := w.finish(); err != nil {
		return nil, fmt.Errorf("xlsx: shared strings: %w", err)
	}
	return s, nil
}

// spillThreshold is how much shared string text is kept on the heap; a
// larger table goes to a temporary file that is mapped into memory.
const spillThreshold = 4 << 20

// spillWriter collects the shared strings' text in memory, and in a
// temporary file once it outgrows spillThreshold.
type spillWriter struct {
	dir string
	s   *sharedStrings
	mem []byte
	buf *bufio.Writer
	n   int64
}

func (w *spillWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	if w.buf == nil && len(w.mem)+len(p) <= spillThreshold {
		w.mem = append(w.mem, p...)
		return len(p), nil
	}
	if w.buf == nil {
		f, err := os.CreateTemp(w.dir, "xlsx-sst-*")
		if err != nil {
			return 0, err
		}
		w.s.file = f
		w.buf = bufio.NewWriterSize(f, 64<<10)
		if _, err := w.buf.Write(w.mem); err != nil {
			return 0, err
		}
		w.mem = nil
	}
	return w.buf.Write(p)
}

// finish makes the text readable: the heap copy, or the mapped file.
func (w *spillWriter) finish() error {
	if w.buf == nil {
		w.s.data = w.mem
		return nil
	}
	if err := w.buf.Flush(); err != nil {
		return err
	}
	data, err := syscall.Mmap(int(w.s.file.Fd()), 0, int(w.n), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("map: %w", err)
	}
	w.s.data, w.s.mapped = data, true
	return nil
}

// unescapeOOXML decodes the _xHHHH_ escapes OOXML uses for characters XML
// cannot hold (Excel writes a carriage return in a cell as _x000D_, and a
// literal "_x" as _x005F_x).
func unescapeOOXML(b []byte) []byte {
	i := indexEscape(b, 0)
	if i < 0 {
		return b
	}
	out := make([]byte, 0, len(b))
	for i >= 0 {
		r, _ := strconv.ParseUint(string(b[i+2:i+6]), 16, 16)
		out = append(out, b[:i]...)
		out = appendRune(out, rune(r))
		b = b[i+7:]
		i = indexEscape(b, 0)
	}
	return append(out, b...)
}

// indexEscape returns the index of the first _xHHHH_ in b at or after from.
func indexEscape(b []byte, from int) int {
	for i := from; i+7 <= len(b); i++ {
		if b[i] == '_' && b[i+1] == 'x' && b[i+6] == '_' && isHex(b[i+2]) && isHex(b[i+3]) && isHex(b[i+4]) && isHex(b[i+5]) {
			return i
		}
	}
	return -1
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func appendRune(b []byte, r rune) []byte {
	if r >= 0xD800 && r <= 0xDFFF || r == 0xFFFE || r == 0xFFFF {
		// A lone surrogate half is not text; U+FFFE and U+FFFF are not
		// characters (XML refuses them), so no cell text holds them: the
		// splitter marks uncomputed formulas with U+FFFF.
		r = '\uFFFD'
	}
	return append(b, string(r)...)
}
