package catalogtest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/catalog-import/catalog-import/internal/catalog"
)

// The model-based property test: random small histories of batches (modes
// upsert, replace and delete; overlapping SKUs; random columns and values;
// duplicate SKUs within a batch) are written in a random order, with random
// replays, sometimes from several goroutines, and must end equal to a plain
// sequential model that applies the batches one after the other in upload
// order.

// modelBatch is one batch of a case: its rows in file order.
type modelBatch struct {
	id    string
	order int64
	mode  catalog.WriteMode
	rows  []catalog.Product
}

// modelCase is one random history.
type modelCase struct {
	skus    []string
	batches []modelBatch // in upload order
}

var modelModes = []catalog.WriteMode{catalog.Upsert, catalog.Upsert, catalog.Replace, catalog.Delete}

// newCase returns a random case of up to maxSKUs SKUs (prefix pfx) and
// 3..maxBatches batches.
func newCase(rng *rand.Rand, pfx string, maxSKUs, maxBatches int) modelCase {
	var c modelCase
	for i := range 1 + rng.IntN(maxSKUs) {
		c.skus = append(c.skus, fmt.Sprintf("%s-%d", pfx, i))
	}
	for range 3 + rng.IntN(maxBatches-2) {
		b := modelBatch{id: newID("batch"), mode: modelModes[rng.IntN(len(modelModes))]}
		b.order = orderOf(b.id)
		var names []string
		for f := range catalog.NumFields {
			if rng.IntN(2) == 0 {
				names = append(names, f.String())
			}
		}
		if b.mode == catalog.Delete {
			names = nil
		}
		row := int64(2)
		for range 1 + rng.IntN(5) {
			sku := c.skus[rng.IntN(len(c.skus))] // SKUs may repeat within the batch
			p := partial(b.id, sku, row, names...)
			// Random values, so that batches differ in every field they have.
			for f := range catalog.NumFields {
				if p.Present.Has(f) {
					v := fmt.Sprintf("v%d", rng.IntN(1000))
					setField(&p, f, &catalog.Product{Name: v, Category: v, Brand: v, Price: v, Currency: v,
						Stock: int64(rng.IntN(1000)), Status: v, Description: v, ImageURLs: []string{v}})
				}
			}
			b.rows = append(b.rows, p)
			row += 1 + int64(rng.IntN(3))
		}
		c.batches = append(c.batches, b)
	}
	return c
}

// model applies c's batches in upload order, each SKU's lowest row of a
// batch only, and returns the products that exist, by SKU.
func (c *modelCase) model() map[string]catalog.Product {
	m := map[string]catalog.Product{}
	for _, b := range c.batches {
		seen := map[string]bool{}
		for _, p := range b.rows { // in file order: the first row of a SKU wins
			if seen[p.SKU] {
				continue
			}
			seen[p.SKU] = true
			cur, ok := m[p.SKU]
			switch b.mode {
			case catalog.Delete:
				delete(m, p.SKU)
				continue
			case catalog.Replace:
				cur = values(p)
			case catalog.Upsert:
				if !ok {
					cur = values(p) // absent fields hold the defaults
				}
				for f := range catalog.NumFields {
					if p.Present.Has(f) {
						setField(&cur, f, &p)
					}
				}
			}
			m[p.SKU] = cur
		}
	}
	return m
}

// check compares the sink's products of c's SKUs with the model's.
func (c *modelCase) check(t *testing.T, s SinkReader, what string) {
	t.Helper()
	want := c.model()
	for _, sku := range c.skus {
		p, ok, err := s.Get(t.Context(), sku)
		must(t, err, "Get")
		w, wok := want[sku]
		if ok != wok {
			t.Errorf("%s: %s exists = %v, want %v\n%s", what, sku, ok, wok, c)
			continue
		}
		if ok {
			diff(t, fmt.Sprintf("%s: product %s\n%s", what, sku, c), w, values(p))
		}
	}
}

func (c *modelCase) String() string {
	s := "batches in upload order:\n"
	for _, b := range c.batches {
		s += fmt.Sprintf("  %s order %d %s:\n", b.id, b.order, b.mode)
		for _, p := range b.rows {
			s += fmt.Sprintf("    row %d %s present %09b %+v\n", p.Source.Row, p.SKU, p.Present&catalog.AllFields(), values(p))
		}
	}
	return s
}

// testModel runs cases random cases (seeded by their number) against s.
func testModel(t *testing.T, s SinkReader, cases int) {
	for n := range cases {
		rng := rand.New(rand.NewPCG(uint64(n), 0x40de1))
		c := newCase(rng, newID("SKU"), 5, 6)
		type call struct {
			mode catalog.WriteMode
			ps   []catalog.Product
		}
		// Every row once, in a random order, in calls of 1-3 rows of one
		// batch; then random replays of rows already written.
		var rows []call
		for _, b := range c.batches {
			for _, p := range b.rows {
				rows = append(rows, call{b.mode, []catalog.Product{p}})
			}
		}
		rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
		var calls []call
		for _, r := range rows {
			if k := len(calls) - 1; k >= 0 && calls[k].ps[0].BatchID == r.ps[0].BatchID && len(calls[k].ps) < 3 && rng.IntN(2) == 0 {
				calls[k].ps = append(calls[k].ps, r.ps[0])
			} else {
				calls = append(calls, r)
			}
			if rng.IntN(4) == 0 {
				calls = append(calls, calls[rng.IntN(len(calls))]) // a replay
			}
		}
		if n%4 == 3 { // from 3 goroutines at once
			var wg sync.WaitGroup
			errs := make([]error, 3)
			for g := range 3 {
				wg.Go(func() {
					for i := g; i < len(calls); i += 3 {
						if _, err := s.Write(t.Context(), calls[i].mode, slices.Clone(calls[i].ps)); err != nil {
							errs[g] = err
							return
						}
					}
				})
			}
			wg.Wait()
			for _, err := range errs {
				must(t, err, "Write")
			}
		} else {
			for _, cl := range calls {
				write(t, s, cl.mode, cl.ps...)
			}
		}
		c.check(t, s, fmt.Sprintf("case %d", n))
		if t.Failed() {
			return
		}
	}
}
