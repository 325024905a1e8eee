package report_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/report"
)

// shape counts the page's markup: hostile text must not change it.
func shape(page string) map[string]int {
	out := map[string]int{}
	lower := strings.ToLower(page)
	for _, tag := range []string{"<td", "<tr", "<th", "<svg", "<rect", "<text", "<section", "<script", "<style", "<a ", "<img", "<iframe"} {
		out[tag] = strings.Count(lower, tag)
	}
	return out
}

// FuzzRenderKeepsMarkup: whatever a row's cells, message, field or sheet
// say, the page has the same markup as with plain text there (every value
// is escaped; nothing from the file becomes an element).
func FuzzRenderKeepsMarkup(f *testing.F) {
	for _, s := range []string{"x", `<script>alert(1)</script>`, `"><img src=x onerror=alert(1)>`, "</td></tr><tr>", "]]><!--", "=cmd|' /C calc'!A0", "\x00\xff", "商品 & <b>"} {
		f.Add(s, s, s, s)
	}
	render := func(t testing.TB, cell, message, field, sheet string) string {
		d := fixture()
		r := failed(40, 2, failure.InvalidValue, field, "SKU-40", cell, cell, "1.00", cell)
		r.Message, r.Sheet, r.RawLine = message, sheet, cell
		d.Failures = &report.Aggregate{}
		d.Failures.Add(r)
		var buf bytes.Buffer
		if err := report.Render(&buf, d); err != nil {
			t.Fatal(err)
		}
		return buf.String()
	}
	want := shape(render(f, "x", "x", "x", "x"))
	f.Fuzz(func(t *testing.T, cell, message, field, sheet string) {
		if field == "" {
			field = "x" // an empty field is counted as NoField: same shape either way
		}
		got := shape(render(t, cell, message, field, sheet))
		for tag, n := range want {
			if got[tag] != n {
				t.Fatalf("%d %s elements, want %d (cell %q, message %q, field %q, sheet %q)", got[tag], tag, n, cell, message, field, sheet)
			}
		}
	})
}
