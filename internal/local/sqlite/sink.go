package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/catalog-import/catalog-import/internal/catalog"
)

// This file implements catalog.Sink and catalog.Reader; the package
// documentation lists the decisions taken where the port leaves room.

const productCols = `sku, name, category, brand, price, currency, stock, status, description, image_urls,
	batch_id, source_row, source_sheet, source_sheet_index, source_offset, source_length, displaced, stamps, holders`

const numProductCols = 19

// productChunk is how many products one INSERT carries (19 parameters each).
const productChunk = 100

// stateChunk is the most SKUs one state lookup asks for.
const stateChunk = 512

const upsertProducts = ` ON CONFLICT (sku) DO UPDATE SET name = excluded.name, category = excluded.category,
	brand = excluded.brand, price = excluded.price, currency = excluded.currency, stock = excluded.stock,
	status = excluded.status, description = excluded.description, image_urls = excluded.image_urls,
	batch_id = excluded.batch_id, source_row = excluded.source_row, source_sheet = excluded.source_sheet,
	source_sheet_index = excluded.source_sheet_index, source_offset = excluded.source_offset,
	source_length = excluded.source_length, displaced = excluded.displaced, stamps = excluded.stamps,
	holders = excluded.holders`

// skuState is a SKU's state during a Write call: the stored one, then after
// each product of the call that was Written.
type skuState struct {
	catalog.State
	dirty bool // changed by the call: must be stored
}

// displacedRow is how a displaced row is kept in products.displaced.
type displacedRow struct {
	Sheet      string `json:"sheet"`
	SheetIndex int    `json:"sheet_index"`
	Row        int64  `json:"row"`
	Offset     int64  `json:"offset"`
	Length     int64  `json:"length"`
}

// Write applies products in slice order under the catalog.Sink rules, in one
// transaction: it reads the stored states of the call's SKUs (values, stamps
// and holders in one query), decides each product with catalog.Decide
// against the state at that point (earlier decisions of the call included),
// then upserts the changed SKUs.
func (db *DB) Write(ctx context.Context, mode catalog.WriteMode, products []catalog.Product) ([]catalog.Outcome, error) {
	mode, err := catalog.SinkMode(mode)
	if err != nil {
		return nil, err
	}
	out := make([]catalog.Outcome, len(products))
	if len(products) == 0 {
		return out, nil
	}
	err = db.write(ctx, fmt.Sprintf("write %d products", len(products)), func(tx *wtx) error {
		clear(out)
		cur, err := states(tx, products)
		if err != nil {
			return err
		}
		for i := range products {
			p := &products[i]
			st := cur[p.SKU]
			var next catalog.State
			out[i], next = catalog.Decide(mode, p, st.State)
			if out[i].Result == catalog.Written {
				st.State, st.dirty = next, true
			}
		}
		return putProducts(tx, products, cur)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// states reads the stored states of the SKUs of products (a zero state for
// a SKU never stored).
func states(tx *wtx, products []catalog.Product) (map[string]*skuState, error) {
	cur := make(map[string]*skuState, len(products))
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
			*cur[st.Product.SKU] = skuState{State: st}
		}
		skus = skus[:0]
		return rows.Err()
	}
	for i := range products {
		sku := products[i].SKU
		if _, ok := cur[sku]; ok {
			continue
		}
		cur[sku] = &skuState{}
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
		st                     catalog.State
		p                      = &st.Product
		h                      catalog.Holder
		images, disp, sts, hsj sql.NullString
	)
	err := row.Scan(&p.SKU, &p.Name, &p.Category, &p.Brand, &p.Price, &p.Currency, &p.Stock, &p.Status, &p.Description, &images,
		&h.BatchID, &h.Source.Row, &h.Source.Sheet, &h.Source.SheetIndex, &h.Offset, &h.Length, &disp, &sts, &hsj)
	if err != nil {
		return st, err
	}
	if p.ImageURLs, err = parseStrings(images); err != nil {
		return st, err
	}
	if st.Stamps, st.Exists, h.Order, err = catalog.DecodeStamps(sts.String); err != nil {
		return st, fmt.Errorf("product %s: %w", p.SKU, err)
	}
	if disp.Valid {
		var ds []displacedRow
		if err := json.Unmarshal([]byte(disp.String), &ds); err != nil {
			return st, fmt.Errorf("product %s: displaced rows: %w", p.SKU, err)
		}
		for _, d := range ds {
			h.Displaced = append(h.Displaced, catalog.Product{SKU: p.SKU, BatchID: h.BatchID,
				Source: catalog.Position{SheetIndex: d.SheetIndex, Sheet: d.Sheet, Row: d.Row}, Offset: d.Offset, Length: d.Length})
		}
	}
	more, err := catalog.DecodeHolders(p.SKU, hsj.String)
	if err != nil {
		return st, err
	}
	st.Holders = append([]catalog.Holder{h}, more...)
	return st, nil
}

// putProducts upserts the states the call changed, several per statement,
// in the order of their SKUs' first products.
func putProducts(tx *wtx, products []catalog.Product, cur map[string]*skuState) error {
	args := tx.scratch(productChunk * numProductCols)
	defer tx.release(args)
	n := 0
	flush := func() error {
		if n == 0 {
			return nil
		}
		_, err := tx.exec(`INSERT INTO products (`+productCols+`) VALUES `+placeholders(n, numProductCols)+upsertProducts, args...)
		args, n = args[:0], 0
		return err
	}
	for i := range products {
		st := cur[products[i].SKU]
		if !st.dirty {
			continue
		}
		st.dirty = false // stored once, with its final state
		p, h := &st.Product, &st.Holders[0]
		var disp any
		if len(h.Displaced) > 0 {
			ds := make([]displacedRow, len(h.Displaced))
			for j, d := range h.Displaced {
				ds[j] = displacedRow{Sheet: d.Source.Sheet, SheetIndex: d.Source.SheetIndex, Row: d.Source.Row, Offset: d.Offset, Length: d.Length}
			}
			b, err := json.Marshal(ds)
			if err != nil {
				return err
			}
			disp = string(b)
		}
		var more any
		if len(st.Holders) > 1 {
			s, err := catalog.EncodeHolders(st.Holders[1:])
			if err != nil {
				return err
			}
			more = s
		}
		args = append(args, p.SKU, p.Name, p.Category, p.Brand, p.Price, p.Currency, p.Stock, p.Status, p.Description,
			stringsArg(p.ImageURLs), h.BatchID, h.Source.Row, h.Source.Sheet, h.Source.SheetIndex, h.Offset, h.Length, disp,
			catalog.EncodeStamps(&st.State), more)
		if n++; n == productChunk {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
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
// row in [from, to], in sheet (any sheet when sheet is "").
func (db *DB) CountBatch(ctx context.Context, batchID, sheet string, from, to int64) (int64, error) {
	var n int64
	err := db.read(ctx, "count products of "+batchID, func(q querier) error {
		if sheet == "" {
			return q.QueryRowContext(ctx, `SELECT count(*) FROM products WHERE batch_id = ? AND source_row BETWEEN ? AND ?`,
				batchID, from, to).Scan(&n)
		}
		return q.QueryRowContext(ctx, `SELECT count(*) FROM products WHERE batch_id = ? AND source_sheet = ? AND source_row BETWEEN ? AND ?`,
			batchID, sheet, from, to).Scan(&n)
	})
	return n, err
}
