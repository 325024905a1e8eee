// Package docscheck checks that the docs cite code and tests that exist.
//
// docs/invariants.md says where each invariant lives in tables with a "code"
// column and a "tests" column. Every code span (`...`) in those columns is a
// citation, and must be one of:
//
//   - a Go symbol, as package directory, a dot, and the symbol:
//     `internal/state.Store.Claim` (a method of an interface, a method with a
//     value receiver, or a struct field), `internal/local/sqlite.(*DB).Claim`
//     (a method, pointer receiver or not), `internal/embedded.BatchID` (a
//     function, type, constant or variable); only in the code column;
//   - a test, as package directory, a dot, and the name `go test -run` matches
//     in that package: `internal/shard.TestZombieCannotMoveCheckpoint`,
//     `internal/finalize.TestFinalize/a_lost_failure_record_fails_the_batch_and_is_named`;
//     for a contract suite, the path inside the suite's Run, under the suite's
//     package: `internal/state/statetest.Claim/AfterExpiryNewOwnerFencesZombie`;
//     only in the tests column;
//   - a file or directory of the repository, by its path from the root
//     (`internal/shard/resilience.go`, `template.yaml`), in either column.
//
// Symbols are found by parsing the package's Go files (go/ast, no type
// checking); tests by their `func TestX(` in the package's _test.go files, and
// subtests by the names registered with t.Run: a string literal argument, or
// the string literals of a test table in a file that runs t.Run of a
// variable (contract suites keep their cases in such tables, in files that
// are not _test.go files). Names are compared the way go test writes them:
// spaces become underscores.
package docscheck

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Column says which column of a table a citation is in.
type Column string

// The columns whose code spans are citations.
const (
	Code  Column = "code"
	Tests Column = "tests"
)

// Citation is one code span of a code or tests column.
type Citation struct {
	Line   int    // line of the markdown file, from 1
	Column Column // the column it is in
	Text   string // the span, without its backticks
}

// String locates the citation for an error message.
func (c Citation) String() string { return fmt.Sprintf("line %d: %s `%s`", c.Line, c.Column, c.Text) }

// Citations returns the code spans of the "code" and "tests" columns of
// every table in md. A table is a run of lines starting with '|' whose
// first line is its header; the columns are found by their header's text.
func Citations(md []byte) []Citation {
	var (
		out  []Citation
		cols map[int]Column // column index -> kind, for the table being read
		n    int
	)
	sc := bufio.NewScanner(bytes.NewReader(md))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "|") {
			cols = nil
			continue
		}
		cells := splitRow(line)
		switch {
		case cols == nil: // a header
			cols = map[int]Column{}
			for i, c := range cells {
				switch strings.ToLower(strings.TrimSpace(c)) {
				case string(Code):
					cols[i] = Code
				case string(Tests):
					cols[i] = Tests
				}
			}
		case isRule(cells):
		default:
			for i, c := range cells {
				kind, ok := cols[i]
				if !ok {
					continue
				}
				for _, span := range codeSpans(c) {
					out = append(out, Citation{Line: n, Column: kind, Text: span})
				}
			}
		}
	}
	return out
}

// splitRow splits a table row into its cells (a '|' inside a code span does
// not split).
func splitRow(line string) []string {
	line = strings.TrimSuffix(strings.TrimPrefix(line, "|"), "|")
	var (
		cells []string
		cur   strings.Builder
		code  bool
	)
	for _, r := range line {
		switch {
		case r == '`':
			code = !code
		case r == '|' && !code:
			cells = append(cells, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteRune(r)
	}
	return append(cells, cur.String())
}

// isRule reports whether cells are a header rule (|---|---|).
func isRule(cells []string) bool {
	for _, c := range cells {
		if strings.Trim(strings.TrimSpace(c), ":-") != "" {
			return false
		}
	}
	return true
}

// codeSpans returns the text of the code spans of s.
func codeSpans(s string) []string {
	var out []string
	for {
		i := strings.IndexByte(s, '`')
		if i < 0 {
			return out
		}
		j := strings.IndexByte(s[i+1:], '`')
		if j < 0 {
			return out
		}
		out = append(out, s[i+1:i+1+j])
		s = s[i+2+j:]
	}
}

// Checker resolves citations against the Go files of a repository. It
// parses each package directory once.
type Checker struct {
	root string
	pkgs map[string]*pkg
}

// NewChecker returns a checker of the repository at root.
func NewChecker(root string) *Checker { return &Checker{root: root, pkgs: map[string]*pkg{}} }

// Check returns one error per citation that names nothing in the
// repository.
func (c *Checker) Check(cs []Citation) []error {
	var errs []error
	for _, ci := range cs {
		if err := c.check(ci); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ci, err))
		}
	}
	return errs
}

func (c *Checker) check(ci Citation) error {
	if ci.Text == "" || strings.ContainsAny(ci.Text, " \t") {
		return errors.New("not a citation: want pkg/dir.Symbol, pkg/dir.TestName[/Sub] or a file path")
	}
	dot := strings.IndexByte(ci.Text, '.')
	if dot < 0 || isFile(ci.Text) {
		if _, err := os.Stat(filepath.Join(c.root, filepath.FromSlash(ci.Text))); err != nil {
			return errors.New("no such file or directory in the repository (a symbol or test needs pkg/dir.Name)")
		}
		return nil
	}
	dir, name := ci.Text[:dot], ci.Text[dot+1:]
	p, err := c.pkg(dir)
	if err != nil {
		return err
	}
	if ci.Column == Tests {
		return p.findTest(name)
	}
	return p.findSymbol(name)
}

// isFile reports whether s looks like a file path rather than a symbol: it
// ends in an extension of a file that is not a package.
func isFile(s string) bool {
	for _, ext := range []string{".go", ".md", ".yaml", ".yml", ".sql", ".json", ".csv"} {
		if strings.HasSuffix(s, ext) {
			return true
		}
	}
	return false
}

func (c *Checker) pkg(dir string) (*pkg, error) {
	if p, ok := c.pkgs[dir]; ok {
		return p, nil
	}
	p, err := parsePkg(filepath.Join(c.root, filepath.FromSlash(dir)))
	if err != nil {
		return nil, err
	}
	c.pkgs[dir] = p
	return p, nil
}

// pkg is what a package directory declares.
type pkg struct {
	dir     string
	values  map[string]bool            // functions, constants, variables
	types   map[string]ast.Expr        // type name -> its type expression
	methods map[string]map[string]bool // type -> method -> pointer receiver
	tests   map[string]bool            // top-level Test, Fuzz, Benchmark and Example functions of _test.go files
	subs    map[string]bool            // subtest names registered in the package (normalized)
}

func parsePkg(dir string) (*pkg, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("no package directory: %w", err)
	}
	p := &pkg{dir: dir, values: map[string]bool{}, types: map[string]ast.Expr{}, methods: map[string]map[string]bool{},
		tests: map[string]bool{}, subs: map[string]bool{}}
	fset := token.NewFileSet()
	found := false
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		found = true
		p.add(f, strings.HasSuffix(e.Name(), "_test.go"))
	}
	if !found {
		return nil, fmt.Errorf("no Go files in %s", dir)
	}
	return p, nil
}

// add records the declarations and subtest names of one file.
func (p *pkg) add(f *ast.File, test bool) {
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Recv == nil {
				if test && isTestFunc(d) {
					p.tests[d.Name.Name] = true
				}
				if !test {
					p.values[d.Name.Name] = true
				}
				continue
			}
			if test {
				continue
			}
			typ, ptr := recvType(d.Recv.List[0].Type)
			if p.methods[typ] == nil {
				p.methods[typ] = map[string]bool{}
			}
			p.methods[typ][d.Name.Name] = ptr
		case *ast.GenDecl:
			if test {
				continue
			}
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					p.types[s.Name.Name] = s.Type
				case *ast.ValueSpec:
					for _, n := range s.Names {
						p.values[n.Name] = true
					}
				}
			}
		}
	}
	p.addSubtests(f)
}

// isTestFunc reports whether d is a test, fuzz target, benchmark or example.
func isTestFunc(d *ast.FuncDecl) bool {
	for _, prefix := range []string{"Test", "Fuzz", "Benchmark", "Example"} {
		if strings.HasPrefix(d.Name.Name, prefix) && d.Name.Name != "TestMain" {
			return true
		}
	}
	return false
}

// recvType returns the receiver's type name and whether it is a pointer.
func recvType(e ast.Expr) (string, bool) {
	ptr := false
	if s, ok := e.(*ast.StarExpr); ok {
		e, ptr = s.X, true
	}
	switch t := e.(type) {
	case *ast.IndexExpr: // generic receiver
		e = t.X
	case *ast.IndexListExpr:
		e = t.X
	}
	if id, ok := e.(*ast.Ident); ok {
		return id.Name, ptr
	}
	return "", ptr
}

// addSubtests records the subtest names of f: string literals passed to a
// Run method, and, when f runs a subtest of a computed name, the string
// literals of its test tables (the first element of each row, or a field
// keyed name or Name).
func (p *pkg) addSubtests(f *ast.File) {
	tables := false
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || len(call.Args) != 2 {
			return true
		}
		if sel, ok := call.Fun.(*ast.SelectorExpr); !ok || sel.Sel.Name != "Run" {
			return true
		}
		if s, ok := stringLit(call.Args[0]); ok {
			p.subs[testName(s)] = true
		} else {
			tables = true
		}
		return true
	})
	if !tables {
		return
	}
	ast.Inspect(f, func(n ast.Node) bool {
		outer, ok := n.(*ast.CompositeLit)
		if !ok {
			return true
		}
		for _, el := range outer.Elts {
			row, ok := el.(*ast.CompositeLit)
			if !ok || len(row.Elts) == 0 {
				continue
			}
			if s, ok := stringLit(row.Elts[0]); ok {
				p.subs[testName(s)] = true
			}
			for _, e := range row.Elts {
				if kv, ok := e.(*ast.KeyValueExpr); ok {
					if k, ok := kv.Key.(*ast.Ident); ok && (k.Name == "name" || k.Name == "Name") {
						if s, ok := stringLit(kv.Value); ok {
							p.subs[testName(s)] = true
						}
					}
				}
			}
		}
		return true
	})
}

// stringLit returns the value of a string literal.
func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

// testName is name as go test names the subtest (spaces become
// underscores).
func testName(name string) string { return strings.ReplaceAll(name, " ", "_") }

// findTest resolves a test path: a top-level test and its subtests, or a
// path of subtests registered in the package (a contract suite's cases).
func (p *pkg) findTest(path string) error {
	segs := strings.Split(path, "/")
	if p.tests[segs[0]] {
		if len(segs) == 1 || p.subPath(segs[1:]) {
			return nil
		}
		return fmt.Errorf("%s has no subtest %s", segs[0], strings.Join(segs[1:], "/"))
	}
	if p.subPath(segs) {
		return nil
	}
	if strings.HasPrefix(segs[0], "Test") || strings.HasPrefix(segs[0], "Fuzz") {
		return fmt.Errorf("no func %s in the _test.go files of %s", segs[0], p.dir)
	}
	return fmt.Errorf("no test or suite case %s in %s", path, p.dir)
}

// subPath reports whether segs, joined again, are a sequence of registered
// subtest names (a name may itself contain slashes).
func (p *pkg) subPath(segs []string) bool {
	ok := make([]bool, len(segs)+1)
	ok[0] = true
	for i := 1; i <= len(segs); i++ {
		for j := 0; j < i && !ok[i]; j++ {
			ok[i] = ok[j] && p.subs[strings.Join(segs[j:i], "/")]
		}
	}
	return ok[len(segs)]
}

// findSymbol resolves Name, Type.Member or (*Type).Method.
func (p *pkg) findSymbol(sym string) error {
	if rest, ok := strings.CutPrefix(sym, "(*"); ok {
		typ, method, ok := strings.Cut(rest, ").")
		if !ok {
			return fmt.Errorf("want (*Type).Method")
		}
		if _, ok := p.methods[typ][method]; !ok {
			return fmt.Errorf("no method %s of %s in %s", method, typ, p.dir)
		}
		return nil
	}
	typ, member, ok := strings.Cut(sym, ".")
	if !ok {
		if p.values[sym] || p.types[sym] != nil {
			return nil
		}
		return fmt.Errorf("no function, type, constant or variable %s in %s", sym, p.dir)
	}
	if ptr, ok := p.methods[typ][member]; ok {
		if ptr {
			return fmt.Errorf("%s has a pointer receiver: cite (*%s).%s", member, typ, member)
		}
		return nil
	}
	t := p.types[typ]
	if t == nil {
		return fmt.Errorf("no type %s in %s", typ, p.dir)
	}
	if p.hasMember(t, member, 0) {
		return nil
	}
	return fmt.Errorf("type %s has no method or field %s in %s", typ, member, p.dir)
}

// hasMember reports whether an interface type declares method m (itself or
// through an interface of the package it embeds) or a struct type has field
// m.
func (p *pkg) hasMember(t ast.Expr, m string, depth int) bool {
	if depth > 8 {
		return false
	}
	var fields *ast.FieldList
	switch t := t.(type) {
	case *ast.InterfaceType:
		fields = t.Methods
	case *ast.StructType:
		fields = t.Fields
	default:
		return false
	}
	for _, f := range fields.List {
		if slices.ContainsFunc(f.Names, func(n *ast.Ident) bool { return n.Name == m }) {
			return true
		}
		if len(f.Names) == 0 { // embedded
			if id, ok := f.Type.(*ast.Ident); ok && p.types[id.Name] != nil && p.hasMember(p.types[id.Name], m, depth+1) {
				return true
			}
		}
	}
	return false
}
