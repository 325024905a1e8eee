package sqlite

import (
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/catalog-import/catalog-import/internal/catalog"
)

// metaCases are states whose meta text the tests round-trip, with the text
// each must have (the compact forms are the point of the format).
var metaCases = []struct {
	name string
	st   catalog.State
	want string
}{
	{"created by one batch", skuAt(1, "-", 0, nil, nil, func(st *catalog.State) {}), `["b-1",7,700,99,1,"-"]`},
	{"no sheet", skuAt(3, "", 0, nil, nil, func(st *catalog.State) {}), `["b-1",7,700,99,3]`},
	{"order 0", skuAt(0, "-", 0, nil, nil, func(st *catalog.State) {}), `["b-1",7,700,99,0,"-"]`},
	{"second sheet", skuAt(2, "Sheet 2", 1, nil, nil, func(st *catalog.State) {}), `["b-1",7,700,99,2,"Sheet 2",1]`},
	{"partial file", skuAt(5, "-", 0, nil, nil, func(st *catalog.State) { st.Stamps.Fields[catalog.FieldStock] = 0 }),
		`["b-1",7,700,99,"5//0/,,,,,0,,,","-"]`},
	{"tombstone", skuAt(4, "-", 0, nil, nil, func(st *catalog.State) { st.Exists, st.Stamps.Tombstone = false, 4 }),
		`["b-1",7,700,99,"!4///,,,,,,,,","-"]`},
	{"displaced rows", skuAt(1, "-", 0, []catalog.Product{{SKU: "S", BatchID: "b-1", Source: catalog.Position{Sheet: "-", Row: 9}, Offset: 900, Length: 90}}, nil,
		func(st *catalog.State) {}), `["b-1",7,700,99,1,"-",0,[{"sheet":"-","sheet_index":0,"row":9,"offset":900,"length":90}]]`},
	{"older holder", skuAt(6, "-", 0, nil, []catalog.Holder{{BatchID: "b-0", Order: 2, Source: catalog.Position{Sheet: "-", Row: 3}, Offset: 30, Length: 10}},
		func(st *catalog.State) { st.Stamps.Fields[catalog.FieldPrice] = 2 }),
		`["b-1",7,700,99,"6//0/,,,2,,,,,","-",0,null,[{"batch_id":"b-0","order":2,"sheet":"-","sheet_index":0,"row":3,"offset":30,"length":10}]]`},
	{"escapes", func() catalog.State {
		st := skuAt(1, "a \"q\" \\ \n\t\x01 表", 0, nil, nil, func(st *catalog.State) {})
		st.Holders[0].BatchID = "b/\"x\""
		return st
	}(), `["b/\"x\"",7,700,99,1,"a \"q\" \\ \n\t\u0001 表"]`},
}

// skuAt is SKU "S" written at order o by batch b-1 from row 7 of sheet
// (index), with every field stamped o, and more holders; edit adjusts it.
func skuAt(o int64, sheet string, index int, displaced []catalog.Product, more []catalog.Holder, edit func(*catalog.State)) catalog.State {
	st := catalog.State{Product: catalog.Product{SKU: "S"}, Exists: true, Stamps: catalog.FieldStamps{Created: o}}
	for f := range st.Stamps.Fields {
		st.Stamps.Fields[f] = o
	}
	st.Holders = append([]catalog.Holder{{BatchID: "b-1", Order: o, Source: catalog.Position{Sheet: sheet, SheetIndex: index, Row: 7},
		Offset: 700, Length: 99, Displaced: displaced}}, more...)
	edit(&st)
	return st
}

func TestMetaRoundTrip(t *testing.T) {
	for _, tc := range metaCases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := appendMeta(nil, &tc.st)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.want {
				t.Errorf("meta\n%s\nwant\n%s", b, tc.want)
			}
			var got catalog.State
			got.Product.SKU = "S"
			if err := parseMeta("S", string(b), &got); err != nil {
				t.Fatalf("parse %s: %v", b, err)
			}
			if diff := cmp.Diff(tc.st, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

// TestMetaOfSchema6Upgrade: the long form the upgrade from schema 6 writes
// (every element, stamps as text, "" for all 0) reads as the columns did.
func TestMetaOfSchema6Upgrade(t *testing.T) {
	var st catalog.State
	if err := parseMeta("S", `["b-old",2,100,40,"","-",0,null,null]`, &st); err != nil {
		t.Fatal(err)
	}
	want := catalog.State{Exists: true, Holders: []catalog.Holder{{BatchID: "b-old", Source: catalog.Position{Sheet: "-", Row: 2}, Offset: 100, Length: 40}}}
	if diff := cmp.Diff(want, st, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestMetaRejects(t *testing.T) {
	for _, s := range []string{``, `[]`, `["b",1,2,3]`, `["b",1,2,3,"x"]`, `["b",1,2,3,4,"-",0,null,null,5]`, `["b",1,2,3,4`,
		`{"b":1}`, `["b","1",2,3,4]`, `["b",1,2,3,4,5]`, `["b",1,2,3,4,"-",0,[1,]]`} {
		var st catalog.State
		if err := parseMeta("S", s, &st); err == nil {
			t.Errorf("parseMeta(%q) = %+v, want an error", s, st)
		}
	}
}

// TestProductsViewReadsMeta: products_view shows meta's parts as the
// columns of schema 6 had them.
func TestProductsViewReadsMeta(t *testing.T) {
	db := must(Open(filepath.Join(t.TempDir(), "v.db"), Options{}))
	defer db.Close()
	ctx := t.Context()
	for _, tc := range metaCases[:6] {
		b, err := appendMeta(nil, &tc.st)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.wc.ExecContext(ctx, `INSERT INTO products (`+productCols+`) VALUES (?, 'n', 'c', '', '1.00', 'CNY', 1, 'active', '', NULL, ?)`,
			tc.name, string(b)); err != nil {
			t.Fatal(err)
		}
		var (
			batch, sheet, stamps string
			row, index, offset   int64
		)
		if err := db.wc.QueryRowContext(ctx, `SELECT batch_id, source_row, source_sheet, source_sheet_index, source_offset, stamps
			FROM products_view WHERE sku = ?`, tc.name).Scan(&batch, &row, &sheet, &index, &offset, &stamps); err != nil {
			t.Fatal(err)
		}
		h := tc.st.Holders[0]
		if batch != h.BatchID || row != h.Source.Row || sheet != h.Source.Sheet || index != int64(h.Source.SheetIndex) || offset != h.Offset ||
			stamps != catalog.EncodeStamps(&tc.st) {
			t.Errorf("%s: view %q %d %q %d %d %q, want %+v stamps %q", tc.name, batch, row, sheet, index, offset, stamps, h, catalog.EncodeStamps(&tc.st))
		}
	}
}

func FuzzParseMeta(f *testing.F) {
	for _, tc := range metaCases {
		f.Add(tc.want)
	}
	f.Add(`["b-old",2,100,40,"","-",0,null,null]`)
	f.Fuzz(func(t *testing.T, s string) {
		var st catalog.State
		if err := parseMeta("S", s, &st); err != nil {
			return
		}
		// What parses writes back to a text that parses the same.
		b, err := appendMeta(nil, &st)
		if err != nil {
			t.Fatalf("appendMeta of parsed %q: %v", s, err)
		}
		var again catalog.State
		if err := parseMeta("S", string(b), &again); err != nil {
			t.Fatalf("parse of %q (from %q): %v", b, s, err)
		}
		if diff := cmp.Diff(st, again, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("%q -> %q changes the state (-first +second):\n%s", s, b, diff)
		}
	})
}
