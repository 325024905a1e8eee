package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/catalog-import/catalog-import/internal/cli"
	"github.com/catalog-import/catalog-import/internal/state"
)

// feedSeeds are the seeds a property test runs: 1..n; only FEEDS_SEED when
// it is set (to rerun the seed a failure printed); 1..FEEDS_SEEDS when that
// is set (a longer run).
func feedSeeds(t *testing.T, n int) []int64 {
	t.Helper()
	if v := os.Getenv("FEEDS_SEED"); v != "" {
		s, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("FEEDS_SEED=%q: %v", v, err)
		}
		return []int64{s}
	}
	if v := os.Getenv("FEEDS_SEEDS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			t.Fatalf("FEEDS_SEEDS=%q: %v", v, err)
		}
	}
	seeds := make([]int64, n)
	for i := range seeds {
		seeds[i] = int64(i + 1)
	}
	return seeds
}

// onFailure logs what the test did (log) and how to rerun its seed when t
// fails.
func onFailure(t *testing.T, seed int64, log *strings.Builder) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("what ran:\n%s\nrerun this case alone: FEEDS_SEED=%d go test -run '%s' ./internal/e2e", log.String(), seed, strings.Split(t.Name(), "/")[0])
		}
	})
}

// TestFeedsMatchUploadOrderAfterKills is the property test of issue 11 on
// the embedded engine (the real importctl binary, one database): a seed
// export, then 3 to 6 files of mixed write modes over overlapping SKUs,
// each run with 0 to 3 SIGKILLs at random points and resumed later, the
// runs of different files interleaved at random (start A, kill, run B to
// completion, resume A, ...). It must end with every batch finished with
// rows_total = imported + superseded + failed + skipped, nothing skipped and
// only the rows that must fail failed (COMPLETED when there are none), and
// the catalog equal to applying the files one after another in the upload
// order each batch reports, with no value that no file had.
//
// Modes: upsert and replace with the required columns and a random subset
// of the others (empty cells sometimes: the field's default), delete, and
// update with a random subset of fields. update and create-only decide
// whether a SKU exists when the row is written (the documented limit of
// decision 17: they can differ from upload order when an older batch that
// creates or deletes the SKU still runs), so update files only name SKUs
// the seed export created and that no file of the sequence deletes, and
// create-only files only those (SKUExists) and new SKUs no other file names
// (created): for those, every interleaving must match the model exactly.
// upsert, replace and delete are exact in any interleaving and are not
// restricted. Some files repeat a SKU on a later row (DuplicateSKU: the
// first row wins).
func TestFeedsMatchUploadOrderAfterKills(t *testing.T) {
	if testing.Short() {
		t.Skip("builds importctl and kills it")
	}
	t.Parallel()
	bin := sharedImportctl(t)
	for _, seed := range feedSeeds(t, 6) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			t.Parallel()
			feedsProperty(t, bin, seed)
		})
	}
}

// feedsProperty runs one case of TestFeedsMatchUploadOrderAfterKills.
func feedsProperty(t *testing.T, bin string, seed int64) {
	var log strings.Builder
	onFailure(t, seed, &log)
	r := rand.New(rand.NewSource(seed))
	g := &feedGen{r: r}
	dir := t.TempDir()
	db := filepath.Join(dir, "catalog.db")
	profiles := writeModeProfiles(t, dir)

	// The SKUs: the seed export creates the first 3/4; stable ones (update
	// targets) are never deleted.
	universe := make([]string, 60+r.Intn(60))
	for i := range universe {
		universe[i] = fmt.Sprintf("P-%03d", i)
	}
	seeded := universe[:len(universe)*3/4]
	stable := g.pick(seeded, len(seeded)/3)
	var deletable []string
	for _, s := range universe {
		if !slices.Contains(stable, s) {
			deletable = append(deletable, s)
		}
	}
	files := []feedFile{g.file("f0-upsert", "upsert", productFields, seeded)}
	modes := []string{"upsert", "upsert", "replace", "update", "delete", "create-only"}
	for i := range 3 + r.Intn(4) {
		i++
		mode := modes[r.Intn(len(modes))]
		tag := fmt.Sprintf("f%d-%s", i, mode)
		var f feedFile
		switch mode {
		case "upsert", "replace":
			f = g.file(tag, mode, g.columns(true), g.pick(universe, len(universe)/3+r.Intn(len(universe)*2/3)))
		case "update":
			f = g.file(tag, mode, g.columns(false), g.pick(stable, 1+r.Intn(len(stable))))
		case "delete":
			f = g.file(tag, mode, nil, g.pick(deletable, 1+r.Intn(len(deletable)/2)))
			if r.Intn(2) == 0 { // deleting a SKU that is not there is fine
				f.rows = append(f.rows, []string{"GONE-" + tag})
			}
		case "create-only":
			// New SKUs no other file names (created), and stable ones
			// (SKUExists): both exact whatever runs meanwhile.
			skus := g.pick(stable, r.Intn(len(stable)/4+1))
			exist := len(skus)
			for k := range 5 + r.Intn(20) {
				skus = append(skus, fmt.Sprintf("NEW-%s-%d", tag, k))
			}
			f = g.file(tag, mode, g.columns(true), g.pick(skus, len(skus)))
			f.failing = exist
		}
		if mode != "delete" && r.Intn(2) == 0 {
			g.duplicate(&f, 1+r.Intn(3))
		}
		files = append(files, f)
	}

	// How each file runs: its flags, and its runs (kills, then one to the end).
	type plan struct {
		f     feedFile
		path  string
		args  []string
		kills int
	}
	plans := make([]*plan, len(files))
	for i, f := range files {
		p := &plan{f: f, path: f.write(t, dir), kills: r.Intn(4)}
		if i == 0 {
			p.kills = 0 // the seed export completes before the others start
		}
		p.args = []string{"run", "--json", "--quiet", "--db", db, "--profile", profiles[f.mode],
			"--shards", strconv.Itoa(1 + r.Intn(2)), "--checkpoint-every", strconv.Itoa(1 + r.Intn(3)),
			"--shard-rows", strconv.Itoa(10 + r.Intn(40)), p.path}
		plans[i] = p
		fmt.Fprintf(&log, "%s: %d rows, columns %v, %d kills, %v\n", f.tag, len(f.rows), f.cols, p.kills, p.args[7:13])
	}

	summaries := map[string]cli.RunJSON{}
	run := func(p *plan) {
		s := runBin(t, bin, p.args...)
		summaries[p.f.tag] = s
		fmt.Fprintf(&log, "  run %s to the end: %s order %d, %d imported %d superseded %d failed (resumed %v)\n",
			p.f.tag, s.Status, s.Order, s.RowsImported, s.RowsSuperseded, s.RowsFailed, s.Resumed)
	}
	run(plans[0])
	pending := append([]*plan(nil), plans[1:]...)
	landed := 0
	for len(pending) > 0 {
		i := r.Intn(len(pending))
		p := pending[i]
		if p.kills == 0 {
			run(p)
			pending = append(pending[:i], pending[i+1:]...)
			continue
		}
		p.kills--
		after := int64(r.Float64() * float64(len(p.f.rows)))
		done, killed := killRunAt(t, bin, p.args, db, p.path, after)
		if killed {
			landed++
		}
		fmt.Fprintf(&log, "  kill %s at >= %d rows: killed %v with %d rows checkpointed\n", p.f.tag, after, killed, done)
	}
	t.Logf("seed %d: %d files, %d kills landed mid-import", seed, len(files), landed)

	// Every batch is finished and reconciles, with the order run reported.
	batches := dbBatches(t, db)
	orders := map[string]int64{}
	for _, f := range files {
		b, ok := batches[f.tag+".csv"]
		if !ok {
			t.Fatalf("no batch of %s", f.tag)
		}
		checkFinished(t, f, b)
		if s := summaries[f.tag]; s.Order != b.Order || s.BatchID != b.ID {
			t.Errorf("%s: run reported batch %s order %d, status has %s order %d", f.tag, s.BatchID, s.Order, b.ID, b.Order)
		}
		orders[f.tag] = b.Order
	}
	want := expectedCatalog(files, orders)
	checkCatalog(t, files, want, embeddedProducts(t, db, allSKUs(files)))
}

// dbBatches lists the batches of the embedded database db (`importctl
// status --json`) by the base name of their file.
func dbBatches(t *testing.T, db string) map[string]state.Batch {
	t.Helper()
	code, out, errOut := importctl(t, "status", "--json", "--limit", "1000", "--db", db)
	if code != 0 {
		t.Fatalf("status: exit %d %s", code, errOut)
	}
	var bs []state.Batch
	if err := json.Unmarshal([]byte(out), &bs); err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	m := map[string]state.Batch{}
	for _, b := range bs {
		m[filepath.Base(b.Source.URI)] = b
	}
	return m
}

// feedRun is one file of a regression scenario: its feed and the args of
// `importctl run` for it (one shard, so that the rows a kill left undone are
// the ones after the checkpoint).
type feedRun struct {
	f    feedFile
	path string
	args []string
}

// feedRuns writes files into dir and returns how to run each into db.
func feedRuns(t *testing.T, dir, db string, files ...feedFile) []feedRun {
	t.Helper()
	profiles := writeModeProfiles(t, dir)
	out := make([]feedRun, len(files))
	for i, f := range files {
		path := f.write(t, dir)
		out[i] = feedRun{f: f, path: path, args: []string{"run", "--json", "--quiet", "--db", db, "--profile", profiles[f.mode],
			"--shards", "1", "--checkpoint-every", "10", "--shard-rows", "100000", path}}
	}
	return out
}

// killMidImport SIGKILLs the run of fr once it has checkpointed n rows and
// fails the test unless the kill caught it before the end. It returns the
// rows checkpointed.
func killMidImport(t *testing.T, bin, db string, fr feedRun, n int64) int64 {
	t.Helper()
	done, killed := killRunAt(t, bin, fr.args, db, fr.path, n)
	if !killed || done >= int64(len(fr.f.rows)) {
		t.Fatalf("%s: the kill did not catch the run mid-import (killed %v, %d of %d rows done)", fr.f.tag, killed, done, len(fr.f.rows))
	}
	return done
}

// supersededAfter counts the rows of f from index done on whose SKU is in skus.
func supersededAfter(f feedFile, done int64, skus map[string]bool) int64 {
	var n int64
	for _, r := range f.rows[done:] {
		if skus[r[0]] {
			n++
		}
	}
	return n
}

// checkFeedRuns checks that every file's batch is COMPLETED and reconciles
// and that the catalog equals the files applied in the batches' upload
// order; it returns the batches by tag.
func checkFeedRuns(t *testing.T, db string, runs []feedRun) map[string]state.Batch {
	t.Helper()
	batches := dbBatches(t, db)
	byTag := map[string]state.Batch{}
	orders := map[string]int64{}
	var files []feedFile
	for _, fr := range runs {
		b := batches[filepath.Base(fr.path)]
		checkFinished(t, fr.f, b)
		byTag[fr.f.tag], orders[fr.f.tag] = b, b.Order
		files = append(files, fr.f)
	}
	checkCatalog(t, files, expectedCatalog(files, orders), embeddedProducts(t, db, allSKUs(files)))
	return byTag
}

// numberedSKUs is S-0000 ... S-(n-1).
func numberedSKUs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("S-%04d", i)
	}
	return out
}

// TestPriceAndStockFeedsInterleavedWithKill: after a full export, a stock
// feed (update, sku,stock) is killed mid-import, a price feed (update,
// sku,price) is killed mid-import, a newer stock feed of half the SKUs
// completes, and both killed feeds are resumed. Every feed COMPLETES; every
// price is the price feed's, the stock is the newer stock feed's where it
// has the SKU and the older one's elsewhere, names stay the export's; the
// older stock feed's rows the newer one holds are superseded (the ones it
// had not done before the kill), the price feed supersedes nothing (its
// field is its own).
func TestPriceAndStockFeedsInterleavedWithKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds importctl and kills it")
	}
	t.Parallel()
	// Rows enough that the kill lands mid-import while the poller may be
	// descheduled on a busy machine (3000 rows, checkpointed every 10, were
	// sometimes done before the kill once the write path got faster).
	const n = 8000
	dir := t.TempDir()
	bin := sharedImportctl(t)
	db := filepath.Join(dir, "catalog.db")
	g := &feedGen{r: rand.New(rand.NewSource(11))}
	all := numberedSKUs(n)
	half := g.pick(all, n/2)
	slices.Sort(half)
	runs := feedRuns(t, dir, db,
		g.file("export", "upsert", []string{"name", "category", "price", "stock"}, all),
		g.file("stock-1", "update", []string{"stock"}, all),
		g.file("prices", "update", []string{"price"}, all),
		g.file("stock-2", "update", []string{"stock"}, half))
	export, stock1, prices, stock2 := runs[0], runs[1], runs[2], runs[3]

	runBin(t, bin, export.args...)
	done1 := killMidImport(t, bin, db, stock1, n/10)
	donePrices := killMidImport(t, bin, db, prices, n/5)
	runBin(t, bin, stock2.args...)
	s1 := runBin(t, bin, stock1.args...)
	sp := runBin(t, bin, prices.args...)
	if !s1.Resumed || !sp.Resumed {
		t.Errorf("the killed feeds did not resume: stock %+v, prices %+v", s1, sp)
	}
	t.Logf("stock feed killed at %d rows, price feed at %d", done1, donePrices)

	b := checkFeedRuns(t, db, runs)
	if !(b["export"].Order < b["stock-1"].Order && b["stock-1"].Order < b["prices"].Order && b["prices"].Order < b["stock-2"].Order) {
		t.Errorf("orders export %d, stock-1 %d, prices %d, stock-2 %d: want the order of first registration",
			b["export"].Order, b["stock-1"].Order, b["prices"].Order, b["stock-2"].Order)
	}
	if want := supersededAfter(stock1.f, done1, stock2.f.skuSet()); b["stock-1"].Counts.Superseded != want {
		t.Errorf("stock-1 resumed: %+v, want %d superseded (rows after its kill that stock-2 holds)", b["stock-1"].Counts, want)
	}
	if c := b["prices"].Counts; c.Superseded != 0 || c.Imported != n {
		t.Errorf("prices resumed: %+v, want all %d imported", c, n)
	}
}

// TestOlderFullFileResumedAfterNewerPriceFeedAndDelete is the scenario of
// issue 11: a full file A is killed mid-import; B, a newer price feed
// (update, sku,price) sharing A's SKUs, and C, a newer delete of some SKUs
// (some of them in B too), complete; A is run again. A ends COMPLETED (not
// FAILED: reconciliation counts row outcomes, not products), B's prices
// stay, C's SKUs stay deleted, and A's rows that C covers and A had not done
// before the kill are superseded (its rows of B's SKUs still change their
// other fields: imported, with the price field left to B).
func TestOlderFullFileResumedAfterNewerPriceFeedAndDelete(t *testing.T) {
	if testing.Short() {
		t.Skip("builds importctl and kills it")
	}
	t.Parallel()
	const n = 3000
	dir := t.TempDir()
	bin := sharedImportctl(t)
	db := filepath.Join(dir, "catalog.db")
	g := &feedGen{r: rand.New(rand.NewSource(12))}
	all := numberedSKUs(n)
	var even, seventh []string
	for i, s := range all {
		if i%2 == 0 {
			even = append(even, s)
		}
		if i%7 == 3 {
			seventh = append(seventh, s)
		}
	}
	runs := feedRuns(t, dir, db,
		g.file("initial", "upsert", productFields, all),
		g.file("A-full", "upsert", productFields, all),
		g.file("B-prices", "update", []string{"price"}, even),
		g.file("C-delete", "delete", nil, seventh))
	initial, a, pb, c := runs[0], runs[1], runs[2], runs[3]

	runBin(t, bin, initial.args...)
	doneA := killMidImport(t, bin, db, a, n/10)
	runBin(t, bin, pb.args...)
	runBin(t, bin, c.args...)
	sa := runBin(t, bin, a.args...)
	if !sa.Resumed || sa.Status != state.BatchCompleted {
		t.Errorf("A run again: %+v, want it resumed and COMPLETED", sa)
	}
	t.Logf("A killed at %d of %d rows", doneA, n)

	b := checkFeedRuns(t, db, runs)
	if want := supersededAfter(a.f, doneA, c.f.skuSet()); b["A-full"].Counts.Superseded != want {
		t.Errorf("A: %+v, want %d superseded (its rows after the kill that C deleted)", b["A-full"].Counts, want)
	}
	got := embeddedProducts(t, db, all)
	prices := map[string]string{}
	for _, r := range pb.f.rows {
		prices[r[0]] = r[1]
	}
	for _, sku := range seventh {
		if p, ok := got[sku]; ok {
			t.Errorf("%s, deleted by C, is back: %+v", sku, p)
		}
	}
	for _, sku := range even {
		if p, ok := got[sku]; ok && p.Price != prices[sku] {
			t.Errorf("%s: price %s, want B's %s", sku, p.Price, prices[sku])
		}
	}
}
