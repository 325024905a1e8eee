package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/catalog-import/catalog-import/internal/catalog"
)

// This file implements catalog.Sink and catalog.Reader; the package
// documentation lists the decisions taken where the port leaves room.

const productCols = `sku, name, category, brand, price, currency, stock, status, description, image_urls, meta`

const numProductCols = 11

// productChunk is how many products one INSERT carries (11 parameters each).
const productChunk = 100

// stateChunk is the most SKUs one state lookup asks for.
const stateChunk = 512

// What an INSERT of products does with a SKU that is stored: the lookup
// path replaces it with the state it decided against the stored one; the
// fresh path (writeFresh) decided against no state, so it must not touch it.
const (
	onConflictUpdate = ` ON CONFLICT (sku) DO UPDATE SET name = excluded.name, category = excluded.category,
	brand = excluded.brand, price = excluded.price, currency = excluded.currency, stock = excluded.stock,
	status = excluded.status, description = excluded.description, image_urls = excluded.image_urls,
	meta = excluded.meta`
	onConflictNothing = ` ON CONFLICT (sku) DO NOTHING`
)

// skuState is a SKU's state during a Write call: the stored one, then after
// each product of the call that was Written.
type skuState struct {
	catalog.State
	dirty bool // changed by the call: must be stored
}

// skuStates are the states of a call's SKUs, in the order of their first
// products.
type skuStates struct {
	index map[string]int
	all   []skuState
}

// newStates returns room for the states of n products.
func newStates(n int) *skuStates {
	return &skuStates{index: make(map[string]int, n), all: make([]skuState, 0, n)}
}

// get returns sku's state, adding a zero one if sku has none yet. The
// pointer is valid until the next get.
func (s *skuStates) get(sku string) (st *skuState, added bool) {
	if i, ok := s.index[sku]; ok {
		return &s.all[i], false
	}
	s.index[sku] = len(s.all)
	s.all = append(s.all, skuState{})
	return &s.all[len(s.all)-1], true
}

// Write applies products in slice order under the catalog.Sink rules, in one
// transaction, deciding each product with catalog.Decide against its SKU's
// state at that point (earlier decisions of the call included).
//
// The states come from one of two paths. The lookup path reads the stored
// states of the call's SKUs (one query per 512), decides, and upserts the
// changed SKUs. The fresh path, tried first for every mode but update,
// decides against no stored state and inserts the changed SKUs with ON
// CONFLICT DO NOTHING: if every insert went in, no SKU was stored and the
// decisions stand, without a lookup; if one did not, its inserts are rolled
// back and the lookup path runs (and the next calls take it first for a
// while: see freshPath). An import of new SKUs, the common case, so costs
// no lookup (decision 28).
func (db *DB) Write(ctx context.Context, mode catalog.WriteMode, products []catalog.Product) ([]catalog.Outcome, error) {
	return db.WritePrepared(ctx, mode, products, nil)
}

// Prepare does the part of a Write of products that does not depend on
// the catalog, for WritePrepared: the fresh path's decisions and its
// INSERT's arguments (decision 28). It returns nil for the update mode,
// which has no fresh path. It is safe for concurrent use and touches no
// database: the shard worker calls it from its validation pool, so that
// the single writer does little more than SQLite's own work.
func (db *DB) Prepare(mode catalog.WriteMode, products []catalog.Product) any {
	mode, err := catalog.SinkMode(mode)
	if err != nil || mode == catalog.Update || len(products) == 0 {
		return nil
	}
	pr := &prepared{mode: mode, n: len(products), outs: make([]catalog.Outcome, len(products))}
	sc := scratchPool.Get().(*scratch)
	defer sc.release()
	decide(mode, products, &sc.states, pr.outs)
	sc.text = slices.Grow(sc.text, len(products)*preparedBytes)
	n := 0
	for i := range sc.states.all {
		if sc.states.all[i].dirty {
			n++
		}
	}
	pr.values = make([]any, 0, n*numProductCols)
	slab := newValueSlab(n*(numProductCols-1), n)
	for i := range sc.states.all {
		st := &sc.states.all[i]
		if !st.dirty {
			continue
		}
		if len(st.Product.ImageURLs) > 0 {
			sc.text = appendStrings(sc.text, st.Product.ImageURLs)
		}
		sc.spans = append(sc.spans, len(sc.text))
		if sc.text, err = appendMetaOf(sc.text, &st.State, &sc.batch); err != nil {
			return nil
		}
		sc.spans = append(sc.spans, len(sc.text))
		p := &st.Product
		pr.values = append(pr.values, slab.str(p.SKU), slab.str(p.Name), slab.str(p.Category), slab.str(p.Brand), slab.str(p.Price),
			slab.str(p.Currency), slab.int(p.Stock), slab.str(p.Status), slab.str(p.Description), nil, nil)
	}
	setTexts(pr.values, string(sc.text), sc.spans, slab)
	return pr
}

// scratch is what Prepare needs only while it runs, recycled through
// scratchPool: the states and the text it builds are larger than the
// garbage collector likes to see per chunk.
type scratch struct {
	states skuStates
	text   []byte
	spans  []int
	batch  batchText
}

var scratchPool = sync.Pool{New: func() any { return &scratch{states: skuStates{index: map[string]int{}}} }}

// release empties sc and puts it back in the pool.
func (sc *scratch) release() {
	clear(sc.states.index)
	clear(sc.states.all)
	sc.states.all, sc.text, sc.spans = sc.states.all[:0], sc.text[:0], sc.spans[:0]
	scratchPool.Put(sc)
}

// preparedBytes is about the bytes of a product's image_urls and meta text.
const preparedBytes = 192

// prepared is Prepare's result.
type prepared struct {
	mode   catalog.WriteMode
	n      int               // products it covers
	outs   []catalog.Outcome // their outcomes against no stored state
	values []any             // the fresh INSERT's values, numProductCols per SKU written
}

// WritePrepared is Write(ctx, mode, products), given parts: the results of
// Prepare(mode, ...) for consecutive runs of products, in order (nil parts,
// or parts that do not cover products exactly, are ignored: the call is a
// plain Write). With parts, the fresh path only inserts what they hold.
func (db *DB) WritePrepared(ctx context.Context, mode catalog.WriteMode, products []catalog.Product, parts []any) ([]catalog.Outcome, error) {
	mode, err := catalog.SinkMode(mode)
	if err != nil {
		return nil, err
	}
	out := make([]catalog.Outcome, len(products))
	if len(products) == 0 {
		return out, nil
	}
	prs := preparedParts(mode, len(products), parts)
	err = db.run(ctx, fmt.Sprintf("write %d products", len(products)), writeCall, len(products), func(tx *wtx) error {
		if mode != catalog.Update && db.fresh.try() {
			if prs == nil {
				if pr, _ := db.Prepare(mode, products).(*prepared); pr != nil {
					prs = []*prepared{pr}
				}
			}
			ok, err := writeFresh(tx, prs)
			if err != nil {
				return err
			}
			db.fresh.result(ok)
			if ok {
				k := 0
				for _, pr := range prs {
					k += copy(out[k:], pr.outs)
				}
				return nil
			}
		}
		clear(out)
		cur, err := states(tx, products)
		if err != nil {
			return err
		}
		decide(mode, products, cur, out)
		return tx.raw(func(rc *rawConn) error { return putProducts(rc, cur) })
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// preparedParts returns parts as Prepare's results if they are for mode
// and cover n products, else nil.
func preparedParts(mode catalog.WriteMode, n int, parts []any) []*prepared {
	if len(parts) == 0 {
		return nil
	}
	prs := make([]*prepared, len(parts))
	for i, p := range parts {
		pr, ok := p.(*prepared)
		if !ok || pr == nil || pr.mode != mode {
			return nil
		}
		prs[i], n = pr, n-pr.n
	}
	if n != 0 {
		return nil
	}
	return prs
}

// decide decides products in turn against their SKUs' states in cur.
func decide(mode catalog.WriteMode, products []catalog.Product, cur *skuStates, out []catalog.Outcome) {
	for i := range products {
		p := &products[i]
		st, _ := cur.get(p.SKU)
		// Decide returns the state unchanged unless the product is Written.
		out[i], st.State = catalog.Decide(mode, p, st.State)
		st.dirty = st.dirty || out[i].Result == catalog.Written
	}
}

// writeFresh is Write's fresh path: it inserts the SKUs prs decided
// against no stored state, or reports false, having stored nothing, when
// one of them is stored (also when two parts write the same SKU).
func writeFresh(tx *wtx, prs []*prepared) (bool, error) {
	if _, err := tx.exec("SAVEPOINT fresh"); err != nil {
		return false, err
	}
	var inserted, want int64
	err := tx.raw(func(rc *rawConn) error {
		before, err := rc.queryInt("SELECT total_changes()", nil)
		if err != nil {
			return err
		}
		for _, pr := range prs {
			for vals := pr.values; len(vals) > 0; {
				n := min(len(vals)/numProductCols, productChunk)
				if err := rc.exec(insertProducts(n, onConflictNothing), vals[:n*numProductCols]); err != nil {
					return err
				}
				vals, want = vals[n*numProductCols:], want+int64(n)
			}
		}
		after, err := rc.queryInt("SELECT total_changes()", nil)
		inserted = after - before
		return err
	})
	if err == nil && inserted == want {
		_, err = tx.exec("RELEASE fresh")
		return err == nil, err
	}
	if _, rerr := tx.exec("ROLLBACK TO fresh"); rerr != nil && err == nil {
		err = rerr
	}
	if _, rerr := tx.exec("RELEASE fresh"); rerr != nil && err == nil {
		err = rerr
	}
	return false, err
}

// insertProducts is the INSERT of n products with conflict (onConflict*).
func insertProducts(n int, conflict string) string {
	return `INSERT INTO products (` + productCols + `) VALUES ` + placeholders(n, numProductCols) + conflict
}

// freshPath decides when Write tries its fresh path: always while it
// works; after a call whose SKUs were stored (a re-import, an update feed),
// the next calls skip it, twice as many after each miss in a row (up to
// 256), so that a catalog of stored SKUs pays the wasted insert rarely.
type freshPath struct {
	skip, wait int // calls still to skip; calls to skip after the next miss
}

// try reports whether this call tries the fresh path (under DB.mu).
func (f *freshPath) try() bool {
	if f.skip > 0 {
		f.skip--
		return false
	}
	return true
}

// result records whether the fresh path worked (under DB.mu).
func (f *freshPath) result(ok bool) {
	if ok {
		f.wait = 0
		return
	}
	f.wait = min(max(2*f.wait, 1), 256)
	f.skip = f.wait
}

// states reads the stored states of the SKUs of products (a zero state for
// a SKU never stored).
func states(tx *wtx, products []catalog.Product) (*skuStates, error) {
	cur := newStates(len(products))
	skus := tx.scratch(stateChunk)
	defer tx.release(skus)
	lookup := func() error {
		if len(skus) == 0 {
			return nil
		}
		// Pad to a power of two so that few statements are prepared.
		n := 1
		for n < len(skus) {
			n *= 2
		}
		for len(skus) < n {
			skus = append(skus, skus[len(skus)-1])
		}
		rows, err := tx.query(`SELECT `+productCols+` FROM products
			WHERE sku IN (`+strings.TrimSuffix(strings.Repeat("?,", n), ",")+`)`, skus...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			st, err := scanState(rows)
			if err != nil {
				return err
			}
			cur.all[cur.index[st.Product.SKU]] = skuState{State: st}
		}
		skus = skus[:0]
		return rows.Err()
	}
	for i := range products {
		sku := products[i].SKU
		if _, added := cur.get(sku); !added {
			continue
		}
		skus = append(skus, sku)
		if len(skus) == stateChunk {
			if err := lookup(); err != nil {
				return nil, err
			}
		}
	}
	if err := lookup(); err != nil {
		return nil, err
	}
	return cur, nil
}

// scanState reads a products row (productCols) as the SKU's state.
func scanState(row interface{ Scan(...any) error }) (catalog.State, error) {
	var (
		st     catalog.State
		p      = &st.Product
		images sql.NullString
		meta   string
	)
	err := row.Scan(&p.SKU, &p.Name, &p.Category, &p.Brand, &p.Price, &p.Currency, &p.Stock, &p.Status, &p.Description, &images, &meta)
	if err != nil {
		return st, err
	}
	if p.ImageURLs, err = parseStrings(images); err != nil {
		return st, err
	}
	return st, parseMeta(p.SKU, meta, &st)
}

// putProducts upserts the states the call changed, several per statement,
// in the order of their SKUs' first products.
func putProducts(rc *rawConn, cur *skuStates) error {
	vals := make([]any, 0, productChunk*numProductCols)
	var (
		text  []byte // the statement's JSON values, cut into strings once
		spans []int  // their ends in text, two per product
		n     int
	)
	flush := func() error {
		if n == 0 {
			return nil
		}
		setTexts(vals, string(text), spans, nil)
		err := rc.exec(insertProducts(n, onConflictUpdate), vals)
		vals, text, spans, n = vals[:0], text[:0], spans[:0], 0
		return err
	}
	for i := range cur.all {
		st := &cur.all[i]
		if !st.dirty {
			continue
		}
		if len(st.Product.ImageURLs) > 0 {
			text = appendStrings(text, st.Product.ImageURLs)
		}
		spans = append(spans, len(text))
		var err error
		if text, err = appendMeta(text, &st.State); err != nil {
			return err
		}
		spans = append(spans, len(text))
		vals = appendProduct(vals, &st.Product)
		if n++; n == productChunk {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// appendProduct appends the values of p's row, with image_urls and meta
// left for setTexts.
func appendProduct(vals []any, p *catalog.Product) []any {
	return append(vals, p.SKU, p.Name, p.Category, p.Brand, p.Price, p.Currency, p.Stock, p.Status, p.Description, nil, nil)
}

// setTexts sets the image_urls and meta values of each row of vals from
// text: row i's image_urls end at spans[2i] (none when empty: NULL), its
// meta at spans[2i+1]. The values are boxed in slab, when not nil.
func setTexts(vals []any, text string, spans []int, slab *valueSlab) {
	box := func(s string) any { return s }
	if slab != nil {
		box = slab.str
	}
	for i := range len(spans) / 2 {
		v := vals[i*numProductCols:]
		start := 0
		if i > 0 {
			start = spans[2*i-1]
		}
		if spans[2*i] > start {
			v[9] = box(text[start:spans[2*i]])
		}
		v[10] = box(text[spans[2*i]:spans[2*i+1]])
	}
}

// getState reads the stored state of sku; ok is false when there is none.
func (db *DB) getState(ctx context.Context, sku string) (catalog.State, bool, error) {
	var (
		st catalog.State
		ok bool
	)
	err := db.read(ctx, "get product "+sku, func(q querier) error {
		var err error
		st, err = scanState(q.QueryRowContext(ctx, `SELECT `+productCols+` FROM products WHERE sku = ?`, sku))
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		ok = err == nil
		return err
	})
	if err != nil {
		return catalog.State{}, false, err
	}
	return st, ok, nil
}

// Get returns the product with sku, or ok=false when there is none or it is
// deleted.
func (db *DB) Get(ctx context.Context, sku string) (catalog.Product, bool, error) {
	st, ok, err := db.getState(ctx, sku)
	if !ok || err != nil {
		return catalog.Product{}, false, err
	}
	p, ok := st.Effective()
	return p, ok, nil
}

// Stamps returns the stamps stored for sku, ok=false when the database has no
// record of it.
func (db *DB) Stamps(ctx context.Context, sku string) (catalog.FieldStamps, bool, error) {
	st, ok, err := db.getState(ctx, sku)
	return st.Stamps, ok, err
}

// CountBatch counts the products whose provenance is batchID with a source
// row in [from, to], in sheet (any sheet when sheet is ""). It scans the
// table: nothing indexes products by provenance (decision 28), and nothing
// but tests and ad-hoc checks counts them.
func (db *DB) CountBatch(ctx context.Context, batchID, sheet string, from, to int64) (int64, error) {
	var n int64
	err := db.read(ctx, "count products of "+batchID, func(q querier) error {
		return q.QueryRowContext(ctx, `SELECT count(*) FROM products WHERE json_extract(meta, '$[0]') = ?1
			AND json_extract(meta, '$[1]') BETWEEN ?2 AND ?3 AND (?4 = '' OR COALESCE(json_extract(meta, '$[5]'), '') = ?4)`,
			batchID, from, to, sheet).Scan(&n)
	})
	return n, err
}
