package report_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/report"
	"github.com/catalog-import/catalog-import/internal/state"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var t0 = time.Date(2031, 3, 14, 15, 9, 26, 0, time.UTC)

var header = []string{"sku", "name", "category", "price", "stock"}

var mapping = map[string]string{"sku": "sku", "name": "name", "category": "category", "price": "price", "stock": "stock"}

// failed returns the failure record of row with reason on field.
func failed(row int64, shard int, reason failure.Reason, field string, cells ...string) failure.Record {
	return failure.Record{BatchID: "b-report", Sheet: failure.NoSheet, Row: row, Layer: reason.Layer(), Reason: reason, Field: field,
		Message: fmt.Sprintf("%s: %s", field, reason), RawLine: strings.Join(cells, ","), Cells: cells, FieldMapping: mapping,
		RuleVersion: "rv-1", FailureAt: t0, Shard: shard}
}

// fixture is a finished batch of 3 shards with 12 failed rows of 5 reasons,
// one of them with hostile cells.
func fixture() report.Data {
	recs := []failure.Record{
		failed(3, 0, failure.InvalidNumber, "price", "SKU-3", "Lamp", "Home", "abc", "1"),
		failed(5, 0, failure.InvalidNumber, "price", "SKU-5", "Mug", "Home", "12.345", "2"),
		failed(8, 0, failure.MissingField, "name", "SKU-8", "", "Home", "3.00", "1"),
		failed(9, 0, failure.InvalidNumber, "price", "SKU-9", "Pen", "Office", "x", "7"),
		failed(11, 0, failure.InvalidNumber, "price", "SKU-11", "Cup", "Home", "?", "7"),
		failed(14, 1, failure.DuplicateSKU, "sku", "SKU-3", "Lamp 2", "Home", "9.99", "1"),
		failed(17, 1, failure.OutOfRange, "stock", "SKU-17", `<script>alert("x")</script>`, "=HYPERLINK(\"http://evil\")", "1.00", "-5"),
		failed(18, 1, failure.MalformedRow, "", "SKU-18", `"unbalanced`),
		failed(22, 2, failure.DuplicateSKU, "sku", "SKU-5", "Mug 2", "Home", "1.00", "1"),
		failed(23, 2, failure.InvalidNumber, "price", "SKU-23", "Bag", "Bags", "1e3", "1"),
		failed(25, 2, failure.OutOfRange, "stock", "SKU-25", "Hat", "Wear", "5.00", "-1"),
		failed(27, 2, failure.MissingField, "name", "SKU-27", "", "Wear", "5.00", "1"),
	}
	recs[7].Cells = nil // a row that could not be split keeps only its raw line
	agg := &report.Aggregate{}
	for _, r := range recs {
		agg.Add(r)
	}
	b := state.Batch{
		ID: "b-report", Status: state.BatchCompletedWithErrors,
		Source:      state.Source{URI: "/data/products <&>.csv", Size: 4096},
		Layout:      state.Layout{Format: "csv", Encoding: "gb18030", Delimiter: ",", Header: header},
		RuleVersion: "rv-1", Shards: 3, ShardsDone: 3,
		Counts:    state.Counts{Total: 30, Imported: 18, Failed: 12},
		ByReason:  agg.ByReason,
		TraceID:   "1-5759e988-bd862e3fe1be46a994272793",
		CreatedAt: t0, UpdatedAt: t0.Add(9 * time.Second), FinishedAt: t0.Add(9 * time.Second),
	}
	sample := func(sec, done, fail int64) state.Sample {
		return state.Sample{At: t0.Add(time.Duration(sec) * time.Second), Done: done, Failed: fail}
	}
	shards := []state.Shard{
		{BatchID: b.ID, Index: 0, Rows: 10, Status: state.ShardDone, Progress: []state.Sample{sample(1, 4, 2), sample(3, 8, 4), sample(4, 10, 5)}},
		{BatchID: b.ID, Index: 1, Rows: 10, Status: state.ShardDone, Progress: []state.Sample{sample(2, 10, 3)}},
		{BatchID: b.ID, Index: 2, Rows: 10, Status: state.ShardDone, Progress: []state.Sample{sample(5, 5, 2), sample(9, 10, 4)}},
	}
	return report.Data{Batch: b, Shards: shards, Failures: agg, Generated: t0.Add(10 * time.Second), ErrorsCSV: "errors.csv"}
}

func render(t *testing.T, d report.Data) string {
	t.Helper()
	var buf bytes.Buffer
	if err := report.Render(&buf, d); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// TestRenderGolden: the page of a fixed batch is byte for byte the golden
// file (run with -update after an intended change, and look at it).
func TestRenderGolden(t *testing.T) {
	t.Parallel()
	got := render(t, fixture())
	path := filepath.Join("testdata", "report.golden.html")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if d := cmp.Diff(string(want), got); d != "" {
		t.Errorf("report differs from %s (-want +got):\n%s", path, d)
	}
}

// TestRenderEscapesCells: cells are hostile input; none of their markup
// reaches the page as markup.
func TestRenderEscapesCells(t *testing.T) {
	t.Parallel()
	got := render(t, fixture())
	for _, bad := range []string{`<script>alert`, `products <&>`, `"unbalanced`} {
		if strings.Contains(got, bad) {
			t.Errorf("page contains %q unescaped", bad)
		}
	}
	for _, want := range []string{`&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;`, `products &lt;&amp;&gt;.csv`} {
		if !strings.Contains(got, want) {
			t.Errorf("page lacks the escaped form %q", want)
		}
	}
	for _, ref := range []string{"<script", "src=", `href="http`, "<link", "@import", "url("} {
		if strings.Contains(got, ref) {
			t.Errorf("page has %q: it must be self-contained, with no script", ref)
		}
	}
}

// TestRenderWarnings: the batch's warnings (what the split noticed) are
// listed in the outcome, escaped; a batch without any has no list.
func TestRenderWarnings(t *testing.T) {
	t.Parallel()
	d := fixture()
	if got := render(t, d); strings.Contains(got, `id="warnings"`) {
		t.Errorf("a batch without warnings shows a warnings list")
	}
	d.Batch.Warnings = []string{`sheet "lists" is hidden and was not imported`, `sheet "S", column H has no header: 2 cells ignored (H3 holds "<b>x</b>")`}
	got := render(t, d)
	want := "<ul id=\"warnings\" class=\"warnings\" style=\"margin: 0; padding-left: 20px; overflow-wrap: anywhere\">\n<li>sheet &#34;lists&#34; is hidden and was not imported</li>\n" +
		"<li>sheet &#34;S&#34;, column H has no header: 2 cells ignored (H3 holds &#34;&lt;b&gt;x&lt;/b&gt;&#34;)</li>\n</ul>"
	if !strings.Contains(got, want) {
		t.Errorf("page lacks the warnings list %q", want)
	}
}

// TestAggregateBoundsSamples: a million failure records keep a few samples
// per reason and exact counts.
func TestAggregateBoundsSamples(t *testing.T) {
	t.Parallel()
	reasons := []failure.Reason{failure.InvalidNumber, failure.MissingField, failure.DuplicateSKU}
	a := &report.Aggregate{}
	const n = 1_000_000
	for i := range n {
		r := reasons[i%len(reasons)]
		a.Add(failure.Record{Row: int64(i + 2), Reason: r, Layer: r.Layer(), Field: "price"})
	}
	if a.Total != n || a.ByReason[failure.InvalidNumber] != n/3+1 || a.ByLayer.Total() != n || a.ByField["price"] != n {
		t.Errorf("counts: total %d, by reason %v, by layer %+v, by field %v", a.Total, a.ByReason, a.ByLayer, a.ByField)
	}
	if len(a.Samples) != len(reasons)*report.SamplesPerReason {
		t.Errorf("%d samples, want %d", len(a.Samples), len(reasons)*report.SamplesPerReason)
	}
}

// pager serves records a page at a time, as a store does.
type pager struct {
	recs  []failure.Record
	calls int
}

func (p *pager) Failures(_ context.Context, _ string, f state.FailureFilter) ([]failure.Record, error) {
	p.calls++
	var out []failure.Record
	for _, r := range p.recs {
		if (f.AfterSheet != "" || f.AfterRow != 0) && !(r.Sheet > f.AfterSheet || (r.Sheet == f.AfterSheet && r.Row > f.AfterRow)) {
			continue
		}
		if len(f.Reasons) > 0 && r.Reason != f.Reasons[0] {
			continue
		}
		out = append(out, r)
		if len(out) == f.Limit {
			break
		}
	}
	return out, nil
}

func TestCollectPagesOnceAndGroups(t *testing.T) {
	t.Parallel()
	p := &pager{}
	for i := range 2*report.PageSize + 7 {
		r := failure.InvalidNumber
		field := "price"
		if i%4 == 0 {
			r, field = failure.MalformedRow, ""
		}
		p.recs = append(p.recs, failure.Record{Sheet: "-", Row: int64(i + 2), Reason: r, Layer: r.Layer(), Field: field})
	}
	a, err := report.Collect(t.Context(), p, "b", state.FailureFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if p.calls != 3 {
		t.Errorf("%d calls for %d records, want 3 pages", p.calls, len(p.recs))
	}
	cases := []struct {
		g    report.Group
		want []report.Count
	}{
		{report.ByReason, []report.Count{{Key: "InvalidNumber", Count: 7505}, {Key: "MalformedRow", Count: 2502}}},
		{report.ByLayer, []report.Count{{Key: "semantic", Count: 7505}, {Key: "syntax", Count: 2502}}},
		{report.ByField, []report.Count{{Key: "price", Count: 7505}, {Key: report.NoField, Count: 2502}}},
	}
	for _, tc := range cases {
		if d := cmp.Diff(tc.want, a.Groups(tc.g)); d != "" {
			t.Errorf("Groups(%s) (-want +got):\n%s", tc.g, d)
		}
	}
	only, err := report.Collect(t.Context(), p, "b", state.FailureFilter{Reasons: []failure.Reason{failure.MalformedRow}})
	if err != nil || only.Total != 2502 {
		t.Errorf("filtered: %d records, %v; want 2502", only.Total, err)
	}
}

// TestRenderSuperseded: a batch with superseded rows (newer uploads held
// every field they would change) shows them as their own tile and part of
// the outcome bar; a batch without any shows neither.
func TestRenderSuperseded(t *testing.T) {
	t.Parallel()
	d := fixture()
	if page := render(t, d); strings.Contains(page, `id="rows-superseded"`) || strings.Contains(page, ">superseded<") {
		t.Errorf("a batch without superseded rows shows them")
	}
	d.Batch.Counts = state.Counts{Total: 30, Imported: 10, Superseded: 8, Failed: 12}
	page := render(t, d)
	if !strings.Contains(page, `<div class="tile superseded" id="rows-superseded"><span class="n" data-value="8">8</span> superseded</div>`) {
		t.Errorf("no superseded tile with 8 rows in:\n%s", page)
	}
}

// TestRenderStopped: a CANCELLED and a SUSPENDED batch show their status
// with its own class and the message that says why (and what to do).
func TestRenderStopped(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status state.BatchStatus
		class  string
	}{
		{state.BatchCancelled, "cancelled"},
		{state.BatchSuspended, "suspended"},
	} {
		d := fixture()
		d.Batch.Status, d.Batch.Message = tc.status, "products.csv changed since this import started"
		page := render(t, d)
		if !strings.Contains(page, `<span id="status" class="status `+tc.class+`">`+string(tc.status)+`</span>`) {
			t.Errorf("%s: no status badge of class %s", tc.status, tc.class)
		}
		if !strings.Contains(page, ".status."+tc.class+" {") {
			t.Errorf("%s: the page has no style for class %s", tc.status, tc.class)
		}
		if !strings.Contains(page, `<dd id="message">products.csv changed since this import started</dd>`) {
			t.Errorf("%s: the message is not shown", tc.status)
		}
	}
}
