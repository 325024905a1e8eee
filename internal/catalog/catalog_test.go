package catalog

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/catalog-import/catalog-import/internal/failure"
)

// defaults are the profile defaults the rows of these tests carry for their
// absent fields.
var defaults = Product{Name: "", Category: "misc", Price: "0.00", Currency: "CNY", Stock: 0, Status: "draft"}

// row is a product of batch (order o) at row r with the fields of present
// set to "<batch>.<field>" (stock: o*100+r) and the others to defaults.
func row(batch string, o int64, r int64, present Fields) Product {
	p := defaults
	p.SKU, p.BatchID, p.Order, p.Source, p.Present = "S", batch, o, Position{Row: r}, present
	val := Product{Name: batch + ".name", Category: batch + ".category", Brand: batch + ".brand", Price: batch + ".price",
		Currency: batch + ".currency", Stock: o*100 + r, Status: batch + ".status", Description: batch + ".description",
		ImageURLs: []string{batch + ".img"}}
	for f := range NumFields {
		if present == 0 || present.Has(f) {
			p.copyField(f, &val)
		}
	}
	return p
}

type op struct {
	mode WriteMode
	p    Product
}

func w(mode WriteMode, batch string, o, r int64, present ...string) op {
	var fs Fields // none named: all
	if len(present) > 0 {
		var err error
		if fs, err = FieldsOf(present...); err != nil {
			panic(err)
		}
	}
	return op{mode, row(batch, o, r, fs)}
}

func fieldsOf(names ...string) Fields {
	fs, err := FieldsOf(names...)
	if err != nil {
		panic(err)
	}
	return fs
}

// stamps returns field stamps: every field at all, then the listed
// field=order overrides.
func stamps(all int64, over map[Field]int64) [NumFields]int64 {
	var s [NumFields]int64
	for f := range NumFields {
		s[f] = all
	}
	for f, o := range over {
		s[f] = o
	}
	return s
}

func TestDecide(t *testing.T) {
	upd := func(batch string, o, r int64, fs ...string) op { return w(Update, batch, o, r, fs...) }
	ups := func(batch string, o, r int64, fs ...string) op { return w(Upsert, batch, o, r, fs...) }
	// A delete row carries the defaults of its profile (as every row does
	// for its absent fields): only sku is present.
	del := func(batch string, o, r int64) op { return w(Delete, batch, o, r, "sku") }
	for _, tc := range []struct {
		name   string
		ops    []op
		last   Outcome // outcome of the last op (Displaced compared by Source)
		exists bool
		want   func(p *Product) // the expected effective product, from the zero Product
		stamps FieldStamps
	}{
		{
			name: "UpsertCreatesWithDefaultsForAbsentFieldsAtStamp0",
			ops:  []op{ups("a", 5, 2, "name", "price")},
			last: Outcome{Result: Written}, exists: true,
			want: func(p *Product) {
				*p = defaults
				p.Name, p.Price = "a.name", "a.price"
			},
			stamps: FieldStamps{Fields: stamps(0, map[Field]int64{FieldName: 5, FieldPrice: 5}), Created: 5},
		},
		{
			name: "AbsentColumnNeverResetsAField",
			ops:  []op{ups("a", 5, 2), ups("b", 6, 2, "price")},
			last: Outcome{Result: Written}, exists: true,
			want:   func(p *Product) { *p = row("a", 5, 2, 0); p.Price = "b.price" },
			stamps: FieldStamps{Fields: stamps(5, map[Field]int64{FieldPrice: 6}), Created: 6},
		},
		{
			name: "OlderBatchArrivingLateChangesOnlyOlderFields",
			ops:  []op{ups("b", 6, 2, "price"), ups("a", 5, 2)},
			last: Outcome{Result: Written}, exists: true,
			want:   func(p *Product) { *p = row("a", 5, 2, 0); p.Price = "b.price" },
			stamps: FieldStamps{Fields: stamps(5, map[Field]int64{FieldPrice: 6}), Created: 6},
		},
		{
			name: "OlderRowWhoseFieldsAreAllNewerIsSuperseded",
			ops:  []op{ups("b", 6, 2), ups("a", 5, 2, "price", "name")},
			last: Outcome{Result: Superseded}, exists: true,
			want:   func(p *Product) { *p = row("b", 6, 2, 0) },
			stamps: FieldStamps{Fields: stamps(6, nil), Created: 6},
		},
		{
			name: "ReplaceWritesEveryFieldAbsentOnesWithDefaults",
			ops:  []op{ups("a", 5, 2), w(Replace, "b", 6, 2, "name")},
			last: Outcome{Result: Written}, exists: true,
			want:   func(p *Product) { *p = defaults; p.Name = "b.name" },
			stamps: FieldStamps{Fields: stamps(6, nil), Created: 6},
		},
		{
			name: "OlderReplaceLosesToNewerFields",
			ops:  []op{ups("b", 6, 2, "price"), w(Replace, "a", 5, 2, "name")},
			last: Outcome{Result: Written}, exists: true,
			want:   func(p *Product) { *p = defaults; p.Name, p.Price = "a.name", "b.price" },
			stamps: FieldStamps{Fields: stamps(5, map[Field]int64{FieldPrice: 6}), Created: 6},
		},
		{
			name: "UpdateOfUnknownSKU",
			ops:  []op{upd("a", 5, 2, "price")},
			last: Outcome{Result: Unknown},
		},
		{
			name: "UpdateChangesPresentFieldsOnly",
			ops:  []op{ups("a", 5, 2), upd("b", 6, 2, "price")},
			last: Outcome{Result: Written}, exists: true,
			want:   func(p *Product) { *p = row("a", 5, 2, 0); p.Price = "b.price" },
			stamps: FieldStamps{Fields: stamps(5, map[Field]int64{FieldPrice: 6}), Created: 5},
		},
		{
			name:   "UpdateOfDeletedSKU",
			ops:    []op{ups("a", 5, 2), del("d", 6, 2), upd("b", 7, 2, "price")},
			last:   Outcome{Result: Unknown},
			stamps: FieldStamps{Tombstone: 6, Created: 5},
		},
		{
			name: "CreateOnlyRefusesAnotherBatchsProduct",
			ops:  []op{ups("a", 5, 2), w(CreateOnly, "b", 6, 2)},
			last: Outcome{Result: Exists}, exists: true,
			want:   func(p *Product) { *p = row("a", 5, 2, 0) },
			stamps: FieldStamps{Fields: stamps(5, nil), Created: 5},
		},
		{
			name: "CreateOnlyRecreatesADeletedProduct",
			ops:  []op{ups("a", 5, 2), del("d", 6, 2), w(CreateOnly, "b", 7, 2, "name")},
			last: Outcome{Result: Written}, exists: true,
			want:   func(p *Product) { *p = defaults; p.Name = "b.name" },
			stamps: FieldStamps{Fields: stamps(0, map[Field]int64{FieldName: 7}), Tombstone: 6, Created: 7},
		},
		{
			name:   "DeleteOfUnknownSKULeavesATombstone",
			ops:    []op{del("d", 6, 2)},
			last:   Outcome{Result: Written},
			stamps: FieldStamps{Tombstone: 6},
		},
		{
			name:   "TombstoneBeatsOlderWrites",
			ops:    []op{del("d", 6, 2), ups("a", 5, 2)},
			last:   Outcome{Result: Superseded},
			stamps: FieldStamps{Tombstone: 6},
		},
		{
			name:   "OlderDeleteIsSuperseded",
			ops:    []op{del("d", 6, 2), del("c", 4, 2)},
			last:   Outcome{Result: Superseded},
			stamps: FieldStamps{Tombstone: 6},
		},
		{
			name: "NewerWriteRecreatesWithDefaults",
			ops:  []op{ups("a", 5, 2), del("d", 6, 2), ups("b", 7, 2, "price")},
			last: Outcome{Result: Written}, exists: true,
			want:   func(p *Product) { *p = defaults; p.Price = "b.price" },
			stamps: FieldStamps{Fields: stamps(0, map[Field]int64{FieldPrice: 7}), Tombstone: 6, Created: 7},
		},
		{
			name: "OlderDeleteArrivingLateClearsOlderFieldsToDefaults",
			ops:  []op{ups("a", 5, 2), ups("b", 7, 2, "price"), del("d", 6, 2)},
			last: Outcome{Result: Written}, exists: true,
			want:   func(p *Product) { *p = defaults; p.Price = "b.price" },
			stamps: FieldStamps{Fields: stamps(0, map[Field]int64{FieldPrice: 7}), Tombstone: 6, Created: 7},
		},
		{
			name:   "DeleteOfTheNewestCreationRemoves",
			ops:    []op{ups("a", 5, 2), ups("b", 7, 2, "price"), del("d", 8, 2)},
			last:   Outcome{Result: Written},
			stamps: FieldStamps{Tombstone: 8, Created: 7},
		},
		{
			name: "SameBatchLowerPositionHolds",
			ops:  []op{ups("a", 5, 2), ups("a", 5, 9)},
			last: Outcome{Result: Duplicate, Holder: Position{Row: 2}}, exists: true,
			want:   func(p *Product) { *p = row("a", 5, 2, 0) },
			stamps: FieldStamps{Fields: stamps(5, nil), Created: 5},
		},
		{
			name: "SameBatchLowerPositionDisplacesAcrossANewerBatch",
			ops:  []op{ups("a", 5, 9), ups("b", 6, 2, "price"), ups("a", 5, 2)},
			last: Outcome{Result: Written, Displaced: []Product{{Source: Position{Row: 9}}}}, exists: true,
			want:   func(p *Product) { *p = row("a", 5, 2, 0); p.Price = "b.price" },
			stamps: FieldStamps{Fields: stamps(5, map[Field]int64{FieldPrice: 6}), Created: 6},
		},
		{
			name: "ReplayIsWrittenAndChangesNothingNewer",
			ops:  []op{ups("a", 5, 2), ups("b", 6, 2, "price"), ups("a", 5, 2)},
			last: Outcome{Result: Written}, exists: true,
			want:   func(p *Product) { *p = row("a", 5, 2, 0); p.Price = "b.price" },
			stamps: FieldStamps{Fields: stamps(5, map[Field]int64{FieldPrice: 6}), Created: 6},
		},
		{
			name: "ReplayOfADeleteIsWritten",
			ops:  []op{del("d", 6, 2), del("d", 6, 2)},
			last: Outcome{Result: Written}, stamps: FieldStamps{Tombstone: 6},
		},
		{
			name: "Order0LastWriterWins",
			ops:  []op{ups("a", 0, 2), ups("b", 0, 7)},
			last: Outcome{Result: Written}, exists: true,
			want: func(p *Product) { *p = row("b", 0, 7, 0) },
		},
		{
			name: "Order0SameValuesAgainIsWritten",
			ops:  []op{ups("a", 0, 2), ups("a", 0, 2), {Upsert, func() Product { p := row("a", 0, 2, 0); p.BatchID = "b"; return p }()}},
			last: Outcome{Result: Written}, exists: true,
			want: func(p *Product) { *p = row("a", 0, 2, 0) },
		},
		{
			name: "NewerBatchWithTheSameValuesIsWritten",
			ops:  []op{ups("a", 5, 2, "price"), {Upsert, func() Product { p := row("a", 6, 2, fieldsOf("price")); p.BatchID = "b"; return p }()}},
			last: Outcome{Result: Written}, exists: true,
			want:   func(p *Product) { *p = defaults; p.Price = "a.price" },
			stamps: FieldStamps{Fields: stamps(0, map[Field]int64{FieldPrice: 6}), Created: 6},
		},
		{
			name: "Order0CreateOnlyRefusesAnotherBatch",
			ops:  []op{ups("a", 0, 2), w(CreateOnly, "b", 0, 7)},
			last: Outcome{Result: Exists}, exists: true,
			want: func(p *Product) { *p = row("a", 0, 2, 0) },
		},
		{
			name: "Order0DeleteRemoves",
			ops:  []op{ups("a", 0, 2), del("d", 0, 2)},
			last: Outcome{Result: Written},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var (
				st  State
				out Outcome
			)
			for _, o := range tc.ops {
				p := o.p
				var next State
				out, next = Decide(o.mode, &p, st)
				if out.Result == Written {
					st = next
				} else if !cmp.Equal(st, next, cmpopts.EquateEmpty()) {
					t.Fatalf("%s of %s: result %v changed the state", o.mode, p.BatchID, out.Result)
				}
			}
			for i := range out.Displaced {
				out.Displaced[i] = Product{Source: out.Displaced[i].Source}
			}
			if d := cmp.Diff(tc.last, out, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("outcome of the last write (-want +got):\n%s", d)
			}
			got, ok := st.Effective()
			if ok != tc.exists {
				t.Fatalf("exists = %v, want %v", ok, tc.exists)
			}
			if ok {
				var want Product
				tc.want(&want)
				want.SKU, want.BatchID, want.Source, want.Order, want.Present = "", "", Position{}, 0, 0
				got.SKU, got.BatchID, got.Source, got.Offset, got.Length, got.Order = "", "", Position{}, 0, 0, 0
				if d := cmp.Diff(want, got, cmpopts.EquateEmpty()); d != "" {
					t.Errorf("product (-want +got):\n%s", d)
				}
			}
			if d := cmp.Diff(tc.stamps, st.Stamps); d != "" {
				t.Errorf("stamps (-want +got):\n%s", d)
			}
			if len(st.Holders) > int(NumFields)+2 {
				t.Errorf("%d holders", len(st.Holders))
			}
		})
	}
}

// TestHoldersArePruned: a batch whose every field a newer batch has taken
// (and which holds neither the creation nor the tombstone) is forgotten.
func TestHoldersArePruned(t *testing.T) {
	var st State
	for _, o := range []op{w(Upsert, "a", 5, 2), w(Upsert, "b", 6, 2, "price"), w(Upsert, "c", 7, 2, "name", "category", "brand", "currency", "stock", "status", "description", "image_urls")} {
		var out Outcome
		out, st = Decide(o.mode, &o.p, st)
		if out.Result != Written {
			t.Fatalf("%s: %v", o.p.BatchID, out.Result)
		}
	}
	var got []string
	for _, h := range st.Holders {
		got = append(got, h.BatchID)
	}
	if d := cmp.Diff([]string{"c", "b"}, got); d != "" {
		t.Errorf("holders (-want +got):\n%s", d)
	}
}

func TestParseWriteMode(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want WriteMode
		ok   bool
	}{
		{"", Upsert, true}, {"upsert", Upsert, true}, {"replace", Replace, true}, {"update", Update, true},
		{"create-only", CreateOnly, true}, {"delete", Delete, true}, {"Upsert", "", false}, {"merge", "", false},
	} {
		got, err := ParseWriteMode(tc.in)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("ParseWriteMode(%q) = %q, %v", tc.in, got, err)
		}
		if err != nil && (failure.ReasonOf(err) != failure.InvalidValue || !cmp.Equal(err.Error() != "", true)) {
			t.Errorf("ParseWriteMode(%q): error %v, want InvalidValue", tc.in, err)
		}
		if tc.ok && tc.in != "" && !got.Valid() {
			t.Errorf("%q not Valid", got)
		}
	}
	if WriteMode("").Valid() {
		t.Error(`"" is Valid`)
	}
}

func TestFields(t *testing.T) {
	fs, err := FieldsOf("sku", "price", "image_urls")
	if err != nil || !fs.Has(FieldPrice) || !fs.Has(FieldImageURLs) || fs.Has(FieldName) {
		t.Errorf("FieldsOf = %b, %v", fs, err)
	}
	if fs, err := FieldsOf("sku"); fs != NoFields || err != nil || fs.Has(FieldName) {
		t.Errorf("FieldsOf(sku) = %b, %v", fs, err)
	}
	if _, err := FieldsOf("colour"); err == nil {
		t.Error("FieldsOf(colour): no error")
	}
	for f := range NumFields {
		if g, err := FieldsOf(f.String()); err != nil || g != 1<<f || !AllFields().Has(f) {
			t.Errorf("field %d %q: %b, %v", f, f, g, err)
		}
	}
}

func TestStampsCodec(t *testing.T) {
	for _, tc := range []struct {
		st   State
		text string
	}{
		{State{Exists: true, Holders: []Holder{{Order: 17}}, Stamps: FieldStamps{Fields: stamps(17, nil), Created: 17}}, "17//0/,,,,,,,,"},
		{State{Holders: []Holder{{Order: 9}}, Stamps: FieldStamps{Fields: stamps(0, map[Field]int64{FieldPrice: 12}), Tombstone: 9, Created: 3}},
			"!9/3//0,0,0,12,0,0,0,0,0"},
	} {
		text := EncodeStamps(&tc.st)
		if text != tc.text {
			t.Errorf("EncodeStamps = %q, want %q", text, tc.text)
		}
		st, exists, order, err := DecodeStamps(text)
		if err != nil || st != tc.st.Stamps || exists != tc.st.Exists || order != tc.st.Holders[0].Order {
			t.Errorf("DecodeStamps(%q) = %+v, %v, %d, %v", text, st, exists, order, err)
		}
	}
	if st, exists, order, err := DecodeStamps(""); err != nil || !exists || order != 0 || st != (FieldStamps{}) {
		t.Errorf(`DecodeStamps("") = %+v, %v, %d, %v`, st, exists, order, err)
	}
	for _, bad := range []string{"x//0/,,,,,,,,", "1/2/3", "1//0/,,"} {
		if _, _, _, err := DecodeStamps(bad); err == nil {
			t.Errorf("DecodeStamps(%q): no error", bad)
		}
	}
	hs := []Holder{{BatchID: "b", Order: 4, Source: Position{SheetIndex: 1, Sheet: "S", Row: 7}, Offset: 10, Length: 3,
		Displaced: []Product{{SKU: "k", BatchID: "b", Source: Position{Row: 9}, Offset: 30, Length: 2}}}}
	text, err := EncodeHolders(hs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeHolders("k", text)
	if d := cmp.Diff(hs, got); d != "" || err != nil {
		t.Errorf("holders round trip (-want +got) %v:\n%s", err, d)
	}
}
