package profile

import (
	"strings"
	"testing"

	"github.com/catalog-import/catalog-import/internal/failure"
)

// TestSKUNormalize: a SKU cell is normalised by fields.sku.normalize
// before its checks, so two cells are one product exactly when their
// normalised SKUs are equal: " ABC " is ABC only with trim (the default),
// abc is ABC only with case upper, ＡＢＣ１ is ABC1 only with nfkc (and
// fails the default pattern without it).
func TestSKUNormalize(t *testing.T) {
	t.Parallel()
	const loose = `pattern: '^\s*\S+\s*$'` // lets untrimmed and full-width SKUs through
	for _, tc := range []struct {
		name    string
		rule    string // fields.sku entries
		a, b    string // two SKU cells
		wantA   string // a's normalised SKU ("" : a fails)
		sameSKU bool
	}{
		{"default trims spaces", "", " ABC ", "ABC", "ABC", true},
		{"default trims NBSP, tab, U+3000", "", "\u00a0ABC\t\u3000", "ABC", "ABC", true},
		{"no trim keeps spaces", "{" + loose + ", normalize: {trim: false}}", " ABC ", "ABC", " ABC ", false},
		{"default keeps case", "", "abc", "ABC", "abc", false},
		{"case upper", "{normalize: {case: upper}}", "abc", "ABC", "ABC", true},
		{"case lower", "{normalize: {case: LOWER}}", "AbC", "abc", "abc", true},
		{"default is not nfkc", "{" + loose + "}", "ＡＢＣ１", "ABC1", "ＡＢＣ１", false},
		{"default pattern refuses full width", "", "ＡＢＣ１", "ABC1", "", false},
		{"nfkc", "{normalize: {nfkc: true}}", "ＡＢＣ１", "ABC1", "ABC1", true},
		{"nfkc and upper", "{normalize: {nfkc: true, case: upper}}", "ａｂｃ－１", "ABC-1", "ABC-1", true},
		{"nfkc trims the ideographic space it makes", "{normalize: {nfkc: true}}", "\u3000ＡＢＣ\u3000", "ABC", "ABC", true},
		{"merged key by key: trim stays", "{normalize: {case: upper}}", " abc ", "ABC", "ABC", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			y := "name: x\n"
			if tc.rule != "" {
				y += "fields:\n  sku: " + tc.rule + "\n"
			}
			v := compile(t, mustParse(t, y))
			pa, errA := validateOne(v, "sku", tc.a)
			pb, errB := validateOne(v, "sku", tc.b)
			if errB != nil {
				t.Fatalf("%q: %v", tc.b, errB)
			}
			if tc.wantA == "" {
				wantReason(t, errA, string(failure.InvalidValue), "sku")
				return
			}
			if errA != nil {
				t.Fatalf("%q: %v", tc.a, errA)
			}
			if pa.SKU != tc.wantA || (pa.SKU == pb.SKU) != tc.sameSKU {
				t.Errorf("SKUs %q and %q; want %q, same %v", pa.SKU, pb.SKU, tc.wantA, tc.sameSKU)
			}
		})
	}
}

// TestSKUNormalizationShown: the profile describes its SKU rule, and keeps
// normalize out of the canonical text (and so the rule version) unless it
// differs from the default.
func TestSKUNormalizationShown(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		yaml, want string
		canonical  bool
	}{
		{"name: x\n", "trim, case preserve, nfkc off", false},
		{"name: x\nfields: {sku: {normalize: {trim: true}}}", "trim, case preserve, nfkc off", false},
		{"name: x\nfields: {sku: {normalize: {trim: false, case: upper, nfkc: true}}}", "no trim, case upper, nfkc on", true},
	} {
		p := mustParse(t, tc.yaml)
		if got := p.SKUNormalization(); got != tc.want {
			t.Errorf("%q: SKUNormalization %q, want %q", tc.yaml, got, tc.want)
		}
		if got := strings.Contains(string(p.Canonical()), "normalize"); got != tc.canonical {
			t.Errorf("%q: normalize in the canonical text %v, want %v", tc.yaml, got, tc.canonical)
		}
		if !tc.canonical && p.RuleVersion() != mustParse(t, "name: x\n").RuleVersion() {
			t.Errorf("%q: the default normalize changed the rule version", tc.yaml)
		}
	}
}

// TestFormulaText: under formula_text: refuse, a text field whose cell a
// spreadsheet would take as a formula fails the row as InvalidValue
// naming the field; numbers, and any cell under the default (allow), pass.
func TestFormulaText(t *testing.T) {
	t.Parallel()
	refuse := compile(t, mustParse(t, "name: x\nformula_text: refuse\nfields: {status: {type: string}}"))
	allow := compile(t, mustParse(t, "name: x\nfields: {status: {type: string}}"))
	for _, tc := range []struct {
		field, cell string
		refused     bool
	}{
		{"name", `=HYPERLINK("http://x.example/","x")`, true},
		{"name", "+SUM(1;2)", true},
		{"description", "-2+3+cmd|' /C calc'!A0", true},
		{"description", "- 100% cotton", true},
		{"brand", "@cmd", true},
		{"category", " \t=1+1", true}, // after the spaces a spreadsheet drops
		{"status", "=active", true},
		{"name", "-5", false}, // a number
		{"name", "+86", false},
		{"name", "1e5", false},
		{"name", "a=b", false},
		{"name", "'=quoted", false},
		{"price", "-5", false}, // not a text field: OutOfRange, its own rule
	} {
		_, err := validateOne(refuse, tc.field, tc.cell)
		if tc.refused {
			ie := wantReason(t, err, string(failure.InvalidValue), tc.field)
			if !strings.Contains(ie.Message, "formula text") || !strings.Contains(ie.Message, "formula_text: refuse") {
				t.Errorf("%s %q: message %q does not say why", tc.field, tc.cell, ie.Message)
			}
		} else if err != nil && strings.Contains(err.Error(), "formula") {
			t.Errorf("%s %q refused as a formula: %v", tc.field, tc.cell, err)
		}
		if _, err := validateOne(allow, tc.field, tc.cell); err != nil && strings.Contains(err.Error(), "formula") {
			t.Errorf("allow: %s %q refused: %v", tc.field, tc.cell, err)
		}
	}
	if !mustParse(t, "name: x\nformula_text: Refuse").RefusesFormulas() || Default().RefusesFormulas() {
		t.Error("RefusesFormulas: want refuse only when asked (default allow)")
	}
	if strings.Contains(string(Default().Canonical()), "formula_text") {
		t.Error("formula_text: allow is in the default's canonical text (it would change every rule version)")
	}
}

// FuzzSKUNormalize: a normalised SKU normalises to itself under every
// rule, so re-importing a product's SKU finds the same product.
func FuzzSKUNormalize(f *testing.F) {
	for _, s := range []string{" ABC ", "ＡＢＣ１", "ａｂｃ", "\u00a0x\u3000", "ß", "ﬁ", "Ⅻ", "\u0345", "ǅ", "ŉ", ""} {
		f.Add(s)
	}
	rules := []normalize{defaultNormalize}
	for _, c := range []string{casePreserve, caseUpper, caseLower} {
		for _, trim := range []bool{false, true} {
			for _, nfkc := range []bool{false, true} {
				rules = append(rules, normalize{Trim: trim, Case: c, NFKC: nfkc})
			}
		}
	}
	f.Fuzz(func(t *testing.T, cell string) {
		for _, n := range rules {
			once := n.apply(cell)
			if twice := n.apply(once); twice != once {
				t.Fatalf("%+v: %q -> %q -> %q", n, cell, once, twice)
			}
		}
	})
}
