package dynamocatalog

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"

	"github.com/catalog-import/catalog-import/internal/catalog"
)

// wireOpts compares attribute values by their types and values.
var wireOpts = cmp.AllowUnexported(types.AttributeValueMemberS{}, types.AttributeValueMemberN{}, types.AttributeValueMemberL{})

func sampleState() catalog.State {
	st := catalog.State{
		Product: catalog.Product{SKU: "A1", Name: "Mug", Category: "kitchen", Brand: "", Price: "12.50", Currency: "EUR",
			Stock: -3, Status: "active", Description: "", ImageURLs: []string{"https://x/1.jpg", "https://x/2.jpg"}},
		Exists: true,
		Holders: []catalog.Holder{
			{BatchID: "b2", Order: 2, Source: catalog.Position{SheetIndex: 1, Sheet: "Sheet 2", Row: 40}, Offset: 900, Length: 31,
				Displaced: []catalog.Product{{SKU: "A1", BatchID: "b2", Source: catalog.Position{SheetIndex: 1, Sheet: "Sheet 2", Row: 12}, Offset: 300, Length: 29}}},
			{BatchID: "b1", Order: 1, Source: catalog.Position{Sheet: "Sheet1", Row: 7}, Offset: 100, Length: 30},
		},
	}
	st.Stamps.Created = 1
	for i := range st.Stamps.Fields {
		st.Stamps.Fields[i] = int64(1 + i%2)
	}
	return st
}

// TestItemWire: the attributes a state is stored as, names and types, so
// that items written by any version of this package read the same (empty
// strings and empty lists are left out).
func TestItemWire(t *testing.T) {
	st := sampleState()
	it, err := encode(&st, 5)
	if err != nil {
		t.Fatal(err)
	}
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	n := func(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }
	holders, err := catalog.EncodeHolders(st.Holders[1:])
	if err != nil {
		t.Fatal(err)
	}
	want := item{
		"sku": s("A1"), "name": s("Mug"), "category": s("kitchen"), "price": s("12.50"), "currency": s("EUR"),
		"stock": n("-3"), "status": s("active"),
		"image_urls": &types.AttributeValueMemberL{Value: []types.AttributeValue{s("https://x/1.jpg"), s("https://x/2.jpg")}},
		"batch_id":   s("b2"), "sheet": s("Sheet 2"), "sheet_index": n("1"), "row": n("40"), "offset": n("900"), "length": n("31"),
		"displaced": s(`[{"sheet":"Sheet 2","sheet_index":1,"row":12,"offset":300,"length":29}]`),
		"stamps":    s(catalog.EncodeStamps(&st)),
		"holders":   s(holders),
		"version":   n("5"),
	}
	if d := cmp.Diff(want, it, wireOpts); d != "" {
		t.Fatalf("encode (-want +got):\n%s", d)
	}

	got, ver, err := decodeState(it)
	if err != nil || ver != 5 {
		t.Fatalf("decodeState: version %d, %v", ver, err)
	}
	if d := cmp.Diff(st, got); d != "" {
		t.Errorf("decodeState(encode(st)) (-want +got):\n%s", d)
	}

	// A lone holder without a batch, sheet or lists: only what it has.
	lone := catalog.State{Product: catalog.Product{SKU: "B"}, Exists: true, Holders: []catalog.Holder{{}}}
	it, err = encode(&lone, 1)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for name := range it {
		names = append(names, name)
	}
	for _, absent := range []string{AttrName, AttrBatchID, AttrSheet, AttrImageURLs, AttrDisplaced, AttrHolders} {
		if _, ok := it[absent]; ok {
			t.Errorf("lone item has %s (attributes %q)", absent, names)
		}
	}
}

// TestDecodeBadItems: a mistyped or unreadable attribute is an error that
// names the item and the attribute, returned without a state.
func TestDecodeBadItems(t *testing.T) {
	st := sampleState()
	for _, tc := range []struct {
		attr string
		v    types.AttributeValue
	}{
		{AttrStock, &types.AttributeValueMemberS{Value: "3"}},
		{AttrStock, &types.AttributeValueMemberN{Value: "3.5"}},
		{AttrName, &types.AttributeValueMemberN{Value: "3"}},
		{AttrImageURLs, &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberN{Value: "1"}}}},
		{AttrDisplaced, &types.AttributeValueMemberS{Value: "{"}},
	} {
		it, err := encode(&st, 5)
		if err != nil {
			t.Fatal(err)
		}
		it[tc.attr] = tc.v
		_, _, err = decodeState(it)
		if err == nil || !strings.Contains(err.Error(), "product item A1") || !strings.Contains(err.Error(), "attribute "+tc.attr+":") {
			t.Errorf("%s = %v: error %v, want one naming product item A1 and the attribute", tc.attr, tc.v, err)
		}
	}
}
