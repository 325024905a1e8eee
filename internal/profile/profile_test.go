package profile

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/catalog-import/catalog-import/internal/catalog"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// golden compares got with testdata/name, rewriting it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test -update if the change is intended)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func mustParse(t testing.TB, yaml string) *Profile {
	t.Helper()
	p, err := Parse([]byte(yaml))
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, yaml)
	}
	return p
}

func TestDefaultProfileSettings(t *testing.T) {
	p := Default()
	if p.Name() != "default" || p.WriteMode() != catalog.Upsert || p.MaxErrorRatio() != 0 || len(p.BannedCategories()) != 0 || !p.UniqueSKU() {
		t.Errorf("default: name %q mode %q ratio %v banned %v unique %v", p.Name(), p.WriteMode(), p.MaxErrorRatio(), p.BannedCategories(), p.UniqueSKU())
	}
	if !regexp.MustCompile(`^[0-9a-f]{12}$`).MatchString(p.RuleVersion()) {
		t.Errorf("RuleVersion %q is not 12 hex digits", p.RuleVersion())
	}
	// The embedded file users copy is the default profile itself.
	q, err := Parse(DefaultYAML())
	if err != nil {
		t.Fatal(err)
	}
	if q.RuleVersion() != p.RuleVersion() {
		t.Errorf("Parse(DefaultYAML()) has rule version %s, Default() %s", q.RuleVersion(), p.RuleVersion())
	}
	if got := Fields(); !slices.Equal(got, []string{"sku", "name", "category", "brand", "price", "currency", "stock", "status", "description", "image_urls"}) {
		t.Errorf("Fields() = %v", got)
	}
	// Pin the canonical text: a change here changes every batch's rule version.
	golden(t, "default.canonical.yaml", p.Canonical())
}

func TestDefaultChineseAliases(t *testing.T) {
	want := map[string][]string{
		"sku":         {"商品编码", "货号", "SKU"},
		"name":        {"商品名称", "名称"},
		"category":    {"类目", "分类"},
		"brand":       {"品牌"},
		"price":       {"价格", "售价"},
		"currency":    {"币种"},
		"stock":       {"库存"},
		"status":      {"状态"},
		"description": {"描述", "商品描述"},
		"image_urls":  {"图片", "图片链接"},
	}
	v := compile(t, Default())
	for field, aliases := range want {
		for _, a := range aliases {
			c := v.Names([]string{a})
			if got := c.Mapping()[a]; got != field {
				t.Errorf("header %q maps to %q, want %q", a, got, field)
			}
		}
	}
}

func TestLoadExampleProfiles(t *testing.T) {
	t.Run("marketplace-create-only", func(t *testing.T) {
		p, err := Load("../../testdata/profiles/marketplace-create-only.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if p.WriteMode() != catalog.CreateOnly || p.MaxErrorRatio() != 0.05 || !slices.Contains(p.BannedCategories(), "烟草") {
			t.Errorf("mode %q ratio %v banned %v", p.WriteMode(), p.MaxErrorRatio(), p.BannedCategories())
		}
		v := compile(t, p)
		c := header(t, v, "商品编码", "商品名称", "类目", "品牌", "价格", "描述")
		prod, err := v.Validate(c, []string{"MK-00012", "茶杯", "Kitchen", "Acme", "9.9", "A porcelain cup of 350 ml, dishwasher safe."})
		if err != nil {
			t.Fatal(err)
		}
		if prod.Status != "draft" || prod.Currency != "CNY" || prod.Price != "9.90" {
			t.Errorf("product %+v", prod)
		}
		_, err = v.Validate(c, []string{"MK-00013", "烟斗", "烟草", "Acme", "9.9", "A porcelain cup of 350 ml, dishwasher safe."})
		wantReason(t, err, "BannedCategory", "category")
		_, err = v.Validate(c, []string{"SKU-1", "茶杯", "Kitchen", "Acme", "9.9", "A porcelain cup of 350 ml, dishwasher safe."})
		wantReason(t, err, "InvalidValue", "sku")
	})
	t.Run("english-supplier", func(t *testing.T) {
		p, err := Load("../../testdata/profiles/english-supplier.yaml")
		if err != nil {
			t.Fatal(err)
		}
		v := compile(t, p)
		c := header(t, v, "Item Code", "Title", "Dept", "Unit Price", "CCY", "Qty", "Images", "Colour")
		prod, err := v.Validate(c, []string{"AB-1", "Tea cup", "Kitchen", "1.2345", "usd", "12", "https://x.example/a.jpg; https://x.example/b.jpg"})
		if err != nil {
			t.Fatal(err)
		}
		want := catalog.Product{SKU: "AB-1", Name: "Tea cup", Category: "Kitchen", Price: "1.2345", Currency: "USD", Stock: 12, Status: "active",
			ImageURLs: []string{"https://x.example/a.jpg", "https://x.example/b.jpg"}}
		if !equalProduct(prod, want) {
			t.Errorf("got %+v\nwant %+v", prod, want)
		}
		if got := c.Unmapped(); !slices.Equal(got, []string{"Colour"}) {
			t.Errorf("Unmapped = %v", got)
		}
		// The default profile's rules are inherited: the sku pattern still holds.
		_, err = v.Validate(c, []string{"AB 1", "Tea cup", "Kitchen", "1", "", "", ""})
		wantReason(t, err, "InvalidValue", "sku")
	})
}

func TestLoadErrors(t *testing.T) {
	if _, err := Load("testdata/no-such-file.yaml"); err == nil {
		t.Error("Load of a missing file succeeded")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(path, bytes.Repeat([]byte("#\n"), MaxSize), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Load of a too large file: %v", err)
	}
	path = filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(path, []byte("name: x\nfields: {price: {scale: -1}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "fields.price.scale: must be >= 0") || !strings.Contains(err.Error(), path) {
		t.Errorf("Load of a bad profile: %v", err)
	}
}

func TestPartialProfileInheritsDefaults(t *testing.T) {
	p := mustParse(t, `
name: aliases-only
fields:
  sku: {columns: [item_code]}
`)
	d := Default()
	if p.WriteMode() != catalog.Upsert || !p.UniqueSKU() {
		t.Errorf("mode %q unique %v", p.WriteMode(), p.UniqueSKU())
	}
	// Only the name and the sku's columns differ from the default.
	got := strings.ReplaceAll(string(p.Canonical()), "name: aliases-only", "name: default")
	got = strings.Replace(got, "      - item_code\n", "      - 商品编码\n      - 货号\n", 1)
	if got != string(d.Canonical()) {
		t.Errorf("canonical differs from the default beyond name and sku columns:\n%s", p.Canonical())
	}
	v := compile(t, p)
	c := header(t, v, "item_code", "名称", "分类", "售价")
	prod, err := v.Validate(c, []string{"X-1", "杯子", "厨具", "3"})
	if err != nil {
		t.Fatal(err)
	}
	if prod.Price != "3.00" || prod.Status != "active" || prod.Currency != "CNY" {
		t.Errorf("defaults not inherited: %+v", prod)
	}
	_, err = v.Validate(c, []string{"X 1", "杯子", "厨具", "3"})
	wantReason(t, err, "InvalidValue", "sku") // the default pattern
	// columns replaces the default's aliases; the field's own name still matches.
	if _, err := v.Header([]string{"商品编码", "名称", "分类", "售价"}); err == nil {
		t.Error("商品编码 still maps to sku after columns was replaced")
	}
	if _, err := v.Header([]string{"SKU", "名称", "分类", "售价"}); err != nil {
		t.Errorf("the field's own name no longer matches: %v", err)
	}
}

func TestMergeRules(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		field   string
		cell    string
		want    string // product field value, or the reason when it fails
		wantErr bool
	}{
		{"required can be switched off", "fields: {category: {required: false}}", "category", "", "", false},
		{"a rule changes, the others stay", "fields: {name: {max_length: 3}}", "name", "abcd", "InvalidValue", true},
		{"min_length stays when max_length changes", "fields: {name: {max_length: 3}}", "name", "abc", "abc", false},
		{"enum on a text field makes it an enum", "fields: {brand: {enum: [Acme, Initech]}}", "brand", "acme", "Acme", false},
		{"enum field rejects other values", "fields: {brand: {enum: [Acme, Initech]}}", "brand", "Globex", "InvalidValue", true},
		{"type string drops the default's enum", "fields: {status: {type: string}}", "status", "archived", "archived", false},
		{"type string keeps the default's default", "fields: {status: {type: string}}", "status", "", "active", false},
		{"new enum list replaces the default's", "fields: {status: {enum: [on, off], default: on}}", "status", "ON", "on", false},
		{"currency enum restricts codes", "fields: {currency: {enum: [usd, cny]}}", "currency", "EUR", "InvalidValue", true},
		{"currency enum codes are stored upper-case", "fields: {currency: {enum: [usd, cny]}}", "currency", "usd", "USD", false},
		{"scale can grow", "fields: {price: {scale: 4}}", "price", "1.2345", "1.2345", false},
		{"scale 0 is integral money", "fields: {price: {scale: 0}}", "price", "12.0", "12", false},
		{"scale 0 rejects decimals", "fields: {price: {scale: 0}}", "price", "12.5", "InvalidValue", true},
		{"negative min allows negatives", "fields: {price: {min: '-10'}}", "price", "-1.5", "-1.50", false},
		{"stock max", "fields: {stock: {max: 100}}", "stock", "101", "OutOfRange", true},
		{"separator", "fields: {image_urls: {separator: ','}}", "image_urls", "https://a.example/1.jpg,https://a.example/2.jpg", "https://a.example/1.jpg https://a.example/2.jpg", false},
		{"pattern on name", "fields: {name: {pattern: '^[A-Z]'}}", "name", "tea", "InvalidValue", true},
		{"default on a required field fills it", "fields: {category: {default: misc}}", "category", "", "misc", false},
		{"url default", "fields: {image_urls: {default: 'https://a.example/none.png'}}", "image_urls", "", "https://a.example/none.png", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := compile(t, mustParse(t, "name: t\n"+tt.yaml))
			prod, err := validateOne(v, tt.field, tt.cell)
			if tt.wantErr {
				wantReason(t, err, tt.want, tt.field)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := fieldText(prod, tt.field); got != tt.want {
				t.Errorf("%s = %q, want %q", tt.field, got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string // one line of the joined error
	}{
		{"negative scale", "name: x\nfields: {price: {scale: -1}}", "fields.price.scale: must be >= 0"},
		{"scale too large", "name: x\nfields: {price: {scale: 20}}", "fields.price.scale: must be <= 19"},
		{"unknown top key", "name: x\ncolumns: []", "columns: unknown key"},
		{"unknown field", "name: x\nfields: {colour: {}}", "fields.colour: unknown field"},
		{"unknown rule key", "name: x\nfields: {sku: {regex: x}}", "fields.sku.regex: unknown key"},
		{"missing name", "write_mode: upsert", "name: required"},
		{"bad write mode", "name: x\nwrite_mode: insert", `write_mode: unknown write mode "insert" (allowed: upsert, replace, update, create-only, delete)`},
		{"ratio above 1", "name: x\nmax_error_ratio: 1.5", "max_error_ratio: must be <= 1"},
		{"negative ratio", "name: x\nmax_error_ratio: -0.1", "max_error_ratio: must be >= 0"},
		{"zero quoted lines", "name: x\nmax_quoted_lines: 0", "max_quoted_lines: must be between 1 and 1000000"},
		{"quoted bytes too large", "name: x\nmax_quoted_bytes: 1000000000", "max_quoted_bytes: must be between 1 and 67108864"},
		{"ratio not a number", "name: x\nmax_error_ratio: lots", "max_error_ratio: line 2: cannot unmarshal !!str `lots` into float64"},
		{"bad pattern", "name: x\nfields: {sku: {pattern: '^[a-'}}", "fields.sku.pattern: error parsing regexp"},
		{"empty pattern", "name: x\nfields: {sku: {pattern: ''}}", "fields.sku.pattern: must not be empty"},
		{"bad min", "name: x\nfields: {price: {min: abc}}", `fields.price.min: "abc" is not a decimal number`},
		{"min above max", "name: x\nfields: {price: {min: 10, max: 1}}", "fields.price.min: must be <= max (1)"},
		{"integer bound with decimals", "name: x\nfields: {stock: {max: 1.5}}", `fields.stock.max: "1.5" is not an integer`},
		{"type not for the field", "name: x\nfields: {stock: {type: string}}", `fields.stock.type: "string" does not apply to stock (want integer)`},
		{"unknown type", "name: x\nfields: {name: {type: text}}", `fields.name.type: unknown type "text"`},
		{"rule not for the type", "name: x\nfields: {name: {scale: 2}}", "fields.name.scale: does not apply to type string"},
		{"unique on another field", "name: x\nfields: {name: {unique: true}}", "fields.name.unique: only sku can be unique"},
		{"negative length", "name: x\nfields: {brand: {max_length: -1}}", "fields.brand.max_length: must be >= 0"},
		{"min_length above max_length", "name: x\nfields: {brand: {min_length: 5, max_length: 2}}", "fields.brand.min_length: must be <= max_length (2)"},
		{"empty enum", "name: x\nfields: {status: {enum: []}}", "fields.status.enum: type enum needs at least one value"},
		{"duplicate enum", "name: x\nfields: {status: {enum: [a, A]}}", `fields.status.enum[1]: "A" is listed twice`},
		{"bad currency in enum", "name: x\nfields: {currency: {enum: [RMB]}}", `fields.currency.enum[0]: "RMB" is not an ISO 4217 currency code`},
		{"default breaks the rule", "name: x\nfields: {status: {default: deleted}}", `fields.status.default: "deleted" is not one of active, inactive, draft`},
		{"default not a currency", "name: x\nfields: {currency: {default: RMB}}", `fields.currency.default: "RMB" is not an ISO 4217 currency code`},
		{"empty default", "name: x\nfields: {currency: {default: ''}}", "fields.currency.default: must not be empty"},
		{"empty separator", "name: x\nfields: {image_urls: {separator: ''}}", "fields.image_urls.separator: must not be empty"},
		{"alias on two fields", "name: x\nfields: {name: {columns: [title]}, description: {columns: [Title]}}", `fields.description.columns: "Title" also matches name`},
		{"alias is another field's name", "name: x\nfields: {name: {columns: [brand]}}", `fields.name.columns: "brand" also matches brand`},
		{"empty alias", "name: x\nfields: {name: {columns: ['', title]}}", "fields.name.columns[0]: must not be empty"},
		{"empty banned category", "name: x\nbanned_categories: ['']", "banned_categories[0]: must not be empty"},
		{"duplicate key", "name: x\nname: y", "name: given twice (lines 1 and 2)"},
		{"fields not a mapping", "name: x\nfields: [sku]", "fields: must be a mapping"},
		{"field not a mapping", "name: x\nfields: {sku: item_code}", "fields.sku: must be a mapping"},
		{"wrong value type", "name: x\nfields: {sku: {required: maybe}}", "fields.sku.required: line 2: cannot unmarshal !!str `maybe` into bool"},
		{"list expected", "name: x\nfields: {sku: {columns: {a: b}}}", "fields.sku.columns: must not be a mapping"},
		{"not yaml", "name: [x", "profile: "},
		{"empty document", "", "profile: empty document"},
		{"not a mapping", "- a\n- b", "profile: must be a mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse succeeded, want %q", tt.want)
			}
			found := false
			for line := range strings.SplitSeq(err.Error(), "\n") {
				if strings.HasPrefix(line, tt.want) {
					found = true
				}
			}
			if !found {
				t.Errorf("error has no line starting with %q:\n%v", tt.want, err)
			}
		})
	}
}

// TestParseErrorsGolden pins the full joined text for a profile with many
// problems: all of them are reported at once, each naming its path.
func TestParseErrorsGolden(t *testing.T) {
	data, err := os.ReadFile("testdata/bad_profile.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Parse(data)
	if err == nil {
		t.Fatal("Parse succeeded")
	}
	golden(t, "bad_profile.errors.golden", []byte(err.Error()+"\n"))
}

func TestCanonicalStable(t *testing.T) {
	base := `
name: acme-supplier
write_mode: upsert
max_error_ratio: 0.2
banned_categories: [tobacco, 烟草]
fields:
  sku:    {columns: [商品编码, 货号, SKU, item_code], required: true, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$', unique: true}
  name:   {columns: [商品名称, 名称, title], required: true, min_length: 1, max_length: 255}
  price:  {columns: [价格, 售价], type: decimal, required: true, min: "0", max: "9999999.99", scale: 2}
  status: {enum: [active, inactive, draft], default: active}
`
	same := map[string]string{
		"keys in another order, block style": `
fields:
  status:
    default: active
    enum: [active, inactive, draft]
  price:
    scale: 2
    max: "9999999.99"
    min: 0
    required: true
    type: decimal
    columns: [售价, 价格]
  name: {max_length: 255, min_length: 1, required: true, columns: [title, 名称, 商品名称]}
  sku: {unique: true, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$', required: true, columns: [item_code, SKU, 货号, 商品编码]}
banned_categories: [烟草, tobacco]
max_error_ratio: 0.2
write_mode: upsert
name: acme-supplier
`,
		"equal numbers and repeated entries": `
name: acme-supplier
max_error_ratio: 0.20
banned_categories: [tobacco, 烟草, Tobacco]
fields:
  sku:    {columns: [商品编码, 货号, item_code, ITEM_CODE]}
  name:   {columns: [商品名称, 名称, title]}
  price:  {min: "0.00", max: "9999999.990"}
`,
		"its own canonical text": "",
	}
	want := mustParse(t, base)
	same["its own canonical text"] = string(want.Canonical())
	for name, y := range same {
		t.Run(name, func(t *testing.T) {
			if got := mustParse(t, y); got.RuleVersion() != want.RuleVersion() {
				t.Errorf("rule version %s, want %s\n%s", got.RuleVersion(), want.RuleVersion(), got.Canonical())
			}
		})
	}
	changed := map[string]string{
		"max changed":           strings.Replace(base, `max: "9999999.99"`, `max: "999999.99"`, 1),
		"alias added":           strings.Replace(base, "[价格, 售价]", "[价格, 售价, unit_price]", 1),
		"write mode":            strings.Replace(base, "write_mode: upsert", "write_mode: create-only", 1),
		"banned list":           strings.Replace(base, "[tobacco, 烟草]", "[tobacco]", 1),
		"ratio":                 strings.Replace(base, "max_error_ratio: 0.2", "max_error_ratio: 0.3", 1),
		"enum order (messages)": strings.Replace(base, "[active, inactive, draft]", "[draft, active, inactive]", 1),
		"name":                  strings.Replace(base, "name: acme-supplier", "name: acme-2", 1),
	}
	for name, y := range changed {
		t.Run("changed/"+name, func(t *testing.T) {
			if got := mustParse(t, y); got.RuleVersion() == want.RuleVersion() {
				t.Errorf("rule version did not change\n%s", got.Canonical())
			}
		})
	}
}

func TestCompileNeedsParsedProfile(t *testing.T) {
	if _, err := (&Profile{}).Compile(); err == nil {
		t.Error("Compile of a zero Profile succeeded")
	}
}

func TestProfileColumns(t *testing.T) {
	if got := Default().Columns("price"); !slices.Equal(got, []string{"price", "价格", "售价"}) {
		t.Errorf("Columns(price) = %v", got)
	}
	if Default().Columns("colour") != nil {
		t.Error("Columns of an unknown field is not nil")
	}
}

// TestSheets: a profile names the workbook sheets to import; names are
// trimmed, sorted in the canonical profile (the workbook's order is the
// import order) and part of the rule version; no sheets means all of them.
func TestSheets(t *testing.T) {
	t.Parallel()
	p, err := Parse([]byte("name: two sheets\nsheets: [' 商品 ', Sheet2]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.Sheets(), []string{"Sheet2", "商品"}; !slices.Equal(got, want) {
		t.Errorf("Sheets() = %q, want %q", got, want)
	}
	if !strings.Contains(string(p.Canonical()), "sheets:\n  - Sheet2\n  - 商品\n") {
		t.Errorf("canonical profile without its sheets:\n%s", p.Canonical())
	}
	all, err := Parse([]byte("name: two sheets\n"))
	if err != nil {
		t.Fatal(err)
	}
	if all.Sheets() != nil || all.RuleVersion() == p.RuleVersion() {
		t.Errorf("without sheets: Sheets() = %q, rule version %s (with sheets %s)", all.Sheets(), all.RuleVersion(), p.RuleVersion())
	}
	if Default().Sheets() != nil || strings.Contains(string(Default().Canonical()), "sheets") {
		t.Error("the default profile names sheets")
	}
}

// TestQuoteLimits: max_quoted_lines and max_quoted_bytes are read, kept in
// the canonical profile only when given (so the rule version of a profile
// without them does not change), and parsed back from it.
func TestQuoteLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		yaml         string
		lines, bytes int
	}{
		{"defaults", "name: x", 0, 0},
		{"both", "name: x\nmax_quoted_lines: 50\nmax_quoted_bytes: 4096", 50, 4096},
		{"lines only", "name: x\nmax_quoted_lines: 7", 7, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := Parse([]byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if l, b := p.QuoteLimits(); l != tt.lines || b != tt.bytes {
				t.Fatalf("QuoteLimits() = %d, %d; want %d, %d", l, b, tt.lines, tt.bytes)
			}
			if got := strings.Contains(string(p.Canonical()), "max_quoted_"); got != (tt.lines+tt.bytes > 0) {
				t.Fatalf("canonical mentions the limits: %v\n%s", got, p.Canonical())
			}
			back, err := Parse(p.Canonical())
			if err != nil {
				t.Fatal(err)
			}
			if back.RuleVersion() != p.RuleVersion() {
				t.Fatalf("canonical round trip changed the rule version")
			}
		})
	}
	if a, b := mustParse(t, "name: x"), mustParse(t, "name: x\nmax_quoted_lines: 9"); a.RuleVersion() == b.RuleVersion() {
		t.Fatal("max_quoted_lines does not change the rule version")
	}
}
