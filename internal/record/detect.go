package record

import (
	"bytes"
	"path"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/catalog-import/catalog-import/internal/failure"
)

// SniffSize is the most Detect looks at: callers pass up to SniffSize bytes
// of the start of the file (fewer for small files).
const SniffSize = 1 << 20

// sniffSample is how much of the prefix the UTF-16, control byte and format
// sniffing look at.
const sniffSample = 64 << 10

// Detect decides the dialect from the file name (a path or an S3 key) and a
// prefix of the file.
//
// Encoding: a BOM first (EF BB BF utf-8, FF FE utf-16le, FE FF utf-16be).
// Without a BOM, NUL bytes in the pattern of UTF-16 text (every other byte 0
// for ASCII) mean utf-16le/be; many NUL bytes or control bytes otherwise
// mean the file is not text (SchemaMismatch; see binaryAt: a text file with
// a NUL in one cell is text, and that row fails InvalidValue). Otherwise strict UTF-8 (a
// character cut at the end of the prefix is ignored) means utf-8; a clean
// GB18030 decode means gb18030, and so does a GB18030 decode with under a
// quarter of the errors UTF-8 has (a GBK export with a few corrupt rows must
// not be read as UTF-8, failing every Chinese row); anything else is read as
// utf-8 (its bad rows then fail one by one with InvalidEncoding).
//
// Format: by extension (.csv csv; .tsv/.tab tsv; .jsonl/.ndjson/.jsonlines
// jsonl). Otherwise sniffed: a first non-space character '{' or '[' means
// jsonl; else the delimiters of the first record are counted: more tabs than
// commas means tsv, more semicolons than commas csv with ';', else csv with
// ','. For .csv files the delimiter is sniffed the same way. UTF-16 files
// (Excel "Unicode text") default to tsv.
//
// Workbooks: a zip named .xlsx or .xlsm is XLSX (Dialect{Format: XLSX},
// for internal/xlsx to read); an OLE2 file (legacy .xls, or a workbook
// encrypted with a password) is SchemaMismatch with a message saying to save
// it as .xlsx.
//
// An empty prefix (or one holding only a BOM) is SchemaMismatch "file is
// empty".
func Detect(name string, prefix []byte) (Dialect, error) {
	if len(prefix) > SniffSize {
		prefix = prefix[:SniffSize]
	}
	if d, err, ok := detectWorkbook(name, prefix); ok {
		return d, err
	}
	var d Dialect
	switch {
	case bytes.HasPrefix(prefix, []byte{0xEF, 0xBB, 0xBF}):
		d.Encoding, d.BOM = UTF8, 3
	case bytes.HasPrefix(prefix, []byte{0xFF, 0xFE}):
		d.Encoding, d.BOM = UTF16LE, 2
	case bytes.HasPrefix(prefix, []byte{0xFE, 0xFF}):
		d.Encoding, d.BOM = UTF16BE, 2
	}
	body := prefix[d.BOM:]
	if len(body) == 0 {
		return Dialect{}, failure.New(failure.SchemaMismatch, "", "file is empty")
	}
	if d.BOM == 0 {
		enc, err := sniffEncoding(body)
		if err != nil {
			return Dialect{}, err
		}
		d.Encoding = enc
	}

	sample := body[:min(len(body), sniffSample)]
	if d.unitSize() == 2 {
		dec := newDecoder(d.Encoding)
		text, _ := dec.decode16(sample[:len(sample)&^1])
		sample = text
	}
	d.Format, d.Delimiter = sniffFormat(name, sample, d.unitSize() == 2)
	return d, nil
}

// notText is the error for a file that is not text.
func notText(at int) error {
	return failure.New(failure.SchemaMismatch, "", "file is not text (binary data at byte %d)", at)
}

// sniffEncoding decides the encoding of a prefix without a BOM.
func sniffEncoding(b []byte) (Encoding, error) {
	sample := b[:min(len(b), sniffSample)]
	if bytes.IndexByte(sample, 0) >= 0 {
		if enc, ok := utf16Pattern(sample); ok {
			return enc, nil
		}
	}
	if i := binaryAt(sample); i >= 0 {
		return "", notText(i)
	}
	b = trimCutRune(b)
	if utf8.Valid(b) {
		return UTF8, nil
	}
	// Not UTF-8. GB18030 if it decodes cleanly, or (a GBK file with a few
	// bad rows) with far fewer errors than UTF-8: GBK text read as UTF-8
	// fails at nearly every Chinese character.
	if gb := gbErrors(b); gb == 0 || gb*4 < utf8Errors(b) {
		return GB18030, nil
	}
	return UTF8, nil
}

// utf8Errors counts the bytes of b that are not part of valid UTF-8.
func utf8Errors(b []byte) int {
	n := 0
	for i := 0; i < len(b); {
		if b[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			n++
		}
		i += size
	}
	return n
}

// binaryAt returns where b (a sample of a file without a BOM that is not
// UTF-16) shows binary data, or -1 for text. b is binary when more than a
// tenth of its bytes are control bytes that text does not hold (NUL
// included), or when at least 8 of its bytes, and one in a thousand, are
// NUL (compressed or structured data: random bytes hold one NUL in 256).
// A text file with a few NUL or other control bytes in its cells is text:
// each such row fails InvalidValue (decision 21), wherever it is. The
// index returned is the first NUL, else the first control byte.
func binaryAt(b []byte) int {
	first, firstNUL, n, nul := -1, -1, 0, 0
	for i, c := range b {
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != '\v' && c != 0x1A || c == 0x7F {
			if first < 0 {
				first = i
			}
			n++
			if c == 0 {
				if firstNUL < 0 {
					firstNUL = i
				}
				nul++
			}
		}
	}
	if n*10 <= len(b) && (nul < 8 || nul*1000 < len(b)) {
		return -1
	}
	if firstNUL >= 0 {
		return firstNUL
	}
	return first
}

// utf16Pattern reports whether b looks like UTF-16 text without a BOM: its
// NUL bytes are (nearly) all at one parity, at least an eighth of the code
// units have a NUL high byte (ASCII), and it decodes to text without
// unpaired surrogates or control characters.
func utf16Pattern(b []byte) (Encoding, bool) {
	b = b[:len(b)&^1]
	units := len(b) / 2
	if units == 0 {
		return "", false
	}
	var even, odd int
	for i := 0; i < len(b); i += 2 {
		if b[i] == 0 {
			even++
		}
		if b[i+1] == 0 {
			odd++
		}
	}
	switch {
	case odd*8 >= units && even*8 <= odd && utf16Text(b, false):
		return UTF16LE, true
	case even*8 >= units && odd*8 <= even && utf16Text(b, true):
		return UTF16BE, true
	}
	return "", false
}

// utf16Text reports whether b decodes as UTF-16 to text: no unpaired
// surrogate (except one cut at the end) and at most 1% control characters.
func utf16Text(b []byte, be bool) bool {
	units := len(b) / 2
	ctrl := 0
	for i := 0; i < len(b); i += 2 {
		u := rune(b[i+1])<<8 | rune(b[i])
		if be {
			u = rune(b[i])<<8 | rune(b[i+1])
		}
		switch {
		case utf16.IsSurrogate(u):
			if u >= 0xDC00 {
				return false
			}
			if i+2 >= len(b) {
				return true // cut at the end of the prefix
			}
			u2 := rune(b[i+3])<<8 | rune(b[i+2])
			if be {
				u2 = rune(b[i+2])<<8 | rune(b[i+3])
			}
			if u2 < 0xDC00 || u2 > 0xDFFF {
				return false
			}
			i += 2
		case u < 0x20 && u != '\t' && u != '\n' && u != '\r', u == 0x7F:
			ctrl++
		}
	}
	return ctrl*100 <= units
}

// gbErrors counts the byte sequences of b that do not decode as GB18030,
// ignoring a character cut at the end.
func gbErrors(b []byte) int {
	// Find a sequence cut at the end: walk the sequences from the start
	// (GB18030 does not resynchronise backwards).
	cut := len(b)
	for i := 0; i < len(b); {
		if b[i] < utf8.RuneSelf {
			i++
			continue
		}
		n := gbSeqLen(b[i:])
		if n == 0 {
			if len(b)-i < 4 && b[i] != 0xFF && (len(b)-i < 2 || b[i+1] >= 0x30 && b[i+1] <= 0x39) {
				cut = i
				break
			}
			n = 1
		}
		i += n
	}
	b = b[:cut]
	d := newDecoder(GB18030)
	out, _ := d.transform(b, 3*len(b)+8)
	return bytes.Count(out, replacement) - bytes.Count(b, gbFFFD)
}

// sniffFormat decides the format and delimiter from the name and a UTF-8
// (or ASCII-compatible) sample of the text.
func sniffFormat(name string, sample []byte, utf16 bool) (Format, rune) {
	ext := strings.ToLower(path.Ext(name))
	switch ext {
	case ".jsonl", ".ndjson", ".jsonlines":
		return JSONL, 0
	case ".tsv", ".tab":
		return TSV, '\t'
	}
	if ext != ".csv" {
		if t := bytes.TrimLeft(sample, " \t\r\n"); len(t) > 0 && (t[0] == '{' || t[0] == '[') {
			return JSONL, 0
		}
	}
	comma, semi, tab := countDelims(sample)
	switch {
	case tab > comma && tab >= semi:
		if ext == ".csv" {
			return CSV, '\t'
		}
		return TSV, '\t'
	case semi > comma:
		return CSV, ';'
	case comma == 0 && utf16 && ext != ".csv":
		return TSV, '\t'
	}
	return CSV, ','
}

// countDelims counts the candidate delimiters in the first non-blank record
// of sample, outside quotes.
func countDelims(sample []byte) (comma, semi, tab int) {
	inQuote, content := false, false
	for _, c := range sample {
		switch c {
		case '"':
			inQuote = !inQuote
			content = true
		case '\n':
			if !inQuote {
				if content {
					return
				}
				comma, semi, tab = 0, 0, 0 // a blank line of delimiters
			}
		case ',':
			if !inQuote {
				comma++
			}
		case ';':
			if !inQuote {
				semi++
			}
		case '\t':
			if !inQuote {
				tab++
			}
		case ' ', '\r':
		default:
			content = true
		}
	}
	return
}

// Magic numbers of workbook containers.
var (
	zipMagic = []byte("PK\x03\x04")
	oleMagic = []byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1}
)

// detectWorkbook recognises the files that are workbooks rather than text.
func detectWorkbook(name string, prefix []byte) (Dialect, error, bool) {
	ext := strings.ToLower(path.Ext(name))
	switch {
	case bytes.HasPrefix(prefix, zipMagic) && (ext == ".xlsx" || ext == ".xlsm"):
		return Dialect{Format: XLSX, Encoding: UTF8}, nil, true
	case bytes.HasPrefix(prefix, oleMagic):
		return Dialect{}, failure.New(failure.SchemaMismatch, "",
			"file is a legacy Excel 97-2003 workbook (.xls) or a password-protected workbook: save it as .xlsx without a password, or as CSV UTF-8"), true
	}
	return Dialect{}, nil, false
}
