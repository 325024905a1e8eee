package profile

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/govalues/decimal"
	"go.yaml.in/yaml/v3"

	"github.com/catalog-import/catalog-import/internal/catalog"
)

// fieldID is a product field, numbered in the order of the default
// profile's table in docs/invariants.md, which is also the order problems
// are reported in.
type fieldID uint8

const (
	fSKU fieldID = iota
	fName
	fCategory
	fBrand
	fPrice
	fCurrency
	fStock
	fStatus
	fDescription
	fImageURLs
	numFields
)

// fieldNames are the product field names, indexed by fieldID.
var fieldNames = [numFields]string{"sku", "name", "category", "brand", "price", "currency", "stock", "status", "description", "image_urls"}

// Fields returns the product field names a profile maps, in the order of
// the default profile's table in docs/invariants.md (the order problems are
// reported in).
func Fields() []string { return slices.Clone(fieldNames[:]) }

func fieldByName(name string) (fieldID, bool) {
	for i, n := range fieldNames {
		if n == name {
			return fieldID(i), true
		}
	}
	return 0, false
}

// Field types.
const (
	typeString   = "string"
	typeDecimal  = "decimal"
	typeInteger  = "integer"
	typeCurrency = "currency"
	typeURLList  = "url_list"
	typeEnum     = "enum"
)

// allowedTypes says which types each product field may take: the type has
// to produce what catalog.Product stores.
var allowedTypes = [numFields][]string{
	fSKU:         {typeString, typeEnum},
	fName:        {typeString, typeEnum},
	fCategory:    {typeString, typeEnum},
	fBrand:       {typeString, typeEnum},
	fPrice:       {typeDecimal},
	fCurrency:    {typeCurrency},
	fStock:       {typeInteger},
	fStatus:      {typeString, typeEnum},
	fDescription: {typeString, typeEnum},
	fImageURLs:   {typeURLList},
}

// Rule keys that only apply to some types ("columns", "type", "required",
// "default" and "unique" apply to every type).
var typeKeys = map[string][]string{
	typeString:   {"min_length", "max_length", "pattern"},
	typeEnum:     {"min_length", "max_length", "pattern", "enum"},
	typeDecimal:  {"min", "max", "scale"},
	typeInteger:  {"min", "max"},
	typeCurrency: {"enum"},
	typeURLList:  {"separator"},
}

// rawProfile is a profile file as written: nil means "not given".
type rawProfile struct {
	Name             *string
	WriteMode        *string
	MaxErrorRatio    *float64
	MaxQuotedLines   *int
	MaxQuotedBytes   *int
	FormulaText      *string
	BannedCategories *[]string
	Sheets           *[]string
	Fields           [numFields]*rawField
	Weight           *rawWeight
}

// rawField is one field entry as written: nil means "not given" (inherited).
type rawField struct {
	Columns   *[]string
	Type      *string
	Required  *bool
	Default   *string
	MinLength *int
	MaxLength *int
	Pattern   *string
	Enum      *[]string
	Min       *string
	Max       *string
	Scale     *int
	Separator *string
	Unique    *bool
	Normalize *rawNormalize
}

// rawNormalize is the normalize key of a field entry as written: nil means
// "not given" (inherited), key by key.
type rawNormalize struct {
	Trim *bool
	Case *string
	NFKC *bool
}

// has reports whether f gives the type-specific rule key.
func (f *rawField) has(key string) bool {
	switch key {
	case "min_length":
		return f.MinLength != nil
	case "max_length":
		return f.MaxLength != nil
	case "pattern":
		return f.Pattern != nil
	case "enum":
		return f.Enum != nil
	case "min":
		return f.Min != nil
	case "max":
		return f.Max != nil
	case "scale":
		return f.Scale != nil
	case "separator":
		return f.Separator != nil
	}
	return false
}

func (f *rawField) clear(key string) {
	switch key {
	case "min_length":
		f.MinLength = nil
	case "max_length":
		f.MaxLength = nil
	case "pattern":
		f.Pattern = nil
	case "enum":
		f.Enum = nil
	case "min":
		f.Min = nil
	case "max":
		f.Max = nil
	case "scale":
		f.Scale = nil
	case "separator":
		f.Separator = nil
	}
}

func (f *rawField) typ() string {
	if f.Type == nil {
		return typeString
	}
	return *f.Type
}

// merge lays over onto base, key by key. When over changes the type, the
// keys of base that do not apply to the new type are dropped first.
func merge(base, over *rawField) *rawField {
	out := &rawField{}
	if base != nil {
		*out = *base
	}
	if over == nil {
		return out
	}
	if over.Type != nil && *over.Type != out.typ() {
		for _, k := range typeKeys[out.typ()] {
			if !slices.Contains(typeKeys[*over.Type], k) {
				out.clear(k)
			}
		}
	}
	override(&out.Columns, over.Columns)
	override(&out.Type, over.Type)
	override(&out.Required, over.Required)
	override(&out.Default, over.Default)
	override(&out.MinLength, over.MinLength)
	override(&out.MaxLength, over.MaxLength)
	override(&out.Pattern, over.Pattern)
	override(&out.Enum, over.Enum)
	override(&out.Min, over.Min)
	override(&out.Max, over.Max)
	override(&out.Scale, over.Scale)
	override(&out.Separator, over.Separator)
	override(&out.Unique, over.Unique)
	if over.Normalize != nil {
		n := &rawNormalize{}
		if out.Normalize != nil {
			*n = *out.Normalize
		}
		override(&n.Trim, over.Normalize.Trim)
		override(&n.Case, over.Normalize.Case)
		override(&n.NFKC, over.Normalize.NFKC)
		out.Normalize = n
	}
	// An enum list on a text field makes it an enum field.
	if out.Enum != nil && out.typ() == typeString {
		t := typeEnum
		out.Type = &t
	}
	return out
}

// override sets *dst to src when src is given.
func override[T any](dst **T, src *T) {
	if src != nil {
		*dst = src
	}
}

// problems collects load problems, each naming its path.
type problems []error

func (ps *problems) add(path, format string, args ...any) {
	*ps = append(*ps, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
}

// has reports whether a problem was already reported at path.
func (ps problems) has(path string) bool {
	for _, e := range ps {
		if strings.HasPrefix(e.Error(), path+": ") {
			return true
		}
	}
	return false
}

// decodeRaw reads a profile document into a rawProfile. Every key is checked
// against the schema (as yaml's KnownFields does), and every problem names
// its path, e.g. "fields.price.scale: ...".
func decodeRaw(data []byte, ps *problems) *rawProfile {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		ps.add("profile", "%s", yamlMessage(err))
		return nil
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		ps.add("profile", "empty document")
		return nil
	}
	root := deref(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		ps.add("profile", "must be a mapping of keys (name, write_mode, max_error_ratio, max_quoted_lines, max_quoted_bytes, formula_text, banned_categories, sheets, fields, weight)")
		return nil
	}
	raw := &rawProfile{}
	eachKey(root, "", ps, func(key string, val *yaml.Node, path string) {
		switch key {
		case "name":
			decodeValue(val, path, &raw.Name, ps)
		case "write_mode":
			decodeValue(val, path, &raw.WriteMode, ps)
		case "max_error_ratio":
			decodeValue(val, path, &raw.MaxErrorRatio, ps)
		case "max_quoted_lines":
			decodeValue(val, path, &raw.MaxQuotedLines, ps)
		case "max_quoted_bytes":
			decodeValue(val, path, &raw.MaxQuotedBytes, ps)
		case "formula_text":
			decodeValue(val, path, &raw.FormulaText, ps)
		case "banned_categories":
			decodeValue(val, path, &raw.BannedCategories, ps)
		case "sheets":
			decodeValue(val, path, &raw.Sheets, ps)
		case "fields":
			eachKey(deref(val), path, ps, func(name string, fval *yaml.Node, fpath string) {
				id, ok := fieldByName(name)
				if !ok {
					ps.add(fpath, "unknown field (fields are %s)", strings.Join(fieldNames[:], ", "))
					return
				}
				raw.Fields[id] = decodeField(deref(fval), fpath, ps)
			})
		case "weight":
			if v := deref(val); !isNull(v) {
				raw.Weight = decodeWeight(v, path, ps)
			}
		default:
			ps.add(path, "unknown key (keys are name, write_mode, max_error_ratio, max_quoted_lines, max_quoted_bytes, formula_text, banned_categories, sheets, fields, weight)")
		}
	})
	return raw
}

func decodeField(n *yaml.Node, path string, ps *problems) *rawField {
	f := &rawField{}
	eachKey(n, path, ps, func(key string, val *yaml.Node, kpath string) {
		switch key {
		case "columns":
			decodeValue(val, kpath, &f.Columns, ps)
		case "type":
			decodeValue(val, kpath, &f.Type, ps)
		case "required":
			decodeValue(val, kpath, &f.Required, ps)
		case "default":
			decodeValue(val, kpath, &f.Default, ps)
		case "min_length":
			decodeValue(val, kpath, &f.MinLength, ps)
		case "max_length":
			decodeValue(val, kpath, &f.MaxLength, ps)
		case "pattern":
			decodeValue(val, kpath, &f.Pattern, ps)
		case "enum":
			decodeValue(val, kpath, &f.Enum, ps)
		case "min":
			decodeValue(val, kpath, &f.Min, ps)
		case "max":
			decodeValue(val, kpath, &f.Max, ps)
		case "scale":
			decodeValue(val, kpath, &f.Scale, ps)
		case "separator":
			decodeValue(val, kpath, &f.Separator, ps)
		case "unique":
			decodeValue(val, kpath, &f.Unique, ps)
		case "normalize":
			f.Normalize = decodeNormalize(deref(val), kpath, ps)
		default:
			ps.add(kpath, "unknown key (keys are columns, type, required, default, min_length, max_length, pattern, enum, min, max, scale, separator, unique, normalize)")
		}
	})
	return f
}

// decodeNormalize reads a field's normalize mapping (null: not given).
func decodeNormalize(n *yaml.Node, path string, ps *problems) *rawNormalize {
	if isNull(n) {
		return nil
	}
	out := &rawNormalize{}
	eachKey(n, path, ps, func(key string, val *yaml.Node, kpath string) {
		switch key {
		case "trim":
			decodeValue(val, kpath, &out.Trim, ps)
		case "case":
			decodeValue(val, kpath, &out.Case, ps)
		case "nfkc":
			decodeValue(val, kpath, &out.NFKC, ps)
		default:
			ps.add(kpath, "unknown key (keys are trim, case, nfkc)")
		}
	})
	return out
}

// eachKey calls fn for each key of the mapping n (nil or null: no keys),
// reporting non-mappings, non-scalar keys and duplicate keys.
func eachKey(n *yaml.Node, path string, ps *problems, fn func(key string, val *yaml.Node, path string)) {
	if n == nil || isNull(n) {
		return
	}
	where := path
	if where == "" {
		where = "profile"
	}
	if n.Kind != yaml.MappingNode {
		ps.add(where, "must be a mapping (line %d)", n.Line)
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := deref(n.Content[i])
		if k.Kind != yaml.ScalarNode {
			ps.add(where, "keys must be plain text (line %d)", k.Line)
			continue
		}
		kpath := k.Value
		if path != "" {
			kpath = path + "." + k.Value
		}
		if line, dup := seen[k.Value]; dup {
			ps.add(kpath, "given twice (lines %d and %d)", line, k.Line)
			continue
		}
		seen[k.Value] = k.Line
		fn(k.Value, n.Content[i+1], kpath)
	}
}

// decodeValue decodes one value node into out, reporting a failure under path.
func decodeValue(n *yaml.Node, path string, out any, ps *problems) bool {
	n = deref(n)
	if n.Kind == yaml.MappingNode {
		ps.add(path, "must not be a mapping (line %d)", n.Line)
		return false
	}
	if err := n.Decode(out); err != nil {
		ps.add(path, "%s", yamlMessage(err))
		return false
	}
	return true
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// deref follows aliases (a bounded number of times).
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < 8; i++ {
		n = n.Alias
	}
	return n
}

// yamlMessage is err's text without the yaml package's prefixes.
func yamlMessage(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return strings.Join(te.Errors, "; ")
	}
	return strings.TrimPrefix(err.Error(), "yaml: ")
}

// spec is the effective, validated rule set of one field.
type spec struct {
	Columns   []string // aliases, without the field's own name; deduplicated (case-insensitively) and sorted
	Type      string
	Required  bool
	Default   string // "" = none
	MinLength int    // -1 = none
	MaxLength int    // -1 = none
	Pattern   string // "" = none
	Enum      []string
	Min       string // canonical decimal text, "" = none
	Max       string
	Scale     int // -1 = none (only decimal has one)
	Separator string
	Unique    bool
	Normalize normalize // sku only
}

// buildSpec validates one merged field and returns its effective spec and the
// compiled parts of its rule.
func buildSpec(id fieldID, f *rawField, ps *problems) (spec, *rule) {
	name := fieldNames[id]
	path := "fields." + name
	s := spec{Type: f.typ(), MinLength: -1, MaxLength: -1, Scale: -1}
	r := &rule{id: id, name: name, minLen: -1, maxLen: -1}
	n0 := len(*ps)
	broken := false // a problem that leaves the rule unusable (the default cannot be checked)

	if !slices.Contains(allowedTypes[id], s.Type) {
		if _, known := typeKeys[s.Type]; known {
			ps.add(path+".type", "%q does not apply to %s (want %s)", s.Type, name, strings.Join(allowedTypes[id], " or "))
		} else {
			ps.add(path+".type", "unknown type %q (types are string, decimal, integer, currency, url_list, enum)", s.Type)
		}
		return s, nil
	}
	r.kind = s.Type
	for _, k := range []string{"min_length", "max_length", "pattern", "enum", "min", "max", "scale", "separator"} {
		if f.has(k) && !slices.Contains(typeKeys[s.Type], k) {
			ps.add(path+"."+k, "does not apply to type %s", s.Type)
		}
	}

	if f.Columns != nil {
		seen := map[string]bool{foldKey(name): true}
		for i, c := range *f.Columns {
			c = trimCell(c)
			if c == "" {
				ps.add(fmt.Sprintf("%s.columns[%d]", path, i), "must not be empty")
				continue
			}
			if k := foldKey(c); !seen[k] {
				seen[k] = true
				s.Columns = append(s.Columns, c)
			}
		}
		slices.Sort(s.Columns)
	}
	if s.Columns == nil {
		s.Columns = []string{}
	}
	s.Required = f.Required != nil && *f.Required
	r.required = s.Required
	if f.Unique != nil && *f.Unique {
		if id != fSKU {
			ps.add(path+".unique", "only sku can be unique")
		}
		s.Unique = true
	}

	s.Normalize = defaultNormalize
	if f.Normalize != nil {
		if id != fSKU {
			ps.add(path+".normalize", "only sku is normalised")
		}
		s.Normalize = buildNormalize(f.Normalize, path+".normalize", ps)
	}
	if id == fSKU {
		r.norm = s.Normalize
	}

	if f.MinLength != nil {
		if s.MinLength = *f.MinLength; s.MinLength < 0 {
			ps.add(path+".min_length", "must be >= 0")
		}
		r.minLen = s.MinLength
	}
	if f.MaxLength != nil {
		if s.MaxLength = *f.MaxLength; s.MaxLength < 0 {
			ps.add(path+".max_length", "must be >= 0")
		}
		r.maxLen = s.MaxLength
	}
	if s.MinLength > 0 && s.MaxLength >= 0 && s.MinLength > s.MaxLength {
		ps.add(path+".min_length", "must be <= max_length (%d)", s.MaxLength)
	}
	if f.Pattern != nil {
		s.Pattern = *f.Pattern
		if s.Pattern == "" {
			ps.add(path+".pattern", "must not be empty (omit it to keep the default profile's)")
			broken = true
		} else if re, err := regexp.Compile(s.Pattern); err != nil {
			ps.add(path+".pattern", "%v", err)
			broken = true
		} else {
			r.re = newMatcher(re)
		}
	}

	switch s.Type {
	case typeEnum, typeCurrency:
		if f.Enum != nil {
			seen := map[string]bool{}
			for i, e := range *f.Enum {
				e = trimCell(e)
				epath := fmt.Sprintf("%s.enum[%d]", path, i)
				switch {
				case e == "":
					ps.add(epath, "must not be empty")
					continue
				case seen[foldKey(e)]:
					ps.add(epath, "%q is listed twice", e)
					continue
				}
				if s.Type == typeCurrency {
					code, ok := parseCurrency(e)
					if !ok {
						ps.add(epath, "%q is not an ISO 4217 currency code", e)
						continue
					}
					e = code
				}
				seen[foldKey(e)] = true
				s.Enum = append(s.Enum, e)
			}
		}
		if s.Type == typeEnum && len(s.Enum) == 0 {
			if f.Enum == nil || len(*f.Enum) == 0 {
				ps.add(path+".enum", "type enum needs at least one value")
			}
			broken = true
		}
	case typeDecimal, typeInteger:
		s.Min = bound(f.Min, path+".min", s.Type, ps)
		s.Max = bound(f.Max, path+".max", s.Type, ps)
		if s.Min != "" && s.Max != "" && decimal.MustParse(s.Min).Cmp(decimal.MustParse(s.Max)) > 0 {
			ps.add(path+".min", "must be <= max (%s)", s.Max)
		}
		if s.Type == typeDecimal {
			broken = true
			switch {
			case f.Scale == nil:
				ps.add(path+".scale", "type decimal needs a scale (the number of decimals kept)")
			case *f.Scale < 0:
				ps.add(path+".scale", "must be >= 0")
			case *f.Scale > decimal.MaxScale:
				ps.add(path+".scale", "must be <= %d", decimal.MaxScale)
			default:
				s.Scale, broken = *f.Scale, false
			}
		}
	case typeURLList:
		s.Separator = "|"
		if f.Separator != nil {
			if s.Separator = *f.Separator; s.Separator == "" {
				ps.add(path+".separator", "must not be empty")
				broken = true
			}
		}
	}
	if broken {
		return s, nil
	}
	r.compile(s)
	if f.Default != nil {
		s.Default = trimCell(*f.Default)
		if s.Default == "" {
			ps.add(path+".default", "must not be empty (omit it to keep the default profile's)")
		} else if p := r.defaultCheck(s.Default); p != "" {
			ps.add(path+".default", "%s", p)
		}
	}
	if len(*ps) > n0 {
		return s, nil
	}
	return s, r
}

// bound validates a min or max and returns its canonical text.
func bound(v *string, path, typ string, ps *problems) string {
	if v == nil {
		return ""
	}
	t := trimCell(*v)
	d, err := decimal.Parse(t)
	if err != nil {
		ps.add(path, "%q is not a decimal number", *v)
		return ""
	}
	d = d.Trim(0)
	if typ == typeInteger {
		if _, _, ok := d.Int64(0); !ok || !d.IsInt() {
			ps.add(path, "%q is not an integer", *v)
			return ""
		}
	}
	return d.String()
}

// validateTop checks the top-level keys.
// Bounds of the quote limits a profile may set.
const (
	maxQuotedLinesCap = 1_000_000
	maxQuotedBytesCap = 64 << 20
)

// validateQuoteLimits checks max_quoted_lines and max_quoted_bytes (absent:
// 0, the scanner's defaults).
func validateQuoteLimits(raw *rawProfile, ps *problems) (lines, bytes int) {
	if raw.MaxQuotedLines != nil {
		lines = *raw.MaxQuotedLines
		if lines < 1 || lines > maxQuotedLinesCap {
			ps.add("max_quoted_lines", "must be between 1 and %d", maxQuotedLinesCap)
		}
	}
	if raw.MaxQuotedBytes != nil {
		bytes = *raw.MaxQuotedBytes
		if bytes < 1 || bytes > maxQuotedBytesCap {
			ps.add("max_quoted_bytes", "must be between 1 and %d", maxQuotedBytesCap)
		}
	}
	return lines, bytes
}

func validateTop(raw *rawProfile, ps *problems) (name string, mode string, ratio float64, banned []string) {
	switch {
	case raw.Name == nil || trimCell(*raw.Name) == "":
		if !ps.has("name") {
			ps.add("name", "required")
		}
	case utf8.RuneCountInString(*raw.Name) > 100:
		ps.add("name", "must be at most 100 characters")
	default:
		name = trimCell(*raw.Name)
	}
	mode = string(catalog.Upsert)
	if raw.WriteMode != nil {
		m, err := parseWriteMode(*raw.WriteMode)
		if err != nil {
			ps.add("write_mode", "%v", err)
		}
		mode = string(m)
	}
	if raw.MaxErrorRatio != nil {
		ratio = *raw.MaxErrorRatio
		switch {
		case math.IsNaN(ratio) || ratio < 0:
			ps.add("max_error_ratio", "must be >= 0")
		case ratio > 1:
			ps.add("max_error_ratio", "must be <= 1 (a fraction of the processed rows)")
		}
	}
	if raw.BannedCategories != nil {
		seen := map[string]bool{}
		for i, b := range *raw.BannedCategories {
			b = trimCell(b)
			if b == "" {
				ps.add(fmt.Sprintf("banned_categories[%d]", i), "must not be empty")
				continue
			}
			if k := foldKey(b); !seen[k] {
				seen[k] = true
				banned = append(banned, b)
			}
		}
		slices.Sort(banned)
	}
	return name, mode, ratio, banned
}

// validateSheets checks the sheet names a profile imports from workbooks:
// not empty, each once (Excel compares sheet names ignoring case). They are
// returned sorted, since the workbook's order is the import order.
func validateSheets(raw *rawProfile, ps *problems) []string {
	if raw.Sheets == nil {
		return nil
	}
	var out []string
	seen := map[string]bool{}
	for i, s := range *raw.Sheets {
		s = trimCell(s)
		k := strings.ToLower(s)
		switch {
		case s == "":
			ps.add(fmt.Sprintf("sheets[%d]", i), "must not be empty")
		case seen[k]:
			ps.add(fmt.Sprintf("sheets[%d]", i), "%q is listed twice", s)
		default:
			seen[k] = true
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// checkAliases reports a header name that would match two fields.
func checkAliases(specs *[numFields]spec, ps *problems) {
	owner := map[string]fieldID{}
	for id := range numFields {
		owner[foldKey(fieldNames[id])] = id
	}
	for id := range numFields {
		for _, c := range specs[id].Columns {
			k := foldKey(c)
			if o, taken := owner[k]; taken && o != id {
				ps.add("fields."+fieldNames[id]+".columns", "%q also matches %s", c, fieldNames[o])
				continue
			}
			owner[k] = id
		}
	}
}

// canonical renders the effective profile as YAML with sorted keys.
func canonical(p *Profile) []byte { return encodeYAML(document(p, false)) }

// document is the effective profile as plain maps. explicit also gives the
// rules canonical leaves out when they are the default's (formula_text,
// the sku's normalize).
func document(p *Profile, explicit bool) map[string]any {
	fields := map[string]any{}
	for id := range numFields {
		s := p.specs[id]
		m := map[string]any{"type": s.Type, "required": s.Required, "columns": s.Columns}
		if id == fSKU {
			m["unique"] = s.Unique
			if s.Normalize != defaultNormalize || explicit {
				// Only when it differs from the default, so that the rule
				// versions of profiles that do not set it stay as they were.
				m["normalize"] = map[string]any{"trim": s.Normalize.Trim, "case": s.Normalize.Case, "nfkc": s.Normalize.NFKC}
			}
		}
		if s.Default != "" {
			m["default"] = s.Default
		}
		if s.MinLength >= 0 {
			m["min_length"] = s.MinLength
		}
		if s.MaxLength >= 0 {
			m["max_length"] = s.MaxLength
		}
		if s.Pattern != "" {
			m["pattern"] = s.Pattern
		}
		if len(s.Enum) > 0 {
			m["enum"] = s.Enum
		}
		if s.Min != "" {
			m["min"] = s.Min
		}
		if s.Max != "" {
			m["max"] = s.Max
		}
		if s.Scale >= 0 {
			m["scale"] = s.Scale
		}
		if s.Separator != "" {
			m["separator"] = s.Separator
		}
		fields[fieldNames[id]] = m
	}
	doc := map[string]any{"name": p.name, "write_mode": string(p.writeMode), "fields": fields}
	if p.maxErrorRatio > 0 {
		doc["max_error_ratio"] = p.maxErrorRatio
	}
	if p.maxQuotedLines > 0 {
		doc["max_quoted_lines"] = p.maxQuotedLines
	}
	if p.maxQuotedBytes > 0 {
		doc["max_quoted_bytes"] = p.maxQuotedBytes
	}
	if p.formulaText != formulaAllow || explicit {
		doc["formula_text"] = p.formulaText // likewise only when not the default
	}
	if len(p.banned) > 0 {
		doc["banned_categories"] = p.banned
	}
	if len(p.sheets) > 0 {
		doc["sheets"] = p.sheets
	}
	if p.weight != nil {
		doc["weight"] = canonicalWeight(p.weight)
	}
	return doc
}

// encodeYAML renders v (plain maps, strings, numbers, or a yaml.Node) as
// YAML indented by 2, keys of maps sorted.
func encodeYAML(v any) []byte {
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		panic("profile: canonical encoding: " + err.Error()) // plain maps, strings and numbers always encode
	}
	_ = enc.Close()
	return []byte(b.String())
}

// Effective returns the effective profile as `importctl profile` shows it:
// the canonical text with the rules it leaves out when they are the
// default's spelled out (formula_text, the sku's normalize), and a comment
// on each field's columns saying that the field's own name matches too.
// Parsing it gives the same profile (and rule version).
func (p *Profile) Effective() []byte {
	var doc yaml.Node
	if err := doc.Encode(document(p, true)); err != nil {
		panic("profile: effective encoding: " + err.Error()) // plain maps, strings and numbers always encode
	}
	if fields := mapValue(&doc, "fields"); fields != nil {
		for i := 0; i+1 < len(fields.Content); i += 2 {
			name := fields.Content[i].Value
			for j := 0; j+1 < len(fields.Content[i+1].Content); j += 2 {
				if k := fields.Content[i+1].Content[j]; k.Value == "columns" {
					at := k // "columns: # ..." above a block list
					if v := fields.Content[i+1].Content[j+1]; len(v.Content) == 0 {
						at = v // "columns: [] # ..."
					}
					at.LineComment = fmt.Sprintf("and %q itself: a field's own name always matches (any case)", name)
				}
			}
		}
	}
	return encodeYAML(&doc)
}

// mapValue is the value of key in the mapping n, or nil.
func mapValue(n *yaml.Node, key string) *yaml.Node {
	for i := 0; n.Kind == yaml.MappingNode && i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}
