package profile

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/catalog-import/catalog-import/internal/catalog"
	"github.com/catalog-import/catalog-import/internal/failure"
)

func compile(t testing.TB, p *Profile) *Validator {
	t.Helper()
	v, err := p.Compile()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func header(t testing.TB, v *Validator, names ...string) *Columns {
	t.Helper()
	c, err := v.Header(names)
	if err != nil {
		t.Fatalf("Header(%q): %v", names, err)
	}
	return c
}

// baseRow is a valid row of the default profile, by field.
var baseRow = map[string]string{
	"sku": "SKU-1", "name": "Tea cup", "category": "Kitchen", "brand": "Acme", "price": "12.50",
	"currency": "CNY", "stock": "7", "status": "active", "description": "A cup.", "image_urls": "https://img.example.com/1.jpg",
}

// row returns the header (the field names, in table order) and the cells of
// baseRow with the given changes.
func row(changes map[string]string) (hdr, cells []string) {
	for _, f := range fieldNames {
		hdr = append(hdr, f)
		cell := baseRow[f]
		if c, ok := changes[f]; ok {
			cell = c
		}
		cells = append(cells, cell)
	}
	return hdr, cells
}

// validateOne validates baseRow with field set to cell.
func validateOne(v *Validator, field, cell string) (catalog.Product, error) {
	hdr, cells := row(map[string]string{field: cell})
	c, err := v.Header(hdr)
	if err != nil {
		return catalog.Product{}, err
	}
	return v.Validate(c, cells)
}

// fieldText renders a product field as text (image URLs joined by a space).
func fieldText(p catalog.Product, field string) string {
	switch field {
	case "sku":
		return p.SKU
	case "name":
		return p.Name
	case "category":
		return p.Category
	case "brand":
		return p.Brand
	case "price":
		return p.Price
	case "currency":
		return p.Currency
	case "stock":
		return strconv.FormatInt(p.Stock, 10)
	case "status":
		return p.Status
	case "description":
		return p.Description
	case "image_urls":
		return strings.Join(p.ImageURLs, " ")
	}
	panic("unknown field " + field)
}

func equalProduct(a, b catalog.Product) bool {
	return a.SKU == b.SKU && a.Name == b.Name && a.Category == b.Category && a.Brand == b.Brand && a.Price == b.Price &&
		a.Currency == b.Currency && a.Stock == b.Stock && a.Status == b.Status && a.Description == b.Description &&
		slices.Equal(a.ImageURLs, b.ImageURLs)
}

// wantReason checks that err is one *failure.ImportError with reason on field.
func wantReason(t *testing.T, err error, reason, field string) *failure.ImportError {
	t.Helper()
	ie, ok := failure.As(err)
	if !ok {
		t.Fatalf("error %v is not an ImportError (want %s on %s)", err, reason, field)
	}
	if string(ie.Reason) != reason || ie.Field != field {
		t.Fatalf("got %s on %q (%v), want %s on %q", ie.Reason, ie.Field, ie, reason, field)
	}
	if ie.Layer != ie.Reason.Layer() {
		t.Errorf("layer %s for %s", ie.Layer, ie.Reason)
	}
	return ie
}

// TestDefaultProfileRules has one test per row of docs/invariants.md's table of the
// default profile.
func TestDefaultProfileRules(t *testing.T) {
	type tc struct {
		cell string
		want string // the stored value, or the reason
		fail bool
	}
	ok := func(cell, want string) tc { return tc{cell, want, false} }
	bad := func(cell, reason string) tc { return tc{cell, reason, true} }
	rows := []struct {
		field string
		cases []tc
	}{
		{"sku", []tc{ // required, ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$, unique within the file
			ok("A", "A"), ok("SKU-1.b_c", "SKU-1.b_c"), ok(strings.Repeat("a", 64), strings.Repeat("a", 64)),
			bad("", "MissingField"), bad("a b", "InvalidValue"), bad("-a", "InvalidValue"), bad(".a", "InvalidValue"),
			bad(strings.Repeat("a", 65), "InvalidValue"), bad("货号1", "InvalidValue"), bad("a/b", "InvalidValue"),
		}},
		{"name", []tc{ // required, 1..255 characters
			ok("x", "x"), ok(strings.Repeat("茶", 255), strings.Repeat("茶", 255)), ok(strings.Repeat("a", 255), strings.Repeat("a", 255)),
			bad("", "MissingField"), bad(strings.Repeat("茶", 256), "InvalidValue"), bad(strings.Repeat("a", 256), "InvalidValue"),
		}},
		{"category", []tc{ // required; not in the profile's banned list (none in the default)
			ok("Kitchen", "Kitchen"), ok("tobacco", "tobacco"), bad("", "MissingField"),
		}},
		{"brand", []tc{ // optional, <= 100 characters
			ok("", ""), ok(strings.Repeat("品", 100), strings.Repeat("品", 100)), bad(strings.Repeat("品", 101), "InvalidValue"),
		}},
		{"price", []tc{ // required decimal, 0 <= price <= 9999999.99, at most 2 decimals
			ok("12.50", "12.50"), ok("12.5", "12.50"), ok("12", "12.00"), ok("0", "0.00"), ok("12.500", "12.50"),
			ok("9999999.99", "9999999.99"), ok("+3", "3.00"), ok("-0", "0.00"), ok("007.1", "7.10"), ok(".5", "0.50"),
			ok("1e2", "100.00"), ok("1.25E1", "12.50"), ok("12.0000000000000000000000000", "12.00"),
			bad("", "MissingField"), bad("abc", "InvalidNumber"), bad("1,299.00", "InvalidNumber"), bad("¥12", "InvalidNumber"),
			bad("12 元", "InvalidNumber"), bad("NaN", "InvalidNumber"), bad("Inf", "InvalidNumber"), bad("1e", "InvalidNumber"),
			bad(".", "InvalidNumber"), bad("-", "InvalidNumber"), bad("0x10", "InvalidNumber"),
			bad("-0.01", "OutOfRange"), bad("10000000", "OutOfRange"), bad("9999999.991", "InvalidValue"),
			bad("12.345", "InvalidValue"), bad("1.5e-3", "InvalidValue"), bad("12.0000000000000000000001", "InvalidValue"),
			bad("123456789012345678901234", "OutOfRange"), bad("1e400", "OutOfRange"),
		}},
		{"currency", []tc{ // optional ISO 4217 code, default CNY
			ok("", "CNY"), ok("USD", "USD"), ok("usd", "USD"), ok("Eur", "EUR"),
			bad("RMB", "InvalidValue"), bad("US", "InvalidValue"), bad("USDX", "InvalidValue"), bad("人民币", "InvalidValue"),
		}},
		{"stock", []tc{ // optional integer >= 0, default 0
			ok("", "0"), ok("10", "10"), ok("10.0", "10"), ok("10.", "10"), ok("+5", "5"), ok("1e3", "1000"), ok("0", "0"), ok("-0", "0"),
			ok("9223372036854775807", "9223372036854775807"),
			bad("10.5", "InvalidNumber"), bad("1.5e0", "InvalidNumber"), bad("abc", "InvalidNumber"), bad("-1", "OutOfRange"),
			bad("9223372036854775808", "OutOfRange"), bad("1e30", "OutOfRange"),
		}},
		{"status", []tc{ // optional: active, inactive, draft; default active
			ok("", "active"), ok("inactive", "inactive"), ok("DRAFT", "draft"), ok("Active", "active"),
			bad("deleted", "InvalidValue"), bad("活跃", "InvalidValue"),
		}},
		{"description", []tc{ // optional, <= 10000 characters
			ok("", ""), ok(strings.Repeat("描", 10000), strings.Repeat("描", 10000)), ok("line 1\nline 2", "line 1\nline 2"),
			bad(strings.Repeat("描", 10001), "InvalidValue"),
		}},
		{"image_urls", []tc{ // optional, |-separated http(s) URLs
			ok("", ""), ok("https://a.example/1.jpg", "https://a.example/1.jpg"),
			ok("https://a.example/1.jpg|http://b.example:8080/2.png?x=1", "https://a.example/1.jpg http://b.example:8080/2.png?x=1"),
			ok(" https://a.example/1.jpg | https://a.example/2.jpg |", "https://a.example/1.jpg https://a.example/2.jpg"),
			ok("HTTPS://A.example/1.jpg", "HTTPS://A.example/1.jpg"), ok("https://图片.中国/猫.jpg", "https://图片.中国/猫.jpg"),
			ok("https://a.example/%E7%8C%AB.jpg", "https://a.example/%E7%8C%AB.jpg"), ok("http://[::1]:80/x", "http://[::1]:80/x"),
			ok("|", ""),
			bad("ftp://a.example/1.jpg", "InvalidValue"), bad("a.example/1.jpg", "InvalidValue"), bad("https://", "InvalidValue"),
			bad("https:///x.jpg", "InvalidValue"), bad("https://a.example/1 2.jpg", "InvalidValue"), bad("https://a.example/%zz", "InvalidValue"),
			bad("https://a.example/1.jpg|javascript:alert(1)", "InvalidValue"), bad("http://a b/", "InvalidValue"),
			bad("mailto:a@b.example", "InvalidValue"), bad("https://:80/x", "InvalidValue"),
		}},
	}
	v := compile(t, Default())
	for _, r := range rows {
		t.Run(r.field, func(t *testing.T) {
			for _, c := range r.cases {
				name := c.cell
				if len(name) > 30 {
					name = fmt.Sprintf("%.30s…(%d bytes)", name, len(name))
				}
				t.Run(name, func(t *testing.T) {
					p, err := validateOne(v, r.field, c.cell)
					if c.fail {
						wantReason(t, err, c.want, r.field)
						return
					}
					if err != nil {
						t.Fatal(err)
					}
					if got := fieldText(p, r.field); got != c.want {
						t.Errorf("%s = %q, want %q", r.field, got, c.want)
					}
				})
			}
		})
	}
	if !Default().UniqueSKU() {
		t.Error("sku is not unique in the default profile")
	}
}

func TestValidateTrimsSpaces(t *testing.T) {
	v := compile(t, Default())
	hdr, cells := row(map[string]string{
		"sku":      "\u00a0SKU-9\u3000",
		"name":     " \t茶杯\r\n",
		"price":    "\u3000 12.5 \u00a0",
		"currency": "\u00a0usd",
		"stock":    "\u3000",       // empty after trimming: the default
		"status":   "\u00a0\u00a0", // idem
		"brand":    "\u3000",
	})
	p, err := v.Validate(header(t, v, hdr...), cells)
	if err != nil {
		t.Fatal(err)
	}
	if p.SKU != "SKU-9" || p.Name != "茶杯" || p.Price != "12.50" || p.Currency != "USD" || p.Stock != 0 || p.Status != "active" || p.Brand != "" {
		t.Errorf("not trimmed: %+v", p)
	}
	_, cells = row(map[string]string{"sku": "\u3000\u00a0 "})
	_, err = v.Validate(header(t, v, hdr...), cells)
	wantReason(t, err, "MissingField", "sku")
}

func TestValidateOneErrorPerRow(t *testing.T) {
	banned := compile(t, mustParse(t, "name: b\nbanned_categories: [Tobacco, 烟草]"))
	tests := []struct {
		name    string
		v       *Validator
		changes map[string]string
		reason  string
		field   string
		message string
	}{
		{"first field in table order wins", Default().mustCompile(), map[string]string{"stock": "-1", "price": "abc"},
			"InvalidNumber", "price", `price "abc" is not a number; also: stock: OutOfRange`},
		{"semantic before business", banned, map[string]string{"category": "TOBACCO", "image_urls": "ftp://x"},
			"InvalidValue", "image_urls", `image_urls "ftp://x" is not an absolute http(s) URL with a host; also: category: BannedCategory`},
		{"banned category alone", banned, map[string]string{"category": "烟草"},
			"BannedCategory", "category", `category "烟草" is a banned category`},
		{"banned ignores case", banned, map[string]string{"category": "toBACCO"},
			"BannedCategory", "category", `category "toBACCO" is a banned category`},
		{"missing field message", Default().mustCompile(), map[string]string{"sku": "", "name": ""},
			"MissingField", "sku", `sku is required but empty; also: name: MissingField`},
		{"pattern message", Default().mustCompile(), map[string]string{"sku": "a b"},
			"InvalidValue", "sku", `sku "a b" does not match the pattern ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`},
		{"length message", Default().mustCompile(), map[string]string{"brand": strings.Repeat("b", 101)},
			"InvalidValue", "brand", `brand "` + strings.Repeat("b", 59) + `…" is longer than 100 characters`},
		{"enum message", Default().mustCompile(), map[string]string{"status": "gone"},
			"InvalidValue", "status", `status "gone" is not one of active, inactive, draft`},
		{"range message", Default().mustCompile(), map[string]string{"price": "10000000"},
			"OutOfRange", "price", `price "10000000" is above the maximum 9999999.99`},
		{"scale message", Default().mustCompile(), map[string]string{"price": "1.001"},
			"InvalidValue", "price", `price "1.001" has more than 2 decimals`},
		{"currency message", Default().mustCompile(), map[string]string{"currency": "RMB"},
			"InvalidValue", "currency", `currency "RMB" is not an ISO 4217 currency code`},
		{"bad URL is named", Default().mustCompile(), map[string]string{"image_urls": "https://a.example/1.jpg|//cdn.example/2.jpg"},
			"InvalidValue", "image_urls", `image_urls "//cdn.example/2.jpg" is not an absolute http(s) URL with a host`},
		{"all problems listed", Default().mustCompile(), map[string]string{"sku": "", "name": "", "category": "", "price": "x", "currency": "x", "stock": "x", "status": "x", "image_urls": "x"},
			"MissingField", "sku", "sku is required but empty; also: name: MissingField, category: MissingField, price: InvalidNumber, currency: InvalidValue, stock: InvalidNumber, status: InvalidValue, image_urls: InvalidValue"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr, cells := row(tt.changes)
			p, err := tt.v.Validate(header(t, tt.v, hdr...), cells)
			ie := wantReason(t, err, tt.reason, tt.field)
			if ie.Message != tt.message {
				t.Errorf("message\n got %s\nwant %s", ie.Message, tt.message)
			}
			if !equalProduct(p, catalog.Product{}) {
				t.Errorf("a failed row returned a product: %+v", p)
			}
		})
	}
}

func (p *Profile) mustCompile() *Validator {
	v, err := p.Compile()
	if err != nil {
		panic(err)
	}
	return v
}

func TestHeader(t *testing.T) {
	v := compile(t, Default())
	t.Run("chinese headers", func(t *testing.T) {
		hdr := []string{"商品编码", "商品名称", "分类", "品牌", "售价", "币种", "库存", "状态", "商品描述", "图片链接"}
		c := header(t, v, hdr...)
		for i, h := range hdr {
			if got := c.Mapping()[h]; got != fieldNames[i] {
				t.Errorf("%s maps to %q, want %s", h, got, fieldNames[i])
			}
			if got := c.Field(i); got != fieldNames[i] {
				t.Errorf("Field(%d) = %q", i, got)
			}
		}
		p, err := v.Validate(c, []string{"A1", "茶杯", "厨具", "", "8", "", "3", "草稿", "", ""})
		wantReason(t, err, "InvalidValue", "status") // enum values are not translated
		p, err = v.Validate(c, []string{"A1", "茶杯", "厨具", "", "8", "", "3", "draft", "好杯", ""})
		if err != nil || p.Description != "好杯" || p.Stock != 3 {
			t.Errorf("%+v %v", p, err)
		}
	})
	t.Run("case and spaces ignored", func(t *testing.T) {
		c := header(t, v, " Sku ", "NAME", "\u00a0Category", "PRICE\t", "Notes")
		if got := c.Mapping(); len(got) != 4 || got[" Sku "] != "sku" || got["PRICE\t"] != "price" {
			t.Errorf("Mapping = %v", got)
		}
		if got := c.Unmapped(); !slices.Equal(got, []string{"Notes"}) {
			t.Errorf("Unmapped = %v", got)
		}
		if c.Field(4) != "" {
			t.Error("Field(4) of an unmapped column is not empty")
		}
	})
	t.Run("missing required columns", func(t *testing.T) {
		_, err := v.Header([]string{"货号", "品牌", "备注"})
		ie := wantReason(t, err, "SchemaMismatch", "name,category,price")
		want := `missing required columns: name (any of: name, 名称, 商品名称), category (any of: category, 分类, 类目), price (any of: price, 价格, 售价); the header has: "货号", "品牌", "备注"`
		if ie.Message != want {
			t.Errorf("message\n got %s\nwant %s", ie.Message, want)
		}
	})
	t.Run("two columns for one field", func(t *testing.T) {
		_, err := v.Header([]string{"SKU", "name", "category", "price", "货号"})
		ie := wantReason(t, err, "SchemaMismatch", "sku")
		if want := `columns 1 "SKU" and 5 "货号" both map to sku`; ie.Message != want {
			t.Errorf("message %q, want %q", ie.Message, want)
		}
	})
	t.Run("both problems", func(t *testing.T) {
		_, err := v.Header([]string{"sku", "name", "category", "sku"})
		ie := wantReason(t, err, "SchemaMismatch", "price,sku")
		if !strings.Contains(ie.Message, "price (any of") || !strings.Contains(ie.Message, `columns 1 "sku" and 4 "sku" both map to sku`) {
			t.Errorf("message %q", ie.Message)
		}
	})
	t.Run("a required field with a default needs no column", func(t *testing.T) {
		v := compile(t, mustParse(t, "name: x\nfields: {category: {default: misc}}"))
		c := header(t, v, "sku", "name", "price")
		p, err := v.Validate(c, []string{"A", "B", "1"})
		if err != nil || p.Category != "misc" {
			t.Errorf("%+v %v", p, err)
		}
	})
	t.Run("short and long rows", func(t *testing.T) {
		c := header(t, v, "sku", "name", "category", "price", "stock")
		if _, err := v.Validate(c, []string{"A", "B", "C"}); err == nil {
			t.Error("missing trailing price cell accepted")
		} else {
			wantReason(t, err, "MissingField", "price")
		}
		p, err := v.Validate(c, []string{"A", "B", "C", "1", "2", "extra", "cells"})
		if err != nil || p.Stock != 2 {
			t.Errorf("%+v %v", p, err)
		}
	})
	t.Run("long header is cut in the message", func(t *testing.T) {
		var h []string
		for i := range 30 {
			h = append(h, fmt.Sprintf("c%d", i))
		}
		_, err := v.Header(h)
		if ie := wantReason(t, err, "SchemaMismatch", "sku,name,category,price"); !strings.HasSuffix(ie.Message, `"c19", … (30 columns)`) {
			t.Errorf("message %q", ie.Message)
		}
	})
}

func TestNames(t *testing.T) {
	v := compile(t, Default())
	t.Run("missing required key is the row's MissingField", func(t *testing.T) {
		c := v.Names([]string{"sku", "name", "category"})
		_, err := v.Validate(c, []string{"A", "B", "C"})
		wantReason(t, err, "MissingField", "price")
	})
	t.Run("cached by key set", func(t *testing.T) {
		a := v.Names([]string{"sku", "名称"})
		b := v.Names([]string{"sku", "名称"})
		if a != b {
			t.Error("same keys gave different Columns")
		}
		if x, y := v.Names([]string{"ab", "c"}), v.Names([]string{"a", "bc"}); x == y {
			t.Error("different key sets share Columns")
		}
		if v.Names([]string{"sku", "name"}) == v.Names([]string{"name", "sku"}) {
			t.Error("key order ignored")
		}
	})
	t.Run("two keys for one field fail each row", func(t *testing.T) {
		c := v.Names([]string{"sku", "SKU", "name"})
		_, err := v.Validate(c, []string{"A", "B", "C"})
		ie := wantReason(t, err, "SchemaMismatch", "sku")
		if want := `keys "sku" and "SKU" both map to sku`; ie.Message != want {
			t.Errorf("message %q, want %q", ie.Message, want)
		}
		if ie.Layer != failure.LayerSyntax {
			t.Errorf("layer %s", ie.Layer)
		}
	})
	t.Run("cache is bounded", func(t *testing.T) {
		v := compile(t, Default())
		for i := range maxCachedNames + 10 {
			v.Names([]string{"sku", strconv.Itoa(i)})
		}
		if n := len(*v.cache.Load()); n != maxCachedNames {
			t.Errorf("cache has %d entries", n)
		}
		c := v.Names([]string{"sku", strconv.Itoa(maxCachedNames + 5)}) // not cached, still right
		if c.Mapping()["sku"] != "sku" {
			t.Error("uncached Columns are wrong")
		}
	})
}

func TestValidateNilColumns(t *testing.T) {
	_, err := compile(t, Default()).Validate(nil, nil)
	wantReason(t, err, "Internal", "")
}

// TestValidateConcurrent is meant for -race: one Validator, many goroutines.
func TestValidateConcurrent(t *testing.T) {
	v := compile(t, mustParse(t, "name: c\nbanned_categories: [x]"))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				keys := []string{"sku", "name", "category", "price", fmt.Sprintf("extra%d", i%20)}
				c := v.Names(keys)
				sku := fmt.Sprintf("G%d-%d", g, i)
				p, err := v.Validate(c, []string{sku, "n", "c", strconv.Itoa(i), ""})
				if err != nil || p.SKU != sku || p.Price != strconv.Itoa(i)+".00" {
					t.Errorf("%+v %v", p, err)
					return
				}
				if _, err := v.Validate(c, []string{sku, "n", "X", "1", ""}); failure.ReasonOf(err) != failure.BannedCategory {
					t.Errorf("banned: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestMatcherFastPath(t *testing.T) {
	tests := []struct {
		pattern string
		simple  bool
	}{
		{`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`, true},
		{`^MK-[0-9]{4,12}$`, true},
		{`^[a-z]+x*.?$`, true},
		{`^[a-z]*[a-z]$`, true}, // greedy fails on "ab", the regexp decides
		{`(?i)^abc$`, false},
		{`^a|b$`, false},
		{`[a-z]+`, false},
		{`^(ab)+$`, false},
	}
	inputs := []string{"", "a", "ab", "abc", "ABC", "MK-1234", "MK-123", "a.b-c_d", "-x", "abx", "abxxx.", "é", "a\n", "\xff", strings.Repeat("a", 70)}
	for _, tt := range tests {
		re := regexp.MustCompile(tt.pattern)
		m := newMatcher(re)
		if (m.items != nil) != tt.simple {
			t.Errorf("%s: fast path %v, want %v", tt.pattern, m.items != nil, tt.simple)
		}
		for _, in := range inputs {
			if got, want := m.MatchString(in), re.MatchString(in); got != want {
				t.Errorf("%s on %q: %v, regexp says %v", tt.pattern, in, got, want)
			}
		}
	}
}
