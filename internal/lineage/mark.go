package lineage

import "strings"

// This file is the formula mark of a fix file (decision 27). A spreadsheet
// takes a cell starting with = + - @ tab or CR as a formula (OWASP CSV
// injection), so the fix file, which a merchant opens in Excel, writes such
// a cell with a leading apostrophe, as the error report does. Unlike the
// report, the fix file is imported again, so the mark has to come off
// exactly: Mark and Unmark are inverse for every cell, and only a file whose
// header has the ColMarked column is unmarked (an ordinary file's "'-5" is
// the merchant's text and stays as it is).
//
// The mark is one apostrophe before a cell whose text, after the
// apostrophes it may already start with, starts with a formula character:
// "=A1" is written "'=A1", and a cell that was "'=A1" in the source is
// written "''=A1", so that removing one apostrophe gives every cell back.
// "'abc", "abc" and "5" are written as they are, and are never unmarked.

// ColMarked is the fix file's column that says its cells are marked: on each
// row it names the columns whose cell got the mark (for the merchant; the
// import removes the marks by the rule above, wherever the columns are).
const ColMarked = "_marked"

// formulaLead reports whether c, after its leading apostrophes, starts with
// a character a spreadsheet may take as the start of a formula: the set
// failure.Neutralize marks in the error report.
func formulaLead(c string) bool {
	c = strings.TrimLeft(c, "'")
	if c == "" {
		return false
	}
	switch c[0] {
	case '=', '+', '-', '@', '\t', '\r', 0:
		return true
	}
	return false
}

// Mark returns cell as a fix file writes it: with a leading apostrophe when
// it (after the apostrophes it starts with) starts with = + - @ tab, CR or
// NUL, else unchanged.
func Mark(cell string) string {
	if formulaLead(cell) {
		return "'" + cell
	}
	return cell
}

// Unmark is the inverse of Mark: Unmark(Mark(c)) == c for every c. It
// removes one leading apostrophe from a cell whose text after its
// apostrophes starts with a formula character; any other cell is returned
// unchanged.
func Unmark(cell string) string {
	if len(cell) > 1 && cell[0] == '\'' && formulaLead(cell) {
		return cell[1:]
	}
	return cell
}

// Marked reports whether a csv/tsv header is that of a fix file whose cells
// are marked: it has the ColMarked column besides the link columns
// (ColSourceRow, ColBatch). Only such a file is unmarked.
func Marked(header []string) bool {
	var m, r, b bool
	for _, h := range header {
		m = m || h == ColMarked
		r = r || h == ColSourceRow
		b = b || h == ColBatch
	}
	return m && r && b
}

// UnmarkRow returns the cells of a marked fix file's row with their marks
// removed: cells itself when no cell has one (no allocation), else a copy.
func UnmarkRow(cells []string) []string {
	var out []string
	for i, c := range cells {
		u := Unmark(c)
		if len(u) == len(c) {
			if out != nil {
				out[i] = c
			}
			continue
		}
		if out == nil {
			out = make([]string, len(cells))
			copy(out, cells[:i])
		}
		out[i] = u
	}
	if out == nil {
		return cells
	}
	return out
}

// UnmarkHeader returns header with its names unmarked when it is a marked
// fix file's header (Marked), else header itself: a fix file marks its
// header row too, and a column is matched by its own name.
func UnmarkHeader(header []string) []string {
	if !Marked(header) {
		return header
	}
	return UnmarkRow(header)
}
