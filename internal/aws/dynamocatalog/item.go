package dynamocatalog

import (
	"fmt"

	"github.com/catalog-import/catalog-import/internal/aws/dynamoattr"
	"github.com/catalog-import/catalog-import/internal/catalog"
)

// item is one product item as DynamoDB stores it.
type item = dynamoattr.Item

// displacedRow is one entry of the displaced attribute (a JSON list, the
// same shape as the SQLite sink's displaced column). The SKU and the batch of
// a displaced row are the item's own: a holder only lists rows of its batch.
type displacedRow struct {
	Sheet      string `json:"sheet"`
	SheetIndex int    `json:"sheet_index"`
	Row        int64  `json:"row"`
	Offset     int64  `json:"offset"`
	Length     int64  `json:"length"`
}

// encode returns the item that stores st (a state Decide returned, so it
// has a holder) at version ver.
func encode(st *catalog.State, ver int64) (item, error) {
	p, h := &st.Product, &st.Holders[0]
	ds := make([]displacedRow, len(h.Displaced))
	for i, d := range h.Displaced {
		ds[i] = displacedRow{Sheet: d.Source.Sheet, SheetIndex: d.Source.SheetIndex, Row: d.Source.Row, Offset: d.Offset, Length: d.Length}
	}
	displaced, err := dynamoattr.JSON(ds, len(ds) == 0)
	if err != nil {
		return nil, fmt.Errorf("displaced rows: %w", err)
	}
	more, err := catalog.EncodeHolders(st.Holders[1:])
	if err != nil {
		return nil, err
	}
	it := item{
		AttrSKU:        dynamoattr.S(p.SKU),
		AttrStock:      dynamoattr.N(p.Stock),
		AttrSheetIndex: dynamoattr.N(int64(h.Source.SheetIndex)),
		AttrRow:        dynamoattr.N(h.Source.Row),
		AttrOffset:     dynamoattr.N(h.Offset),
		AttrLength:     dynamoattr.N(h.Length),
		AttrStamps:     dynamoattr.S(catalog.EncodeStamps(st)),
		AttrVersion:    dynamoattr.N(ver),
	}
	// Empty strings are left out: batch_id is an index key, which may not be
	// empty, and absent reads back as "" for every other field.
	dynamoattr.Put(it, AttrName, dynamoattr.OptS(p.Name))
	dynamoattr.Put(it, AttrCategory, dynamoattr.OptS(p.Category))
	dynamoattr.Put(it, AttrBrand, dynamoattr.OptS(p.Brand))
	dynamoattr.Put(it, AttrPrice, dynamoattr.OptS(p.Price))
	dynamoattr.Put(it, AttrCurrency, dynamoattr.OptS(p.Currency))
	dynamoattr.Put(it, AttrStatus, dynamoattr.OptS(p.Status))
	dynamoattr.Put(it, AttrDescription, dynamoattr.OptS(p.Description))
	dynamoattr.Put(it, AttrBatchID, dynamoattr.OptS(h.BatchID))
	dynamoattr.Put(it, AttrSheet, dynamoattr.OptS(h.Source.Sheet))
	dynamoattr.Put(it, AttrImageURLs, dynamoattr.Strings(p.ImageURLs))
	dynamoattr.Put(it, AttrDisplaced, displaced)
	dynamoattr.Put(it, AttrHolders, dynamoattr.OptS(more))
	return it, nil
}

// decodeState returns the state an item stores and its version (0: an
// item written before versions).
func decodeState(it item) (st catalog.State, ver int64, err error) {
	d := dynamoattr.NewDecoder(it)
	p := &st.Product
	*p = catalog.Product{
		SKU: d.S(AttrSKU), Name: d.S(AttrName), Category: d.S(AttrCategory), Brand: d.S(AttrBrand),
		Price: d.S(AttrPrice), Currency: d.S(AttrCurrency), Stock: d.N(AttrStock), Status: d.S(AttrStatus),
		Description: d.S(AttrDescription), ImageURLs: d.Strings(AttrImageURLs),
	}
	h := catalog.Holder{
		BatchID: d.S(AttrBatchID),
		Source:  catalog.Position{SheetIndex: int(d.N(AttrSheetIndex)), Sheet: d.S(AttrSheet), Row: d.N(AttrRow)},
		Offset:  d.N(AttrOffset), Length: d.N(AttrLength),
	}
	ver = d.N(AttrVersion)
	stamps, more := d.S(AttrStamps), d.S(AttrHolders)
	var ds []displacedRow
	d.JSON(AttrDisplaced, &ds)
	if d.Err() != nil {
		return st, 0, fmt.Errorf("product item %s: %w", p.SKU, d.Err())
	}
	if st.Stamps, st.Exists, h.Order, err = catalog.DecodeStamps(stamps); err != nil {
		return st, 0, fmt.Errorf("product %s: %w", p.SKU, err)
	}
	if ds != nil {
		h.Displaced = make([]catalog.Product, len(ds))
		for i, r := range ds {
			h.Displaced[i] = catalog.Product{SKU: p.SKU, BatchID: h.BatchID,
				Source: catalog.Position{SheetIndex: r.SheetIndex, Sheet: r.Sheet, Row: r.Row}, Offset: r.Offset, Length: r.Length}
		}
	}
	hs, err := catalog.DecodeHolders(p.SKU, more)
	if err != nil {
		return st, 0, err
	}
	st.Holders = append([]catalog.Holder{h}, hs...)
	return st, ver, nil
}
