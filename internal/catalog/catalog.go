// Package catalog is the product sink port: where validated products are
// written, and the rules every sink must keep so that imports are idempotent
// (invariant 4), duplicate SKUs in one file resolve deterministically to the
// lowest position (invariant 5), and the catalog equals applying the batches
// one after another in upload order, whatever order they really run, crash,
// resume or are retried in (decision 17). Adapters live in
// internal/local/sqlite and internal/aws/dynamocatalog; catalogtest is the
// contract suite they all pass.
//
// # Rules
//
// Decide holds every rule; sinks only read a SKU's State, call it product
// after product and store the result atomically per SKU.
//
//   - Every product carries its batch's upload Order (larger = newer) and the
//     set of fields its file has (Present). The catalog keeps per field the
//     order of the batch whose value it holds (FieldStamps). A write from
//     order o changes field f only if o > stamp(f) and o > the tombstone.
//   - Within one batch the lowest position of a SKU wins all its fields;
//     later rows are Duplicate, and a lower row written after a higher one
//     displaces it (Outcome.Displaced).
//   - Upsert creates a missing product (absent fields take the defaults the
//     product carries, at stamp 0, the weakest) and otherwise changes only
//     present fields: an absent column never resets a field. Replace writes
//     every field, absent ones with their defaults, at its order. Update
//     changes present fields of an existing product; a missing one is
//     Unknown. CreateOnly creates, and is Exists when another batch's
//     product exists.
//   - Delete at order t (> the tombstone) sets the tombstone to t and clears
//     every field stamped below t (stamp 0: no value, or the default the
//     delete row carries when a creating write newer than t exists). A
//     product exists iff its newest creating write (upsert, replace,
//     create-only that wrote) is newer than its tombstone. Deleting an
//     unknown SKU is Written and leaves a tombstone.
//   - A row none of whose changes survive (every field it would change holds
//     a newer stamp, or a newer tombstone covers it) is Superseded. A replay
//     of a row (same batch, same position) is Written again and changes
//     nothing.
//   - Update and CreateOnly decide existence when the row is written; the
//     other modes are exact in any interleaving.
//   - Order 0 (callers that order nothing) is the weakest order, and writes
//     of order 0 replace each other: the last one wins, as before stamps.
package catalog

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/catalog-import/catalog-import/internal/failure"
)

// WriteMode is how a batch's rows change the catalog (profile write_mode).
type WriteMode string

// Write modes of a profile.
const (
	// Upsert creates missing products (absent fields take the profile's
	// defaults) and changes only the present fields of existing ones.
	Upsert WriteMode = "upsert"
	// Replace makes the product the row: every field, absent ones with
	// their defaults.
	Replace WriteMode = "replace"
	// Update changes the present fields of existing products only; a SKU
	// not in the catalog is Unknown.
	Update WriteMode = "update"
	// CreateOnly creates missing products and refuses a SKU that another
	// batch holds (Exists).
	CreateOnly WriteMode = "create-only"
	// Delete removes the product (only the SKU matters) and leaves a
	// tombstone carrying the batch's order.
	Delete WriteMode = "delete"
)

// writeModes lists the write modes in the order messages name them.
var writeModes = [...]WriteMode{Upsert, Replace, Update, CreateOnly, Delete}

// Valid reports whether m is one of the five write modes ("" is not valid:
// callers default an unset mode to Upsert, see ParseWriteMode).
func (m WriteMode) Valid() bool { return slices.Contains(writeModes[:], m) }

// ParseWriteMode returns the write mode s names; "" is Upsert. An unknown
// mode is an InvalidValue ImportError of field write_mode naming the allowed
// ones.
func ParseWriteMode(s string) (WriteMode, error) {
	if s == "" {
		return Upsert, nil
	}
	if m := WriteMode(s); m.Valid() {
		return m, nil
	}
	names := make([]string, len(writeModes))
	for i, m := range writeModes {
		names[i] = string(m)
	}
	return "", failure.New(failure.InvalidValue, "write_mode", "unknown write mode %q (allowed: %s)", s, strings.Join(names, ", "))
}

// SinkMode is the mode a Sink.Write applies for mode m: "" is Upsert. An
// unknown mode is an Internal ImportError of field mode (callers pass the
// profile's mode, which ParseWriteMode checked). Every sink starts with it.
func SinkMode(m WriteMode) (WriteMode, error) {
	if m == "" {
		return Upsert, nil
	}
	if !m.Valid() {
		return "", failure.New(failure.Internal, "mode", "invalid argument: write products: unknown write mode %q", m)
	}
	return m, nil
}

// Field is a product field the catalog stamps (every field but sku).
type Field uint8

// The stamped fields, in the order of the default profile.
const (
	FieldName Field = iota
	FieldCategory
	FieldBrand
	FieldPrice
	FieldCurrency
	FieldStock
	FieldStatus
	FieldDescription
	FieldImageURLs
	// NumFields is the number of stamped fields.
	NumFields
)

// fieldNames are the profile names of the fields, by Field.
var fieldNames = [NumFields]string{"name", "category", "brand", "price", "currency", "stock", "status", "description", "image_urls"}

// String returns the field's profile name ("name", "image_urls", ...).
func (f Field) String() string {
	if f < NumFields {
		return fieldNames[f]
	}
	return fmt.Sprintf("Field(%d)", uint8(f))
}

// Fields is a set of fields: bit f set = field f present in the file. The
// zero set stands for AllFields() in Product.Present; a file with no stamped
// field (sku only) is NoFields.
type Fields uint16

// NoFields is the set with no field that is not zero (a file whose only
// column is sku, e.g. a delete file): bit 15, which no Field uses.
const NoFields Fields = 1 << 15

// AllFields returns the set of every field.
func AllFields() Fields { return 1<<NumFields - 1 }

// Has reports whether f is in the set.
func (s Fields) Has(f Field) bool { return s&(1<<f) != 0 }

// FieldsOf returns the set of the fields named (profile field names; "sku"
// is ignored), NoFields when none is. An unknown name is an Internal
// ImportError.
func FieldsOf(names ...string) (Fields, error) {
	var s Fields
	for _, n := range names {
		if n == "sku" {
			continue
		}
		i := slices.Index(fieldNames[:], n)
		if i < 0 {
			return 0, failure.New(failure.Internal, n, "unknown product field %q", n)
		}
		s |= 1 << i
	}
	if s == 0 {
		return NoFields, nil
	}
	return s, nil
}

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

	// Order is the upload order of the product's batch: the stamp its
	// fields carry (larger = newer). Zero is the weakest order (a caller
	// that orders nothing: writes of order 0 replace each other, the last
	// one wins, as before stamps existed).
	Order int64 `json:"order,omitempty"`
	// Present are the fields whose columns the file has. Values of absent
	// fields are the profile's defaults (used only when the write creates
	// the product, or when a delete clears a field under a newer creation).
	// Zero means AllFields().
	Present Fields `json:"present,omitempty"`
}

// fields returns the set of fields p's file has (Present, zero = all).
func (p *Product) fields() Fields {
	if p.Present == 0 {
		return AllFields()
	}
	return p.Present & AllFields()
}

// copyField sets field f of p to src's.
func (p *Product) copyField(f Field, src *Product) {
	switch f {
	case FieldName:
		p.Name = src.Name
	case FieldCategory:
		p.Category = src.Category
	case FieldBrand:
		p.Brand = src.Brand
	case FieldPrice:
		p.Price = src.Price
	case FieldCurrency:
		p.Currency = src.Currency
	case FieldStock:
		p.Stock = src.Stock
	case FieldStatus:
		p.Status = src.Status
	case FieldDescription:
		p.Description = src.Description
	case FieldImageURLs:
		p.ImageURLs = src.ImageURLs
	}
}

// Result says what a sink did with one product of a Write call.
type Result int

// Results of writing one product.
const (
	// Written: the product changed the catalog (created it, changed some
	// fields, deleted it, displaced a later row of its batch) or is a
	// replay of the row that holds the SKU for its batch.
	Written Result = iota
	// Duplicate: a lower position of the same batch holds the SKU; nothing stored.
	Duplicate
	// Exists: create-only mode and another batch's product exists; nothing stored.
	Exists
	// Superseded: every field the row would change already holds a newer
	// batch's value, or a newer delete covers the row; nothing stored.
	Superseded
	// Unknown: update mode and the SKU is not in the catalog; nothing stored.
	Unknown
)

// String returns the result's name ("Written", ...).
func (r Result) String() string {
	switch r {
	case Written:
		return "Written"
	case Duplicate:
		return "Duplicate"
	case Exists:
		return "Exists"
	case Superseded:
		return "Superseded"
	case Unknown:
		return "Unknown"
	}
	return fmt.Sprintf("Result(%d)", int(r))
}

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

// Holder is what a sink knows of one batch's row that holds a SKU: the
// batch and its order, where the row came from, where its bytes are, and
// the rows of its batch it displaced.
type Holder struct {
	BatchID   string
	Order     int64
	Source    Position
	Offset    int64
	Length    int64
	Displaced []Product
}

// FieldStamps are the orders a stored SKU carries: per field, the order of
// the batch whose value it holds (0: a default or no value); the order of
// the newest delete (Tombstone, 0: none); the order of the newest creating
// write (Created: upsert, replace, create-only that wrote).
type FieldStamps struct {
	Fields    [NumFields]int64
	Tombstone int64
	Created   int64
}

// State is everything a sink stores of one SKU. The zero State is a SKU the
// catalog has never seen.
type State struct {
	// Product holds the field values (SKU and the stamped fields; its
	// provenance and Order are those of Holders[0] when read back).
	Product Product
	// Stamps are the SKU's field stamps, tombstone and creation order.
	Stamps FieldStamps
	// Exists: the product exists (Reader.Get finds it). For orders > 0 it
	// is Stamps.Created > Stamps.Tombstone.
	Exists bool
	// Holders are the rows that hold the SKU for their batch, newest order
	// first: one per batch that still holds a field stamp, the creation or
	// the tombstone (at most NumFields+2). Holders[0] is the product's
	// provenance.
	Holders []Holder
}

// Held reports whether the catalog has a record of the SKU (a product or a
// tombstone).
func (s *State) Held() bool { return len(s.Holders) > 0 }

// Decide applies the catalog rules to product p, written in mode, against
// the SKU's stored state cur. It returns p's outcome and the SKU's state
// afterwards (cur itself unless Result is Written). Every sink decides with
// it, product after product, so the rules live in one place; sinks differ
// only in how they read and store states and make each SKU's change atomic.
// mode must be Valid or "" (Upsert); sinks check it before deciding.
//
// Within p's batch (a holder of p.BatchID): a lower position holding the
// SKU makes p Duplicate; p at a lower position displaces the holder
// (Displaced = the holder's list plus the holder); p at the same position
// is a replay. Both write every field p's file has whose stamp is not newer
// than p.Order. Between batches, p changes field f only if p.Order >
// stamp(f) and p.Order > the tombstone (order 0 against stamp 0: the later
// write wins). Mode rules: see WriteMode and the package documentation.
func Decide(mode WriteMode, p *Product, cur State) (Outcome, State) {
	o := p.Order
	hi := slices.IndexFunc(cur.Holders, func(h Holder) bool { return h.BatchID == p.BatchID })
	same := hi >= 0
	var displaced []Product
	if same {
		h := &cur.Holders[hi]
		if h.Source.Less(p.Source) {
			return Outcome{Result: Duplicate, Holder: h.Source}, cur
		}
		displaced = h.Displaced
		if p.Source.Less(h.Source) {
			displaced = append(slices.Clip(displaced), Product{SKU: p.SKU, BatchID: h.BatchID, Source: h.Source, Offset: h.Offset, Length: h.Length})
		}
	}
	// beats reports whether p's order wins against stamp s.
	beats := func(s int64) bool { return o > s || (o == s && (same || o == 0)) }
	if !beats(cur.Stamps.Tombstone) {
		return Outcome{Result: Superseded}, cur
	}
	next := cur
	next.Holders = nil
	present := p.fields()
	won := false // p wins a field stamp, the tombstone or the creation
	switch mode {
	case Delete:
		next.Stamps.Tombstone, won = o, true
		recreated := !beats(cur.Stamps.Created) // a creating write newer than the delete
		for f := range NumFields {
			if !beats(cur.Stamps.Fields[f]) {
				continue
			}
			next.Stamps.Fields[f] = 0
			if recreated {
				next.Product.copyField(f, p) // that creation's default
			} else {
				next.Product.copyField(f, &Product{})
			}
		}
		next.Exists = recreated
	case Update:
		if !cur.Exists {
			return Outcome{Result: Unknown}, cur
		}
		won = writeFields(&next, p, present, beats)
	case CreateOnly, Upsert, Replace, "":
		if mode == CreateOnly && cur.Exists && !same {
			return Outcome{Result: Exists}, cur
		}
		if mode == Replace {
			present = AllFields()
		}
		if !cur.Exists { // creating: absent fields without a value take their defaults
			won = true
			for f := range NumFields {
				if !present.Has(f) && cur.Stamps.Fields[f] == 0 {
					next.Product.copyField(f, p)
				}
			}
		}
		won = writeFields(&next, p, present, beats) || won || o > cur.Stamps.Created
		next.Stamps.Created = max(next.Stamps.Created, o)
		next.Exists = true
	}
	if !same && !won {
		return Outcome{Result: Superseded}, cur
	}
	next.Product.SKU = p.SKU
	next.Holders = holdersAfter(cur.Holders, hi, Holder{
		BatchID: p.BatchID, Order: o, Source: p.Source, Offset: p.Offset, Length: p.Length, Displaced: displaced,
	}, &next.Stamps)
	return Outcome{Result: Written, Displaced: displaced}, next
}

// writeFields writes p's fields in present whose stamps p's order beats,
// and reports whether there was one.
func writeFields(next *State, p *Product, present Fields, beats func(int64) bool) bool {
	won := false
	for f := range NumFields {
		if present.Has(f) && beats(next.Stamps.Fields[f]) {
			next.Product.copyField(f, p)
			next.Stamps.Fields[f] = p.Order
			won = true
		}
	}
	return won
}

// holdersAfter returns the holders after h wrote (replacing holders[replace]
// when replace >= 0): newest order first, h first among equal orders, one
// per order, and only those whose order a stamp still carries.
func holdersAfter(holders []Holder, replace int, h Holder, st *FieldStamps) []Holder {
	keep := func(order int64) bool {
		return order == st.Created || order == st.Tombstone || slices.Contains(st.Fields[:], order)
	}
	out := make([]Holder, 0, len(holders)+1)
	out = append(out, h)
	for i, x := range holders {
		if i != replace && keep(x.Order) {
			out = append(out, x)
		}
	}
	slices.SortStableFunc(out, func(a, b Holder) int {
		switch {
		case a.Order > b.Order:
			return -1
		case a.Order < b.Order:
			return 1
		}
		return 0
	})
	return slices.CompactFunc(out, func(a, b Holder) bool { return a.Order == b.Order })
}

// Effective returns the product st stores as Reader.Get returns it: the
// field values, the provenance and order of Holders[0], Present zero; ok is
// false when the product does not exist.
func (s *State) Effective() (p Product, ok bool) {
	if !s.Exists || !s.Held() {
		return Product{}, false
	}
	p = s.Product
	h := s.Holders[0]
	p.BatchID, p.Source, p.Offset, p.Length, p.Order, p.Present = h.BatchID, h.Source, h.Offset, h.Length, h.Order, 0
	return p, true
}

// Sink stores products. Implementations must be safe for concurrent use.
//
// Write applies products in slice order and returns one Outcome per product,
// each decided by Decide against the SKU's state at that point (earlier
// products of the call included). mode must be Valid or "" (Upsert); another
// mode is an Internal ImportError and nothing is written.
//
// The decision and the write are atomic per SKU: concurrent writers of one
// SKU end as if they had written one after the other (the lowest position of
// a batch holds its fields; each field holds its newest batch's value).
// A failed Write may have stored some of its products (a prefix, or any
// subset when the sink writes SKUs concurrently); retrying it is safe.
type Sink interface {
	Write(ctx context.Context, mode WriteMode, products []Product) ([]Outcome, error)
}

// Reader reads products back (status views, tests and reconciliation).
type Reader interface {
	// Get returns the effective product with sku (State.Effective), or
	// ok=false when the catalog has none or it is deleted.
	Get(ctx context.Context, sku string) (p Product, ok bool, err error)
	// Stamps returns the stamps the catalog keeps for sku, ok=false when it
	// has no record of it (neither a product nor a tombstone).
	Stamps(ctx context.Context, sku string) (st FieldStamps, ok bool, err error)
	// CountBatch counts the products whose provenance (State.Holders[0]) is
	// batchID, with a source position inside [from, to] (inclusive row
	// numbers, any sheet when sheet is ""). Deleted products count for the
	// batch that deleted them.
	CountBatch(ctx context.Context, batchID, sheet string, from, to int64) (int64, error)
}
