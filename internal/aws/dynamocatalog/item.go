package dynamocatalog

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/catalog-import/catalog-import/internal/catalog"
)

// item is one product item as DynamoDB stores it.
type item = map[string]types.AttributeValue

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

func str(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

func num(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

// encode returns the item that stores st (a state Decide returned, so it
// has a holder) at version ver.
func encode(st *catalog.State, ver int64) (item, error) {
	p, h := &st.Product, &st.Holders[0]
	it := item{
		AttrSKU:        str(p.SKU),
		AttrStock:      num(p.Stock),
		AttrSheetIndex: num(int64(h.Source.SheetIndex)),
		AttrRow:        num(h.Source.Row),
		AttrOffset:     num(h.Offset),
		AttrLength:     num(h.Length),
		AttrStamps:     str(catalog.EncodeStamps(st)),
		AttrVersion:    num(ver),
	}
	// Empty strings are left out: batch_id is an index key, which may not be
	// empty, and absent reads back as "" for every other field.
	for name, v := range map[string]string{
		AttrName: p.Name, AttrCategory: p.Category, AttrBrand: p.Brand, AttrPrice: p.Price,
		AttrCurrency: p.Currency, AttrStatus: p.Status, AttrDescription: p.Description,
		AttrBatchID: h.BatchID, AttrSheet: h.Source.Sheet,
	} {
		if v != "" {
			it[name] = str(v)
		}
	}
	if len(p.ImageURLs) > 0 {
		l := make([]types.AttributeValue, len(p.ImageURLs))
		for i, u := range p.ImageURLs {
			l[i] = str(u)
		}
		it[AttrImageURLs] = &types.AttributeValueMemberL{Value: l}
	}
	if len(h.Displaced) > 0 {
		ds := make([]displacedRow, len(h.Displaced))
		for i, d := range h.Displaced {
			ds[i] = displacedRow{Sheet: d.Source.Sheet, SheetIndex: d.Source.SheetIndex, Row: d.Source.Row, Offset: d.Offset, Length: d.Length}
		}
		b, err := json.Marshal(ds)
		if err != nil {
			return nil, err
		}
		it[AttrDisplaced] = str(string(b))
	}
	if len(st.Holders) > 1 {
		more, err := catalog.EncodeHolders(st.Holders[1:])
		if err != nil {
			return nil, err
		}
		it[AttrHolders] = str(more)
	}
	return it, nil
}

// decoder reads the attributes of one item and remembers the first error.
type decoder struct {
	it  item
	err error
}

func (d *decoder) str(name string) string {
	switch v := d.it[name].(type) {
	case nil:
		return ""
	case *types.AttributeValueMemberS:
		return v.Value
	default:
		d.fail(name, "not a string (%T)", v)
		return ""
	}
}

func (d *decoder) num(name string) int64 {
	switch v := d.it[name].(type) {
	case nil:
		return 0
	case *types.AttributeValueMemberN:
		n, err := strconv.ParseInt(v.Value, 10, 64)
		if err != nil {
			d.fail(name, "%v", err)
		}
		return n
	default:
		d.fail(name, "not a number (%T)", v)
		return 0
	}
}

func (d *decoder) strings(name string) []string {
	switch v := d.it[name].(type) {
	case nil:
		return nil
	case *types.AttributeValueMemberL:
		out := make([]string, 0, len(v.Value))
		for _, e := range v.Value {
			s, ok := e.(*types.AttributeValueMemberS)
			if !ok {
				d.fail(name, "element not a string (%T)", e)
				return nil
			}
			out = append(out, s.Value)
		}
		return out
	default:
		d.fail(name, "not a list (%T)", v)
		return nil
	}
}

func (d *decoder) fail(name, format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("product item attribute %s: %s", name, fmt.Sprintf(format, args...))
	}
}

// decodeState returns the state an item stores and its version (0: an
// item written before versions).
func decodeState(it item) (st catalog.State, ver int64, err error) {
	d := decoder{it: it}
	p := &st.Product
	*p = catalog.Product{
		SKU: d.str(AttrSKU), Name: d.str(AttrName), Category: d.str(AttrCategory), Brand: d.str(AttrBrand),
		Price: d.str(AttrPrice), Currency: d.str(AttrCurrency), Stock: d.num(AttrStock), Status: d.str(AttrStatus),
		Description: d.str(AttrDescription), ImageURLs: d.strings(AttrImageURLs),
	}
	h := catalog.Holder{
		BatchID: d.str(AttrBatchID),
		Source:  catalog.Position{SheetIndex: int(d.num(AttrSheetIndex)), Sheet: d.str(AttrSheet), Row: d.num(AttrRow)},
		Offset:  d.num(AttrOffset), Length: d.num(AttrLength),
	}
	ver = d.num(AttrVersion)
	stamps, more := d.str(AttrStamps), d.str(AttrHolders)
	if d.err != nil {
		return st, 0, d.err
	}
	if st.Stamps, st.Exists, h.Order, err = catalog.DecodeStamps(stamps); err != nil {
		return st, 0, fmt.Errorf("product %s: %w", p.SKU, err)
	}
	if js := d.str(AttrDisplaced); js != "" {
		var ds []displacedRow
		if err := json.Unmarshal([]byte(js), &ds); err != nil {
			return st, 0, fmt.Errorf("product %s: displaced rows: %w", p.SKU, err)
		}
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

// itemSize estimates the size DynamoDB accounts for an item (attribute names
// plus values; numbers at their longest), for the 400 KB item and 4 MB
// transaction limits.
func itemSize(it item) int {
	n := 0
	for name, v := range it {
		n += len(name) + valueSize(v)
	}
	return n
}

func valueSize(v types.AttributeValue) int {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return len(v.Value)
	case *types.AttributeValueMemberN:
		return len(v.Value)/2 + 2
	case *types.AttributeValueMemberL:
		n := 3
		for _, e := range v.Value {
			n += 1 + valueSize(e)
		}
		return n
	default:
		return 16
	}
}
