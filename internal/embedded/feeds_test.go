package embedded

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/catalog-import/catalog-import/internal/catalog"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/local/sqlite"
	"github.com/catalog-import/catalog-import/internal/profile"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/state"
)

// This file holds the end-to-end tests of feeds (issue 11): write modes,
// upload order and superseded rows, on the embedded engine.

// feeds is one embedded database that files are run against in turn.
type feeds struct {
	t   *testing.T
	dir string
	db  string
	n   int // files written so far
}

func newFeeds(t *testing.T) *feeds {
	dir := t.TempDir()
	return &feeds{t: t, dir: dir, db: filepath.Join(dir, "i.db")}
}

// config is the run configuration for a file under write mode (one shard at
// a time, 50 rows a checkpoint, 100-row shards: runs are deterministic).
func (f *feeds) config(mode string) Config {
	f.t.Helper()
	p, err := profile.Parse([]byte("name: feed-" + mode + "\nwrite_mode: " + mode + "\n"))
	if err != nil {
		f.t.Fatal(err)
	}
	return Config{DB: f.db, Profile: p, Every: 50, Shards: 1, Pool: 2, Split: split.Options{ShardRows: 100}}
}

// file writes a CSV file and returns its path.
func (f *feeds) file(text string) string {
	f.t.Helper()
	f.n++
	path := filepath.Join(f.dir, fmt.Sprintf("feed-%d.csv", f.n))
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		f.t.Fatal(err)
	}
	return path
}

// run imports path under mode to the end.
func (f *feeds) run(path, mode string) state.Batch {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sum, err := Run(ctx, f.config(mode), path)
	if err != nil {
		f.t.Fatalf("run %s (%s): %v", filepath.Base(path), mode, err)
	}
	return sum.Batch
}

// stopAfter runs path under mode and stops it (a context cancel, as a
// Ctrl-C would) at its sink write number `writes`, before that write: the
// batch is left RUNNING with the rows of the earlier writes checkpointed.
func (f *feeds) stopAfter(path, mode string, writes int) state.Batch {
	f.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := f.config(mode)
	var mu sync.Mutex
	calls := 0
	cfg.wrapSink = func(s catalog.Sink) catalog.Sink {
		return sinkFunc(func(ctx context.Context, m catalog.WriteMode, ps []catalog.Product) ([]catalog.Outcome, error) {
			mu.Lock()
			calls++
			stop := calls > writes
			mu.Unlock()
			if stop {
				cancel()
				return nil, ctx.Err()
			}
			return s.Write(ctx, m, ps)
		})
	}
	_, err := Run(ctx, cfg, path)
	if !errors.Is(err, context.Canceled) {
		f.t.Fatalf("stopped run of %s: %v, want context.Canceled", filepath.Base(path), err)
	}
	b := f.batchOf(path, mode)
	if b.Status != state.BatchRunning {
		f.t.Fatalf("stopped batch %s is %s, want RUNNING", b.ID, b.Status)
	}
	return b
}

// sinkFunc is a catalog.Sink made of a function.
type sinkFunc func(ctx context.Context, m catalog.WriteMode, ps []catalog.Product) ([]catalog.Outcome, error)

func (s sinkFunc) Write(ctx context.Context, m catalog.WriteMode, ps []catalog.Product) ([]catalog.Outcome, error) {
	return s(ctx, m, ps)
}

// open opens the database to read it (after a run: the run's lock is free).
func (f *feeds) open() *sqlite.DB {
	f.t.Helper()
	db, err := sqlite.Open(f.db, sqlite.Options{})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { db.Close() })
	return db
}

// batchOf is the stored batch of path under mode (the newest one).
func (f *feeds) batchOf(path, mode string) state.Batch {
	f.t.Helper()
	db := f.open()
	defer db.Close()
	bs, err := db.ListBatches(context.Background(), 0)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, b := range bs {
		if b.Source.URI == path && b.RuleVersion == f.config(mode).Profile.RuleVersion() {
			return b
		}
	}
	f.t.Fatalf("no batch of %s", path)
	return state.Batch{}
}

// products returns the catalog's products with skus (absent ones left out).
func (f *feeds) products(skus ...string) map[string]catalog.Product {
	f.t.Helper()
	db := f.open()
	defer db.Close()
	out := map[string]catalog.Product{}
	for _, sku := range skus {
		p, ok, err := db.Get(context.Background(), sku)
		if err != nil {
			f.t.Fatal(err)
		}
		if ok {
			out[sku] = p
		}
	}
	return out
}

// skus is SKU-000 ... SKU-(n-1).
func skus(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("SKU-%03d", i)
	}
	return out
}

// fullCSV is a full export of n products: name, category, price and stock
// carry tag so that a test can tell which file a value came from.
func fullCSV(n int, tag string, price, stock int) string {
	var b strings.Builder
	b.WriteString("sku,name,category,price,stock\n")
	for i := range n {
		fmt.Fprintf(&b, "SKU-%03d,Item %d %s,Home,%d.%02d,%d\n", i, i, tag, price, i%100, stock)
	}
	return b.String()
}

// reconciled checks the invariant every finished batch keeps.
func reconciled(t *testing.T, b state.Batch) {
	t.Helper()
	if !b.Status.Finished() || b.Counts.Done() != b.Counts.Total {
		t.Errorf("batch %s %s %+v: not finished with imported + superseded + failed + skipped = total", b.ID, b.Status, b.Counts)
	}
}

// TestStockFeedInUpdateMode: a stock-only file (sku,stock) is REJECTED
// under the default upsert profile (name, category and price are required
// to create products), and imports in update mode, changing only stock; a
// SKU not in the catalog is an UnknownSKU failure.
func TestStockFeedInUpdateMode(t *testing.T) {
	t.Parallel()
	f := newFeeds(t)
	full := f.run(f.file(fullCSV(5, "v1", 10, 50)), "upsert")
	if full.Status != state.BatchCompleted {
		t.Fatalf("full export: %s %+v %q", full.Status, full.Counts, full.Message)
	}
	stock := "sku,stock\nSKU-001,3\nSKU-002,0\nSKU-999,7\n"
	if b := f.run(f.file(stock), "upsert"); b.Status != state.BatchRejected || !strings.Contains(b.Message, "missing required columns: name") {
		t.Errorf("stock feed under upsert: %s %q, want REJECTED naming name", b.Status, b.Message)
	}
	b := f.run(f.file(stock), "update")
	want := state.Counts{Total: 3, Imported: 2, Failed: 1}
	if b.Status != state.BatchCompletedWithErrors || b.Counts != want || b.ByReason[failure.UnknownSKU] != 1 {
		t.Fatalf("stock feed in update mode: %s %+v %v %q, want COMPLETED_WITH_ERRORS %+v, 1 UnknownSKU", b.Status, b.Counts, b.ByReason, b.Message, want)
	}
	db := f.open()
	recs, err := db.Failures(context.Background(), b.ID, state.FailureFilter{})
	if err != nil || len(recs) != 1 || recs[0].Row != 4 || recs[0].Reason != failure.UnknownSKU || recs[0].Field != "sku" || recs[0].Layer != failure.LayerBusiness {
		t.Errorf("failure records %+v (%v), want row 4 UnknownSKU on sku (business)", recs, err)
	}
	db.Close()
	got := f.products("SKU-000", "SKU-001", "SKU-002", "SKU-999")
	for sku, stock := range map[string]int64{"SKU-000": 50, "SKU-001": 3, "SKU-002": 0} {
		p := got[sku]
		if p.Stock != stock || !strings.HasSuffix(p.Name, " v1") || p.Category != "Home" || !strings.HasPrefix(p.Price, "10.") {
			t.Errorf("%s after the stock feed: %+v, want stock %d and the full export's other fields", sku, p, stock)
		}
	}
	if _, ok := got["SKU-999"]; ok {
		t.Errorf("update mode created SKU-999")
	}
}

// TestUpsertWithoutStockColumnKeepsStocks: a full file without a stock
// column changes names and prices but no stock; a product it creates gets
// the default stock.
func TestUpsertWithoutStockColumnKeepsStocks(t *testing.T) {
	t.Parallel()
	f := newFeeds(t)
	f.run(f.file(fullCSV(4, "v1", 10, 50)), "upsert")
	b := f.run(f.file("sku,name,category,price\nSKU-000,Lamp v2,Home,20.00\nSKU-001,Mug v2,Home,21.00\nSKU-777,New,Home,1.00\n"), "upsert")
	if b.Status != state.BatchCompleted || b.Counts != (state.Counts{Total: 3, Imported: 3}) {
		t.Fatalf("second export: %s %+v %q", b.Status, b.Counts, b.Message)
	}
	got := f.products("SKU-000", "SKU-001", "SKU-002", "SKU-777")
	cases := []struct {
		sku, name, price string
		stock            int64
	}{
		{"SKU-000", "Lamp v2", "20.00", 50},
		{"SKU-001", "Mug v2", "21.00", 50},
		{"SKU-002", "Item 2 v1", "10.02", 50},
		{"SKU-777", "New", "1.00", 0}, // created: the profile's default stock
	}
	for _, c := range cases {
		p := got[c.sku]
		if p.Name != c.name || p.Price != c.price || p.Stock != c.stock {
			t.Errorf("%s: %q %s stock %d, want %q %s stock %d", c.sku, p.Name, p.Price, p.Stock, c.name, c.price, c.stock)
		}
	}
}

// TestDeleteFeedStaysDeleted: a discontinued list in delete mode removes
// its SKUs, and an older full export that runs (resumes) afterwards does
// not bring them back: those rows are superseded, not failed, and the
// batch completes.
func TestDeleteFeedStaysDeleted(t *testing.T) {
	t.Parallel()
	f := newFeeds(t)
	f.run(f.file(fullCSV(120, "v1", 10, 50)), "upsert")
	olderPath := f.file(fullCSV(120, "v2", 30, 60))
	older := f.stopAfter(olderPath, "upsert", 0) // registered (order 2), nothing written yet
	del := f.run(f.file("sku\nSKU-001\nSKU-002\nSKU-003\nSKU-404\n"), "delete")
	if del.Status != state.BatchCompleted || del.Counts != (state.Counts{Total: 4, Imported: 4}) || del.Order <= older.Order {
		t.Fatalf("delete feed: %s %+v order %d (older batch %d) %q", del.Status, del.Counts, del.Order, older.Order, del.Message)
	}
	if got := f.products("SKU-001", "SKU-002", "SKU-003"); len(got) != 0 {
		t.Fatalf("deleted products still there: %v", got)
	}
	b := f.run(olderPath, "upsert")
	want := state.Counts{Total: 120, Imported: 117, Superseded: 3}
	if b.ID != older.ID || b.Status != state.BatchCompleted || b.Counts != want {
		t.Errorf("older export resumed after the delete: %s %s %+v %q, want %s COMPLETED %+v", b.ID, b.Status, b.Counts, b.Message, older.ID, want)
	}
	got := f.products(skus(120)...)
	for _, sku := range []string{"SKU-001", "SKU-002", "SKU-003"} {
		if p, ok := got[sku]; ok {
			t.Errorf("%s came back: %+v", sku, p)
		}
	}
	if p := got["SKU-004"]; p.Name != "Item 4 v2" || p.Stock != 60 {
		t.Errorf("SKU-004: %+v, want the older export's values (it is newer than the first)", p)
	}
}

// TestOlderBatchResumedAfterNewerFeed is the regression of issue 11: batch
// A (an older full export) is stopped half way, batch B (newer) that shares
// its SKUs completes, and A is resumed: A COMPLETES (it used to end FAILED,
// "reconciliation failed ... (-N)"), the fields B wrote keep B's values, and
// A's rows all of whose fields B holds are superseded.
func TestOlderBatchResumedAfterNewerFeed(t *testing.T) {
	t.Parallel()
	const n = 400
	cases := []struct {
		name   string
		mode   string // B's write mode
		newer  string // B's file
		price  func(i int) string
		name_  func(i int) string
		wantSu int64 // A's superseded rows
	}{
		{"price feed", "update", priceCSV(n, 77),
			func(i int) string { return fmt.Sprintf("77.%02d", i%100) },
			func(i int) string { return fmt.Sprintf("Item %d A", i) }, 0},
		{"full export", "upsert", fullCSV(n, "B", 88, 8),
			func(i int) string { return fmt.Sprintf("88.%02d", i%100) },
			func(i int) string { return fmt.Sprintf("Item %d B", i) }, -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFeeds(t)
			f.run(f.file(fullCSV(n, "I", 10, 50)), "upsert") // the catalog before A
			pathA := f.file(fullCSV(n, "A", 20, 20))
			a := f.stopAfter(pathA, "upsert", 3)
			if done := a.Counts.Done(); done == 0 || done >= n {
				t.Fatalf("A stopped with %d of %d rows done, want part of them", done, n)
			}
			b := f.run(f.file(tc.newer), tc.mode)
			if b.Status != state.BatchCompleted || b.Counts.Imported != n || b.Order <= a.Order {
				t.Fatalf("B: %s %+v order %d (A %d) %q", b.Status, b.Counts, b.Order, a.Order, b.Message)
			}
			resumed := f.run(pathA, "upsert")
			reconciled(t, resumed)
			if resumed.ID != a.ID || resumed.Status != state.BatchCompleted || resumed.Counts.Failed != 0 {
				t.Fatalf("A resumed: %s %s %+v %q, want %s COMPLETED", resumed.ID, resumed.Status, resumed.Counts, resumed.Message, a.ID)
			}
			wantSu := tc.wantSu
			if wantSu < 0 { // every row A had left is B's in every field
				wantSu = n - a.Counts.Done()
			}
			if resumed.Counts.Superseded != wantSu || resumed.Counts.Imported != n-wantSu {
				t.Errorf("A resumed: %+v, want %d superseded", resumed.Counts, wantSu)
			}
			got := f.products(skus(n)...)
			for i, sku := range skus(n) {
				p := got[sku]
				if p.Price != tc.price(i) || p.Name != tc.name_(i) {
					t.Errorf("%s: %q %s, want %q %s", sku, p.Name, p.Price, tc.name_(i), tc.price(i))
					break
				}
			}
		})
	}
}

// priceCSV is a price feed (sku,price) of n products.
func priceCSV(n, price int) string {
	var b strings.Builder
	b.WriteString("sku,price\n")
	for i := range n {
		fmt.Fprintf(&b, "SKU-%03d,%d.%02d\n", i, price, i%100)
	}
	return b.String()
}

// TestDryRunOfUpdateFeed: a dry run has an empty catalog, so it cannot
// tell an unknown SKU: an update feed's rows count as imported there, not
// as UnknownSKU failures; rows with bad values still fail.
func TestDryRunOfUpdateFeed(t *testing.T) {
	t.Parallel()
	f := newFeeds(t)
	cfg := f.config("update")
	cfg.DB = sqlite.Memory
	sum, err := Run(context.Background(), cfg, f.file("sku,stock\nSKU-001,3\nSKU-002,-1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if b := sum.Batch; b.Status != state.BatchCompletedWithErrors || b.Counts != (state.Counts{Total: 2, Imported: 1, Failed: 1}) || b.ByReason[failure.OutOfRange] != 1 {
		t.Errorf("dry run of a stock feed: %s %+v %v", b.Status, b.Counts, b.ByReason)
	}
}

// TestReplaceResetsAbsentFields: in replace mode the product becomes the
// row: a field without a column takes its default (stock 0), unlike upsert.
func TestReplaceResetsAbsentFields(t *testing.T) {
	t.Parallel()
	f := newFeeds(t)
	f.run(f.file(fullCSV(3, "v1", 10, 50)), "upsert")
	b := f.run(f.file("sku,name,category,price\nSKU-000,Lamp v2,Home,20.00\n"), "replace")
	if b.Status != state.BatchCompleted || b.Counts != (state.Counts{Total: 1, Imported: 1}) {
		t.Fatalf("replace: %s %+v %q", b.Status, b.Counts, b.Message)
	}
	got := f.products("SKU-000", "SKU-001")
	if p := got["SKU-000"]; p.Name != "Lamp v2" || p.Price != "20.00" || p.Stock != 0 {
		t.Errorf("replaced SKU-000: %+v, want Lamp v2 20.00 stock 0 (the default)", p)
	}
	if p := got["SKU-001"]; p.Stock != 50 {
		t.Errorf("SKU-001 (not in the replace file): %+v, want untouched", p)
	}
}
