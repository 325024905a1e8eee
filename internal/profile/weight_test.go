package profile

import (
	"math"
	"strings"
	"testing"

	"github.com/catalog-import/catalog-import/internal/failure"
)

// seedWeight is the seed's example: category popularity x log1p(sales_30d)/12
// x 1.8 for a new arrival.
const seedWeight = `
name: hot-products
weight:
  expression: '(popularity[category] ?? 1) * log1p(sales_30d) / 12 * (new_arrival ? 1.8 : 1)'
  inputs:
    sales_30d:   {columns: [30天销量, Sales 30d], type: number}
    new_arrival: {columns: [新品], type: bool, default: "no"}
  tables:
    popularity: {服装/女装: 3, Books: 0.5}
`

func TestWeightParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string // one line of the joined error, naming the key
	}{
		{"no expression", "weight: {tables: {t: {a: 1}}}", "weight.expression: required"},
		{"empty expression", "weight: {expression: ' '}", "weight.expression: required"},
		{"syntax error", "weight: {expression: 'price *'}", "weight.expression: unexpected token EOF, at character 7"},
		{"unknown variable", "weight: {expression: 'sales_30d * 2'}", "weight.expression: unknown name sales_30d, at character 1"},
		{"not a number", "weight: {expression: 'category'}", "weight.expression: expected float64, but got string"},
		{"a string into a function", "weight: {expression: 'log1p(name)'}", "weight.expression: cannot use string as argument (type float64) to call log1p"},
		{"unknown key", "weight: {expr: price}", "weight.expr: unknown key (keys are expression, inputs, tables)"},
		{"not a mapping", "weight: price", "weight: must be a mapping"},
		{"unknown input key", "weight: {expression: x, inputs: {x: {kind: number}}}", "weight.inputs.x.kind: unknown key"},
		{"unknown input type", "weight: {expression: x, inputs: {x: {type: date}}}", `weight.inputs.x.type: unknown type "date"`},
		{"input named like a field", "weight: {expression: price, inputs: {price: {}}}", `weight.inputs.price: "price" is a product field`},
		{"input named bytes", "weight: {expression: bytes, inputs: {bytes: {}}}", `weight.inputs.bytes: "bytes" is the row's size in bytes`},
		{"input named like a function", "weight: {expression: '1', inputs: {log1p: {}}}", `weight.inputs.log1p: "log1p" is a function of the expression language`},
		{"input name not an identifier", "weight: {expression: '1', inputs: {sales 30d: {}}}", `weight.inputs.sales 30d: "sales 30d" is not a valid name`},
		{"input column taken by a field", "weight: {expression: x, inputs: {x: {columns: [价格]}}}", `weight.inputs.x.columns[0]: "价格" also matches price`},
		{"input column empty", "weight: {expression: x, inputs: {x: {columns: ['']}}}", "weight.inputs.x.columns[0]: must not be empty"},
		{"bad input default", "weight: {expression: x, inputs: {x: {default: lots}}}", `weight.inputs.x.default: "lots" is not a number`},
		{"bad bool default", "weight: {expression: '1', inputs: {x: {type: bool, default: maybe}}}", `weight.inputs.x.default: "maybe" is not a yes/no value`},
		{"table and input share a name", "weight: {expression: '1', inputs: {t: {}}, tables: {t: {a: 1}}}", `weight.tables.t: "t" is also declared at weight.inputs.t`},
		{"table value not a number", "weight: {expression: '1', tables: {t: {a: high}}}", "weight.tables.t.a: line 2: cannot unmarshal !!str `high` into float64"},
		{"table value not finite", "weight: {expression: '1', tables: {t: {a: .inf}}}", "weight.tables.t.a: must be a finite number"},
		{"time is not an input", "weight: {expression: 'now().Unix()'}", "weight.expression: unknown name now"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte("name: w\n" + tt.yaml))
			if err == nil {
				t.Fatalf("Parse succeeded, want %q", tt.want)
			}
			for line := range strings.SplitSeq(err.Error(), "\n") {
				if strings.HasPrefix(line, tt.want) {
					return
				}
			}
			t.Errorf("error has no line starting with %q:\n%v", tt.want, err)
		})
	}
}

func TestWeightCanonical(t *testing.T) {
	p := mustParse(t, seedWeight)
	if !p.Weighted() || p.WeightExpression() == "" {
		t.Fatal("profile with a weight section is not Weighted")
	}
	if Default().Weighted() {
		t.Error("the default profile is Weighted")
	}
	q := mustParse(t, string(p.Canonical()))
	if q.RuleVersion() != p.RuleVersion() {
		t.Errorf("canonical text re-parses to rule version %s, want %s\n%s", q.RuleVersion(), p.RuleVersion(), p.Canonical())
	}
	same := strings.Replace(seedWeight, "[30天销量, Sales 30d]", "[30天销量, Sales 30d, sales 30D, ' 30天销量']", 1)
	if mustParse(t, same).RuleVersion() != p.RuleVersion() {
		t.Error("a repeated alias changed the rule version")
	}
	for name, y := range map[string]string{
		"expression": strings.Replace(seedWeight, "1.8", "2", 1),
		"table":      strings.Replace(seedWeight, "Books: 0.5", "Books: 0.6", 1),
		"input type": strings.Replace(seedWeight, "type: number}", "type: number, default: '0'}", 1),
		"no weight":  "name: hot-products\n",
	} {
		if mustParse(t, y).RuleVersion() == p.RuleVersion() {
			t.Errorf("%s changed, the rule version did not", name)
		}
	}
}

func TestWeigh(t *testing.T) {
	p := mustParse(t, seedWeight)
	v := compile(t, p)
	w := v.Weigher()
	if w == nil || !w.NeedsCells() {
		t.Fatal("no Weigher, or one that needs no cells")
	}
	c := header(t, v, "sku", "name", "category", "price", "Sales 30D", "新品")
	tests := []struct {
		name   string
		cells  []string
		want   float64
		reason failure.Reason // the expression cannot be evaluated
		field  string
	}{
		{"popular new arrival", []string{"A", "x", "服装/女装", "1", "1000", "是"}, 3 * math.Log1p(1000) / 12 * 1.8, "", ""},
		{"table default and input default", []string{"A", "x", "Toys", "1", "1000", ""}, math.Log1p(1000) / 12, "", ""},
		{"no sales", []string{"A", "x", "Books", "1", "0", "no"}, 0, "", ""},
		{"spaces around numbers", []string{"A", "x", "Books", "1", " 11 ", "N"}, 0.5 * math.Log1p(11) / 12, "", ""},
		{"missing input", []string{"A", "x", "Books", "1", "", "no"}, 0, failure.MissingField, "sales_30d"},
		{"input not a number", []string{"A", "x", "Books", "1", "many", "no"}, 0, failure.InvalidNumber, "sales_30d"},
		{"bad bool", []string{"A", "x", "Books", "1", "3", "maybe"}, 0, failure.InvalidNumber, "new_arrival"},
		{"negative result", []string{"A", "x", "Books", "1", "-0.5", "no"}, 0, failure.OutOfRange, ""},
		{"short row", []string{"A", "x", "Books"}, 0, failure.MissingField, "sales_30d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := w.Weigh(c, tt.cells, 100)
			if tt.reason != "" {
				if ie, ok := failure.As(err); !ok || ie.Reason != tt.reason || ie.Field != tt.field {
					t.Fatalf("Weigh = %v, %v; want %s on %q", got, err, tt.reason, tt.field)
				}
				return
			}
			if err != nil || math.Abs(got-tt.want) > 1e-12 {
				t.Errorf("Weigh = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestWeighProductFields(t *testing.T) {
	tests := []struct {
		expr   string
		cells  map[string]string
		want   float64
		reason failure.Reason // the expression cannot be evaluated
	}{
		{"bytes", nil, 250, ""},
		{"price * 2", map[string]string{"price": "12.5"}, 25, ""},
		{"price", map[string]string{"price": "abc"}, 0, failure.InvalidNumber},
		{"price", map[string]string{"price": "12.345"}, 0, failure.InvalidValue}, // checked by the field's rule
		{"price", map[string]string{"price": ""}, 0, failure.MissingField},
		{"stock + 1", map[string]string{"stock": ""}, 1, ""}, // stock's default is 0
		{"len(image_urls)", map[string]string{"image_urls": "https://a.example/1.jpg|https://a.example/2.jpg"}, 2, ""},
		{"len(image_urls)", map[string]string{"image_urls": ""}, 0, ""},
		{"len(description) / 10", map[string]string{"description": "0123456789012345678 "}, 1.9, ""},
		{"status == 'draft' ? 0.5 : 1", map[string]string{"status": "DRAFT"}, 0.5, ""},
		{"currency == 'CNY' ? 2 : 1", nil, 2, ""}, // currency's default
		{"1 / stock", map[string]string{"stock": "0"}, 0, failure.OutOfRange},
		{"price - 100", map[string]string{"price": "1"}, 0, failure.OutOfRange},
		{"missing['x'] ?? 3", nil, 3, ""},
		{"missing['x'] * 2", nil, 0, failure.InvalidValue},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			p := mustParse(t, "name: w\nweight: {expression: \""+tt.expr+"\", tables: {missing: {y: 1}}}")
			v := compile(t, p)
			w := v.Weigher()
			hdr, cells := row(tt.cells)
			c := header(t, v, hdr...)
			got, err := w.Weigh(c, cells, 250)
			if tt.reason != "" {
				if failure.ReasonOf(err) != tt.reason {
					t.Fatalf("Weigh = %v, %v; want %s", got, err, tt.reason)
				}
				return
			}
			if err != nil || math.Abs(got-tt.want) > 1e-12 {
				t.Errorf("Weigh = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
	if w := compile(t, mustParse(t, "name: w\nweight: {expression: 'bytes / 100 + 1'}")).Weigher(); w.NeedsCells() {
		t.Error("an expression over bytes only needs cells")
	} else if got, err := w.Weigh(nil, nil, 300); err != nil || got != 4 {
		t.Errorf("Weigh without cells = %v, %v; want 4", got, err)
	}
	if Default().weight != nil || compile(t, Default()).Weigher() != nil {
		t.Error("the default profile has a Weigher")
	}
}

// TestWeighJSONLinesKeys: inputs are found by each object's own keys.
func TestWeighJSONLinesKeys(t *testing.T) {
	v := compile(t, mustParse(t, seedWeight))
	w := v.Weigher()
	for _, keys := range [][]string{{"sku", "Sales 30d", "category"}, {"category", "sku", "30天销量"}} {
		c := v.Names(keys)
		vals := make([]string, len(keys))
		for i, k := range keys {
			vals[i] = map[string]string{"sku": "A", "category": "Books", "Sales 30d": "11", "30天销量": "11"}[k]
		}
		if got, err := w.Weigh(c, vals, 10); err != nil || math.Abs(got-0.5*math.Log1p(11)/12) > 1e-12 {
			t.Errorf("keys %q: Weigh = %v, %v", keys, got, err)
		}
	}
}

// TestDefaultYAMLWeightExample: the commented weight example in default.yaml,
// which users copy, parses.
func TestDefaultYAMLWeightExample(t *testing.T) {
	var block []string
	in := false
	for line := range strings.SplitSeq(string(DefaultYAML()), "\n") {
		switch {
		case line == "# weight:":
			in = true
		case in && !strings.HasPrefix(line, "#   "):
			in = false
		}
		if in {
			block = append(block, strings.TrimPrefix(line, "# "))
		}
	}
	if len(block) < 2 {
		t.Fatal("default.yaml has no commented weight example")
	}
	p := mustParse(t, "name: example\n"+strings.Join(block, "\n"))
	v := compile(t, p)
	w := v.Weigher()
	c := header(t, v, "sku", "name", "category", "price", "30天销量", "新品")
	if got, err := w.Weigh(c, []string{"A", "n", "Books", "1", "", "是"}, 9); err != nil || math.Abs(got-0.8*1.8) > 1e-12 {
		t.Errorf("Weigh = %v, %v; want %v", got, err, 0.8*1.8)
	}
}
