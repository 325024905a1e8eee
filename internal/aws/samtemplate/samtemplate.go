// Package samtemplate reads from a SAM template (template.yaml) what `sam
// local invoke` reads to run a function: its runtime settings (timeout,
// memory, tracing, code location and build method) and its environment,
// Globals merged in, with CloudFormation's intrinsic functions in them
// (!Ref, !Sub and their long forms Ref, Fn::Sub) resolved against the
// parameters' values, the pseudo parameters and the names of the stack's
// resources the caller gives. It also reads `sam local invoke --env-vars`
// files and combines them with the template as SAM does.
//
// The template is read as YAML nodes (go.yaml.in/yaml/v3), so that
// CloudFormation's short-form tags are seen, not dropped.
package samtemplate

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// SAM's defaults for a function that sets neither (nor do Globals).
const (
	DefaultTimeout  = 3 * time.Second
	DefaultMemoryMB = 128
)

// Template is a parsed SAM template.
type Template struct {
	params    map[string]*yaml.Node // parameter -> its Default (nil: none)
	decls     map[string]*yaml.Node // parameter -> its declaration
	globals   *yaml.Node            // Globals.Function (nil: none)
	functions map[string]*yaml.Node // AWS::Serverless::Function logical id -> its resource node
}

// Parse parses a SAM template.
func Parse(data []byte) (*Template, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	root := deref(&doc)
	if root == nil || root.Kind != yaml.MappingNode {
		return nil, errors.New("template: not a YAML mapping")
	}
	t := &Template{params: map[string]*yaml.Node{}, decls: map[string]*yaml.Node{}, globals: get(get(root, "Globals"), "Function"), functions: map[string]*yaml.Node{}}
	eachKey(get(root, "Parameters"), func(name string, p *yaml.Node) { t.params[name], t.decls[name] = get(p, "Default"), p })
	resources := get(root, "Resources")
	if resources == nil {
		return nil, errors.New("template: no Resources")
	}
	eachKey(resources, func(name string, r *yaml.Node) {
		if scalar(get(r, "Type")) == "AWS::Serverless::Function" {
			t.functions[name] = r
		}
	})
	return t, nil
}

// FunctionNames returns the logical ids of the template's functions, sorted.
func (t *Template) FunctionNames() []string {
	return slices.Sorted(maps.Keys(t.functions))
}

// Refs are what intrinsic functions resolve to.
type Refs struct {
	// Parameters override the parameters' defaults.
	Parameters map[string]string
	// Pseudo are the pseudo parameters: AWS::StackName, AWS::AccountId,
	// AWS::Region, AWS::Partition, AWS::URLSuffix.
	Pseudo map[string]string
	// Resources are what Ref of a resource gives (a table's name, a
	// queue's URL, a topic's ARN), by logical id.
	Resources map[string]string
}

// Function is one function's configuration as Lambda would get it.
type Function struct {
	Name          string // logical id
	Runtime       string
	Handler       string
	Architectures []string
	CodeURI       string // relative to the template's directory
	BuildMethod   string // Metadata.BuildMethod (makefile)
	Timeout       time.Duration
	MemoryMB      int
	Tracing       bool // Tracing: Active
	// Variables are the environment variables the template declares for
	// the function (Globals' and its own), resolved. A value that cannot be
	// resolved (a resource not in Refs, !GetAtt, another function) is "",
	// as under sam local invoke, and named in Unresolved.
	Variables map[string]string
	// Unresolved maps a variable whose value could not be resolved to the
	// reason.
	Unresolved map[string]string
}

// Function returns the configuration of the function with logical id name.
func (t *Template) Function(name string, refs Refs) (Function, error) {
	res, ok := t.functions[name]
	if !ok {
		return Function{}, fmt.Errorf("template has no function %s (it has %s)", name, strings.Join(t.FunctionNames(), ", "))
	}
	props := get(res, "Properties")
	r := &resolver{t: t, refs: refs}
	// prop is the function's property, else the Globals' one.
	prop := func(key string) *yaml.Node {
		if n := get(props, key); n != nil {
			return n
		}
		return get(t.globals, key)
	}
	f := Function{Name: name, Timeout: DefaultTimeout, MemoryMB: DefaultMemoryMB, Variables: map[string]string{}, Unresolved: map[string]string{},
		BuildMethod: scalar(get(get(res, "Metadata"), "BuildMethod"))}
	var err error
	str := func(key string) string {
		n := prop(key)
		if n == nil || err != nil {
			return ""
		}
		v, e := r.value(n)
		if e != nil {
			err = fmt.Errorf("function %s: %s: %w", name, key, e)
		}
		return v
	}
	f.Runtime, f.Handler, f.CodeURI = str("Runtime"), str("Handler"), str("CodeUri")
	f.Tracing = str("Tracing") == "Active"
	if n := prop("Architectures"); n != nil && n.Kind == yaml.SequenceNode {
		for _, a := range n.Content {
			f.Architectures = append(f.Architectures, scalar(a))
		}
	}
	if v := str("Timeout"); v != "" && err == nil {
		s, e := strconv.ParseFloat(v, 64)
		if e != nil || s <= 0 {
			return f, fmt.Errorf("function %s: Timeout %q is not a number of seconds", name, v)
		}
		f.Timeout = time.Duration(s * float64(time.Second))
	}
	if v := str("MemorySize"); v != "" && err == nil {
		if f.MemoryMB, err = strconv.Atoi(v); err != nil {
			return f, fmt.Errorf("function %s: MemorySize %q is not a number of MB", name, v)
		}
	}
	if err != nil {
		return f, err
	}
	// Globals' variables, then the function's own (which win).
	for _, env := range []*yaml.Node{get(get(t.globals, "Environment"), "Variables"), get(get(props, "Environment"), "Variables")} {
		eachKey(env, func(k string, v *yaml.Node) {
			val, err := r.value(v)
			var u *UnresolvedError
			switch {
			case errors.Is(err, errNoValue):
				delete(f.Variables, k)
				delete(f.Unresolved, k)
				return
			case errors.As(err, &u):
				f.Unresolved[k] = u.Error()
				val = ""
			case err != nil:
				f.Unresolved[k] = err.Error()
				val = ""
			default:
				delete(f.Unresolved, k)
			}
			f.Variables[k] = val
		})
	}
	return f, nil
}

// Environment returns the function's declared variables as `sam local
// invoke` sets them: the template's value, replaced by the shell's when
// the shell has the variable, replaced by the --env-vars file's override
// when it has one. Variables the template does not declare are not
// passed, whatever the shell or the overrides hold (as with SAM).
func (f Function) Environment(shell func(string) (string, bool), overrides map[string]string) map[string]string {
	out := make(map[string]string, len(f.Variables))
	for k, v := range f.Variables {
		if shell != nil {
			if s, ok := shell(k); ok {
				v = s
			}
		}
		if o, ok := overrides[k]; ok {
			v = o
		}
		out[k] = v
	}
	return out
}

// UnresolvedError says what an intrinsic function could not be resolved to.
type UnresolvedError struct{ Expr string }

func (e *UnresolvedError) Error() string { return e.Expr + " cannot be resolved" }

// errNoValue is Ref AWS::NoValue: the property is left out.
var errNoValue = errors.New("AWS::NoValue")

type resolver struct {
	t    *Template
	refs Refs
}

// value evaluates a property value: a scalar, or !Ref / !Sub (short or long form).
func (r *resolver) value(n *yaml.Node) (string, error) {
	n = deref(n)
	switch {
	case n == nil:
		return "", nil
	case n.Tag == "!Ref":
		return r.ref(n.Value)
	case n.Tag == "!Sub":
		return r.sub(n)
	case strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!"):
		return "", &UnresolvedError{Expr: n.Tag + " " + describe(n)}
	case n.Kind == yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "", nil
		}
		return n.Value, nil
	case n.Kind == yaml.MappingNode && len(n.Content) == 2:
		switch k, v := n.Content[0].Value, deref(n.Content[1]); k {
		case "Ref":
			return r.ref(scalar(v))
		case "Fn::Sub":
			return r.sub(v)
		default:
			if strings.HasPrefix(k, "Fn::") {
				return "", &UnresolvedError{Expr: k + " " + describe(v)}
			}
		}
	}
	return "", &UnresolvedError{Expr: describe(n)}
}

// ref is Ref name: a parameter's value, a pseudo parameter, or a resource's name.
func (r *resolver) ref(name string) (string, error) {
	if name == "AWS::NoValue" {
		return "", errNoValue
	}
	if v, ok := r.refs.Parameters[name]; ok {
		return v, nil
	}
	if d, ok := r.t.params[name]; ok {
		if d == nil {
			return "", &UnresolvedError{Expr: "!Ref " + name + " (a parameter without a default or a value)"}
		}
		return r.value(d)
	}
	if v, ok := r.refs.Pseudo[name]; ok {
		return v, nil
	}
	if v, ok := r.refs.Resources[name]; ok {
		return v, nil
	}
	return "", &UnresolvedError{Expr: "!Ref " + name}
}

// sub is Fn::Sub: a string with ${Name}, ${Resource.Attribute} and
// ${!Literal}, or a [string, {Name: value}] pair.
func (r *resolver) sub(n *yaml.Node) (string, error) {
	n = deref(n)
	s, vars := n.Value, (*yaml.Node)(nil)
	if n.Kind == yaml.SequenceNode {
		if len(n.Content) != 2 || deref(n.Content[0]).Kind != yaml.ScalarNode {
			return "", &UnresolvedError{Expr: "!Sub " + describe(n)}
		}
		s, vars = deref(n.Content[0]).Value, n.Content[1]
	} else if n.Kind != yaml.ScalarNode {
		return "", &UnresolvedError{Expr: "!Sub " + describe(n)}
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			b.WriteString(s[i:])
			return b.String(), nil
		}
		name := s[i+2 : i+j]
		s = s[i+j+1:]
		switch {
		case strings.HasPrefix(name, "!"):
			b.WriteString("${" + name[1:] + "}")
			continue
		case get(vars, name) != nil:
			v, err := r.value(get(vars, name))
			if err != nil {
				return "", err
			}
			b.WriteString(v)
			continue
		case strings.Contains(name, ".") && !strings.HasPrefix(name, "AWS::"):
			return "", &UnresolvedError{Expr: "${" + name + "} (an attribute)"}
		}
		v, err := r.ref(name)
		if err != nil {
			var u *UnresolvedError
			if errors.As(err, &u) {
				return "", &UnresolvedError{Expr: "${" + name + "}"}
			}
			return "", err
		}
		b.WriteString(v)
	}
}

// describe is a short text of a node for messages.
func describe(n *yaml.Node) string {
	n = deref(n)
	if n == nil {
		return ""
	}
	if n.Kind == yaml.ScalarNode {
		return n.Value
	}
	out, err := yaml.Marshal(n)
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(out)), " ")
}

func deref(n *yaml.Node) *yaml.Node {
	for n != nil && (n.Kind == yaml.AliasNode || n.Kind == yaml.DocumentNode) {
		if n.Kind == yaml.AliasNode {
			n = n.Alias
		} else if len(n.Content) > 0 {
			n = n.Content[0]
		} else {
			return nil
		}
	}
	return n
}

// get returns the value of key in mapping n (nil if n is not a mapping or lacks it).
func get(n *yaml.Node, key string) *yaml.Node {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return deref(n.Content[i+1])
		}
	}
	return nil
}

// eachKey calls fn for each key of mapping n, in order.
func eachKey(n *yaml.Node, fn func(string, *yaml.Node)) {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		fn(n.Content[i].Value, deref(n.Content[i+1]))
	}
}

func scalar(n *yaml.Node) string {
	n = deref(n)
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}
