package profile

import (
	"slices"
	"strings"
	"testing"

	"github.com/catalog-import/catalog-import/internal/catalog"
	"github.com/catalog-import/catalog-import/internal/failure"
)

// withMode is the default profile with write_mode mode.
func withMode(t *testing.T, mode string) *Validator {
	t.Helper()
	p, err := Parse([]byte("name: feed\nwrite_mode: " + mode + "\n"))
	if err != nil {
		t.Fatalf("Parse(write_mode %s): %v", mode, err)
	}
	if got := string(p.WriteMode()); got != mode {
		t.Fatalf("WriteMode() = %q, want %q", got, mode)
	}
	if !strings.Contains(string(p.Canonical()), "write_mode: "+mode+"\n") {
		t.Errorf("canonical profile does not show write_mode %s:\n%s", mode, p.Canonical())
	}
	return compile(t, p)
}

func TestParseWriteModes(t *testing.T) {
	t.Parallel()
	for _, m := range writeModeNames() {
		withMode(t, m)
	}
	p, err := Parse([]byte("name: x\n"))
	if err != nil || p.WriteMode() != catalog.Upsert {
		t.Errorf("no write_mode: %q, %v; want upsert", p.WriteMode(), err)
	}
	for _, bad := range []string{"insert", "UPSERT", "create_only"} {
		_, err := Parse([]byte("name: x\nwrite_mode: " + bad + "\n"))
		if err == nil || !strings.Contains(err.Error(), "write_mode: unknown write mode") {
			t.Errorf("write_mode %s: %v, want the allowed modes named", bad, err)
		}
	}
}

// TestHeaderPerMode: the columns a header needs depend on the write mode.
func TestHeaderPerMode(t *testing.T) {
	t.Parallel()
	cases := []struct {
		mode    string
		header  []string
		missing string // "" = accepted; else a substring of the rejection
		present []string
	}{
		{"upsert", []string{"sku", "stock"}, "missing required columns: name", nil},
		{"create-only", []string{"sku", "stock"}, "missing required columns: name", nil},
		{"replace", []string{"sku", "stock"}, "missing required columns: name", nil},
		{"upsert", []string{"sku", "name", "category", "price"}, "", []string{"name", "category", "price"}},
		{"replace", []string{"商品编码", "名称", "类目", "价格", "库存"}, "", []string{"name", "category", "price", "stock"}},
		{"update", []string{"sku", "stock"}, "", []string{"stock"}},
		{"update", []string{"货号", "售价", "note"}, "", []string{"price"}},
		{"update", []string{"sku"}, "needs at least one field column besides sku", nil},
		{"update", []string{"sku", "note"}, "needs at least one field column besides sku", nil},
		{"update", []string{"stock"}, "missing required columns: sku", nil},
		{"delete", []string{"sku"}, "", nil},
		{"delete", []string{"sku", "name", "whatever"}, "", nil},
		{"delete", []string{"name"}, "missing required columns: sku", nil},
	}
	for _, c := range cases {
		v := withMode(t, c.mode)
		cols, err := v.Header(c.header)
		if c.missing != "" {
			if err == nil || !strings.Contains(err.Error(), c.missing) {
				t.Errorf("%s %q: %v, want a rejection with %q", c.mode, c.header, err, c.missing)
			}
			if failure.ReasonOf(err) != failure.SchemaMismatch && err != nil {
				t.Errorf("%s %q: reason %s, want SchemaMismatch", c.mode, c.header, failure.ReasonOf(err))
			}
			continue
		}
		if err != nil {
			t.Errorf("%s %q: %v, want accepted", c.mode, c.header, err)
			continue
		}
		if got := v.Present(cols); !slices.Equal(got, c.present) {
			t.Errorf("%s %q: Present = %q, want %q", c.mode, c.header, got, c.present)
		}
	}
}

// TestValidatePartialRows: absent columns are not checked and not
// "required but empty"; they hold defaults (for creation only); present
// columns are checked as always.
func TestValidatePartialRows(t *testing.T) {
	t.Parallel()
	cases := []struct {
		mode   string
		header []string
		cells  []string
		want   catalog.Product // compared on every field
		reason failure.Reason  // "" = valid
		field  string
	}{
		{"update", []string{"sku", "stock"}, []string{"SKU-1", "12"},
			catalog.Product{SKU: "SKU-1", Stock: 12, Currency: "CNY", Status: "active"}, "", ""},
		{"update", []string{"sku", "price"}, []string{" SKU-1 ", "9.5"},
			catalog.Product{SKU: "SKU-1", Price: "9.50", Currency: "CNY", Status: "active"}, "", ""},
		{"update", []string{"sku", "stock"}, []string{"SKU-1", "-3"}, catalog.Product{}, failure.OutOfRange, "stock"},
		{"update", []string{"sku", "name"}, []string{"SKU-1", ""}, catalog.Product{}, failure.MissingField, "name"},
		{"update", []string{"sku", "stock"}, []string{"", "3"}, catalog.Product{}, failure.MissingField, "sku"},
		{"upsert", []string{"sku", "name", "category", "price"}, []string{"SKU-2", "Cup", "Kitchen", "1"},
			catalog.Product{SKU: "SKU-2", Name: "Cup", Category: "Kitchen", Price: "1.00", Currency: "CNY", Status: "active"}, "", ""},
		{"delete", []string{"sku", "price", "stock"}, []string{"SKU-3", "not a price", "-1"},
			catalog.Product{SKU: "SKU-3", Currency: "CNY", Status: "active"}, "", ""},
		{"delete", []string{"sku"}, []string{"bad sku!"}, catalog.Product{}, failure.InvalidValue, "sku"},
		{"delete", []string{"sku"}, []string{""}, catalog.Product{}, failure.MissingField, "sku"},
	}
	for _, c := range cases {
		v := withMode(t, c.mode)
		cols := header(t, v, c.header...)
		got, err := v.Validate(cols, c.cells)
		if c.reason != "" {
			wantReason(t, err, string(c.reason), c.field)
			continue
		}
		if err != nil {
			t.Errorf("%s %q %q: %v", c.mode, c.header, c.cells, err)
			continue
		}
		want, err := catalog.FieldsOf(v.Present(cols)...)
		if err != nil || got.Present != want {
			t.Errorf("%s %q: product Present %b, want %b (%v)", c.mode, c.header, got.Present, want, err)
		}
		if !equalProduct(got, c.want) {
			t.Errorf("%s %q %q:\n got %+v\nwant %+v", c.mode, c.header, c.cells, got, c.want)
		}
	}
}

// TestNamesPerMode: a JSON Lines object without a required key is that
// row's MissingField where the mode may create products, and fine in
// update mode; an update object with only sku has nothing to update.
func TestNamesPerMode(t *testing.T) {
	t.Parallel()
	up := withMode(t, "upsert")
	_, err := up.Validate(up.Names([]string{"sku", "stock"}), []string{"SKU-1", "4"})
	wantReason(t, err, string(failure.MissingField), "name")

	u := withMode(t, "update")
	p, err := u.Validate(u.Names([]string{"sku", "stock"}), []string{"SKU-1", "4"})
	if err != nil || p.Stock != 4 || p.SKU != "SKU-1" {
		t.Errorf("update object {sku, stock}: %+v, %v", p, err)
	}
	_, err = u.Validate(u.Names([]string{"sku"}), []string{"SKU-1"})
	wantReason(t, err, string(failure.SchemaMismatch), "sku")

	d := withMode(t, "delete")
	if p, err := d.Validate(d.Names([]string{"sku"}), []string{"SKU-1"}); err != nil || p.SKU != "SKU-1" {
		t.Errorf("delete object {sku}: %+v, %v", p, err)
	}
}

// TestCatalogFieldNumbering: the profile's fields after sku are the
// catalog's stamped fields, in the same order.
func TestCatalogFieldNumbering(t *testing.T) {
	t.Parallel()
	if int(numFields-fName) != int(catalog.NumFields) {
		t.Fatalf("profile has %d fields after sku, catalog %d", numFields-fName, catalog.NumFields)
	}
	for id := fName; id < numFields; id++ {
		if got := catalogField(id).String(); got != fieldNames[id] {
			t.Errorf("profile field %s is catalog field %s", fieldNames[id], got)
		}
	}
}

func TestWriteModeSummary(t *testing.T) {
	t.Parallel()
	for _, m := range writeModeNames() {
		if s := WriteModeSummary(catalog.WriteMode(m)); s == "" || strings.HasPrefix(s, "unknown") {
			t.Errorf("WriteModeSummary(%s) = %q", m, s)
		}
	}
}
