package lineage_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/catalog-import/catalog-import/internal/embedded"
	"github.com/catalog-import/catalog-import/internal/lineage"
	"github.com/catalog-import/catalog-import/internal/local/sqlite"
	"github.com/catalog-import/catalog-import/internal/profile"
	"github.com/catalog-import/catalog-import/internal/state"
)

// TestFixFileRoundTripKeepsCells: rows that failed for a bad price, whose
// other cells are formulas, apostrophes, a negative number and line
// breaks, go through the fix file (marked: testdata/roundtrip.fix.csv.golden)
// and, with only the prices fixed, come back into the catalog byte for byte
// as the source had them. A valid row of the ordinary source file keeps
// its own leading apostrophes: only a fix file is unmarked.
func TestFixFileRoundTripKeepsCells(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	db := filepath.Join(dir, "shop.db")
	p, err := profile.Parse([]byte("name: backorders\nfields:\n  stock: {min: \"-100\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	type product struct{ name, description string }
	source := "sku,name,category,price,stock,description\r\n" +
		"A-1,\"=HYPERLINK(\"\"http://x.example/\"\",\"\"点\"\")\",Home,PRICE,1,\"line 1\r\nline 2\nline 3\"\r\n" +
		"A-2,+SUM(1;2),Home,PRICE,-5,@cmd\r\n" +
		"A-3,'=already quoted,Home,PRICE,2,'-5\r\n" +
		"A-4,'-5,Home,1.00,3,'=kept\r\n"
	want := map[string]product{
		"A-1": {`=HYPERLINK("http://x.example/","点")`, "line 1\r\nline 2\nline 3"},
		"A-2": {"+SUM(1;2)", "@cmd"},
		"A-3": {"'=already quoted", "'-5"},
		"A-4": {"'-5", "'=kept"},
	}
	src := filepath.Join(dir, "products.csv")
	if err := os.WriteFile(src, []byte(source), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := embedded.Config{DB: db, Profile: p}
	sum, err := embedded.Run(ctx, cfg, src)
	if err != nil {
		t.Fatal(err)
	}
	if c := sum.Batch.Counts; c.Imported != 1 || c.Failed != 3 {
		t.Fatalf("source: %d imported, %d failed; want 1, 3", c.Imported, c.Failed)
	}

	store, err := sqlite.Open(db, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var fix bytes.Buffer
	_, err = lineage.WriteRetryFile(ctx, &fix, store, sum.Batch, state.FailureFilter{Unresolved: true})
	store.Close()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "roundtrip.fix.csv.golden", bytes.ReplaceAll(fix.Bytes(), []byte(sum.Batch.ID), []byte("<batch>")))

	fixed := filepath.Join(dir, "fix.csv") // the merchant fixes the prices, nothing else
	if err := os.WriteFile(fixed, bytes.ReplaceAll(fix.Bytes(), []byte("PRICE"), []byte("9.90")), 0o644); err != nil {
		t.Fatal(err)
	}
	child, err := embedded.Run(ctx, cfg, fixed)
	if err != nil {
		t.Fatal(err)
	}
	if c := child.Batch.Counts; c.Imported != 3 || c.Failed != 0 || child.Batch.Parent != sum.Batch.ID {
		t.Fatalf("fix file: %d imported, %d failed, parent %q; want 3, 0, %s", c.Imported, c.Failed, child.Batch.Parent, sum.Batch.ID)
	}

	store, err = sqlite.Open(db, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for sku, w := range want {
		got, ok, err := store.Get(ctx, sku)
		if err != nil || !ok {
			t.Fatalf("%s: %v, %v", sku, ok, err)
		}
		if got.Name != w.name || got.Description != w.description {
			t.Errorf("%s: name %q, description %q; want %q, %q", sku, got.Name, got.Description, w.name, w.description)
		}
	}
	if got, _, _ := store.Get(ctx, "A-2"); got.Stock != -5 {
		t.Errorf("A-2: stock %d, want -5", got.Stock)
	}
	if b, err := store.GetBatch(ctx, sum.Batch.ID); err != nil || b.Resolved != 3 {
		t.Errorf("parent: %d resolved (%v), want 3", b.Resolved, err)
	}
}
