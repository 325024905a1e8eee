package profile

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
	"go.yaml.in/yaml/v3"

	"github.com/catalog-import/catalog-import/internal/failure"
)

// A profile's weight section declares how much work each row is, so that the
// splitter can cut shards of equal work instead of equal row counts:
//
//	weight:
//	  expression: '(popularity[category] ?? 1) * log1p(sales_30d) / 12 * (new_arrival ? 1.8 : 1)'
//	  inputs:                 # source columns the expression reads besides the product fields
//	    sales_30d:   {columns: [30天销量], type: number, default: "0"}
//	    new_arrival: {columns: [新品], type: bool, default: "false"}
//	  tables:                 # lookup tables: name -> key -> number
//	    popularity: {服装/女装: 3, Books: 0.8}
//
// The expression (github.com/expr-lang/expr, type-checked when the profile
// loads) sees the product fields by name (decimal and integer fields as
// numbers, url_list fields as lists of strings, the others as strings, each
// checked by its rule and defaulted as the worker would), the inputs, the
// tables, and bytes: the row's size in the file. It must give a number.
// A row whose expression cannot be evaluated (a value missing or invalid, a
// runtime error, a negative or non-finite result) gets its default weight,
// its byte size, which the splitter converts to the expression's unit
// (internal/split, decision 15).

// Weight input types.
const (
	inputNumber = "number"
	inputBool   = "bool"
	inputString = "string"
)

// weightBytes is the expression variable holding the row's size in bytes.
const weightBytes = "bytes"

// maxExpression bounds the expression's text.
const maxExpression = 4096

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// weightFuncs are the numeric functions added to expr's builtins.
var weightFuncs = map[string]func(float64) float64{
	"log": math.Log, "log1p": math.Log1p, "log10": math.Log10, "sqrt": math.Sqrt, "exp": math.Exp,
}

// rawWeight is the weight section as written: nil means "not given".
type rawWeight struct {
	Expression *string
	Inputs     []rawInput // in file order
	Tables     []rawTable // in file order
}

type rawInput struct {
	name, path string
	Columns    *[]string
	Type       *string
	Default    *string
}

type rawTable struct {
	name, path string
	rows       map[string]float64
}

func decodeWeight(n *yaml.Node, path string, ps *problems) *rawWeight {
	w := &rawWeight{}
	eachKey(n, path, ps, func(key string, val *yaml.Node, kpath string) {
		switch key {
		case "expression":
			decodeValue(val, kpath, &w.Expression, ps)
		case "inputs":
			eachKey(deref(val), kpath, ps, func(name string, ival *yaml.Node, ipath string) {
				in := rawInput{name: name, path: ipath}
				eachKey(deref(ival), ipath, ps, func(k string, v *yaml.Node, p string) {
					switch k {
					case "columns":
						decodeValue(v, p, &in.Columns, ps)
					case "type":
						decodeValue(v, p, &in.Type, ps)
					case "default":
						decodeValue(v, p, &in.Default, ps)
					default:
						ps.add(p, "unknown key (keys are columns, type, default)")
					}
				})
				w.Inputs = append(w.Inputs, in)
			})
		case "tables":
			eachKey(deref(val), kpath, ps, func(name string, tval *yaml.Node, tpath string) {
				t := rawTable{name: name, path: tpath, rows: map[string]float64{}}
				eachKey(deref(tval), tpath, ps, func(k string, v *yaml.Node, p string) {
					var f float64
					if decodeValue(v, p, &f, ps) {
						t.rows[k] = f
					}
				})
				w.Tables = append(w.Tables, t)
			})
		default:
			ps.add(kpath, "unknown key (keys are expression, inputs, tables)")
		}
	})
	return w
}

// weightSpec is the effective, validated weight section.
type weightSpec struct {
	Expression string
	Inputs     []inputSpec // sorted by name
	Tables     map[string]map[string]float64

	program *vm.Program
	fields  []fieldID // product fields the expression reads
	inputs  []int     // indexes into Inputs of the inputs it reads
	bytes   bool      // it reads bytes
	tables  map[string]any
}

// inputSpec is one validated weight input.
type inputSpec struct {
	Name    string
	Columns []string // aliases besides the name, deduplicated and sorted
	Type    string
	Default string // "" = none
}

// buildWeight validates the weight section and compiles its expression.
// Product field columns are in specs (already built).
func buildWeight(w *rawWeight, specs *[numFields]spec, ps *problems) *weightSpec {
	n0 := len(*ps)
	s := &weightSpec{Tables: map[string]map[string]float64{}}
	reserved := func(name string) string {
		switch _, isField := fieldByName(name); {
		case isField:
			return "is a product field"
		case name == weightBytes:
			return "is the row's size in bytes"
		case weightFuncs[name] != nil || slices.Contains(builtin.Names, name):
			return "is a function of the expression language"
		case name == "true" || name == "false" || name == "nil":
			return "is a literal"
		}
		return ""
	}
	names := map[string]string{} // variable name -> path of its declaration
	declare := func(name, path string) bool {
		if !identRE.MatchString(name) {
			ps.add(path, "%q is not a valid name (letters, digits and _, starting with a letter)", name)
			return false
		}
		if why := reserved(name); why != "" {
			ps.add(path, "%q %s", name, why)
			return false
		}
		if prev, dup := names[name]; dup {
			ps.add(path, "%q is also declared at %s", name, prev)
			return false
		}
		names[name] = path
		return true
	}

	owner := map[string]string{} // fold key of a header name -> what it maps to
	for id := range numFields {
		owner[foldKey(fieldNames[id])] = fieldNames[id]
		for _, c := range specs[id].Columns {
			owner[foldKey(c)] = fieldNames[id]
		}
	}
	for _, in := range w.Inputs {
		if !declare(in.name, in.path) {
			continue
		}
		is := inputSpec{Name: in.name, Type: inputNumber, Columns: []string{}}
		if in.Type != nil {
			is.Type = *in.Type
		}
		switch is.Type {
		case inputNumber, inputBool, inputString:
		default:
			ps.add(in.path+".type", "unknown type %q (types are number, bool, string)", is.Type)
			continue
		}
		if o, taken := owner[foldKey(in.name)]; taken {
			ps.add(in.path, "the column name %q also matches %s", in.name, o)
		}
		owner[foldKey(in.name)] = "weight input " + in.name
		if in.Columns != nil {
			seen := map[string]bool{foldKey(in.name): true}
			for i, c := range *in.Columns {
				c = trimCell(c)
				cpath := fmt.Sprintf("%s.columns[%d]", in.path, i)
				k := foldKey(c)
				switch {
				case c == "":
					ps.add(cpath, "must not be empty")
					continue
				case seen[k]:
					continue
				}
				if o, taken := owner[k]; taken {
					ps.add(cpath, "%q also matches %s", c, o)
					continue
				}
				seen[k], owner[k] = true, "weight input "+in.name
				is.Columns = append(is.Columns, c)
			}
			slices.Sort(is.Columns)
		}
		if in.Default != nil {
			is.Default = trimCell(*in.Default)
			if is.Default == "" {
				ps.add(in.path+".default", "must not be empty (omit it: an empty cell then makes the expression fail)")
			} else if _, err := inputValue(is.Type, is.Default); err != nil {
				ps.add(in.path+".default", "%v", err)
			}
		}
		s.Inputs = append(s.Inputs, is)
	}
	slices.SortFunc(s.Inputs, func(a, b inputSpec) int { return strings.Compare(a.Name, b.Name) })
	for _, t := range w.Tables {
		if !declare(t.name, t.path) {
			continue
		}
		rows := map[string]float64{}
		for k, v := range t.rows {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				ps.add(t.path+"."+k, "must be a finite number")
				continue
			}
			rows[trimCell(k)] = v
		}
		s.Tables[t.name] = rows
	}

	switch {
	case w.Expression == nil || strings.TrimSpace(*w.Expression) == "":
		ps.add("weight.expression", "required (the weight of a row, e.g. 'bytes' or 'log1p(stock) + 1')")
	case len(*w.Expression) > maxExpression:
		ps.add("weight.expression", "longer than %d characters", maxExpression)
	case len(*ps) == 0: // type-check only against a sound profile
		s.Expression = strings.TrimSpace(*w.Expression)
		if err := s.compile(specs); err != nil {
			ps.add("weight.expression", "%s", exprMessage(err))
		}
	}
	if len(*ps) > n0 {
		return nil
	}
	return s
}

// exprMessage is expr's error on one line: the message and where it is.
func exprMessage(err error) string {
	var fe *file.Error
	if errors.As(err, &fe) {
		if fe.Line > 1 {
			return fmt.Sprintf("%s, at line %d character %d", fe.Message, fe.Line, fe.Column+1)
		}
		return fmt.Sprintf("%s, at character %d", fe.Message, fe.Column+1)
	}
	return strings.Join(strings.Fields(err.Error()), " ")
}

// compile type-checks the expression against the variables it may read.
func (s *weightSpec) compile(specs *[numFields]spec) error {
	env := s.env(specs)
	opts := []expr.Option{expr.Env(env), expr.AsFloat64(), expr.DisableBuiltin("now"), expr.MaxNodes(1000)}
	for name, fn := range weightFuncs {
		opts = append(opts, expr.Function(name, func(params ...any) (any, error) {
			x, ok := params[0].(float64)
			if !ok {
				return nil, fmt.Errorf("%s of %v (%T), want a number", name, params[0], params[0])
			}
			return fn(x), nil
		}, new(func(float64) float64)))
	}
	p, err := expr.Compile(s.Expression, opts...)
	if err != nil {
		return err
	}
	s.program = p
	used := map[string]bool{}
	root := p.Node()
	ast.Walk(&root, visitor(func(n *ast.Node) {
		if id, ok := (*n).(*ast.IdentifierNode); ok {
			used[id.Value] = true
		}
	}))
	for id := range numFields {
		if used[fieldNames[id]] {
			s.fields = append(s.fields, id)
		}
	}
	for i, in := range s.Inputs {
		if used[in.Name] {
			s.inputs = append(s.inputs, i)
		}
	}
	s.bytes = used[weightBytes]
	s.tables = map[string]any{}
	for name, rows := range s.Tables {
		m := make(map[string]any, len(rows))
		for k, v := range rows {
			m[k] = v
		}
		s.tables[name] = m
	}
	return nil
}

// env returns a type-checking environment: every variable with a value of
// its type.
func (s *weightSpec) env(specs *[numFields]spec) map[string]any {
	env := map[string]any{weightBytes: 0.0}
	for id := range numFields {
		env[fieldNames[id]] = zeroOf(specs[id].Type)
	}
	for _, in := range s.Inputs {
		env[in.Name] = zeroOf(in.Type)
	}
	for name := range s.Tables {
		env[name] = map[string]any{}
	}
	return env
}

func zeroOf(typ string) any {
	switch typ {
	case typeDecimal, typeInteger, inputNumber:
		return 0.0
	case inputBool:
		return false
	case typeURLList:
		return []string{}
	}
	return ""
}

type visitor func(*ast.Node)

func (f visitor) Visit(n *ast.Node) { f(n) }

// inputValue converts a trimmed, non-empty cell to an input's type.
func inputValue(typ, cell string) (any, error) {
	switch typ {
	case inputNumber:
		return parseNumber(cell)
	case inputBool:
		switch strings.ToLower(cell) {
		case "true", "yes", "y", "1", "是":
			return true, nil
		case "false", "no", "n", "0", "否":
			return false, nil
		}
		return nil, fmt.Errorf("%s is not a yes/no value (true, yes, y, 1, 是 / false, no, n, 0, 否)", quote(cell))
	}
	return cell, nil
}

// parseNumber parses a finite decimal number.
func parseNumber(cell string) (float64, error) {
	f, err := strconv.ParseFloat(cell, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%s is not a number", quote(cell))
	}
	return f, nil
}

// canonicalWeight renders the weight section for the canonical profile.
func canonicalWeight(s *weightSpec) map[string]any {
	m := map[string]any{"expression": s.Expression}
	if len(s.Inputs) > 0 {
		inputs := map[string]any{}
		for _, in := range s.Inputs {
			im := map[string]any{"type": in.Type, "columns": in.Columns}
			if in.Default != "" {
				im["default"] = in.Default
			}
			inputs[in.Name] = im
		}
		m["inputs"] = inputs
	}
	if len(s.Tables) > 0 {
		m["tables"] = s.Tables
	}
	return m
}

// Weighted reports whether the profile declares a row weight (the splitter
// then cuts shards of equal weight).
func (p *Profile) Weighted() bool { return p.weight != nil }

// WeightExpression returns the profile's weight expression, or "".
func (p *Profile) WeightExpression() string {
	if p.weight == nil {
		return ""
	}
	return p.weight.Expression
}

// Weigher computes the weight of rows for the splitter. It is not safe for
// concurrent use: use one per goroutine.
type Weigher struct {
	v     *Validator
	s     *weightSpec
	vm    vm.VM
	env   map[string]any
	binds map[*Columns]*binding
}

// binding is where the inputs the expression reads are in one header.
type binding struct {
	inputs []int // source position of each of weightSpec.inputs, -1 if none
}

// Weigher returns a Weigher for the profile's weight, or nil when the
// profile declares none.
func (v *Validator) Weigher() *Weigher {
	s := v.p.weight
	if s == nil {
		return nil
	}
	env := map[string]any{}
	for name, t := range s.tables {
		env[name] = t
	}
	return &Weigher{v: v, s: s, env: env, binds: map[*Columns]*binding{}}
}

// NeedsCells reports whether the expression reads cells (product fields or
// inputs). When it does not, Weigh may be called with nil Columns and cells,
// and the caller need not parse rows.
func (w *Weigher) NeedsCells() bool { return len(w.s.fields) > 0 || len(w.s.inputs) > 0 }

// Weigh returns the weight of one row: cells aligned with the names c was
// resolved from (as for Validate), size its bytes in the file. The error
// (a *failure.ImportError naming the field) says why the expression could
// not be evaluated; the caller then uses the row's default weight. It is
// never a failure of the row: the worker finds the row's real problems.
func (w *Weigher) Weigh(c *Columns, values []string, size int64) (float64, error) {
	s := w.s
	if s.bytes {
		w.env[weightBytes] = float64(size)
	}
	if w.NeedsCells() {
		if c == nil {
			return 0, failure.New(failure.Internal, "", "weight: no columns for a row")
		}
		if c.err != nil {
			return 0, c.err
		}
		for _, id := range s.fields {
			val, err := w.field(id, c, values)
			if err != nil {
				return 0, err
			}
			w.env[fieldNames[id]] = val
		}
		b := w.bind(c)
		for k, i := range s.inputs {
			in := &s.Inputs[i]
			cell := ""
			if pos := b.inputs[k]; pos >= 0 && pos < len(values) {
				cell = trimCell(values[pos])
			}
			if cell == "" {
				cell = in.Default
			}
			if cell == "" {
				if in.Type != inputString {
					return 0, failure.New(failure.MissingField, in.Name, "weight input %s is empty", in.Name)
				}
				w.env[in.Name] = ""
				continue
			}
			val, err := inputValue(in.Type, cell)
			if err != nil {
				return 0, failure.New(failure.InvalidNumber, in.Name, "weight input %s: %v", in.Name, err)
			}
			w.env[in.Name] = val
		}
	}
	out, err := w.vm.Run(s.program, w.env)
	if err != nil {
		return 0, failure.New(failure.InvalidValue, "", "weight expression: %s", exprMessage(err))
	}
	f, ok := out.(float64)
	if !ok || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		return 0, failure.New(failure.OutOfRange, "", "weight expression gave %v, want a finite number >= 0", out)
	}
	return f, nil
}

// field returns a product field's value as the expression sees it: the cell
// checked by the field's rule, or its default when empty.
func (w *Weigher) field(id fieldID, c *Columns, values []string) (any, error) {
	r := w.v.rules[id]
	cell := c.cell(id, values)
	var val value
	if cell != "" {
		var reason failure.Reason
		var why string
		if val, reason, why, _ = r.check(cell); reason != "" {
			return nil, failure.New(reason, r.name, "%s %s %s", r.name, quote(cell), why)
		}
	} else if r.hasDefault {
		val = r.def
	} else {
		switch r.kind {
		case typeDecimal, typeInteger:
			return nil, failure.New(failure.MissingField, r.name, "%s is empty", r.name)
		}
	}
	switch r.kind {
	case typeDecimal:
		return parseNumber(val.s)
	case typeInteger:
		return float64(val.n), nil
	case typeURLList:
		if val.list == nil {
			return []string{}, nil
		}
		return val.list, nil
	}
	return val.s, nil
}

// bind resolves where the inputs are in c's names (cached per Columns).
func (w *Weigher) bind(c *Columns) *binding {
	if b := w.binds[c]; b != nil {
		return b
	}
	b := &binding{inputs: make([]int, len(w.s.inputs))}
	for k, i := range w.s.inputs {
		in := &w.s.Inputs[i]
		b.inputs[k] = -1
		for pos, n := range c.names {
			t := foldKey(trimCell(n))
			if t == foldKey(in.Name) || slices.ContainsFunc(in.Columns, func(a string) bool { return foldKey(a) == t }) {
				b.inputs[k] = pos
				break
			}
		}
	}
	if len(w.binds) >= maxCachedNames {
		clear(w.binds)
	}
	w.binds[c] = b
	return b
}
