// Package report renders a batch's report: one self-contained HTML file
// (inline CSS and server-drawn SVG charts, no script, nothing fetched when
// it is viewed) with the batch's outcome, failures by layer and by reason,
// rows over time per shard, the top failing fields, and sample failures with
// their raw cells. It is pure: it takes the batch, its shards and an
// Aggregate of its failure records, and writes HTML.
//
// It serves traceability: every number on the page is the batch's own
// (Counts, and failures by reason counted in the same pass as the error
// report), and Aggregate/Collect read the failure records once, in pages, in
// memory that does not grow with their number. Every value from the file is
// escaped by html/template: cells are hostile input. See decision 13.
package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/state"
)

// Name is the report's file name beside the error report
// (reports/<batch>/report.html).
const Name = "report.html"

// Data is what a report shows.
type Data struct {
	Batch     state.Batch   // counts, status, source and layout
	Shards    []state.Shard // with their Progress, by index
	Failures  *Aggregate    // the batch's failure records, aggregated (nil: none)
	Generated time.Time     // when the report was made
	// ErrorsCSV is the error report's location relative to the report
	// ("errors.csv" beside it), linked when set.
	ErrorsCSV string
}

//go:embed report.html.tmpl
var pageTemplate string

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"num":      num,
	"duration": duration,
	"time":     func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"clip":     clip,
}).Parse(pageTemplate))

// Render writes the report of d to w.
func Render(w io.Writer, d Data) error {
	if err := page.Execute(w, newView(d)); err != nil {
		return fmt.Errorf("render report of %s: %w", d.Batch.ID, err)
	}
	return nil
}

// view is what the template reads.
type view struct {
	Data
	Agg                   *Aggregate
	Outcome               []outcome
	Elapsed, Rate         string
	ByLayer, ByReason     barChart
	TopFields             barChart
	OverTime              lineChart
	Header                []string // the file's columns, for the samples' cells
	Samples               []sample
	SampleNote            string
	ResolvedBy            bool // a sample was resolved by a later batch: the table shows by which
	FailedOverCountsMatch bool
	Skips                 []Skip // the rows triage skipped, by shard
}

// outcome is one part of the rows: imported, superseded (shown only when
// there are some), failed or skipped.
type outcome struct {
	Key, Label, Color string
	N                 int64
	X, W              float64 // in the outcome bar, in percent
}

// sample is one row of the sample table.
type sample struct {
	failure.Record
	Cells []cell // under Header, or nil when the row could not be split
}

// cell is one original cell; Bad marks the column of the failing field,
// Token a short value without spaces (a SKU, a price, a code), which is
// never broken across lines.
type cell struct {
	Text  string
	Bad   bool
	Token bool
}

// tokenRunes is the longest cell shown unbroken (cell.Token).
const tokenRunes = 40

// topFields is how many fields the top-fields chart shows.
const topFields = 10

func newView(d Data) view {
	agg := d.Failures
	if agg == nil {
		agg = &Aggregate{}
	}
	v := view{Data: d, Agg: agg}
	b := d.Batch
	c := b.Counts
	var x float64
	for _, o := range []outcome{
		{Key: "imported", Label: "imported", Color: "#2f855a", N: c.Imported},
		{Key: "superseded", Label: "superseded", Color: "#3182ce", N: c.Superseded},
		{Key: "failed", Label: "failed", Color: "#c53030", N: c.Failed},
		{Key: "skipped", Label: "skipped", Color: "#a0aec0", N: c.Skipped},
	} {
		if o.Key == "superseded" && o.N == 0 {
			continue // only feeds that overlap newer uploads have any
		}
		if c.Total > 0 {
			o.W = round1(100 * float64(o.N) / float64(c.Total))
		}
		o.X = x
		x += o.W
		v.Outcome = append(v.Outcome, o)
	}
	end := b.FinishedAt
	if end.IsZero() {
		end = b.UpdatedAt
	}
	if !b.CreatedAt.IsZero() && end.After(b.CreatedAt) {
		el := end.Sub(b.CreatedAt)
		v.Elapsed = duration(el.Round(time.Millisecond))
		v.Rate = num(int64(float64(c.Done())/el.Seconds())) + " rows/s"
	}

	var layers []Count
	for _, l := range state.Layers() {
		layers = append(layers, Count{string(l), agg.ByLayer.Get(l)})
	}
	v.ByLayer = newBarChart("by-layer", "Failures by layer", layers,
		func(k string) string { return layerColors[failure.Layer(k)] }, func(k string) string { return k })
	v.ByReason = newBarChart("by-reason", "Failures by reason", agg.Groups(ByReason),
		func(k string) string { return layerColors[failure.Reason(k).Layer()] },
		func(k string) string { return k + " (" + string(failure.Reason(k).Layer()) + ")" })
	fields := agg.Groups(ByField)
	if len(fields) > topFields {
		fields = fields[:topFields]
	}
	v.TopFields = newBarChart("top-fields", "Top failing fields", fields,
		func(string) string { return "#4a5568" }, func(k string) string { return k })
	v.OverTime = newLineChart(b, d.Shards)

	if b.Layout.Format != "jsonl" {
		v.Header = b.Layout.Header
	}
	width := len(v.Header)
	if width > 0 {
		for _, r := range agg.Samples {
			width = max(width, len(r.Cells))
		}
		header := slices.Clone(v.Header)
		for i := len(header); i < width; i++ {
			header = append(header, fmt.Sprintf("(extra %d)", i-len(v.Header)+1))
		}
		v.Header = header
	}
	for _, r := range agg.Samples {
		s := sample{Record: r}
		if width > 0 && len(r.Cells) > 0 {
			bad := map[string]bool{}
			for col, field := range r.FieldMapping {
				if field == r.Field {
					bad[col] = true
				}
			}
			for i := range width {
				var cl cell
				if i < len(r.Cells) {
					cl.Text = r.Cells[i]
					cl.Token = utf8.RuneCountInString(cl.Text) <= tokenRunes && !strings.ContainsFunc(cl.Text, unicode.IsSpace)
				}
				cl.Bad = bad[v.Header[i]]
				s.Cells = append(s.Cells, cl)
			}
		}
		v.Samples = append(v.Samples, s)
		v.ResolvedBy = v.ResolvedBy || r.ResolvedBy != ""
	}
	reasons := slices.Sorted(maps.Keys(agg.ByReason))
	v.SampleNote = fmt.Sprintf("The first %d failed rows of each reason (%d reasons), %d of %s failed rows.",
		SamplesPerReason, len(reasons), len(v.Samples), num(agg.Total))
	v.FailedOverCountsMatch = agg.Total == c.Failed
	v.Skips = Skips(d.Shards)
	return v
}

// clip shortens s to at most n runes for display, marking the cut.
func clip(n int, s string) string {
	if len(s) <= n {
		return s
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// statusClass is a CSS class name of a status (letters, digits, '-').
func statusClass(s state.BatchStatus) string {
	return strings.ToLower(strings.ReplaceAll(string(s), "_", "-"))
}

// StatusClass is the status's CSS class; exported for the template.
func (v view) StatusClass() string { return statusClass(v.Batch.Status) }
