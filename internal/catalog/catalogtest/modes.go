package catalogtest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/catalog-import/catalog-import/internal/catalog"
)

// This file tests the write modes, the field stamps and the tombstones
// (decision 17), ending with the model-based property test.

// defaults are the profile defaults the suite's rows carry for their absent
// fields, as the worker builds them.
var defaults = catalog.Product{Category: "未分类", Price: "0.00", Currency: "CNY", Status: "draft"}

// partial returns the row of batch at row r for sku with the columns named
// (none: only sku), the absent fields holding the defaults.
func partial(batch, sku string, r int64, names ...string) catalog.Product {
	full := product(batch, sku, pos(0, "-", r))
	fs, err := catalog.FieldsOf(names...)
	if err != nil {
		panic(err)
	}
	p := defaults
	p.SKU, p.BatchID, p.Source, p.Offset, p.Length, p.Order, p.Present = sku, batch, full.Source, full.Offset, full.Length, full.Order, fs
	for f := range catalog.NumFields {
		if fs.Has(f) {
			setField(&p, f, &full)
		}
	}
	return p
}

// setField sets field f of p to src's.
func setField(p *catalog.Product, f catalog.Field, src *catalog.Product) {
	switch f {
	case catalog.FieldName:
		p.Name = src.Name
	case catalog.FieldCategory:
		p.Category = src.Category
	case catalog.FieldBrand:
		p.Brand = src.Brand
	case catalog.FieldPrice:
		p.Price = src.Price
	case catalog.FieldCurrency:
		p.Currency = src.Currency
	case catalog.FieldStock:
		p.Stock = src.Stock
	case catalog.FieldStatus:
		p.Status = src.Status
	case catalog.FieldDescription:
		p.Description = src.Description
	case catalog.FieldImageURLs:
		p.ImageURLs = src.ImageURLs
	}
}

// values returns p's field values only (no provenance, order or fields).
func values(p catalog.Product) catalog.Product {
	return catalog.Product{SKU: p.SKU, Name: p.Name, Category: p.Category, Brand: p.Brand, Price: p.Price, Currency: p.Currency,
		Stock: p.Stock, Status: p.Status, Description: p.Description, ImageURLs: p.ImageURLs}
}

// with returns values(p) with the fields of src named changed to src's.
func with(p catalog.Product, src catalog.Product, names ...string) catalog.Product {
	v := values(p)
	fs, err := catalog.FieldsOf(names...)
	if err != nil {
		panic(err)
	}
	for f := range catalog.NumFields {
		if fs.Has(f) {
			setField(&v, f, &src)
		}
	}
	return v
}

func getValues(t *testing.T, s SinkReader, sku string) catalog.Product {
	t.Helper()
	return values(get(t, s, sku))
}

func absent(t *testing.T, s SinkReader, sku, what string) {
	t.Helper()
	p, ok, err := s.Get(t.Context(), sku)
	must(t, err, "Get")
	if ok {
		t.Errorf("%s: Get(%s) found %+v, want none", what, sku, p)
	}
}

func stampsOf(t *testing.T, s SinkReader, sku string) catalog.FieldStamps {
	t.Helper()
	st, ok, err := s.Stamps(t.Context(), sku)
	must(t, err, "Stamps")
	if !ok {
		t.Fatalf("Stamps(%s): not found", sku)
	}
	return st
}

func outcome(r catalog.Result) []catalog.Outcome { return []catalog.Outcome{{Result: r}} }

// testOrder0: products without an order (callers that order nothing) keep
// the rule before stamps: another batch's product replaces, the last wins.
func testOrder0(t *testing.T, s SinkReader) {
	sku := newID("SKU")
	a, b := product(newID("batch"), sku, pos(0, "-", 2)), product(newID("batch"), sku, pos(0, "-", 9))
	a.Order, b.Order = 0, 0
	write(t, s, catalog.Upsert, b)
	diff(t, "outcomes", []catalog.Outcome{written}, write(t, s, catalog.Upsert, a))
	diff(t, "stored product", a, get(t, s, sku))
}

func testUpsertNewer(t *testing.T, s SinkReader) {
	sku := newID("SKU")
	old, next := product(newID("batch"), sku, pos(0, "-", 2)), partial(newID("batch"), sku, 5, "price", "stock")
	write(t, s, catalog.Upsert, old)
	diff(t, "outcomes", outcome(catalog.Written), write(t, s, catalog.Upsert, next))
	diff(t, "stored product", with(old, next, "price", "stock"), getValues(t, s, sku))
	want := catalog.FieldStamps{Created: next.Order}
	for f := range catalog.NumFields {
		want.Fields[f] = old.Order
	}
	want.Fields[catalog.FieldPrice], want.Fields[catalog.FieldStock] = next.Order, next.Order
	diff(t, "stamps", want, stampsOf(t, s, sku))
}

// testAbsentNeverResets: a file without a column leaves the field, in
// either order of arrival.
func testAbsentNeverResets(t *testing.T, s SinkReader) {
	for _, newerFirst := range []bool{false, true} {
		sku := newID("SKU")
		a, b := partial(newID("batch"), sku, 2, "name", "price"), partial(newID("batch"), sku, 3, "brand", "price")
		first, second := a, b
		if newerFirst {
			first, second = b, a
		}
		write(t, s, catalog.Upsert, first)
		diff(t, "outcomes", outcome(catalog.Written), write(t, s, catalog.Upsert, second))
		want := with(with(values(defaults), a, "name"), b, "brand", "price")
		want.SKU = sku
		diff(t, fmt.Sprintf("stored product (newer first: %v)", newerFirst), want, getValues(t, s, sku))
	}
}

// testDefaultsAtCreation: defaults carry stamp 0, so an older batch's real
// value arriving later still wins over them.
func testDefaultsAtCreation(t *testing.T, s SinkReader) {
	sku := newID("SKU")
	older, newer := newID("batch"), newID("batch")
	n := partial(newer, sku, 2, "name")
	write(t, s, catalog.Upsert, n)
	want := with(values(defaults), n, "name")
	want.SKU = sku
	diff(t, "created with defaults", want, getValues(t, s, sku))
	st := stampsOf(t, s, sku)
	if st.Fields[catalog.FieldCategory] != 0 || st.Fields[catalog.FieldName] != n.Order || st.Created != n.Order {
		t.Errorf("stamps %+v: want name at %d, defaults at 0", st, n.Order)
	}
	o := partial(older, sku, 2, "name", "category")
	diff(t, "outcomes", outcome(catalog.Written), write(t, s, catalog.Upsert, o))
	diff(t, "older real value beats a default", with(want, o, "category"), getValues(t, s, sku))
}

func testUpsertOlder(t *testing.T, s SinkReader) {
	sku := newID("SKU")
	older, newer := newID("batch"), newID("batch")
	n := product(newer, sku, pos(0, "-", 2))
	write(t, s, catalog.Upsert, n)
	diff(t, "outcomes", outcome(catalog.Superseded), write(t, s, catalog.Upsert, partial(older, sku, 2, "name", "price")))
	diff(t, "stored product", n, get(t, s, sku))
}

func testReplace(t *testing.T, s SinkReader) {
	sku := newID("SKU")
	a := product(newID("batch"), sku, pos(0, "-", 2))
	r := partial(newID("batch"), sku, 3, "name")
	write(t, s, catalog.Upsert, a)
	diff(t, "outcomes", outcome(catalog.Written), write(t, s, catalog.Replace, r))
	diff(t, "the product becomes the row", values(r), getValues(t, s, sku))
	st := stampsOf(t, s, sku)
	for f := range catalog.NumFields {
		if st.Fields[f] != r.Order {
			t.Errorf("stamp of %s = %d, want %d (replace stamps every field)", f, st.Fields[f], r.Order)
		}
	}
	// An older replace loses to it entirely.
	diff(t, "outcomes of an older replace", outcome(catalog.Superseded), write(t, s, catalog.Replace, product(a.BatchID, sku, pos(0, "-", 2))))
}

func testUpdate(t *testing.T, s SinkReader) {
	sku := newID("SKU")
	u := partial(newID("batch"), sku, 2, "price")
	diff(t, "update of an unknown SKU", outcome(catalog.Unknown), write(t, s, catalog.Update, u))
	absent(t, s, sku, "after an Unknown update")
	a := product(newID("batch"), sku, pos(0, "-", 2))
	write(t, s, catalog.Upsert, a)
	u2 := partial(newID("batch"), sku, 7, "price")
	diff(t, "update", outcome(catalog.Written), write(t, s, catalog.Update, u2))
	diff(t, "stored product", with(a, u2, "price"), getValues(t, s, sku))
	if st := stampsOf(t, s, sku); st.Created != a.Order {
		t.Errorf("Created = %d, want %d (update does not create)", st.Created, a.Order)
	}
	d := partial(newID("batch"), sku, 2)
	write(t, s, catalog.Delete, d)
	diff(t, "update of a deleted SKU", outcome(catalog.Unknown), write(t, s, catalog.Update, partial(newID("batch"), sku, 2, "price")))
}

func testCreateOnlyAfterDelete(t *testing.T, s SinkReader) {
	sku := newID("SKU")
	write(t, s, catalog.Upsert, product(newID("batch"), sku, pos(0, "-", 2)))
	write(t, s, catalog.Delete, partial(newID("batch"), sku, 2))
	c := partial(newID("batch"), sku, 4, "name", "price")
	diff(t, "outcomes", outcome(catalog.Written), write(t, s, catalog.CreateOnly, c))
	diff(t, "created anew with defaults", values(c), getValues(t, s, sku))
}

func testDeleteTombstone(t *testing.T, s SinkReader) {
	sku := newID("SKU")
	first, older, deleter := newID("batch"), newID("batch"), newID("batch")
	write(t, s, catalog.Upsert, product(first, sku, pos(0, "-", 2)))
	d := partial(deleter, sku, 5)
	diff(t, "delete", outcome(catalog.Written), write(t, s, catalog.Delete, d))
	absent(t, s, sku, "after a delete")
	if st := stampsOf(t, s, sku); st.Tombstone != d.Order {
		t.Errorf("Tombstone = %d, want %d", st.Tombstone, d.Order)
	}
	for _, mode := range []catalog.WriteMode{catalog.Upsert, catalog.Replace, catalog.CreateOnly, catalog.Delete} {
		diff(t, "older "+string(mode), outcome(catalog.Superseded), write(t, s, mode, product(older, sku, pos(0, "-", 3))))
		absent(t, s, sku, "after an older "+string(mode))
	}
}

func testDeleteRecreate(t *testing.T, s SinkReader) {
	sku := newID("SKU")
	write(t, s, catalog.Upsert, product(newID("batch"), sku, pos(0, "-", 2)))
	write(t, s, catalog.Delete, partial(newID("batch"), sku, 2))
	n := partial(newID("batch"), sku, 3, "price")
	diff(t, "newer upsert", outcome(catalog.Written), write(t, s, catalog.Upsert, n))
	diff(t, "recreated with defaults, nothing of before the delete", values(n), getValues(t, s, sku))
}

// testDeleteOlder: a delete arriving after a newer creation clears only the
// older fields, which take their defaults (the newer batch created the
// product after the delete, in upload order).
func testDeleteOlder(t *testing.T, s SinkReader) {
	sku := newID("SKU")
	a, deleter, b := newID("batch"), newID("batch"), newID("batch")
	write(t, s, catalog.Upsert, product(a, sku, pos(0, "-", 2)))
	n := partial(b, sku, 3, "price")
	write(t, s, catalog.Upsert, n)
	diff(t, "older delete", outcome(catalog.Written), write(t, s, catalog.Delete, partial(deleter, sku, 2)))
	diff(t, "stored product", values(n), getValues(t, s, sku))
}

func testDeleteUnknown(t *testing.T, s SinkReader) {
	sku := newID("SKU")
	d := partial(newID("batch"), sku, 2)
	diff(t, "delete of an unknown SKU", outcome(catalog.Written), write(t, s, catalog.Delete, d))
	absent(t, s, sku, "after a delete")
	older := product(newID("batch"), sku, pos(0, "-", 2))
	older.Order = d.Order - 1
	diff(t, "older upsert after the tombstone", outcome(catalog.Superseded), write(t, s, catalog.Upsert, older))
	absent(t, s, sku, "after an older upsert")
}

func testStampsMissing(t *testing.T, s SinkReader) {
	_, ok, err := s.Stamps(t.Context(), newID("SKU-missing"))
	must(t, err, "Stamps")
	if ok {
		t.Error("Stamps of an unknown SKU: ok = true")
	}
}

// testReplayModes: writing the same rows again (a crash and resume) is
// Written again and changes nothing, in every mode.
func testReplayModes(t *testing.T, s SinkReader) {
	for _, mode := range []catalog.WriteMode{catalog.Upsert, catalog.Replace, catalog.Update, catalog.CreateOnly, catalog.Delete} {
		sku := newID("SKU")
		write(t, s, catalog.Upsert, product(newID("batch"), sku, pos(0, "-", 2)))
		batch := newID("batch")
		if mode == catalog.CreateOnly {
			sku = newID("SKU")
		}
		ps := []catalog.Product{partial(batch, sku, 4, "price", "name"), partial(batch, sku, 8, "price", "name")}
		first := write(t, s, mode, ps...)
		p1, ok1, err := s.Get(t.Context(), sku)
		must(t, err, "Get")
		st1, _, err := s.Stamps(t.Context(), sku)
		must(t, err, "Stamps")
		for _, replay := range [][]catalog.Product{ps, ps[:1], {ps[1], ps[0]}} {
			out := write(t, s, mode, replay...)
			for i, o := range out {
				want := first[slices.IndexFunc(ps, func(p catalog.Product) bool { return p.Source == replay[i].Source })]
				diff(t, fmt.Sprintf("%s: replay outcome of row %d", mode, replay[i].Source.Row), want, o)
			}
			p2, ok2, err := s.Get(t.Context(), sku)
			must(t, err, "Get")
			st2, _, err := s.Stamps(t.Context(), sku)
			must(t, err, "Stamps")
			if ok1 != ok2 || !cmp.Equal(p1, p2, opts) || st1 != st2 {
				t.Errorf("%s: a replay changed the product: %+v %v %+v -> %+v %v %+v", mode, p1, ok1, st1, p2, ok2, st2)
			}
		}
	}
}

// testConcurrentBatches: several batches of several modes write the same
// SKUs at the same time, each in its own goroutine; the catalog must end as
// if they had run one after the other in upload order.
func testConcurrentBatches(t *testing.T, newSink newSinkFunc) {
	s := newSink(t)
	for seed := range uint64(3) {
		rng := rand.New(rand.NewPCG(seed, 0xc0c0))
		c := newCase(rng, newID("SKU"), 5, 6)
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			errs []error
		)
		for _, b := range c.batches {
			wg.Go(func() {
				rows := slices.Clone(b.rows)
				rng := rand.New(rand.NewPCG(seed, uint64(b.order)))
				rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
				for _, r := range rows {
					if _, err := s.Write(t.Context(), b.mode, []catalog.Product{r}); err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
						return
					}
				}
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		c.check(t, s, fmt.Sprintf("seed %d", seed))
	}
}
