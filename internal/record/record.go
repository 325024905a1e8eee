// Package record reads product files (CSV, TSV and JSON Lines; UTF-8 with or
// without BOM, GB18030/GBK, UTF-16 with BOM) as records with exact byte
// offsets and row numbers.
//
// Reading a file is three steps:
//
//   - Detect decides the Dialect (format, encoding, delimiter, BOM length) from
//     the file name and a prefix of the file;
//   - Header reads the header record and returns where the data starts;
//   - a Scanner finds the records of a byte range (Raw: offset, end, row
//     number, bytes) and a Parser turns each Raw into a Row (decoded cells,
//     the decoded text for failure records, and a syntax-layer error).
//
// Record boundaries are found on the raw bytes, in the file's encoding:
// CSV/TSV boundaries are quote-aware (a quoted cell may hold newlines),
// JSON Lines end at every newline, GB18030 is scanned byte by byte (no trail
// byte is a quote, delimiter or newline) and UTF-16 in 2-byte code units.
// A record's Offset and End are byte offsets in the original object, and its
// row number is the one a spreadsheet shows (header = row 1; a quoted
// multi-line cell is still one row; blank lines use a row number too).
//
// The splitter (cutting shards) and the shard worker (processing a shard from
// its checkpoint) use the SAME Scanner, so they always agree on where records
// are and which row number each one has: a shard boundary or a checkpoint
// (offset, row) taken from a Scanner is a place another Scanner can start from
// and produce exactly the same records (invariants 3 and 6 of
// docs/invariants.md).
//
// The Scanner streams with bounded memory: it holds at most
// max(256 KiB, maxRecord) bytes; a longer record is reported as TooLarge with
// only a 1 KiB prefix, and scanning goes on at the next boundary.
package record

import (
	"fmt"
	"unicode/utf8"
)

// Format is the syntax of a file.
type Format string

// The formats a Scanner reads.
const (
	CSV   Format = "csv"
	TSV   Format = "tsv"
	JSONL Format = "jsonl"
)

// XLSX is an Excel workbook. Detect recognises it, but a Scanner cannot
// read it: a zip is not range-readable, so the splitter reads it with
// internal/xlsx and stages each sheet as CSV (see internal/split).
const XLSX Format = "xlsx"

// Encoding is the character encoding of a file, named as in state.Layout.
type Encoding string

// The encodings a Scanner reads.
const (
	UTF8    Encoding = "utf-8"
	GB18030 Encoding = "gb18030"
	UTF16LE Encoding = "utf-16le"
	UTF16BE Encoding = "utf-16be"
)

// Dialect is how a file's bytes are read. Its string fields use the same
// values as state.Layout (Format, Encoding, and Delimiter as string(rune)).
type Dialect struct {
	Format   Format
	Encoding Encoding
	// Delimiter separates cells in csv/tsv: an ASCII character other than
	// '"', '\r' and '\n' (and, in GB18030, not a digit, letter or other byte
	// that can be the trail byte of a character). Zero means the format's
	// default (',' for csv, '\t' for tsv). It is not used for jsonl.
	Delimiter rune
	// BOM is the number of bytes of byte order mark at offset 0 (0, 2 or 3).
	BOM int
}

// Validate reports whether d is a dialect the Scanner and Parser can read.
func (d Dialect) Validate() error {
	switch d.Format {
	case CSV, TSV, JSONL:
	default:
		return fmt.Errorf("record: unknown format %q", d.Format)
	}
	switch d.Encoding {
	case UTF8, GB18030, UTF16LE, UTF16BE:
	default:
		return fmt.Errorf("record: unknown encoding %q", d.Encoding)
	}
	if d.Format != JSONL {
		c := d.delim()
		if c == 0 || c >= utf8.RuneSelf || c == '"' || c == '\r' || c == '\n' {
			return fmt.Errorf("record: unsupported delimiter %q", d.Delimiter)
		}
		if d.Encoding == GB18030 && (c >= 0x30 && c <= 0x39 || c >= 0x40 && c <= 0x7E) {
			return fmt.Errorf("record: delimiter %q can be a byte of a GB18030 character", d.Delimiter)
		}
	}
	if d.BOM < 0 {
		return fmt.Errorf("record: negative BOM length %d", d.BOM)
	}
	return nil
}

// delim returns the effective delimiter byte of a csv/tsv dialect, or 0 when
// the delimiter is not a single ASCII byte.
func (d Dialect) delim() byte {
	r := d.Delimiter
	if r == 0 {
		if d.Format == TSV {
			return '\t'
		}
		return ','
	}
	if r < 0 || r >= utf8.RuneSelf {
		return 0
	}
	return byte(r)
}

// unitSize is the size in bytes of a code unit of the encoding.
func (d Dialect) unitSize() int {
	if d.Encoding == UTF16LE || d.Encoding == UTF16BE {
		return 2
	}
	return 1
}

// Raw is one record as found by the Scanner.
type Raw struct {
	Offset int64 // byte offset of the record's first byte in the object
	End    int64 // byte offset just past the record's terminator (the next record's Offset)
	// Row is the row number as a spreadsheet shows it (header = 1; a quoted
	// multi-line cell is still one row). JSONL: the line number.
	Row int64
	// Blank: the record has no content (only delimiters, spaces, tabs, CR).
	// It is not a row, but it still uses a row number.
	Blank bool
	// TooLarge: the record is longer than the scanner's maximum record size;
	// Bytes then holds only its first 1 KiB.
	TooLarge bool
	// Unclosed: the record has a quoted cell that does not close within the
	// scanner's Limits (or at all). The record then ends at the end of the
	// line that quote opened on, and the next record starts on the next line.
	Unclosed bool
	// Bytes are the record's bytes without its line terminator (\n or \r\n;
	// a CR just before EOF is dropped too, as encoding/csv does), in the
	// file's encoding. They are valid until the next call to Next.
	Bytes []byte

	limit int // the scanner's maximum record size, for RowTooLarge messages
	// quoteLines and quoteBytes are the scanner's quote limits, for the
	// message of an Unclosed record.
	quoteLines, quoteBytes int
}

// Len is the size of the record in bytes, terminator included (End - Offset).
func (r Raw) Len() int64 { return r.End - r.Offset }
