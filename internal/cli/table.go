package cli

import (
	"bytes"
	"io"
	"strings"

	"github.com/mattn/go-runewidth"
)

// table aligns tab-separated cells into columns by their display width on
// a terminal, as text/tabwriter does by their number of characters: a
// Chinese character takes two columns, so tabwriter's columns drift after
// every CJK name or file name. Cells end with a tab; the text after a
// line's last tab is not padded. Consecutive lines with tabs form a block
// whose columns are aligned together; a line without a tab (a blank line,
// a heading) ends the block. Nothing is written before Flush.
type table struct {
	w    io.Writer
	buf  bytes.Buffer
	cond *runewidth.Condition // East Asian ambiguous characters narrow, as most terminals draw them
}

// tablePadding is the space between columns.
const tablePadding = 2

func newTable(w io.Writer) *table {
	return &table{w: w, cond: &runewidth.Condition{StrictEmojiNeutral: true}}
}

// Write buffers p.
func (t *table) Write(p []byte) (int, error) { return t.buf.Write(p) }

// Flush writes the buffered lines aligned and empties the buffer.
func (t *table) Flush() error {
	lines := strings.SplitAfter(t.buf.String(), "\n")
	t.buf.Reset()
	var out strings.Builder
	for i := 0; i < len(lines); {
		if !strings.Contains(lines[i], "\t") {
			out.WriteString(lines[i])
			i++
			continue
		}
		j := i
		var widths []int
		for ; j < len(lines) && strings.Contains(lines[j], "\t"); j++ {
			cells := strings.Split(lines[j], "\t")
			for c, cell := range cells[:len(cells)-1] {
				if c == len(widths) {
					widths = append(widths, 0)
				}
				widths[c] = max(widths[c], t.cond.StringWidth(cell))
			}
		}
		for _, line := range lines[i:j] {
			cells := strings.Split(line, "\t")
			for c, cell := range cells[:len(cells)-1] {
				out.WriteString(cell)
				out.WriteString(strings.Repeat(" ", widths[c]-t.cond.StringWidth(cell)+tablePadding))
			}
			out.WriteString(cells[len(cells)-1])
		}
		i = j
	}
	_, err := io.WriteString(t.w, out.String())
	return err
}
