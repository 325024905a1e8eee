// Package xlsx reads XLSX workbooks (Office Open XML spreadsheets) as rows
// of cell text, one sheet at a time, streaming: a sheet's XML is decoded
// token by token straight out of the zip, so memory does not grow with the
// number of rows, and a large shared strings table lives in a
// memory-mapped temporary file, not on the heap.
//
// Cell text is what a person reading the sheet expects to import: numbers
// as Excel's 15 significant digits show them without the display format
// ("12.5", an integer stock "7", never "12.499999999999998" nor "1,234"),
// cells with a date or time number format as ISO 8601 text ("2024-12-25",
// "2024-12-25T10:30:00", "10:30:00"), booleans as TRUE/FALSE, formulas as
// their cached result, rich text joined. Rows keep the numbers Excel shows;
// rows without any value are skipped, trailing empty cells are dropped.
//
// It keeps invariant 9 (bounded memory) against hostile files: Open checks
// the zip's central directory against Limits before reading any part
// (uncompressed sizes, part count, compression ratio: a zip bomb is
// refused before it is inflated; archive/zip refuses a part that inflates
// past its declared size), XML with a DOCTYPE (entity declarations, the
// "billion laughs") is refused rather than parsed, and the shared strings,
// cells and cell text per row are counted against their limits while they
// are read. Every refusal is a *failure.ImportError (RowTooLarge for a
// limit, SchemaMismatch for a file that is not a readable workbook) with a
// message that names the part and the limit.
//
// See docs/decisions/0014-xlsx.md for why this is written on archive/zip
// and encoding/xml rather than on excelize.
package xlsx

import (
	"archive/zip"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/catalog-import/catalog-import/internal/failure"
)

// Limits bound what reading one workbook may cost. Zero fields take the
// defaults of Defaults.
type Limits struct {
	// MaxUncompressed is the most the parts of the workbook may add up to,
	// uncompressed, as the zip directory declares them (default 2 GiB).
	MaxUncompressed int64
	// MaxParts is the most parts (zip entries) a workbook may have
	// (default 10,000).
	MaxParts int
	// MaxRatio is the largest uncompressed/compressed ratio of a part
	// larger than 1 MiB (default 200; spreadsheet XML compresses 5-30x,
	// a zip bomb 1000x).
	MaxRatio int64
	// MaxMetaPart is the largest workbook, relationships or styles part
	// (default 16 MiB).
	MaxMetaPart int64
	// MaxSharedStrings is the most entries of the shared strings table
	// (default 5,000,000) and MaxSharedBytes the most text they may hold
	// (default 1 GiB, at most 4 GiB).
	MaxSharedStrings int
	MaxSharedBytes   int64
	// MaxCells is the most non-empty cells read from the workbook
	// (default 100,000,000).
	MaxCells int64
	// MaxRowBytes is the most cell text one row may hold (default 16 MiB).
	MaxRowBytes int
	// TempDir holds the shared strings file while the workbook is open
	// (default os.TempDir()).
	TempDir string
}

// Defaults returns l with zero fields set to their defaults.
func (l Limits) Defaults() Limits {
	if l.MaxUncompressed <= 0 {
		l.MaxUncompressed = 2 << 30
	}
	if l.MaxParts <= 0 {
		l.MaxParts = 10_000
	}
	if l.MaxRatio <= 0 {
		l.MaxRatio = 200
	}
	if l.MaxMetaPart <= 0 {
		l.MaxMetaPart = 16 << 20
	}
	if l.MaxSharedStrings <= 0 {
		l.MaxSharedStrings = 5_000_000
	}
	if l.MaxSharedBytes <= 0 {
		l.MaxSharedBytes = 1 << 30
	}
	l.MaxSharedBytes = min(l.MaxSharedBytes, 4<<30-1) // offsets are uint32
	if l.MaxCells <= 0 {
		l.MaxCells = 100_000_000
	}
	if l.MaxRowBytes <= 0 {
		l.MaxRowBytes = 16 << 20
	}
	return l
}

// ratioFloor is the size under which a part's compression ratio is not
// checked: small parts cannot hurt, whatever they expand to.
const ratioFloor = 1 << 20

// Excel's own limits.
const (
	maxRows    = 1_048_576
	maxColumns = 16_384
)

// Sheet is one sheet of a workbook, in workbook order.
type Sheet struct {
	Index  int    // position in the workbook (0 = first tab)
	Name   string // the tab's name
	Hidden bool   // hidden or very hidden
	// Worksheet is false for chart and dialog sheets, which hold no rows.
	Worksheet bool
	part      string
}

// Workbook is an open XLSX file. It is not safe for concurrent use, but
// each Rows reads its sheet independently.
type Workbook struct {
	f        *os.File
	zr       *zip.Reader
	lim      Limits
	sheets   []Sheet
	date1904 bool
	styles   []numFormat // by cell style (xf) index
	sst      *sharedStrings
	cells    int64 // non-empty cells read so far, against lim.MaxCells
}

// limitError is a refusal for going over a limit.
func limitError(format string, args ...any) error {
	return failure.New(failure.RowTooLarge, "", "workbook rejected: "+format, args...)
}

// shapeError is a refusal for a file that is not a readable workbook.
func shapeError(format string, args ...any) error {
	return failure.New(failure.SchemaMismatch, "", "workbook rejected: "+format, args...)
}

// Open opens the workbook at path: it checks the zip directory against lim,
// then reads the workbook's sheet list, styles and shared strings. Problems
// with the file are *failure.ImportError values; other errors are I/O.
func Open(path string, lim Limits) (*Workbook, error) {
	lim = lim.Defaults()
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("xlsx: %w", err) // *PathError names the operation and the file
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("xlsx: %w", err)
	}
	wb, err := open(f, fi.Size(), lim)
	if err != nil {
		f.Close()
		return nil, err
	}
	wb.f = f
	return wb, nil
}

func open(r io.ReaderAt, size int64, lim Limits) (*Workbook, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, shapeError("not a valid XLSX file (zip: %v)", err)
	}
	if err := inspect(zr, lim); err != nil {
		return nil, err
	}
	wb := &Workbook{zr: zr, lim: lim}
	if err := wb.readWorkbook(); err != nil {
		wb.Close()
		return nil, err
	}
	return wb, nil
}

// inspect checks the zip directory against the limits before any part is
// inflated. The declared sizes bound the real ones: archive/zip fails a part
// whose data inflates past its declared size.
func inspect(zr *zip.Reader, lim Limits) error {
	if len(zr.File) > lim.MaxParts {
		return limitError("%d parts in the zip, over the limit of %d", len(zr.File), lim.MaxParts)
	}
	var total uint64
	for _, f := range zr.File {
		u, c := f.UncompressedSize64, f.CompressedSize64
		total += u
		if total > uint64(lim.MaxUncompressed) || u > uint64(lim.MaxUncompressed) {
			return limitError("the parts expand to over %s uncompressed (part %s declares %s), over the limit of %s: a zip bomb?",
				bytesText(int64(min(total, 1<<62))), f.Name, bytesText(int64(min(u, 1<<62))), bytesText(lim.MaxUncompressed))
		}
		if u > ratioFloor && f.Method != zip.Store && (c == 0 || u/c > uint64(lim.MaxRatio)) {
			ratio := "an unbounded"
			if c > 0 {
				ratio = fmt.Sprintf("a %dx", u/c)
			}
			return limitError("part %s expands from %s to %s (%s ratio), over the limit of %dx: a zip bomb?",
				f.Name, bytesText(int64(c)), bytesText(int64(u)), ratio, lim.MaxRatio)
		}
	}
	return nil
}

// bytesText formats a size for messages.
func bytesText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// Sheets returns the workbook's sheets in workbook order.
func (wb *Workbook) Sheets() []Sheet { return append([]Sheet(nil), wb.sheets...) }

// Close releases the file and the shared strings. The Rows of the workbook
// must be closed first.
func (wb *Workbook) Close() error {
	var errs []error
	if wb.sst != nil {
		errs = append(errs, wb.sst.close())
		wb.sst = nil
	}
	if wb.f != nil {
		errs = append(errs, wb.f.Close())
		wb.f = nil
	}
	return errors.Join(errs...)
}

// Relationship types (the last path element of the Type URI).
const (
	relOfficeDocument = "officeDocument"
	relWorksheet      = "worksheet"
	relStyles         = "styles"
	relSharedStrings  = "sharedStrings"
)

type relationship struct {
	id, kind, target string
}

// readWorkbook reads the sheet list, the date system, the styles and the
// shared strings.
func (wb *Workbook) readWorkbook() error {
	root, err := wb.rels("_rels/.rels", "")
	if err != nil {
		return err
	}
	book := "xl/workbook.xml"
	for _, r := range root {
		if r.kind == relOfficeDocument {
			book = r.target
		}
	}
	if wb.file(book) == nil {
		return shapeError("not an XLSX workbook: it has no workbook part (%s)", book)
	}
	dir := path.Dir(book)
	rels, err := wb.rels(path.Join(dir, "_rels", path.Base(book)+".rels"), dir)
	if err != nil {
		return err
	}
	byID := map[string]relationship{}
	for _, r := range rels {
		byID[r.id] = r
	}
	if err := wb.readSheetList(book, byID); err != nil {
		return err
	}
	for _, r := range rels {
		switch r.kind {
		case relStyles:
			if wb.styles, err = wb.readStyles(r.target); err != nil {
				return err
			}
		case relSharedStrings:
			if wb.sst, err = wb.readSharedStrings(r.target); err != nil {
				return err
			}
		}
	}
	return nil
}

// file returns the zip entry called name (exactly, else ignoring case), or nil.
func (wb *Workbook) file(name string) *zip.File {
	name = strings.TrimPrefix(name, "/")
	var folded *zip.File
	for _, f := range wb.zr.File {
		if f.Name == name {
			return f
		}
		if folded == nil && strings.EqualFold(f.Name, name) {
			folded = f
		}
	}
	return folded
}

// decoder opens part for streaming decoding. The returned closer closes the
// part. A part that is not in the zip is (nil, nil, nil).
func (wb *Workbook) decoder(f *zip.File) (*xml.Decoder, io.Closer, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, nil, shapeError("part %s cannot be read: %v", f.Name, err)
	}
	d := xml.NewDecoder(rc)
	d.Strict = true
	return d, rc, nil
}

// token returns the next raw token of part, refusing DTDs: OOXML has none,
// and a DOCTYPE is how an entity expansion attack starts.
func token(d *xml.Decoder, part string) (xml.Token, error) {
	t, err := d.RawToken()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		if errors.Is(err, zip.ErrFormat) || errors.Is(err, zip.ErrChecksum) {
			return nil, shapeError("part %s is corrupt (%v)", part, err)
		}
		var se *xml.SyntaxError
		if errors.As(err, &se) {
			return nil, shapeError("part %s is not valid XML (line %d: %s)", part, se.Line, se.Msg)
		}
		return nil, shapeError("part %s cannot be read: %v", part, err)
	}
	if dir, ok := t.(xml.Directive); ok {
		return nil, shapeError("part %s declares a DTD (<!%s…>): XML entity declarations are not allowed in a workbook", part, firstWord(dir))
	}
	return t, nil
}

func firstWord(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.IndexAny(s, " \t\r\n["); i >= 0 {
		s = s[:i]
	}
	if len(s) > 16 {
		s = s[:16]
	}
	return s
}

// metaPart opens a part that is read whole (workbook, relationships,
// styles), refusing one over MaxMetaPart. A missing part is (nil, nil, nil).
func (wb *Workbook) metaPart(name string) (*xml.Decoder, io.Closer, error) {
	f := wb.file(name)
	if f == nil {
		return nil, nil, nil
	}
	if f.UncompressedSize64 > uint64(wb.lim.MaxMetaPart) {
		return nil, nil, limitError("part %s is %s, over the limit of %s", f.Name, bytesText(int64(f.UncompressedSize64)), bytesText(wb.lim.MaxMetaPart))
	}
	return wb.decoder(f)
}

// rels reads a relationships part; targets are resolved against dir.
func (wb *Workbook) rels(name, dir string) ([]relationship, error) {
	d, c, err := wb.metaPart(name)
	if err != nil || d == nil {
		return nil, err
	}
	defer c.Close()
	var out []relationship
	for {
		t, err := token(d, name)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		se, ok := t.(xml.StartElement)
		if !ok || se.Name.Local != "Relationship" {
			continue
		}
		r := relationship{}
		external := false
		for _, a := range se.Attr {
			switch a.Name.Local {
			case "Id":
				r.id = a.Value
			case "Type":
				r.kind = path.Base(a.Value)
			case "Target":
				r.target = a.Value
			case "TargetMode":
				external = a.Value == "External"
			}
		}
		if external || r.target == "" {
			continue
		}
		if strings.HasPrefix(r.target, "/") {
			r.target = strings.TrimPrefix(path.Clean(r.target), "/")
		} else {
			r.target = path.Join(dir, r.target)
		}
		out = append(out, r)
	}
}

// readSheetList reads the sheets and the date system from the workbook part.
func (wb *Workbook) readSheetList(book string, rels map[string]relationship) error {
	d, c, err := wb.metaPart(book)
	if err != nil {
		return err
	}
	defer c.Close()
	for {
		t, err := token(d, book)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		se, ok := t.(xml.StartElement)
		if !ok {
			continue
		}
		switch se.Name.Local {
		case "workbookPr":
			for _, a := range se.Attr {
				if a.Name.Local == "date1904" {
					wb.date1904 = a.Value == "1" || a.Value == "true"
				}
			}
		case "sheet":
			s := Sheet{Index: len(wb.sheets)}
			for _, a := range se.Attr {
				switch {
				case a.Name.Local == "name":
					s.Name = a.Value
				case a.Name.Local == "state":
					s.Hidden = a.Value == "hidden" || a.Value == "veryHidden"
				case a.Name.Local == "id" && a.Name.Space != "":
					if r, ok := rels[a.Value]; ok && r.kind == relWorksheet {
						s.Worksheet, s.part = true, r.target
					}
				}
			}
			wb.sheets = append(wb.sheets, s)
		}
	}
}
