package shard_test

import (
	"context"
	"slices"
	"testing"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/profile"
	"github.com/catalog-import/catalog-import/internal/shard"
	"github.com/catalog-import/catalog-import/internal/state"
)

// TestSKUNormalizationBeforeDuplicates: the profile's SKU normalisation is
// applied before the uniqueness check, so two rows whose SKUs normalise to
// one are one product and a DuplicateSKU (the lowest row wins), and two
// rows whose SKUs differ after it are two products.
func TestSKUNormalizationBeforeDuplicates(t *testing.T) {
	t.Parallel()
	const loose = `pattern: '^\s*\S+\s*$'`
	for _, tc := range []struct {
		name     string
		profile  string // fields.sku entry
		a, b     string // the SKU cells of rows 2 and 3
		products []string
		dup      bool // row 3 is a DuplicateSKU
	}{
		{"trim on collides", "", `" ABC "`, "ABC", []string{"ABC"}, true},
		{"trim off keeps both", "{" + loose + ", normalize: {trim: false}}", `" ABC "`, "ABC", []string{" ABC ", "ABC"}, false},
		{"case preserved keeps both", "", "abc", "ABC", []string{"ABC", "abc"}, false},
		{"case upper collides", "{normalize: {case: upper}}", "abc", "ABC", []string{"ABC"}, true},
		{"nfkc collides", "{normalize: {nfkc: true}}", "ＡＢＣ１", "ABC1", []string{"ABC1"}, true},
		{"no nfkc keeps both", "{" + loose + "}", "ＡＢＣ１", "ABC1", []string{"ABC1", "ＡＢＣ１"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			y := "name: x\n"
			if tc.profile != "" {
				y += "fields:\n  sku: " + tc.profile + "\n"
			}
			p, err := profile.Parse([]byte(y))
			if err != nil {
				t.Fatal(err)
			}
			b := setup(t, "sku,name,category,price\n"+tc.a+",One,Home,1.00\n"+tc.b+",Two,Home,2.00\n", p)
			ctx := context.Background()
			if res, err := b.worker("a", nil, nil, shard.Options{}).Process(ctx, b.m); err != nil || res.Status != shard.Done {
				t.Fatalf("%+v %v", res, err)
			}
			var skus []string
			for _, sku := range []string{"ABC", "abc", " ABC ", "ABC1", "ＡＢＣ１"} {
				if _, ok, err := b.db.Get(ctx, sku); err != nil {
					t.Fatal(err)
				} else if ok {
					skus = append(skus, sku)
				}
			}
			slices.Sort(skus)
			if !slices.Equal(skus, tc.products) {
				t.Errorf("products %q, want %q", skus, tc.products)
			}
			fails, err := b.db.Failures(ctx, "b-1", state.FailureFilter{})
			if err != nil {
				t.Fatal(err)
			}
			dup := len(fails) == 1 && fails[0].Row == 3 && fails[0].Reason == failure.DuplicateSKU
			if dup != tc.dup || (!tc.dup && len(fails) > 0) {
				t.Errorf("failures %+v, want a DuplicateSKU on row 3: %v", fails, tc.dup)
			}
		})
	}
}
