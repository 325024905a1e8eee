// Package catalog is the product sink port: where validated products are
// written, and the rules every sink must keep so that imports are idempotent
// (invariant 4) and duplicate SKUs in one file resolve deterministically to the
// lowest position (invariant 5). Adapters live in internal/local/sqlite (and
// internal/aws/dynamocatalog); catalogtest is the contract suite they all pass.
package catalog

import (
	"context"
	"fmt"
	"slices"
)

// WriteMode is how a product that already exists from another batch is treated.
type WriteMode string

// Write modes of a profile.
const (
	// Upsert replaces a product written by another batch.
	Upsert WriteMode = "upsert"
	// CreateOnly refuses a product that another batch wrote (SKUExists).
	CreateOnly WriteMode = "create-only"
)

// Position orders the rows of one batch: sheet index first, then row number.
// The lowest position of a SKU wins within a batch.
type Position struct {
	SheetIndex int    `json:"sheet_index"`
	Sheet      string `json:"sheet"`
	Row        int64  `json:"row"`
}

// Less reports whether p comes before q in the file.
func (p Position) Less(q Position) bool {
	if p.SheetIndex != q.SheetIndex {
		return p.SheetIndex < q.SheetIndex
	}
	return p.Row < q.Row
}

// String formats the position as a person reads it: "row 12" or "Sheet2!row 12".
func (p Position) String() string {
	if p.Sheet == "" || p.Sheet == "-" {
		return fmt.Sprintf("row %d", p.Row)
	}
	return fmt.Sprintf("%s!row %d", p.Sheet, p.Row)
}

// Product is one catalog product as the default profile defines it.
// Price is the canonical decimal text with two decimals ("12.50"): money is
// never a float.
type Product struct {
	SKU         string   `json:"sku"`
	Name        string   `json:"name"`
	Category    string   `json:"category"`
	Brand       string   `json:"brand,omitempty"`
	Price       string   `json:"price"`
	Currency    string   `json:"currency"`
	Stock       int64    `json:"stock"`
	Status      string   `json:"status"`
	Description string   `json:"description,omitempty"`
	ImageURLs   []string `json:"image_urls,omitempty"`

	// Provenance: which batch and where in its file this product came from.
	BatchID string   `json:"batch_id"`
	Source  Position `json:"source"`
	// Offset and Length locate the row's bytes in the shard's object, so that
	// a displaced row (see Outcome) can be snapshotted by whoever displaces it.
	Offset int64 `json:"-"`
	Length int64 `json:"-"`
}

// Result says what a sink did with one product of a Write call.
type Result int

// Results of writing one product.
const (
	// Written: the product is stored (new, replacing another batch's in upsert
	// mode, replacing a later row of the same batch, or a replay of itself).
	Written Result = iota
	// Duplicate: a lower position of the same batch holds the SKU; nothing stored.
	Duplicate
	// Exists: create-only mode and another batch holds the SKU; nothing stored.
	Exists
)

// Outcome is the result for products[Index] of a Write call.
type Outcome struct {
	Result Result
	// Holder is the position that holds the SKU when Result is Duplicate.
	Holder Position
	// Displaced lists, when Result is Written, every later row of the same
	// batch that this SKU's product has displaced so far (a later row written
	// first by another shard). Each is now a DuplicateSKU failure the caller
	// must record (idempotently: the same rows are reported again by every
	// Write that stores the SKU for this batch, replays included, so a crash
	// between the Write and the recording loses nothing). Entries carry SKU,
	// BatchID, Source, Offset and Length; other fields may be empty.
	Displaced []Product
}

// Holder is what a sink knows of the product that holds a SKU: where it
// came from, where its bytes are, and the rows of its batch it displaced.
type Holder struct {
	BatchID   string
	Source    Position
	Offset    int64
	Length    int64
	Displaced []Product
}

// Decide applies the Sink rules below to product p of a Write, against the
// SKU's holder h (held: whether any product holds it yet). It returns p's
// outcome and the SKU's holder afterwards: p itself when p is Written, h
// otherwise. Every sink decides with it, so the rules live in one place;
// sinks differ only in how they read holders and make the result atomic.
func Decide(mode WriteMode, p *Product, h Holder, held bool) (Outcome, Holder) {
	switch {
	case !held:
	case h.BatchID != p.BatchID:
		if mode == CreateOnly {
			return Outcome{Result: Exists}, h
		}
		h.Displaced = nil // another batch's product: a new list starts
	case h.Source.Less(p.Source):
		return Outcome{Result: Duplicate, Holder: h.Source}, h
	case p.Source.Less(h.Source):
		h.Displaced = append(slices.Clip(h.Displaced), Product{SKU: p.SKU, BatchID: h.BatchID, Source: h.Source, Offset: h.Offset, Length: h.Length})
	}
	return Outcome{Result: Written, Displaced: h.Displaced},
		Holder{BatchID: p.BatchID, Source: p.Source, Offset: p.Offset, Length: p.Length, Displaced: h.Displaced}
}

// Sink stores products. Implementations must be safe for concurrent use.
//
// Write applies products in slice order and returns one Outcome per product.
// For each product p with SKU s already held by h:
//   - no h, or h from another batch (upsert): store p, Written;
//   - h from another batch (create-only): Exists, nothing stored;
//   - h from p's batch with a lower position: Duplicate (Holder = h's position);
//   - h from p's batch at the same position: store p again, Written (replay),
//     Displaced = what h had displaced;
//   - h from p's batch with a higher position: store p, Written, Displaced =
//     what h had displaced, and h.
//
// The decision and the write are atomic per SKU: concurrent writers of one SKU
// end with the lowest position stored, whatever order they ran in.
// A failed Write may have stored a prefix; retrying it is safe.
type Sink interface {
	Write(ctx context.Context, mode WriteMode, products []Product) ([]Outcome, error)
}

// Reader reads products back (status views, tests and reconciliation).
type Reader interface {
	// Get returns the product with sku, or ok=false.
	Get(ctx context.Context, sku string) (p Product, ok bool, err error)
	// CountBatch counts the products whose provenance is batchID, with a
	// source position inside [from, to] (inclusive row numbers, any sheet when
	// sheet is "").
	CountBatch(ctx context.Context, batchID, sheet string, from, to int64) (int64, error)
}
