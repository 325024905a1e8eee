package sqlite

import (
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/catalog-import/catalog-import/internal/catalog"
)

// TestUpgradesVersion5Products opens a database of schema 5 (testdata:
// products with one column per provenance field, stamps, holders and
// displaced rows, and the provenance index) holding every kind of state,
// and checks that schema 7 rebuilds products with meta: every SKU reads
// back the same State (values, stamps, existence, holders, displaced rows),
// the index is gone, and the next write decides against that state.
func TestUpgradesVersion5Products(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v5.db")
	old := must(sql.Open(DefaultDriver, path))
	schema := must(os.ReadFile("testdata/schema-v5.sql"))
	if _, err := old.Exec(string(schema) + "PRAGMA user_version = 5;"); err != nil {
		t.Fatal(err)
	}
	states := map[string]catalog.State{}
	for _, tc := range metaCases {
		st := tc.st
		st.Product = catalog.Product{SKU: "V5-" + tc.name, Name: "n", Category: "c", Price: "1.00", Currency: "CNY", Stock: 3,
			Status: "active", ImageURLs: []string{"https://x/1.jpg"}}
		h := st.Holders[0]
		var disp, more any
		if len(h.Displaced) > 0 {
			var ds []displacedRow
			for _, d := range h.Displaced {
				ds = append(ds, displacedRow{Sheet: d.Source.Sheet, SheetIndex: d.Source.SheetIndex, Row: d.Source.Row, Offset: d.Offset, Length: d.Length})
			}
			b, _ := json.Marshal(ds)
			disp = string(b)
			for i := range st.Holders[0].Displaced { // read back with the product's SKU
				st.Holders[0].Displaced[i].SKU = st.Product.SKU
			}
		}
		if len(st.Holders) > 1 {
			more = must(catalog.EncodeHolders(st.Holders[1:]))
		}
		if _, err := old.Exec(`INSERT INTO products (sku, name, category, brand, price, currency, stock, status, description, image_urls,
			batch_id, source_row, source_sheet, source_sheet_index, source_offset, source_length, displaced, stamps, holders)
			VALUES (?, 'n', 'c', '', '1.00', 'CNY', 3, 'active', '', '["https://x/1.jpg"]', ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			st.Product.SKU, h.BatchID, h.Source.Row, h.Source.Sheet, h.Source.SheetIndex, h.Offset, h.Length, disp,
			catalog.EncodeStamps(&st), more); err != nil {
			t.Fatal(err)
		}
		states[st.Product.SKU] = st
	}
	old.Close()

	db := must(Open(path, Options{}))
	defer db.Close()
	ctx := t.Context()
	for sku, want := range states {
		got, ok, err := db.getState(ctx, sku)
		if err != nil || !ok {
			t.Fatalf("%s after the upgrade: %v, %v", sku, ok, err)
		}
		if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s after the upgrade (-schema 5 +schema 7):\n%s", sku, diff)
		}
	}
	var index, v int
	if err := db.wc.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE name = 'products_by_source'`).Scan(&index); err != nil || index != 0 {
		t.Errorf("products_by_source after the upgrade: %d, %v", index, err)
	}
	if err := db.wc.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil || v != SchemaVersion {
		t.Errorf("user_version %d, %v; want %d", v, err, SchemaVersion)
	}
	// "older holder" keeps its price from order 2 and its other fields from
	// order 6: an upsert at order 3 changes the price only.
	sku := "V5-older holder"
	p := catalog.Product{SKU: sku, Name: "x", Category: "c", Price: "9.99", Currency: "CNY", Status: "active", BatchID: "b-mid", Order: 3,
		Source: catalog.Position{Sheet: "-", Row: 2}}
	out, err := db.Write(ctx, catalog.Upsert, []catalog.Product{p})
	if err != nil || out[0].Result != catalog.Written {
		t.Fatalf("an upsert at order 3 after the upgrade: %+v %v, want Written", out, err)
	}
	if got, ok, err := db.Get(ctx, sku); err != nil || !ok || got.Price != "9.99" || got.Name != "n" {
		t.Errorf("after an upsert at order 3: %+v %v %v; want price 9.99 (stamp 2 < 3) and name n (stamp 6)", got, ok, err)
	}
}
