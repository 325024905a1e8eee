// Package catalogtest is the contract suite of the product sink port
// (catalog.Sink with its catalog.Reader): every adapter
// (internal/local/sqlite, internal/aws/dynamocatalog) calls Run from its tests and
// must pass all of it. It keeps invariant 4 (replays store the same products)
// and invariant 5 (the lowest position of a SKU in a batch wins, whatever
// order shards and calls run in).
//
// Where the port's comments leave room, the suite pins one reading so that
// every adapter behaves the same; each such test says "(decision)".
package catalogtest

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/catalog-import/catalog-import/internal/catalog"
)

// SinkReader is what the suite tests: a sink and the reader of its products.
type SinkReader interface {
	catalog.Sink
	catalog.Reader
}

// Run runs the contract of catalog.Sink and catalog.Reader with the default
// Options. newSink is called once per subtest (subtests run in parallel);
// SKUs and batch ids are unique per subtest, so sinks may share storage, but
// CountBatch and Get must see the subtest's own writes.
func Run(t *testing.T, newSink func(t *testing.T) interface {
	catalog.Sink
	catalog.Reader
}) {
	t.Helper()
	RunWith(t, newSink, Options{})
}

// Options tune the suite for slow adapters. The zero value is the defaults.
type Options struct {
	// PropertyCases is how many random cases the model-based property test
	// runs (default 300).
	PropertyCases int
}

// RunWith is Run with options.
func RunWith(t *testing.T, newSink func(t *testing.T) interface {
	catalog.Sink
	catalog.Reader
}, o Options) {
	t.Helper()
	if o.PropertyCases <= 0 {
		o.PropertyCases = 300
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newSink)
		})
	}
	t.Run("MatchesSequentialModel", func(t *testing.T) {
		t.Parallel()
		testModel(t, newSink(t), o.PropertyCases)
	})
}

type newSinkFunc = func(t *testing.T) interface {
	catalog.Sink
	catalog.Reader
}

var tests = []struct {
	name string
	fn   func(t *testing.T, newSink newSinkFunc)
}{
	{"NewSKUIsWritten", one(testNew)},
	{"ReplayIsWrittenAndUnchanged", one(testReplay)},
	{"SameBatchLowerPositionHoldsIsDuplicate", one(testLowerHolds)},
	{"SameBatchHigherPositionHoldsIsDisplaced", one(testHigherHolds)},
	{"DisplacedRowsAreReportedUntilReplaced", one(testDisplacedChain)},
	{"SheetIndexOrdersBeforeRow", one(testSheetOrder)},
	{"OtherBatchHolds/Upsert", one(testOtherBatchUpsert)},
	{"OtherBatchHolds/CreateOnly", one(testOtherBatchCreateOnly)},
	{"CreateOnlyKeepsSameBatchRules", one(testCreateOnlySameBatch)},
	{"OneCall/LowerFirst", one(testOneCallLowerFirst)},
	{"OneCall/HigherFirst", one(testOneCallHigherFirst)},
	{"OneCall/ManyProducts", one(testOneCallMany)},
	{"EmptyWrite", one(testEmpty)},
	{"FieldsRoundTrip", one(testRoundTrip)},
	{"GetMissing", one(testGetMissing)},
	{"CountBatch", one(testCountBatch)},
	{"OrderIndependence", testOrderIndependence},
	{"Order0/LastWriterWins", one(testOrder0)},
	{"Upsert/NewerBatchChangesPresentFields", one(testUpsertNewer)},
	{"Upsert/AbsentColumnNeverResets", one(testAbsentNeverResets)},
	{"Upsert/DefaultsOnlyAtCreation", one(testDefaultsAtCreation)},
	{"Upsert/OlderBatchIsSupersededOrFillsOlderFields", one(testUpsertOlder)},
	{"Replace", one(testReplace)},
	{"Update", one(testUpdate)},
	{"CreateOnly/AfterDelete", one(testCreateOnlyAfterDelete)},
	{"Delete/TombstoneBeatsOlderWrites", one(testDeleteTombstone)},
	{"Delete/NewerWriteRecreates", one(testDeleteRecreate)},
	{"Delete/OlderDeleteUnderNewerCreation", one(testDeleteOlder)},
	{"Delete/UnknownSKU", one(testDeleteUnknown)},
	{"ReplayIsIdempotentInEveryMode", one(testReplayModes)},
	{"StampsOfUnknownSKU", one(testStampsMissing)},
	{"ConcurrentBatches", testConcurrentBatches},
}

func one(fn func(t *testing.T, s SinkReader)) func(*testing.T, newSinkFunc) {
	return func(t *testing.T, newSink newSinkFunc) { fn(t, newSink(t)) }
}

var opts = cmp.Options{cmpopts.EquateEmpty()}

var seq atomic.Int64

// newID returns an id (SKU prefix or batch id) no other subtest uses. It
// ends in a sequence number: the order of a batch (orderOf), so a batch made
// later is newer.
func newID(prefix string) string {
	return fmt.Sprintf("%s-%x-%d", prefix, time.Now().UnixNano()&0xffffffffff, seq.Add(1))
}

// orderOf returns the upload order of a batch id newID made.
func orderOf(batch string) int64 {
	n, err := strconv.ParseInt(batch[strings.LastIndexByte(batch, '-')+1:], 10, 64)
	if err != nil {
		panic("catalogtest: batch id " + batch + " not from newID")
	}
	return n
}

func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: unexpected error: %v", what, err)
	}
}

func diff(t *testing.T, what string, want, got any) {
	t.Helper()
	if d := cmp.Diff(want, got, opts); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", what, d)
	}
}

func pos(sheetIndex int, sheet string, row int64) catalog.Position {
	return catalog.Position{SheetIndex: sheetIndex, Sheet: sheet, Row: row}
}

// product returns a product of batch at position p; its fields tell where
// it came from, so two rows of one SKU differ in every field but the SKU.
func product(batch, sku string, p catalog.Position) catalog.Product {
	return catalog.Product{
		SKU: sku, Name: fmt.Sprintf("Product %s %s", sku, p), Category: "电子/鼠标", Brand: "Brand " + batch,
		Price: fmt.Sprintf("%d.%02d", p.Row%1000, p.Row%100), Currency: "CNY", Stock: p.Row, Status: "active",
		Description: fmt.Sprintf("row %d of sheet %q in %s", p.Row, p.Sheet, batch),
		ImageURLs:   []string{fmt.Sprintf("https://img.example.com/%s/%d-1.jpg", sku, p.Row), "https://img.example.com/shared.png"},
		BatchID:     batch, Source: p, Offset: 1000 + 97*p.Row + int64(p.SheetIndex)<<32, Length: 90 + p.Row%7,
		Order: orderOf(batch),
	}
}

func write(t *testing.T, s SinkReader, mode catalog.WriteMode, ps ...catalog.Product) []catalog.Outcome {
	t.Helper()
	out, err := s.Write(t.Context(), mode, ps)
	must(t, err, "Write")
	if len(out) != len(ps) {
		t.Fatalf("Write of %d products returned %d outcomes", len(ps), len(out))
	}
	return out
}

func get(t *testing.T, s SinkReader, sku string) catalog.Product {
	t.Helper()
	p, ok, err := s.Get(t.Context(), sku)
	must(t, err, "Get")
	if !ok {
		t.Fatalf("Get(%s): not found", sku)
	}
	return p
}

var written = catalog.Outcome{Result: catalog.Written}

func testNew(t *testing.T, s SinkReader) {
	p := product(newID("batch"), newID("SKU"), pos(0, "-", 2))
	diff(t, "outcomes", []catalog.Outcome{written}, write(t, s, catalog.Upsert, p))
	diff(t, "stored product", p, get(t, s, p.SKU))
}

func testReplay(t *testing.T, s SinkReader) {
	batch, sku := newID("batch"), newID("SKU")
	p := product(batch, sku, pos(0, "-", 7))
	write(t, s, catalog.Upsert, p)
	for _, mode := range []catalog.WriteMode{catalog.Upsert, catalog.CreateOnly} {
		diff(t, "outcomes of a replay in "+string(mode), []catalog.Outcome{written}, write(t, s, mode, p))
		diff(t, "stored product after a replay", p, get(t, s, sku))
	}
}

func testLowerHolds(t *testing.T, s SinkReader) {
	batch, sku := newID("batch"), newID("SKU")
	low, high := product(batch, sku, pos(0, "-", 5)), product(batch, sku, pos(0, "-", 9))
	write(t, s, catalog.Upsert, low)
	diff(t, "outcomes", []catalog.Outcome{{Result: catalog.Duplicate, Holder: low.Source}}, write(t, s, catalog.Upsert, high))
	diff(t, "stored product", low, get(t, s, sku))
}

func testHigherHolds(t *testing.T, s SinkReader) {
	batch, sku := newID("batch"), newID("SKU")
	low, high := product(batch, sku, pos(0, "-", 5)), product(batch, sku, pos(0, "-", 9))
	write(t, s, catalog.Upsert, high)
	want := []catalog.Outcome{{Result: catalog.Written, Displaced: refs(high)}}
	diff(t, "outcomes (Displaced is the old row, Offset and Length included)", want, write(t, s, catalog.Upsert, low))
	diff(t, "stored product", low, get(t, s, sku))
}

// refs returns products as Displaced reports them: identity and location.
func refs(ps ...catalog.Product) []catalog.Product {
	out := make([]catalog.Product, len(ps))
	for i, p := range ps {
		out[i] = catalog.Product{SKU: p.SKU, BatchID: p.BatchID, Source: p.Source, Offset: p.Offset, Length: p.Length}
	}
	return out
}

// testDisplacedChain: every write that stores a SKU for its batch reports all
// the rows displaced so far, replays included, so that a caller that crashed
// before recording them is told again; another batch starts a new list.
func testDisplacedChain(t *testing.T, s SinkReader) {
	batch, sku := newID("batch"), newID("SKU")
	r9, r5, r2, r7 := product(batch, sku, pos(0, "-", 9)), product(batch, sku, pos(0, "-", 5)),
		product(batch, sku, pos(0, "-", 2)), product(batch, sku, pos(0, "-", 7))
	diff(t, "row 9", []catalog.Outcome{written}, write(t, s, catalog.Upsert, r9))
	diff(t, "row 5 displaces 9", []catalog.Outcome{{Result: catalog.Written, Displaced: refs(r9)}}, write(t, s, catalog.Upsert, r5))
	diff(t, "row 2 displaces 5", []catalog.Outcome{{Result: catalog.Written, Displaced: refs(r9, r5)}}, write(t, s, catalog.Upsert, r2))
	diff(t, "replay of row 2", []catalog.Outcome{{Result: catalog.Written, Displaced: refs(r9, r5)}}, write(t, s, catalog.Upsert, r2))
	diff(t, "row 7", []catalog.Outcome{{Result: catalog.Duplicate, Holder: r2.Source}}, write(t, s, catalog.Upsert, r7))
	next := product(newID("batch"), sku, pos(0, "-", 3))
	diff(t, "another batch", []catalog.Outcome{written}, write(t, s, catalog.Upsert, next))
	diff(t, "stored product", next, get(t, s, sku))
}

func testSheetOrder(t *testing.T, s SinkReader) {
	batch, sku := newID("batch"), newID("SKU")
	first := product(batch, sku, pos(0, "Zeta", 900)) // first sheet, later row
	second := product(batch, sku, pos(1, "Alpha", 2))
	write(t, s, catalog.Upsert, second)
	diff(t, "outcomes", []catalog.Outcome{{Result: catalog.Written, Displaced: refs(second)}}, write(t, s, catalog.Upsert, first))
	diff(t, "outcomes", []catalog.Outcome{{Result: catalog.Duplicate, Holder: first.Source}}, write(t, s, catalog.Upsert, second))
	diff(t, "stored product", first, get(t, s, sku))
}

// testOtherBatchUpsert: a newer batch's row with every column changes every
// field, wherever it is in its file.
func testOtherBatchUpsert(t *testing.T, s SinkReader) {
	sku := newID("SKU")
	old := product(newID("batch"), sku, pos(0, "-", 2))
	write(t, s, catalog.Upsert, old)
	// The other batch's position is irrelevant: a higher row still changes it.
	p := product(newID("batch"), sku, pos(0, "-", 50))
	diff(t, "outcomes", []catalog.Outcome{written}, write(t, s, catalog.Upsert, p))
	diff(t, "stored product", p, get(t, s, sku))
}

func testOtherBatchCreateOnly(t *testing.T, s SinkReader) {
	sku := newID("SKU")
	old := product(newID("batch"), sku, pos(0, "-", 50))
	write(t, s, catalog.Upsert, old)
	p := product(newID("batch"), sku, pos(0, "-", 2))
	diff(t, "outcomes", []catalog.Outcome{{Result: catalog.Exists}}, write(t, s, catalog.CreateOnly, p))
	diff(t, "stored product", old, get(t, s, sku))
	// A new SKU is created in create-only mode.
	n := product(p.BatchID, newID("SKU"), pos(0, "-", 3))
	diff(t, "outcomes of a new SKU", []catalog.Outcome{written}, write(t, s, catalog.CreateOnly, n))
	diff(t, "stored new product", n, get(t, s, n.SKU))
}

// testCreateOnlySameBatch: create-only refuses other batches' products only;
// within the batch the lowest position still wins.
func testCreateOnlySameBatch(t *testing.T, s SinkReader) {
	batch, sku := newID("batch"), newID("SKU")
	low, high := product(batch, sku, pos(0, "-", 4)), product(batch, sku, pos(0, "-", 8))
	write(t, s, catalog.CreateOnly, high)
	diff(t, "outcomes", []catalog.Outcome{{Result: catalog.Written, Displaced: refs(high)}}, write(t, s, catalog.CreateOnly, low))
	diff(t, "outcomes", []catalog.Outcome{{Result: catalog.Duplicate, Holder: low.Source}}, write(t, s, catalog.CreateOnly, high))
	diff(t, "stored product", low, get(t, s, sku))
}

func testOneCallLowerFirst(t *testing.T, s SinkReader) {
	batch, sku := newID("batch"), newID("SKU")
	low, high := product(batch, sku, pos(0, "-", 3)), product(batch, sku, pos(0, "-", 4))
	want := []catalog.Outcome{written, {Result: catalog.Duplicate, Holder: low.Source}}
	diff(t, "outcomes", want, write(t, s, catalog.Upsert, low, high))
	diff(t, "stored product", low, get(t, s, sku))
}

func testOneCallHigherFirst(t *testing.T, s SinkReader) {
	batch, sku := newID("batch"), newID("SKU")
	low, high := product(batch, sku, pos(0, "-", 3)), product(batch, sku, pos(0, "-", 4))
	want := []catalog.Outcome{written, {Result: catalog.Written, Displaced: refs(high)}}
	diff(t, "outcomes", want, write(t, s, catalog.Upsert, high, low))
	diff(t, "stored product", low, get(t, s, sku))
}

func testOneCallMany(t *testing.T, s SinkReader) {
	batch, pfx := newID("batch"), newID("SKU")
	other := product(newID("batch"), pfx+"-held", pos(0, "-", 2))
	write(t, s, catalog.Upsert, other)
	var ps []catalog.Product
	for row := int64(2); row < 1202; row++ { // more than any one statement or request carries
		ps = append(ps, product(batch, fmt.Sprintf("%s-%04d", pfx, row%1000), pos(0, "-", row)))
	}
	ps = append(ps, product(batch, pfx+"-held", pos(0, "-", 1202)))
	out := write(t, s, catalog.CreateOnly, ps...)
	for i, o := range out {
		p := ps[i]
		switch {
		case p.SKU == other.SKU:
			diff(t, "outcome of a SKU held by another batch", catalog.Outcome{Result: catalog.Exists}, o)
		case p.Source.Row < 1000:
			diff(t, fmt.Sprintf("outcome %d", i), written, o)
		default:
			want := written // rows 1000 and 1001 are the lowest of their SKUs
			if p.Source.Row%1000 >= 2 {
				want = catalog.Outcome{Result: catalog.Duplicate, Holder: ps[i-1000].Source}
			}
			diff(t, fmt.Sprintf("outcome %d", i), want, o)
		}
	}
	n, err := s.CountBatch(t.Context(), batch, "", 0, math.MaxInt64)
	must(t, err, "CountBatch")
	if n != 1000 {
		t.Errorf("CountBatch = %d, want 1000", n)
	}
	diff(t, "stored product of another batch", other, get(t, s, other.SKU))
}

func testEmpty(t *testing.T, s SinkReader) {
	out, err := s.Write(t.Context(), catalog.Upsert, nil)
	must(t, err, "Write(nil)")
	if len(out) != 0 {
		t.Errorf("Write(nil) = %d outcomes", len(out))
	}
}

func testRoundTrip(t *testing.T, s SinkReader) {
	batch := newID("batch")
	ps := []catalog.Product{
		{
			SKU: newID("SKU.x_y"), Name: "无线鼠标 Pro “限量版” 🖱", Category: "电脑/外设", Brand: "罗技 Logitech",
			Price: "12.50", Currency: "CNY", Stock: 0, Status: "draft",
			Description: "line 1\nline 2, \"quoted\", 'single'\r\n\ttab\\backslash <b>&amp;</b> \u0001",
			ImageURLs: []string{"https://例子.测试/图片 1.jpg?x=1&y=<2>", "http://img.example.com/a\"b.png",
				"https://img.example.com/3.webp"},
			BatchID: batch, Source: pos(3, "价格表 Sheet", 1_000_000_000_000), Offset: 1 << 40, Length: 123456,
		},
		{SKU: newID("SKU"), Name: "N", Category: "C", Price: "9999999.99", Currency: "USD", Stock: 1 << 40, Status: "active",
			BatchID: batch, Source: pos(0, "-", 2)},
		{SKU: newID("SKU"), Name: "Zero", Category: "C", Price: "0.00", Currency: "CNY", Status: "inactive",
			ImageURLs: []string{}, BatchID: batch, Source: pos(0, "-", 3), Length: 1},
	}
	write(t, s, catalog.Upsert, ps...)
	for _, p := range ps {
		diff(t, "stored product "+p.SKU, p, get(t, s, p.SKU))
	}
}

func testGetMissing(t *testing.T, s SinkReader) {
	_, ok, err := s.Get(t.Context(), newID("SKU-missing"))
	must(t, err, "Get")
	if ok {
		t.Errorf("Get of an unknown SKU: ok = true")
	}
}

func testCountBatch(t *testing.T, s SinkReader) {
	x, y, pfx := newID("batch-x"), newID("batch-y"), newID("SKU")
	var ps []catalog.Product
	for row := int64(2); row <= 11; row++ {
		ps = append(ps, product(x, fmt.Sprintf("%s-x-%d", pfx, row), pos(0, "-", row)))
	}
	for row := int64(2); row <= 6; row++ {
		ps = append(ps, product(x, fmt.Sprintf("%s-x2-%d", pfx, row), pos(1, "Sheet2", row)))
	}
	for row := int64(2); row <= 5; row++ {
		ps = append(ps, product(y, fmt.Sprintf("%s-y-%d", pfx, row), pos(0, "-", row)))
	}
	write(t, s, catalog.Upsert, ps...)
	count := func(batch, sheet string, from, to, want int64) {
		t.Helper()
		n, err := s.CountBatch(t.Context(), batch, sheet, from, to)
		must(t, err, "CountBatch")
		if n != want {
			t.Errorf("CountBatch(%s, %q, %d, %d) = %d, want %d", batch, sheet, from, to, n, want)
		}
	}
	count(x, "", 2, 11, 15)
	count(x, "", 0, math.MaxInt64, 15)
	count(x, "-", 2, 11, 10)
	count(x, "-", 4, 6, 3) // inclusive
	count(x, "-", 11, 11, 1)
	count(x, "Sheet2", 0, 100, 5)
	count(x, "Sheet2", 7, 100, 0)
	count(x, "", 12, 20, 0)
	count(y, "", 0, math.MaxInt64, 4)
	count(newID("batch-missing"), "", 0, math.MaxInt64, 0)
	// Another batch takes a SKU over: it no longer counts for x.
	write(t, s, catalog.Upsert, product(y, fmt.Sprintf("%s-x-%d", pfx, 3), pos(0, "-", 30)))
	count(x, "-", 2, 11, 9)
	count(y, "", 0, math.MaxInt64, 5)
}

// testOrderIndependence is invariant 5 under concurrency: the rows of one
// batch, with many duplicate SKUs over two sheets, are cut into shards that
// goroutines write at the same time, each in calls of random sizes sent in
// random order (rows shuffled within a call). Whatever the order, every SKU
// must end at its lowest position, and the rows reported Duplicate or
// Displaced must be exactly the other rows (a displaced row may be reported
// more than once: callers record it idempotently).
func testOrderIndependence(t *testing.T, newSink newSinkFunc) {
	for _, seed := range []uint64{0, 1, 2, 3, 4, 5} {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			orderIndependence(t, newSink(t), seed)
		})
	}
}

func orderIndependence(t *testing.T, s SinkReader, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	batch, pfx := newID("batch"), newID("SKU")
	const rowsPerSheet, skus = 300, 90
	var all []catalog.Product // in position order
	for si, sheet := range []string{"Products", "更多商品"} {
		for row := int64(2); row < 2+rowsPerSheet; row++ {
			all = append(all, product(batch, fmt.Sprintf("%s-%03d", pfx, rng.IntN(skus)), pos(si, sheet, row)))
		}
	}
	byPos := map[catalog.Position]catalog.Product{}
	lowest := map[string]catalog.Product{}
	var others []catalog.Position
	for _, p := range all {
		byPos[p.Source] = p
		if _, ok := lowest[p.SKU]; ok {
			others = append(others, p.Source)
		} else {
			lowest[p.SKU] = p
		}
	}

	// Cut into shards and each shard into calls.
	var shards [][][]catalog.Product
	for rest := all; len(rest) > 0; {
		n := min(len(rest), 40+rng.IntN(120))
		shard, calls := rest[:n], [][]catalog.Product(nil)
		rest = rest[n:]
		for len(shard) > 0 {
			k := min(len(shard), 1+rng.IntN(25))
			call := slices.Clone(shard[:k])
			shard = shard[k:]
			if seed == 0 {
				slices.Reverse(call) // seed 0: everything backwards, one shard at a time
			} else {
				rng.Shuffle(len(call), func(i, j int) { call[i], call[j] = call[j], call[i] })
			}
			calls = append(calls, call)
		}
		if seed == 0 {
			slices.Reverse(calls)
		} else {
			rng.Shuffle(len(calls), func(i, j int) { calls[i], calls[j] = calls[j], calls[i] })
		}
		shards = append(shards, calls)
	}
	if seed == 0 {
		slices.Reverse(shards)
	}

	var (
		mu       sync.Mutex
		reported []catalog.Position
		errs     []error
	)
	check := func(p catalog.Product, o catalog.Outcome) {
		switch o.Result {
		case catalog.Written:
			for _, d := range o.Displaced {
				want, ok := byPos[d.Source]
				if !ok || !cmp.Equal(refs(want)[0], d, opts) || d.SKU != p.SKU || !p.Source.Less(d.Source) {
					errs = append(errs, fmt.Errorf("row %v displaced %+v: not a later row of its SKU, or not as written", p.Source, d))
				}
				reported = append(reported, d.Source)
			}
		case catalog.Duplicate:
			h, ok := byPos[o.Holder]
			if !ok || h.SKU != p.SKU || !o.Holder.Less(p.Source) || h.Source.Sheet != o.Holder.Sheet {
				errs = append(errs, fmt.Errorf("row %v is Duplicate of %v: not an earlier row of its SKU", p.Source, o.Holder))
			}
			reported = append(reported, p.Source)
		default:
			errs = append(errs, fmt.Errorf("row %v: result %v, want Written or Duplicate", p.Source, o.Result))
		}
	}
	var wg sync.WaitGroup
	for _, calls := range shards {
		wg.Go(func() {
			for _, call := range calls {
				out, err := s.Write(t.Context(), catalog.Upsert, call)
				mu.Lock()
				if err == nil && len(out) != len(call) {
					err = fmt.Errorf("%d outcomes for %d products", len(out), len(call))
				}
				if err != nil {
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				for i, o := range out {
					check(call[i], o)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for sku, want := range lowest {
		diff(t, "stored product of "+sku, want, get(t, s, sku))
	}
	less := func(a, b catalog.Position) int {
		switch {
		case a.Less(b):
			return -1
		case b.Less(a):
			return 1
		}
		return 0
	}
	slices.SortFunc(reported, less)
	reported = slices.Compact(reported)
	slices.SortFunc(others, less)
	diff(t, "positions reported Duplicate or Displaced (every non-lowest row)", others, reported)
	n, err := s.CountBatch(t.Context(), batch, "", 0, math.MaxInt64)
	must(t, err, "CountBatch")
	if n != int64(len(lowest)) {
		t.Errorf("CountBatch = %d, want %d (one per SKU)", n, len(lowest))
	}
}
