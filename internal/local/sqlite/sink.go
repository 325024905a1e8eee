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
	batch_id, source_row, source_sheet, source_sheet_index, source_offset, source_length, displaced`

const numProductCols = 17

// productChunk is how many products one INSERT carries (16 parameters each).
const productChunk = 100

// holderChunk is the most SKUs one holder lookup asks for.
const holderChunk = 512

const upsertProducts = ` ON CONFLICT (sku) DO UPDATE SET name = excluded.name, category = excluded.category,
	brand = excluded.brand, price = excluded.price, currency = excluded.currency, stock = excluded.stock,
	status = excluded.status, description = excluded.description, image_urls = excluded.image_urls,
	batch_id = excluded.batch_id, source_row = excluded.source_row, source_sheet = excluded.source_sheet,
	source_sheet_index = excluded.source_sheet_index, source_offset = excluded.source_offset,
	source_length = excluded.source_length, displaced = excluded.displaced`

// holder is who holds a SKU at a point of a Write call: the stored row
// (idx < 0) or products[idx] of the call.
type holder struct {
	catalog.Holder
	idx int // the product of the call that holds the SKU, -1 for a stored one
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
// transaction: it reads the current holders of the call's SKUs, decides each
// product against the holder at that point (earlier decisions of the call
// included), then upserts the winners.
func (db *DB) Write(ctx context.Context, mode catalog.WriteMode, products []catalog.Product) ([]catalog.Outcome, error) {
	switch mode {
	case "", catalog.Upsert, catalog.CreateOnly:
	default:
		return nil, invalid("mode", "write products: unknown write mode %q", mode)
	}
	out := make([]catalog.Outcome, len(products))
	if len(products) == 0 {
		return out, nil
	}
	err := db.write(ctx, fmt.Sprintf("write %d products", len(products)), func(tx *wtx) error {
		clear(out)
		cur, err := holders(tx, products)
		if err != nil {
			return err
		}
		for i := range products {
			p := &products[i]
			h, ok := cur[p.SKU]
			var now catalog.Holder
			out[i], now = catalog.Decide(mode, p, h.Holder, ok)
			if out[i].Result == catalog.Written {
				cur[p.SKU] = holder{Holder: now, idx: i}
			}
		}
		return putProducts(tx, products, cur)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// holders reads who holds the SKUs of products now.
func holders(tx *wtx, products []catalog.Product) (map[string]holder, error) {
	cur := make(map[string]holder, len(products))
	skus := tx.scratch(holderChunk)
	defer tx.release(skus)
	seen := make(map[string]struct{}, len(products))
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
		rows, err := tx.query(`SELECT sku, batch_id, source_sheet_index, source_sheet, source_row, source_offset, source_length, displaced FROM products
			WHERE sku IN (`+strings.TrimSuffix(strings.Repeat("?,", n), ",")+`)`, skus...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				sku  string
				h    = holder{idx: -1}
				disp sql.NullString
			)
			if err := rows.Scan(&sku, &h.BatchID, &h.Source.SheetIndex, &h.Source.Sheet, &h.Source.Row, &h.Offset, &h.Length, &disp); err != nil {
				return err
			}
			if disp.Valid {
				var ds []displacedRow
				if err := json.Unmarshal([]byte(disp.String), &ds); err != nil {
					return fmt.Errorf("product %s: displaced rows: %w", sku, err)
				}
				for _, d := range ds {
					h.Displaced = append(h.Displaced, catalog.Product{SKU: sku, BatchID: h.BatchID,
						Source: catalog.Position{SheetIndex: d.SheetIndex, Sheet: d.Sheet, Row: d.Row}, Offset: d.Offset, Length: d.Length})
				}
			}
			cur[sku] = h
		}
		skus = skus[:0]
		return rows.Err()
	}
	for i := range products {
		sku := products[i].SKU
		if _, ok := seen[sku]; ok {
			continue
		}
		seen[sku] = struct{}{}
		skus = append(skus, sku)
		if len(skus) == holderChunk {
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

// putProducts upserts the products that hold their SKU at the end of the
// call, several per statement.
func putProducts(tx *wtx, products []catalog.Product, cur map[string]holder) error {
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
		p := &products[i]
		h := cur[p.SKU]
		if h.idx != i {
			continue
		}
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
		args = append(args, p.SKU, p.Name, p.Category, p.Brand, p.Price, p.Currency, p.Stock, p.Status, p.Description,
			stringsArg(p.ImageURLs), p.BatchID, p.Source.Row, p.Source.Sheet, p.Source.SheetIndex, p.Offset, p.Length, disp)
		if n++; n == productChunk {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

func getProduct(ctx context.Context, q querier, sku string) (catalog.Product, error) {
	var (
		p      catalog.Product
		images sql.NullString
	)
	var disp sql.NullString
	err := q.QueryRowContext(ctx, `SELECT `+productCols+` FROM products WHERE sku = ?`, sku).Scan(
		&p.SKU, &p.Name, &p.Category, &p.Brand, &p.Price, &p.Currency, &p.Stock, &p.Status, &p.Description, &images,
		&p.BatchID, &p.Source.Row, &p.Source.Sheet, &p.Source.SheetIndex, &p.Offset, &p.Length, &disp)
	if err != nil {
		return catalog.Product{}, err
	}
	p.ImageURLs, err = parseStrings(images)
	return p, err
}

// Get returns the product with sku, or ok=false.
func (db *DB) Get(ctx context.Context, sku string) (catalog.Product, bool, error) {
	var (
		p  catalog.Product
		ok bool
	)
	err := db.read(ctx, "get product "+sku, func(q querier) error {
		var err error
		p, err = getProduct(ctx, q, sku)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		ok = err == nil
		return err
	})
	if err != nil {
		return catalog.Product{}, false, err
	}
	return p, ok, nil
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
