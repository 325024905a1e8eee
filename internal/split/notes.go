package split

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/profile"
	"github.com/catalog-import/catalog-import/internal/record"
	"github.com/catalog-import/catalog-import/internal/state"
	"github.com/catalog-import/catalog-import/internal/xlsx"
)

// What the split of a workbook notices that no row fails for becomes the
// batch's warnings (state.Batch.Warnings): shown by `importctl run` and
// `status`, in `--json`, and on the batch report.

// notes collects a workbook's warnings, summed up per sheet and column.
type notes struct {
	hidden []string     // hidden worksheets with rows, not imported
	cells  []*cellNotes // by first appearance
	byKey  map[cellKey]*cellNotes
}

// Kinds of cell notes.
const (
	noteIgnored = iota // cells in a column without a header
	noteLong           // numbers of 16 digits or more in a mapped column
)

type cellKey struct {
	sheet, col, kind int
}

// cellNotes are the notes of one kind in one column of one sheet.
type cellNotes struct {
	key    cellKey
	sheet  string
	header string // the column's header (noteLong)
	n      int64
	row    int64  // the first one's row
	text   string // the first one's cell text (as read)
	stored string // the first one's stored number (noteLong)
}

// hiddenSheets notes the hidden worksheets that have rows: they are not
// imported unless the profile names them (decision 14).
func (n *notes) hiddenSheets(wb *xlsx.Workbook) {
	for _, s := range wb.Sheets() {
		if !s.Hidden || !s.Worksheet {
			continue
		}
		rows, err := wb.Rows(s)
		if err != nil {
			continue
		}
		if rows.Next() {
			n.hidden = append(n.hidden, s.Name)
		}
		rows.Close()
	}
}

func (n *notes) cell(s xlsx.Sheet, col, kind int, row int64, text string) *cellNotes {
	k := cellKey{s.Index, col, kind}
	if c, ok := n.byKey[k]; ok {
		c.n++
		return nil
	}
	if n.byKey == nil {
		n.byKey = map[cellKey]*cellNotes{}
	}
	c := &cellNotes{key: k, sheet: s.Name, n: 1, row: row, text: text}
	n.byKey[k] = c
	n.cells = append(n.cells, c)
	return c
}

// ignored notes a cell of a column without a header (right of the header,
// or under a merged header cell): it is not imported.
func (n *notes) ignored(s xlsx.Sheet, col int, row int64, text string) {
	n.cell(s, col, noteIgnored, row, text)
}

// longNumber notes a number of 16 digits or more in a column that maps to
// a field: Excel kept only 15 of its digits.
func (n *notes) longNumber(s xlsx.Sheet, header string, col int, row int64, stored, text string) {
	if c := n.cell(s, col, noteLong, row, text); c != nil {
		c.header, c.stored = header, stored
	}
}

// warnings renders the notes, hidden sheets first, then by sheet and
// column: at most state.MaxWarnings sentences of at most
// state.MaxWarningBytes bytes.
func (n *notes) warnings() []string {
	var out []string
	if len(n.hidden) > 0 {
		names := make([]string, len(n.hidden))
		for i, h := range n.hidden {
			names[i] = fmt.Sprintf("%q", h)
		}
		what := "sheet " + names[0] + " is hidden and was"
		if len(names) > 1 {
			what = "hidden sheets " + strings.Join(names, ", ") + " were"
		}
		out = append(out, what+" not imported (a profile's sheets: list imports the sheets it names, hidden ones too)")
	}
	cells := slices.Clone(n.cells)
	slices.SortStableFunc(cells, func(a, b *cellNotes) int {
		if a.key.sheet != b.key.sheet {
			return a.key.sheet - b.key.sheet
		}
		if a.key.col != b.key.col {
			return a.key.col - b.key.col
		}
		return a.key.kind - b.key.kind
	})
	for _, c := range cells {
		col := xlsx.ColumnName(c.key.col)
		cell := fmt.Sprintf("%s%d", col, c.row)
		switch c.key.kind {
		case noteIgnored:
			out = append(out, fmt.Sprintf("sheet %q, column %s has no header: %s ignored (%s holds %q); give the column a header the profile maps to import it",
				c.sheet, col, count(c.n, "cell", "cells"), cell, clipText(c.text, 40)))
		case noteLong:
			was := ""
			if c.stored != c.text {
				was = ", stored as " + c.stored
			}
			out = append(out, fmt.Sprintf("sheet %q, column %q: %s of 16 digits or more, of which Excel keeps 15 (%s reads %s%s); store such codes as text (format the column as Text before typing them)",
				c.sheet, c.header, count(c.n, "number", "numbers"), cell, c.text, was))
		}
	}
	if len(out) > state.MaxWarnings {
		more := len(out) - state.MaxWarnings + 1
		out = append(out[:state.MaxWarnings-1], fmt.Sprintf("and %d more warnings like these", more))
	}
	for i, w := range out {
		out[i] = clipText(w, state.MaxWarningBytes)
	}
	return out
}

// count is "1 cell" or "12 cells".
func count(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// clipText cuts s to at most limit bytes at a UTF-8 boundary, ending it with
// "…" when cut.
func clipText(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	cut := limit - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// UncomputedMark starts a staged cell holding a formula without a computed
// value, followed by the formula: U+FFFF, which no cell text holds (package
// xlsx reads it as U+FFFD). The worker fails such a row (UncomputedFormula).
const UncomputedMark = "\uFFFF"

// UncomputedFormula checks a row read from a staged chunk (cols is the
// sheet's header mapping): a cell that maps to a field and holds a formula
// without a computed value fails the row InvalidValue on that field, with a
// message that says so and how to fix it. The mark is replaced by "=" in
// the row's text and cells, so the failure record shows the formula. A row
// without the mark is left alone (nil).
func UncomputedFormula(cols *profile.Columns, row *record.Row) error {
	if !strings.Contains(row.Text, UncomputedMark) {
		return nil
	}
	row.Text = strings.ReplaceAll(row.Text, UncomputedMark, "=")
	var err error
	for i, v := range row.Cells {
		f, ok := strings.CutPrefix(v, UncomputedMark)
		if !ok {
			continue
		}
		row.Cells[i] = "=" + f
		if i < len(row.Values) {
			row.Values[i] = row.Cells[i]
		}
		field := ""
		if cols != nil {
			field = cols.Field(i)
		}
		if err != nil || field == "" {
			continue
		}
		what := fmt.Sprintf("the formula =%s", f)
		if f == "" {
			what = "a shared formula"
		}
		err = failure.New(failure.InvalidValue, field,
			"%s is %s in cell %s%d, which has no computed value: the program that wrote the workbook did not calculate its formulas; open the workbook in Excel or LibreOffice, save it, and import it again",
			field, what, xlsx.ColumnName(i+1), row.Num)
	}
	return err
}
