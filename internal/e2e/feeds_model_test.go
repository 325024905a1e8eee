package e2e

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/catalog-import/catalog-import/internal/catalog"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/local/sqlite"
	"github.com/catalog-import/catalog-import/internal/state"
)

// This file holds what the feed tests of issue 11 share (feeds_test.go,
// feeds_dev_test.go): generated feed files, a model of the catalog that
// applies them one after another, and the checks a test ends with.

// productFields are the product fields (every column but sku), in the order
// of the default profile.
var productFields = []string{"name", "category", "brand", "price", "currency", "stock", "status", "description", "image_urls"}

// requiredFields are the columns upsert and replace files always have.
var requiredFields = []string{"name", "category", "price"}

// fieldDefaults are the default profile's defaults as a product reads back:
// what an absent field of a created product, or an empty cell, holds.
var fieldDefaults = map[string]string{"brand": "", "currency": "CNY", "stock": "0", "status": "active", "description": "", "image_urls": ""}

// feedFile is one upload of a feed sequence.
type feedFile struct {
	tag  string     // unique in the sequence: the file's name, and in its values
	mode string     // write mode (profile write_mode)
	cols []string   // header: "sku" first, then product fields
	rows [][]string // cells by column; rows[i][0] is the SKU
	// failing: the rows that fail whatever the interleaving: later rows of
	// a SKU the file has on an earlier row (DuplicateSKU) and create-only
	// rows of SKUs the seed export created and nothing deletes (SKUExists).
	failing int
}

// csv is the file's text.
func (f feedFile) csv() string {
	var b strings.Builder
	b.WriteString(strings.Join(f.cols, ",") + "\n")
	for _, r := range f.rows {
		b.WriteString(strings.Join(r, ",") + "\n")
	}
	return b.String()
}

// write writes the file into dir as <tag>.csv and returns its path.
func (f feedFile) write(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, f.tag+".csv")
	if err := os.WriteFile(path, []byte(f.csv()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// skuSet is the file's SKUs.
func (f feedFile) skuSet() map[string]bool {
	m := map[string]bool{}
	for _, r := range f.rows {
		m[r[0]] = true
	}
	return m
}

// catalogModel is the expected catalog: SKU -> field -> value as a product
// reads back (see valuesOf). A SKU not in the map does not exist.
type catalogModel map[string]map[string]string

// apply applies f's rows one after another, as the README's table of write
// modes says a row does; a later row of a SKU the file has on an earlier row
// changes nothing (the lowest position wins). An update row of a missing
// SKU and a create-only row of an existing one change nothing (the engine
// fails them: UnknownSKU, SKUExists).
func (m catalogModel) apply(f feedFile) {
	seen := map[string]bool{}
	for _, row := range f.rows {
		sku := row[0]
		if seen[sku] {
			continue
		}
		seen[sku] = true
		p, exists := m[sku]
		switch f.mode {
		case "delete":
			delete(m, sku)
			continue
		case "replace":
			p, exists = nil, false
		case "update":
			if !exists {
				continue
			}
		case "create-only":
			if exists {
				continue
			}
		}
		if !exists {
			p = map[string]string{}
			for _, fld := range productFields {
				p[fld] = fieldDefaults[fld]
			}
		}
		for i, col := range f.cols[1:] {
			v := row[i+1]
			if v == "" {
				v = fieldDefaults[col]
			}
			p[col] = v
		}
		m[sku] = p
	}
}

// expectedCatalog applies files in ascending orders[tag] (the order each
// batch reports) to an empty catalog.
func expectedCatalog(files []feedFile, orders map[string]int64) catalogModel {
	sorted := slices.Clone(files)
	slices.SortFunc(sorted, func(a, b feedFile) int { return cmp.Compare(orders[a.tag], orders[b.tag]) })
	m := catalogModel{}
	for _, f := range sorted {
		m.apply(f)
	}
	return m
}

// valuesOf is p's fields as the files write them (price with two decimals,
// image URLs joined by |).
func valuesOf(p catalog.Product) map[string]string {
	return map[string]string{
		"name": p.Name, "category": p.Category, "brand": p.Brand, "price": p.Price, "currency": p.Currency,
		"stock": strconv.FormatInt(p.Stock, 10), "status": p.Status, "description": p.Description,
		"image_urls": strings.Join(p.ImageURLs, "|"),
	}
}

// checkCatalog compares every SKU any file names: the products got (read
// from the catalog) against the model want, field by field, and fails on a
// value that no file had for that SKU and field (nor a default). It returns
// whether everything matched.
func checkCatalog(t *testing.T, files []feedFile, want catalogModel, got map[string]catalog.Product) bool {
	t.Helper()
	seen := map[string]map[string]bool{} // sku/field -> values the files had
	for _, f := range files {
		for _, r := range f.rows {
			for i, col := range f.cols[1:] {
				k := r[0] + "/" + col
				if seen[k] == nil {
					seen[k] = map[string]bool{}
				}
				seen[k][r[i+1]] = true
			}
		}
	}
	ok, errs := true, 0
	errorf := func(format string, args ...any) {
		t.Helper()
		if ok, errs = false, errs+1; errs <= 20 {
			t.Errorf(format, args...)
		}
	}
	defer func() {
		if errs > 20 {
			t.Errorf("... and %d more differences", errs-20)
		}
	}()
	var skus []string
	for _, f := range files {
		for _, r := range f.rows {
			skus = append(skus, r[0])
		}
	}
	slices.Sort(skus)
	for _, sku := range slices.Compact(skus) {
		w, wantOK := want[sku]
		p, gotOK := got[sku]
		if wantOK != gotOK {
			errorf("%s: exists %v, want %v (model: %v; catalog: %+v)", sku, gotOK, wantOK, w, p)
			continue
		}
		if !gotOK {
			continue
		}
		g := valuesOf(p)
		for _, fld := range productFields {
			if g[fld] != w[fld] {
				errorf("%s.%s = %q, want %q (applying the files in upload order)", sku, fld, g[fld], w[fld])
			}
			if v := g[fld]; !seen[sku+"/"+fld][v] && v != fieldDefaults[fld] {
				errorf("%s.%s = %q: no file had that value", sku, fld, v)
			}
		}
	}
	return ok
}

// checkFinished fails unless f's batch b finished with rows_total = imported
// + superseded + failed + skipped, nothing skipped, and only the rows that
// must fail failed: COMPLETED when none must, else COMPLETED_WITH_ERRORS
// with only DuplicateSKU and SKUExists failures. (A duplicate row of an
// older batch whose holder a newer batch overwrote is superseded instead of
// failed, decision 17: so failed may be below f.failing.)
func checkFinished(t *testing.T, f feedFile, b state.Batch) {
	t.Helper()
	c := b.Counts
	want := state.BatchCompleted
	if f.failing > 0 {
		want = state.BatchCompletedWithErrors
	}
	other := c.Failed - b.ByReason[failure.DuplicateSKU] - b.ByReason[failure.SKUExists]
	if c.Total != int64(len(f.rows)) || c.Done() != c.Total || c.Skipped != 0 || c.Failed > int64(f.failing) || other != 0 ||
		(b.Status != want && !(c.Failed == 0 && b.Status == state.BatchCompleted)) {
		t.Errorf("%s (batch %s, order %d): %s %+v %v %q, want %s: %d rows imported or superseded, at most %d DuplicateSKU or SKUExists",
			f.tag, b.ID, b.Order, b.Status, c, b.ByReason, b.Message, want, len(f.rows), f.failing)
	}
}

// feedGen generates the files of a feed sequence from one seed.
type feedGen struct {
	r *rand.Rand
}

// value is a random cell of field col for sku in the file tagged tag;
// optional fields are sometimes empty (the field's default).
func (g *feedGen) value(col, sku, tag string) string {
	if fieldDefaults[col] != "" || col == "brand" || col == "description" || col == "image_urls" {
		if g.r.Intn(10) == 0 {
			return ""
		}
	}
	n := g.r.Intn(1000)
	switch col {
	case "name":
		return fmt.Sprintf("%s %s n%d", sku, tag, n)
	case "category":
		return []string{"Home", "Toys", "Books", "Garden"}[g.r.Intn(4)]
	case "brand":
		return fmt.Sprintf("B-%s-%d", tag, n)
	case "price":
		return fmt.Sprintf("%d.%02d", g.r.Intn(5000), g.r.Intn(100))
	case "currency":
		return []string{"CNY", "USD", "EUR"}[g.r.Intn(3)]
	case "stock":
		return strconv.Itoa(n)
	case "status":
		return []string{"active", "inactive", "draft"}[g.r.Intn(3)]
	case "description":
		return fmt.Sprintf("about %s from %s %d", sku, tag, n)
	case "image_urls":
		u := fmt.Sprintf("https://img.example.com/%s/%d.jpg", tag, n)
		if g.r.Intn(2) == 0 {
			u += fmt.Sprintf("|https://img.example.com/%s/%d-b.jpg", tag, n)
		}
		return u
	}
	panic("no field " + col)
}

// file makes a file of mode tagged tag whose header is sku and cols, with
// one row for each of skus (in that order) and random values.
func (g *feedGen) file(tag, mode string, cols, skus []string) feedFile {
	f := feedFile{tag: tag, mode: mode, cols: append([]string{"sku"}, cols...)}
	for _, sku := range skus {
		row := []string{sku}
		for _, col := range cols {
			row = append(row, g.value(col, sku, tag)) // required fields are never empty
		}
		f.rows = append(f.rows, row)
	}
	return f
}

// duplicate adds n rows to f, each a SKU of an earlier row with new
// values, after that row (a DuplicateSKU failure).
func (g *feedGen) duplicate(f *feedFile, n int) {
	for range n {
		i := g.r.Intn(len(f.rows))
		row := []string{f.rows[i][0]}
		for _, col := range f.cols[1:] {
			row = append(row, g.value(col, row[0], f.tag+"-dup"))
		}
		j := i + 1 + g.r.Intn(len(f.rows)-i)
		f.rows = slices.Insert(f.rows, j, row)
		f.failing++
	}
}

// columns returns the required columns (when required) and a random subset
// of the other product fields, shuffled; at least one column.
func (g *feedGen) columns(required bool) []string {
	var cols []string
	for _, fld := range productFields {
		if (required && slices.Contains(requiredFields, fld)) || g.r.Intn(2) == 0 {
			cols = append(cols, fld)
		}
	}
	if len(cols) == 0 {
		cols = []string{productFields[g.r.Intn(len(productFields))]}
	}
	g.r.Shuffle(len(cols), func(i, j int) { cols[i], cols[j] = cols[j], cols[i] })
	return cols
}

// pick returns n SKUs of from, at random, in random order.
func (g *feedGen) pick(from []string, n int) []string {
	p := slices.Clone(from)
	g.r.Shuffle(len(p), func(i, j int) { p[i], p[j] = p[j], p[i] })
	return p[:min(n, len(p))]
}

// profiles writes one profile per write mode into dir and returns their
// paths by mode.
func writeModeProfiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range []string{"upsert", "replace", "update", "create-only", "delete"} {
		path := filepath.Join(dir, m+".yaml")
		if err := os.WriteFile(path, []byte("name: feed-"+m+"\nwrite_mode: "+m+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		out[m] = path
	}
	return out
}

// killRunAt starts the built importctl with args (a `run` of file into db)
// and SIGKILLs it once the batch of file has at least after rows
// checkpointed. It reports the rows checkpointed after the kill and whether
// the kill found the run still going (false: it finished first).
func killRunAt(t *testing.T, bin string, args []string, db, file string, after int64) (done int64, killed bool) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	conn := openRO(t, db)
	deadline := time.Now().Add(time.Minute)
	for !killed {
		select {
		case <-exited:
			return batchDone(conn, file), false
		default:
		}
		if n := batchDone(conn, file); n >= after {
			killed = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL) == nil
		} else if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("%s never reached %d rows", filepath.Base(file), after)
		} else {
			time.Sleep(time.Millisecond)
		}
	}
	<-exited
	return batchDone(conn, file), cmd.ProcessState.ExitCode() == -1
}

// openRO opens db (which may not exist yet) read-only, as another process
// reads it while a run writes.
func openRO(t *testing.T, db string) *sql.DB {
	t.Helper()
	conn, err := sql.Open(sqlite.DefaultDriver, "file:"+db+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// batchDone is the rows checkpointed for the batch of file (-1 when it is
// not registered or the database cannot be read yet).
func batchDone(conn *sql.DB, file string) int64 {
	n := int64(-1)
	conn.QueryRow(`SELECT rows_imported + rows_superseded + rows_failed + rows_skipped FROM batches
		WHERE source_uri = ? OR source_uri LIKE '%/' || ? ORDER BY created_at DESC LIMIT 1`, file, filepath.Base(file)).Scan(&n)
	return n
}

// embeddedProducts reads skus from the catalog of the embedded database db
// (catalog.Reader of internal/local/sqlite), the absent ones left out.
func embeddedProducts(t *testing.T, db string, skus []string) map[string]catalog.Product {
	t.Helper()
	d, err := sqlite.Open(db, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	return readProducts(t, d, skus)
}

// readProducts reads skus through r, the absent ones left out.
func readProducts(t *testing.T, r catalog.Reader, skus []string) map[string]catalog.Product {
	t.Helper()
	out := map[string]catalog.Product{}
	for _, sku := range skus {
		p, ok, err := r.Get(context.Background(), sku)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			out[sku] = p
		}
	}
	return out
}

// allSKUs lists the SKUs files name.
func allSKUs(files []feedFile) []string {
	var out []string
	for _, f := range files {
		for _, r := range f.rows {
			out = append(out, r[0])
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// shared is the importctl binary the feed tests share (built once).
var shared struct {
	once      sync.Once
	dir, path string
	err       error
}

// sharedImportctl builds importctl once per test binary run (TestMain
// removes it) and returns its path: the feed tests run it as a process to
// kill it.
func sharedImportctl(t testing.TB) string {
	t.Helper()
	shared.once.Do(func() {
		if shared.dir, shared.err = os.MkdirTemp("", "e2e-importctl-"); shared.err != nil {
			return
		}
		shared.path = filepath.Join(shared.dir, "importctl")
		if out, err := exec.Command("go", "build", "-o", shared.path, "../../cmd/importctl").CombinedOutput(); err != nil {
			shared.err = fmt.Errorf("build importctl: %v\n%s", err, out)
		}
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.path
}

// removeSharedImportctl removes the binary sharedImportctl built, if any.
func removeSharedImportctl() {
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
}
