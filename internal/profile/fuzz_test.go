package profile

import (
	"math"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/catalog-import/catalog-import/internal/failure"
)

// FuzzParse: the profile parser never panics, and a profile it accepts
// re-parses from its canonical text, and from its effective text, to the
// same rule version.
func FuzzParse(f *testing.F) {
	f.Add(DefaultYAML())
	for _, path := range []string{"testdata/bad_profile.yaml", "../../testdata/profiles/marketplace-create-only.yaml", "../../testdata/profiles/english-supplier.yaml"} {
		if data, err := os.ReadFile(path); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("name: x\nfields: {status: {type: string}, brand: {enum: [a, b]}}"))
	f.Add([]byte("name: x\nfields: {price: {scale: 0, min: -1e3}, stock: {max: 1e3}}"))
	f.Add([]byte("a: &x [1, 2]\nb: *x\n"))
	f.Add([]byte("name: x\nfields: {sku: {columns: &c [a, b]}, name: {columns: *c}}"))
	f.Add([]byte("name: x\n<<: {write_mode: upsert}\n"))
	f.Add([]byte(seedWeight))
	f.Add([]byte("name: x\nformula_text: refuse\nfields: {sku: {normalize: {trim: false, case: upper, nfkc: true}}}"))
	f.Add([]byte("name: x\nformula_text: Allow\nfields: {sku: {normalize: {case: lower}}, name: {normalize: {}}}"))
	f.Add([]byte("name: x\nfields: {sku: {normalize: ~}}"))
	f.Add([]byte("name: x\nweight: {expression: 'bytes * (t[brand] ?? 1)', tables: {t: {Acme: 2, 'x y': 1e-3}}, inputs: {n: {type: string, columns: [N]}}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			if p != nil {
				t.Fatal("Parse returned a profile and an error")
			}
			return
		}
		q, err := Parse(p.Canonical())
		if err != nil {
			t.Fatalf("canonical text does not parse: %v\n%s", err, p.Canonical())
		}
		if q.RuleVersion() != p.RuleVersion() {
			t.Fatalf("canonical text re-parses to another rule version\n%s\n---\n%s", p.Canonical(), q.Canonical())
		}
		if e, err := Parse(p.Effective()); err != nil || e.RuleVersion() != p.RuleVersion() {
			t.Fatalf("the effective text (importctl profile) is not the same profile: %v\n%s", err, p.Effective())
		}
		if _, err := p.Compile(); err != nil {
			t.Fatal(err)
		}
	})
}

var (
	canonicalPrice = regexp.MustCompile(`^(0|[1-9][0-9]*)\.[0-9]{2}$`)
	statuses       = []string{"active", "inactive", "draft"}
)

// FuzzValidate: Validate never panics on arbitrary cells; a failure is one
// ImportError with a known reason on a product field; and a product it
// returns satisfies the rules: validating its own fields again gives the
// same product.
func FuzzValidate(f *testing.F) {
	f.Add("SKU-1", "Tea cup", "Kitchen", "Acme", "12.5", "usd", "10.0", "Active", "A cup", "https://a.example/1.jpg|http://b.example/2.png")
	f.Add("", "", "", "", "", "", "", "", "", "")
	f.Add("a b", "\u00a0名\u3000", "tobacco", strings.Repeat("b", 101), "1e2", "RMB", "1e3", "x", "\x00", "ftp://x|")
	f.Add("A", "n", "c", "", "-0", "XXX", "-0", "DRAFT", "", "https://[::1]:8080/a%20b#f")
	f.Add("A", "n", "c", "", "9999999.995", "cny", "9223372036854775808", "", "", "http://例子.中国/图.jpg| |")
	f.Add("A", "n", "c", "", ".5", "Cny", "+7", "inactive", "", "HTTP://x:/")
	f.Add("ａｂｃ－１", "=HYPERLINK(\"http://x\")", "+SUM(1;2)", "@x", "1", "cny", "1", "active", "- note", "")
	f.Add(" abc ", "-5", "+86", "\t=1", "1", "cny", "1", "=active", "'=x", "")
	v := compile(f, mustParse(f, "name: fuzz\nbanned_categories: [tobacco, 烟草]"))
	// strict refuses formulas and normalises SKUs the most: its products,
	// too, validate again to themselves.
	strict := compile(f, mustParse(f, "name: strict\nformula_text: refuse\nfields: {sku: {normalize: {nfkc: true, case: upper}}}"))
	c, err := v.Header(fieldNames[:])
	if err != nil {
		f.Fatal(err)
	}
	sku := v.rules[fSKU].re
	f.Fuzz(func(t *testing.T, skuCell, name, category, brand, price, currency, stock, status, description, images string) {
		cells := []string{skuCell, name, category, brand, price, currency, stock, status, description, images}
		// The fast paths agree with what they stand in for.
		if sku.greedy(skuCell) && !sku.re.MatchString(skuCell) {
			t.Fatalf("matcher fast path accepts %q, regexp does not", skuCell)
		}
		for item := range strings.SplitSeq(images, "|") {
			if validURL(item) {
				if u, err := url.Parse(item); err != nil || u.Hostname() == "" {
					t.Fatalf("validURL accepts %q, url.Parse: %v", item, err)
				}
			}
		}
		for _, v := range []*Validator{v, strict} {
			checkValidate(t, v, c, cells)
		}
	})
}

// checkValidate is FuzzValidate's check of one validator on one row.
func checkValidate(t *testing.T, v *Validator, c *Columns, cells []string) {
	p, err := v.Validate(c, cells)
	if err != nil {
		ie, ok := failure.As(err)
		if !ok || !ie.Reason.Known() || !slices.Contains(fieldNames[:], ie.Field) || ie.Message == "" {
			t.Fatalf("bad error %#v", err)
		}
		return
	}
	if !canonicalPrice.MatchString(p.Price) || p.Stock < 0 || !slices.Contains(statuses, p.Status) ||
		len(p.Currency) != 3 || strings.ToUpper(p.Currency) != p.Currency || p.SKU == "" || p.Name == "" || p.Category == "" {
		t.Fatalf("product breaks a rule: %+v", p)
	}
	again := []string{p.SKU, p.Name, p.Category, p.Brand, p.Price, p.Currency, strconv.FormatInt(p.Stock, 10), p.Status, p.Description, strings.Join(p.ImageURLs, "|")}
	q, err := v.Validate(c, again)
	if err != nil {
		t.Fatalf("re-validating the product %+v: %v", p, err)
	}
	if !equalProduct(p, q) {
		t.Fatalf("re-validation changed the product\n%+v\n%+v", p, q)
	}
	if v.formula {
		for _, text := range []string{p.SKU, p.Name, p.Category, p.Brand, p.Status, p.Description} {
			if _, ok := isFormula(text); ok {
				t.Fatalf("formula_text: refuse let %q through", text)
			}
		}
	}
}

// FuzzWeigh: the weight of any row is a finite number >= 0 or an error that
// names its reason; never a panic.
func FuzzWeigh(f *testing.F) {
	f.Add("服装/女装", "12.5", "3", "https://a.example/1.jpg", "1000", "是")
	f.Add("Books", "", "", "", "", "")
	f.Add("x", "1e308", "-1", "|||", "NaN", "maybe")
	f.Add("", "abc", "9223372036854775808", "ftp://x", "-1e400", "0")
	v := compile(f, mustParse(f, seedWeight+"    big: {x: 1e308}\n"))
	p := mustParse(f, "name: f\nweight: {expression: 'price * (stock + 1) * len(image_urls) + bytes / (1 + sales) + (big[category] ?? 0) * 1e10', inputs: {sales: {}}, tables: {big: {x: 1e308}}}")
	pv := compile(f, p)
	hdr := []string{"category", "price", "stock", "image_urls", "sales_30d", "新品", "sales"}
	c1, err := v.Header(append([]string{"sku", "name"}, hdr...))
	if err != nil {
		f.Fatal(err)
	}
	c2, err := pv.Header(append([]string{"sku", "name"}, hdr...))
	if err != nil {
		f.Fatal(err)
	}
	w1, w2 := v.Weigher(), pv.Weigher()
	f.Fuzz(func(t *testing.T, category, price, stock, images, sales, isNew string) {
		cells := []string{"A", "n", category, price, stock, images, sales, isNew, sales}
		for _, w := range []struct {
			w *Weigher
			c *Columns
		}{{w1, c1}, {w2, c2}} {
			got, err := w.w.Weigh(w.c, cells, int64(len(strings.Join(cells, ","))))
			if err != nil {
				if ie, ok := failure.As(err); !ok || !ie.Reason.Known() || ie.Message == "" {
					t.Fatalf("bad error %#v", err)
				}
				continue
			}
			if math.IsNaN(got) || math.IsInf(got, 0) || got < 0 {
				t.Fatalf("weight %v for %q", got, cells)
			}
		}
	})
}
