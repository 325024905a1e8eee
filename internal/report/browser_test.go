package report_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/catalog-import/catalog-import/internal/embedded"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/local/sqlite"
	"github.com/catalog-import/catalog-import/internal/record/recordtest"
	"github.com/catalog-import/catalog-import/internal/report"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/state"
)

// chromium returns the path of Debian's chromium (make deps installs it).
// Without it the test is skipped locally and fails on CI (CI=true).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "/usr/bin/chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (make deps installs it)")
	}
	t.Skip("chromium is not installed (make deps installs it); skipped outside CI")
	return ""
}

// shown is what the browser drew, read back from the rendered page.
type shown struct {
	Status     string            `json:"status"`
	Tiles      map[string]string `json:"tiles"`       // rows-total, ... -> the text shown
	Charts     []box             `json:"charts"`      // every chart's drawn size
	Reasons    []barShown        `json:"reasons"`     // bars of the by-reason chart
	Layers     []barShown        `json:"layers"`      // bars of the by-layer chart
	Fields     []barShown        `json:"fields"`      // bars of the top-fields chart
	Lines      []box             `json:"lines"`       // shard lines (or dots) drawn
	SampleRows int               `json:"sample_rows"` // rows of the sample table
	BadCells   int               `json:"bad_cells"`   // outlined cells
	Scripts    int               `json:"scripts"`
}

type box struct {
	ID     string  `json:"id"`
	Width  float64 `json:"width"`
	Height float64 `json:"height"`
}

type barShown struct {
	Key   string  `json:"key"`
	Count string  `json:"count"` // data-count
	Text  string  `json:"text"`  // the count as shown beside the bar
	Width float64 `json:"width"` // drawn width of the bar
}

const readPage = `(() => {
  const size = el => { const r = el.getBoundingClientRect(); return {id: el.id || el.closest('section').id, width: r.width, height: r.height}; };
  const bars = id => [...document.querySelectorAll('#' + id + ' rect.bar')].map(r => ({
    key: r.dataset.key, count: r.dataset.count, width: r.getBoundingClientRect().width,
    text: document.querySelector('#' + id + ' text.count[data-key="' + r.dataset.key + '"]').textContent}));
  const tiles = {};
  for (const id of ['rows-total', 'rows-imported', 'rows-failed', 'rows-skipped']) tiles[id] = document.querySelector('#' + id + ' .n').textContent;
  return {
    status: document.querySelector('#status').textContent,
    tiles,
    charts: [...document.querySelectorAll('svg.chart')].map(size),
    reasons: bars('by-reason'), layers: bars('by-layer'), fields: bars('top-fields'),
    lines: [...document.querySelectorAll('#over-time .series')].map(size),
    sample_rows: document.querySelectorAll('#samples tbody tr').length,
    bad_cells: document.querySelectorAll('#samples td.bad').length,
    scripts: document.scripts.length,
  };
})()`

// TestReportInBrowser imports a generated file with failures of many
// reasons on the embedded engine, opens the report.html finalization wrote
// in headless Chromium, and checks what a person would: every chart is
// drawn, the reason chart has one bar per reason present, and every number
// shown is the batch's.
func TestReportInBrowser(t *testing.T) {
	bin := chromium(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "products.csv")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	if err := recordtest.WriteProductCSV(w, 4000, 7, true); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	run, err := embedded.Run(t.Context(), embedded.Config{DB: filepath.Join(dir, "t.db"), Shards: 2, Every: 100,
		Split: split.Options{ShardRows: 1000}}, file)
	if err != nil {
		t.Fatal(err)
	}
	b := run.Batch
	if b.Counts.Failed == 0 || len(b.ByReason) < 5 || b.Shards < 4 {
		t.Fatalf("the fixture should fail rows of many reasons over several shards: %+v", b)
	}
	page := filepath.Join(dir, "reports", b.ID, report.Name)
	if _, err := os.Stat(page); err != nil {
		t.Fatalf("finalization wrote no batch report: %v", err)
	}

	ctx := openPage(t, bin, dir, page, 1200)
	got, err := chromedp.Run(ctx, chromedp.Evaluate[shown](readPage))
	if err != nil {
		t.Fatalf("read the page drawn by chromium: %v", err)
	}

	if got.Status != string(b.Status) || got.Scripts != 0 {
		t.Errorf("status shown %q (want %q), %d scripts (want none)", got.Status, b.Status, got.Scripts)
	}
	for id, want := range map[string]int64{"rows-total": b.Counts.Total, "rows-imported": b.Counts.Imported,
		"rows-failed": b.Counts.Failed, "rows-skipped": b.Counts.Skipped} {
		if n := parseNum(t, got.Tiles[id]); n != want {
			t.Errorf("%s shows %q, the batch has %d", id, got.Tiles[id], want)
		}
	}
	for _, c := range got.Charts {
		if c.Width <= 0 || c.Height <= 0 {
			t.Errorf("chart in #%s drawn %gx%g", c.ID, c.Width, c.Height)
		}
	}
	if len(got.Charts) < 5 {
		t.Errorf("%d charts drawn, want 5 (outcome, layers, reasons, fields, over time)", len(got.Charts))
	}

	if len(got.Reasons) != len(b.ByReason) {
		t.Errorf("%d reason bars, the batch has %d reasons %v", len(got.Reasons), len(b.ByReason), b.ByReason)
	}
	var byLayer state.LayerCounts
	var sum int64
	for _, bar := range got.Reasons {
		want, ok := b.ByReason[failure.Reason(bar.Key)]
		if !ok || bar.Count != strconv.FormatInt(want, 10) || parseNum(t, bar.Text) != want || bar.Width <= 0 {
			t.Errorf("reason bar %s: count %s shown %q width %g; the batch has %d", bar.Key, bar.Count, bar.Text, bar.Width, want)
		}
		byLayer.Add(failure.Reason(bar.Key).Layer(), want)
		sum += want
	}
	if sum != b.Counts.Failed {
		t.Errorf("reason bars add up to %d, the batch failed %d rows", sum, b.Counts.Failed)
	}
	for _, bar := range got.Layers {
		if want := byLayer.Get(failure.Layer(bar.Key)); parseNum(t, bar.Text) != want || bar.Width <= 0 {
			t.Errorf("layer bar %s shows %q (width %g), the batch's reasons add up to %d", bar.Key, bar.Text, bar.Width, want)
		}
	}
	if len(got.Fields) == 0 {
		t.Errorf("no top-field bars")
	}

	shards, err := sqliteShards(t, filepath.Join(dir, "t.db"), b.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Lines) != len(shards) {
		t.Errorf("%d shard lines drawn, the batch has %d shards", len(got.Lines), len(shards))
	}
	for _, l := range got.Lines {
		if l.Height <= 0 { // a line rises with the rows done; a dot is a circle
			t.Errorf("a shard line is flat or not drawn: %+v", l)
		}
	}
	if want := min(report.MaxSamples, report.SamplesPerReason*len(b.ByReason)); got.SampleRows != want || got.BadCells == 0 {
		t.Errorf("%d sample rows (%d outlined cells), want %d", got.SampleRows, got.BadCells, want)
	}
}

// openPage opens page in a headless chromium bin, width pixels wide, with
// its profile under dir, and returns the context to evaluate in.
func openPage(t *testing.T, bin, dir, page string, width int) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(filepath.Join(dir, "chromium")), chromedp.WindowSize(width, 900))
	actx, cancel := chromedp.NewExecAllocator(t.Context(), opts...)
	t.Cleanup(cancel)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, cancel = context.WithTimeout(ctx, 2*time.Minute) // a bound on a hung browser, not a performance check
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx, chromedp.Navigate("file://"+page), chromedp.WaitReady(chromedp.CSS("#samples"))); err != nil {
		t.Fatalf("open %s in chromium: %v", page, err)
	}
	return ctx
}

// TestReportNarrowColumns: on a narrow window the sample table keeps SKUs,
// prices and other short values on one line (the table scrolls sideways);
// a long description still wraps within its column.
func TestReportNarrowColumns(t *testing.T) {
	bin := chromium(t)
	dir := t.TempDir()
	header := []string{"sku", "name", "category", "brand", "price", "currency", "stock", "status", "description", "image_urls"}
	long := strings.Repeat("a long description of the product that goes on ", 6)
	agg := &report.Aggregate{}
	for i := range 6 {
		agg.Add(failure.Record{BatchID: "b-narrow", Sheet: "-", Row: int64(2 + i), Layer: failure.LayerSemantic, Reason: failure.InvalidNumber,
			Field: "price", Message: "price is not a number", FieldMapping: map[string]string{"price": "price"},
			Cells: []string{fmt.Sprintf("SKU-2024-%06d", 100000+i), "Stainless steel kettle", "Home/Kitchen", "Acme",
				fmt.Sprintf("12345.%02d", i), "CNY", "100", "active", long, "https://img.example.com/p/" + strconv.Itoa(i) + ".jpg"}})
	}
	page := filepath.Join(dir, report.Name)
	f, err := os.Create(page)
	if err != nil {
		t.Fatal(err)
	}
	err = report.Render(f, report.Data{Batch: state.Batch{ID: "b-narrow", Status: state.BatchCompletedWithErrors,
		Counts: state.Counts{Total: 6, Failed: 6}, Layout: state.Layout{Format: "csv", Header: header}}, Failures: agg, Generated: time.Now()})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	ctx := openPage(t, bin, dir, page, 480)
	type lines struct {
		Text  string `json:"text"`
		Lines int    `json:"lines"`
	}
	got, err := chromedp.Run(ctx, chromedp.Evaluate[[]lines](`[...document.querySelectorAll('#samples tbody td')].map(td => {
  const tops = new Set(), walk = document.createTreeWalker(td, NodeFilter.SHOW_TEXT);
  for (let n = walk.nextNode(); n; n = walk.nextNode()) {
    const r = document.createRange(); r.selectNodeContents(n);
    for (const x of r.getClientRects()) tops.add(Math.round(x.top));
  }
  return {text: td.textContent, lines: tops.size};
})`))
	if err != nil {
		t.Fatalf("read the sample table: %v", err)
	}
	if len(got) == 0 {
		t.Fatal("no sample cells drawn")
	}
	for _, c := range got {
		short := !strings.ContainsAny(strings.TrimSpace(c.Text), " ") && len(c.Text) <= 40
		if short && c.Lines > 1 {
			t.Errorf("%q is drawn on %d lines, want one", c.Text, c.Lines)
		}
		if c.Text == long && c.Lines < 2 {
			t.Errorf("the long description is drawn on one line: the column does not wrap")
		}
	}
}

// parseNum reads a number as the page shows it ("1,234").
func parseNum(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(strings.ReplaceAll(strings.TrimSpace(s), ",", ""), 10, 64)
	if err != nil {
		t.Errorf("not a number: %q", s)
		return -1
	}
	return n
}

func sqliteShards(t *testing.T, db, id string) ([]state.Shard, error) {
	t.Helper()
	s, err := sqlite.Open(db, sqlite.Options{})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", db, err)
	}
	defer s.Close()
	return s.ListShards(t.Context(), id)
}
