package split

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/object"
	"github.com/catalog-import/catalog-import/internal/profile"
	"github.com/catalog-import/catalog-import/internal/record"
	"github.com/catalog-import/catalog-import/internal/state"
	"github.com/catalog-import/catalog-import/internal/xlsx"
)

// Workbooks.
//
// A zip cannot be range-read, so a workbook is read once, here, and each
// sheet is staged as UTF-8 CSV chunks (one chunk per shard) that the
// workers range-read like any CSV. A chunk is the sheet's header line, then
// one line per sheet row from the chunk's first row on, with blank lines
// standing for the sheet's empty rows, so that the Scanner's row numbers are
// the ones Excel shows and positions stay (sheet, row). The shard's Staged
// names the chunk and carries the sheet's header; Manifest hands workers the
// chunk instead of the workbook.

// Stager stores the staged chunks of a batch: under staging/<batch>/ beside
// the database (internal/local/file) or in the import bucket
// (internal/aws/s3store). Implementations must be safe for concurrent use.
type Stager interface {
	// Stage stores data as the object name of batchID's staging area,
	// replacing one of that name, and returns it as the object source
	// reads it (URI, size and version tag).
	Stage(ctx context.Context, batchID, name string, data []byte) (object.Info, error)
	// Unstage removes batchID's staging area. Removing what is not there is
	// not an error.
	Unstage(ctx context.Context, batchID string) error
}

// Staging says where a workbook's chunks go: the batch they belong to and
// the store.
type Staging struct {
	Stager  Stager
	BatchID string
}

// stagedDialect is how staged chunks are written and read.
var stagedDialect = record.Dialect{Format: record.CSV, Encoding: record.UTF8, Delimiter: ','}

// StagedSource returns the source and layout a worker reads a staged shard
// with: its chunk, as CSV under the sheet's header.
func StagedSource(s state.Shard) (state.Source, state.Layout) {
	st := s.Staged
	return state.Source{URI: st.URI, Size: st.Size, ETag: st.ETag},
		state.Layout{Format: string(stagedDialect.Format), Encoding: string(stagedDialect.Encoding), Delimiter: ",", Header: st.Header, DataStart: s.Start}
}

// maxTitleRows is how many non-empty rows above a sheet's header may be
// skipped as titles (a merged banner such as "ACME price list 2024").
const maxTitleRows = 10

// sheetPlan is a sheet to import and where its header is.
type sheetPlan struct {
	sheet     xlsx.Sheet
	header    []string
	headerRow int64
	cols      *profile.Columns // the header's mapping
}

// planWorkbook reads a workbook once and stages its sheets.
func planWorkbook(ctx context.Context, src object.Source, info object.Info, v *profile.Validator, opts Options, p Plan) (Plan, error) {
	p.Layout = state.Layout{Format: string(record.XLSX), Encoding: string(record.UTF8)}
	st := opts.Staging
	if st == nil || st.Stager == nil || st.BatchID == "" {
		return p, failure.New(failure.Internal, "", "split %s: a workbook needs a staging area (split.Options.Staging)", info.URI)
	}
	maxSize := opts.MaxWorkbook
	if maxSize <= 0 {
		maxSize = 512 << 20
	}
	if info.Size > maxSize {
		p.Rejected = failure.New(failure.RowTooLarge, "", "workbook rejected: the file is %d bytes, over the limit of %d", info.Size, maxSize)
		return p, nil
	}
	path, content, err := copyLocal(ctx, src, info, opts)
	if path != "" {
		defer os.Remove(path)
	}
	if err != nil {
		return p, err
	}
	p.Content = content
	wb, err := xlsx.Open(path, opts.Workbook)
	if err != nil {
		return rejectOr(p, err)
	}
	defer wb.Close()

	sheets, err := headers(wb, v)
	if err != nil {
		return rejectOr(p, err)
	}
	notes := &notes{}
	if len(v.Profile().Sheets()) == 0 {
		notes.hiddenSheets(wb)
	}
	p.Layout.Header = sheets[0].header
	for _, sp := range sheets[1:] {
		if !slices.Equal(sp.header, p.Layout.Header) {
			p.Layout.Header = nil
		}
	}
	c := &chunker{ctx: ctx, st: st, opts: opts, plan: &p, notes: notes}
	for _, sp := range sheets {
		if err = c.stageSheet(wb, sp); err != nil {
			break
		}
	}
	if err != nil {
		p.Shards, p.Rows = nil, 0
		if uerr := st.Stager.Unstage(context.WithoutCancel(ctx), st.BatchID); uerr != nil {
			err = errors.Join(err, fmt.Errorf("remove staging of %s: %w", st.BatchID, uerr))
		}
		return rejectOr(p, err)
	}
	p.Warnings = notes.warnings()
	return p, nil
}

// rejectOr puts a file-level problem (an ImportError of the syntax layer) in
// p.Rejected and returns other errors.
func rejectOr(p Plan, err error) (Plan, error) {
	if ie, ok := failure.As(err); ok && ie.Layer == failure.LayerSyntax {
		p.Rejected = ie
		return p, nil
	}
	return p, err
}

// copyLocal copies the object to a temporary file (a zip needs random
// access; on AWS the object is in S3), hashing it when asked. The source's
// reader checks the version tag, so the copy is of one version.
func copyLocal(ctx context.Context, src object.Source, info object.Info, opts Options) (path, content string, err error) {
	f, err := os.CreateTemp(opts.Workbook.TempDir, "workbook-*.xlsx")
	if err != nil {
		return "", "", fmt.Errorf("copy %s: %w", info.URI, err)
	}
	defer f.Close()
	rc, err := src.Open(ctx, info, 0, -1)
	if err != nil {
		return f.Name(), "", fmt.Errorf("open %s: %w", info.URI, err)
	}
	defer rc.Close()
	var w io.Writer = f
	sum := sha256.New()
	if opts.HashContent {
		w = io.MultiWriter(f, sum)
	}
	n, err := io.Copy(w, rc)
	if err == nil && n != info.Size {
		err = failure.New(failure.SourceChanged, "", "source %s: read %d bytes, the object has %d", info.URI, n, info.Size)
	}
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		return f.Name(), "", fmt.Errorf("copy %s: %w", info.URI, err)
	}
	if opts.HashContent {
		content = hex.EncodeToString(sum.Sum(nil))
	}
	return f.Name(), content, nil
}

// headers picks the sheets to import and finds each one's header: every
// visible worksheet with rows, or the sheets the profile names (hidden ones
// too); a sheet's header is its first row that maps the profile's required
// columns, within the first maxTitleRows+1 rows with a value. A sheet
// without one rejects the workbook, naming the sheet.
func headers(wb *xlsx.Workbook, v *profile.Validator) ([]sheetPlan, error) {
	all := wb.Sheets()
	named := v.Profile().Sheets()
	var picked []xlsx.Sheet
	if len(named) > 0 {
		for _, n := range named {
			i := slices.IndexFunc(all, func(s xlsx.Sheet) bool { return strings.EqualFold(strings.TrimSpace(s.Name), n) })
			if i < 0 {
				return nil, failure.New(failure.SchemaMismatch, "", "the profile imports sheet %q, the workbook has no such sheet (it has: %s)", n, sheetList(all))
			}
			picked = append(picked, all[i])
		}
		slices.SortFunc(picked, func(a, b xlsx.Sheet) int { return a.Index - b.Index })
	} else {
		for _, s := range all {
			if !s.Hidden && s.Worksheet {
				picked = append(picked, s)
			}
		}
	}
	var out []sheetPlan
	for _, s := range picked {
		sp, found, err := header(wb, s, v)
		if err != nil {
			return nil, err
		}
		if found {
			out = append(out, sp)
		}
	}
	if len(out) == 0 {
		return nil, failure.New(failure.SchemaMismatch, "", "the workbook has no rows (sheets: %s)", sheetList(picked))
	}
	return out, nil
}

// SheetHeader finds the header of sheet s as the splitter does: its first
// row that maps the profile's required columns, within the first
// maxTitleRows+1 rows with a value (title rows above it are skipped). It
// returns the header's trimmed cells and row number; found is false for a
// sheet without rows, and a sheet without a header is an ImportError naming
// the sheet and its first row.
func SheetHeader(wb *xlsx.Workbook, s xlsx.Sheet, v *profile.Validator) (cells []string, row int64, found bool, err error) {
	sp, found, err := header(wb, s, v)
	return sp.header, sp.headerRow, found, err
}

// header finds the header of one sheet; found is false for a sheet without
// rows.
func header(wb *xlsx.Workbook, s xlsx.Sheet, v *profile.Validator) (sp sheetPlan, found bool, err error) {
	rows, err := wb.Rows(s)
	if err != nil {
		return sp, false, err
	}
	defer rows.Close()
	var first error
	for seen := 0; seen <= maxTitleRows && rows.Next(); seen++ {
		cells := make([]string, len(rows.Cells()))
		for i, c := range rows.Cells() {
			cells[i] = strings.TrimSpace(c)
		}
		for len(cells) > 0 && cells[len(cells)-1] == "" {
			cells = cells[:len(cells)-1]
		}
		if len(cells) == 0 {
			continue
		}
		cols, herr := v.Header(cells)
		if herr == nil {
			return sheetPlan{sheet: s, header: cells, headerRow: rows.Row(), cols: cols}, true, nil
		}
		if first == nil {
			first = herr
			if ie, ok := failure.As(herr); ok {
				first = failure.New(ie.Reason, ie.Field, "sheet %q, header row %d: %s", s.Name, rows.Row(), ie.Message)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return sp, false, err
	}
	return sp, first != nil, first
}

func sheetList(ss []xlsx.Sheet) string {
	if len(ss) == 0 {
		return "none"
	}
	names := make([]string, len(ss))
	for i, s := range ss {
		names[i] = fmt.Sprintf("%q", s.Name)
	}
	return strings.Join(names, ", ")
}

// chunker cuts sheets into staged chunks and adds their shards to the plan.
type chunker struct {
	ctx   context.Context
	st    *Staging
	opts  Options
	plan  *Plan
	notes *notes

	buf       bytes.Buffer
	headerLen int64
	firstRow  int64
	lastRow   int64
	lines     int64
	chunks    int // chunks of the current sheet
	line      []byte
	cells     []string
}

// stageSheet stages the rows below a sheet's header.
func (c *chunker) stageSheet(wb *xlsx.Workbook, sp sheetPlan) error {
	rows, err := wb.Rows(sp.sheet)
	if err != nil {
		return err
	}
	defer rows.Close()
	c.chunks = 0
	c.start(sp)
	for n := 0; rows.Next(); n++ {
		if n&1023 == 0 && c.ctx.Err() != nil {
			return c.ctx.Err()
		}
		row := rows.Row()
		if row <= sp.headerRow {
			continue
		}
		cells := c.stagedCells(sp, row, rows.Cells(), rows.Notes())
		if cells == nil {
			continue // only cells of columns without a header: an empty row
		}
		if c.lines == 0 {
			c.firstRow = row
		} else {
			for range row - c.lastRow - 1 {
				c.buf.WriteByte('\n') // an empty row keeps its number
			}
		}
		c.line = appendCSV(c.line[:0], cells, len(sp.header))
		c.buf.Write(c.line)
		c.lastRow = row
		c.lines++
		if c.lines >= c.opts.ShardRows || int64(c.buf.Len())-c.headerLen >= c.opts.ShardBytes {
			if err := c.flush(sp); err != nil {
				return err
			}
			c.start(sp)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return c.flush(sp)
}

// stagedCells returns the cells of a sheet row as they are staged, nil for
// a row left with nothing to import: cells of columns without a header are
// dropped (and noted), a formula without a computed value in a column that
// maps to a field is staged as UncomputedMark and the formula, and numbers
// that lost digits in a mapped column are noted.
func (c *chunker) stagedCells(sp sheetPlan, row int64, cells []string, notes []xlsx.Note) []string {
	width := len(sp.header)
	named := func(i int) bool { return i < width && sp.header[i] != "" }
	c.cells = append(c.cells[:0], cells...)
	for len(c.cells) < width {
		c.cells = append(c.cells, "")
	}
	for _, n := range notes {
		i := n.Col - 1
		switch {
		case !named(i):
			if n.Kind == xlsx.NoteUncomputed { // its text is "": not counted below
				c.notes.ignored(sp.sheet, n.Col, row, "="+n.Text)
			}
		case n.Kind == xlsx.NoteUncomputed && sp.cols.Field(i) != "":
			c.cells[i] = UncomputedMark + n.Text
		case n.Kind == xlsx.NoteLongNumber && sp.cols.Field(i) != "":
			c.notes.longNumber(sp.sheet, sp.header[i], n.Col, row, n.Text, c.cells[i])
		}
	}
	empty := true
	for i, v := range c.cells {
		if v == "" {
			continue
		}
		if !named(i) {
			c.notes.ignored(sp.sheet, i+1, row, v)
			c.cells[i] = ""
			continue
		}
		empty = false
	}
	if empty {
		return nil
	}
	return c.cells[:width]
}

// start begins a chunk with the sheet's header line.
func (c *chunker) start(sp sheetPlan) {
	c.buf.Reset()
	c.line = appendCSV(c.line[:0], sp.header, 0)
	c.buf.Write(c.line)
	c.headerLen, c.lines = int64(c.buf.Len()), 0
}

// flush stages the chunk and adds its shard. Rows and checksum come from
// the Scanner over the staged bytes, so they are what a worker will read.
func (c *chunker) flush(sp sheetPlan) error {
	if c.lines == 0 {
		return nil
	}
	data := c.buf.Bytes()
	sc := record.NewScannerLimits(bytes.NewReader(data[c.headerLen:]), stagedDialect, c.headerLen, c.firstRow, c.opts.limits)
	sum := NewChecksum()
	rows := int64(0)
	for sc.Next() {
		if raw := sc.Raw(); !raw.Blank {
			rows++
			sum.Add(raw.Bytes)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("scan the staged rows of sheet %q: %w", sp.sheet.Name, err)
	}
	if rows == 0 { // only rows of spaces: no shard
		return nil
	}
	name := fmt.Sprintf("%04d-%06d.csv", sp.sheet.Index, c.chunks)
	info, err := c.st.Stager.Stage(c.ctx, c.st.BatchID, name, data)
	if err != nil {
		return fmt.Errorf("stage %s of sheet %q: %w", name, sp.sheet.Name, err)
	}
	c.chunks++
	p := c.plan
	p.Shards = append(p.Shards, state.Shard{
		Index: len(p.Shards), Sheet: sp.sheet.Name, SheetIndex: sp.sheet.Index,
		Start: c.headerLen, End: int64(len(data)), FirstRow: c.firstRow, Rows: rows,
		Checksum: sum.String(), Status: state.ShardPending,
		Checkpoint: state.Checkpoint{NextOffset: c.headerLen, NextRow: c.firstRow},
		Staged:     &state.Staged{URI: info.URI, Size: info.Size, ETag: info.ETag, Header: slices.Clone(sp.header)},
	})
	p.Rows += rows
	return nil
}

// appendCSV appends one CSV line (LF-terminated) of cells, padded with empty
// cells to width. A cell is quoted when it holds a quote, comma, CR or LF.
func appendCSV(b []byte, cells []string, width int) []byte {
	for i := range max(len(cells), width) {
		if i > 0 {
			b = append(b, ',')
		}
		if i >= len(cells) {
			continue
		}
		c := cells[i]
		if !strings.ContainsAny(c, "\",\r\n") {
			b = append(b, c...)
			continue
		}
		b = append(b, '"')
		for j := 0; j < len(c); j++ {
			if c[j] == '"' {
				b = append(b, '"')
			}
			b = append(b, c[j])
		}
		b = append(b, '"')
	}
	return append(b, '\n')
}
