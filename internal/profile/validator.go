package profile

import (
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/catalog-import/catalog-import/internal/catalog"
	"github.com/catalog-import/catalog-import/internal/failure"
)

// Validator resolves headers and checks rows against a profile. It is safe
// for concurrent use: Validate is called by a pool of goroutines.
type Validator struct {
	p       *Profile
	formula bool // formula_text: refuse
	rules   [numFields]*rule
	aliases map[string]fieldID // fold key of a header name -> field
	banned  map[string]struct{}

	cacheMu sync.Mutex                          // serialises writers of cache
	cache   atomic.Pointer[map[string]*Columns] // copy-on-write: readers never lock
}

// maxCachedNames bounds the Names cache, so that a file whose every object
// has a different key set cannot grow it without end.
const maxCachedNames = 1024

// Profile returns the profile the validator was compiled from.
func (v *Validator) Profile() *Profile { return v.p }

// Columns is a resolved mapping of source column positions to product
// fields. It is immutable and may be shared between goroutines.
type Columns struct {
	names    []string
	pos      [numFields]int // source position of each field, -1 if none
	mapping  map[string]string
	unmapped []string
	present  catalog.Fields // the stamped fields with a column (catalog.NoFields: none)
	err      error          // Names only: keys that map to the same field
}

// Mapping returns source column -> product field for the mapped columns, as
// failure records store it. The map is shared: do not modify it.
func (c *Columns) Mapping() map[string]string { return c.mapping }

// Unmapped returns the (non-empty) source columns that map to no field;
// their values are ignored.
func (c *Columns) Unmapped() []string { return slices.Clone(c.unmapped) }

// Field returns the product field the source column at position i maps to,
// or "".
func (c *Columns) Field(i int) string {
	for id, p := range c.pos {
		if p == i {
			return fieldNames[id]
		}
	}
	return ""
}

// conflict is a source name mapping to a field that an earlier name maps to.
type conflict struct {
	id            fieldID
	first, second int // positions in the source names
}

// resolve maps names to fields, returning the names that map to an already
// mapped field as conflicts (the first one keeps the field).
func (v *Validator) resolve(names []string) (c *Columns, conflicts []conflict) {
	c = &Columns{names: slices.Clone(names), mapping: map[string]string{}}
	for i := range c.pos {
		c.pos[i] = -1
	}
	for i, n := range names {
		t := trimCell(n)
		id, ok := fieldID(0), false
		if t != "" {
			id, ok = lookupFold(v.aliases, t)
		}
		if !ok {
			if t != "" {
				c.unmapped = append(c.unmapped, n)
			}
			continue
		}
		if first := c.pos[id]; first >= 0 {
			conflicts = append(conflicts, conflict{id, first, i})
			continue
		}
		c.pos[id] = i
		c.mapping[n] = fieldNames[id]
		if id != fSKU {
			c.present |= 1 << catalogField(id)
		}
	}
	if c.present == 0 {
		c.present = catalog.NoFields
	}
	return c, conflicts
}

// Header resolves the header of a CSV/TSV file (or a sheet). Which columns
// it needs depends on the profile's write mode: upsert, replace and
// create-only need a column for every required field without a default;
// update needs sku and at least one other field; delete needs only sku.
// Otherwise the whole file is rejected with a *failure.ImportError
// (SchemaMismatch) whose message names every missing field and the names
// that would have matched it; two columns mapping to one field are a
// SchemaMismatch naming both. Columns that map to no field are fine: they
// are ignored and listed by Columns.Unmapped.
func (v *Validator) Header(header []string) (*Columns, error) {
	c, conflicts := v.resolve(header)
	var missing, fields, msg []string
	mode := v.p.writeMode
	for id, r := range v.rules {
		need := r.required && !r.hasDefault && needsRequired(mode)
		if fieldID(id) == fSKU {
			need = true // every mode finds its products by sku
		}
		if need && c.pos[id] < 0 {
			missing = append(missing, fmt.Sprintf("%s (any of: %s)", r.name, strings.Join(v.p.Columns(r.name), ", ")))
			fields = append(fields, r.name)
		}
	}
	if len(missing) > 0 {
		msg = append(msg, "missing required columns: "+strings.Join(missing, ", ")+"; the header has: "+headerList(header))
	}
	if mode == modeUpdate && len(v.Present(c)) == 0 {
		msg = append(msg, "write_mode update changes existing products and needs at least one field column besides sku (any of: "+
			strings.Join(fieldNames[fName:], ", ")+"); the header has: "+headerList(header))
		fields = append(fields, "sku")
	}
	for _, x := range conflicts {
		msg = append(msg, fmt.Sprintf("columns %d %s and %d %s both map to %s", x.first+1, quote(header[x.first]), x.second+1, quote(header[x.second]), fieldNames[x.id]))
		fields = append(fields, fieldNames[x.id])
	}
	if len(msg) == 0 {
		return c, nil
	}
	return nil, failure.New(failure.SchemaMismatch, strings.Join(fields, ","), "%s", strings.Join(msg, "; "))
}

// headerList renders a header for a message, cut after 20 columns.
func headerList(h []string) string {
	const limit = 20
	var b strings.Builder
	for i, n := range h {
		if i == limit {
			fmt.Fprintf(&b, ", … (%d columns)", len(h))
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quote(n))
	}
	if len(h) == 0 {
		return "(no columns)"
	}
	return b.String()
}

// Names resolves the keys of one JSON Lines object. There is no required
// check here: a missing required key is that row's MissingField (in the
// modes that need required fields, see Header). Two keys
// mapping to one field make every row using these Columns fail with
// SchemaMismatch. Results are cached by key set, so objects with the same
// keys cost one map lookup.
func (v *Validator) Names(names []string) *Columns {
	var buf [512]byte
	key := buf[:0]
	for _, n := range names {
		key = binary.AppendUvarint(key, uint64(len(n)))
		key = append(key, n...)
	}
	if m := v.cache.Load(); m != nil {
		if c, ok := (*m)[string(key)]; ok {
			return c
		}
	}
	c, conflicts := v.resolve(names)
	if len(conflicts) > 0 {
		var fields, msg []string
		for _, x := range conflicts {
			msg = append(msg, fmt.Sprintf("keys %s and %s both map to %s", quote(names[x.first]), quote(names[x.second]), fieldNames[x.id]))
			fields = append(fields, fieldNames[x.id])
		}
		c.err = failure.New(failure.SchemaMismatch, strings.Join(fields, ","), "%s", strings.Join(msg, "; "))
	}
	v.cacheMu.Lock()
	defer v.cacheMu.Unlock()
	var m map[string]*Columns
	if old := v.cache.Load(); old != nil {
		if len(*old) >= maxCachedNames {
			return c
		}
		if prev, ok := (*old)[string(key)]; ok {
			return prev // another goroutine resolved the same keys meanwhile
		}
		m = maps.Clone(*old)
	} else {
		m = map[string]*Columns{}
	}
	m[string(key)] = c
	v.cache.Store(&m)
	return c
}

// problem is one failed check of a row.
type problem struct {
	id     fieldID
	reason failure.Reason
	value  string
	why    string
}

// Validate checks one row whose cells are aligned with the names c was
// resolved from (missing trailing cells count as empty, extra cells are
// ignored) and returns the product, with the provenance fields left for the
// caller. Every cell is trimmed of spaces (NBSP and U+3000 included); an
// empty cell gets the field's default, or is a MissingField when the field is
// required. The SKU is normalised by fields.sku.normalize (trim, case, NFKC)
// before its checks, so the product's SKU, which the uniqueness check and
// the catalog compare, is the normalised one. Under formula_text: refuse, a
// text field (string or enum) holding formula text (isFormula) is
// InvalidValue.
//
// A field without a column (Present lists those with one) is not checked:
// it takes its default, which the sink uses only when the write creates the
// product, and is never "required but empty" - except that the modes that
// may create products (upsert, replace, create-only) still need every
// required field without a default, so a JSON Lines object without such a
// key is that field's MissingField (a CSV header without the column is
// rejected by Header). In delete mode only the sku is read; an update-mode
// object with no field besides sku is a SchemaMismatch.
//
// A row that fails returns one *failure.ImportError: the first problem in
// layer order (semantic, then business) and field order (that of the
// default profile's table in docs/invariants.md); its message names the field, the value and the rule, and lists the
// row's other problems ("; also: price: InvalidNumber, stock: OutOfRange").
//
// The product's strings share memory with values where they can (a price is
// reused when it is already canonical): Validate allocates only the texts it
// has to rewrite and the image URL list.
func (v *Validator) Validate(c *Columns, values []string) (catalog.Product, error) {
	var p catalog.Product
	err := v.ValidateInto(&p, c, values)
	return p, err
}

// ValidateInto is Validate storing the product in *dst (the zero Product
// when the row fails) instead of returning it: the shard worker validates
// into its chunk's products, without copying each product twice more.
func (v *Validator) ValidateInto(dst *catalog.Product, c *Columns, values []string) error {
	*dst = catalog.Product{}
	p := dst
	if c == nil {
		return failure.New(failure.Internal, "", "profile: Validate called without Columns")
	}
	if c.err != nil {
		return c.err
	}
	mode := v.p.writeMode
	if mode == modeUpdate && c.pos[fSKU] >= 0 && len(v.Present(c)) == 0 {
		return failure.New(failure.SchemaMismatch, "sku", "write_mode update needs at least one field besides sku; the row has only %s", strings.Join(slices.Sorted(maps.Keys(c.mapping)), ", "))
	}
	var probs []problem // allocated only for a failing row
	for id := range numFields {
		r := v.rules[id]
		if mode == modeDelete && id != fSKU {
			// A delete reads only the sku; its other fields are the
			// defaults (what a newer creating write that the delete
			// arrives after has set, decision 17).
			if r.hasDefault {
				setField(p, id, defaultValue(r))
			}
			continue
		}
		absent := c.pos[id] < 0
		if absent && id != fSKU && !(needsRequired(mode) && r.required && !r.hasDefault) {
			// No column: not checked, and not "required but empty". The
			// default (if any) is what a write that creates the product
			// stores.
			if r.hasDefault {
				setField(p, id, defaultValue(r))
			}
			continue
		}
		cell := c.cell(id, values)
		if id == fSKU && cell != "" && r.norm != defaultNormalize {
			cell = r.norm.apply(c.raw(id, values))
		}
		var val value
		if cell != "" {
			var reason failure.Reason
			var why, bad string
			if v.formula && (r.kind == typeString || r.kind == typeEnum) {
				if lead, ok := isFormula(cell); ok {
					probs = append(probs, problem{id, failure.InvalidValue, cell, fmt.Sprintf("is formula text (it starts with %q), which the profile refuses (formula_text: refuse)", lead)})
					continue
				}
			}
			if val, reason, why, bad = r.check(cell); reason != "" {
				probs = append(probs, problem{id, reason, bad, why})
				continue
			}
			if r.kind == typeURLList && len(val.list) == 0 {
				cell = "" // only separators
			}
		}
		if cell == "" {
			switch {
			case r.hasDefault:
				val = defaultValue(r)
			case r.required || id == fSKU && mode == modeDelete:
				probs = append(probs, problem{id, failure.MissingField, "", whyRequired})
				continue
			}
		}
		setField(p, id, val)
	}
	// Business layer: only on values that passed the semantic checks.
	if v.banned != nil && p.Category != "" {
		if _, bad := lookupFold(v.banned, p.Category); bad {
			probs = append(probs, problem{fCategory, failure.BannedCategory, p.Category, whyBanned})
		}
	}
	if len(probs) > 0 {
		*dst = catalog.Product{}
		return rowError(probs)
	}
	p.Present = c.present
	if mode == modeDelete {
		p.Present = catalog.NoFields
	}
	return nil
}

// defaultValue is r's default, with a list of its own.
func defaultValue(r *rule) value {
	val := r.def
	if val.list != nil {
		val.list = slices.Clone(val.list)
	}
	return val
}

// setField stores val as field id of p.
func setField(p *catalog.Product, id fieldID, val value) {
	switch id {
	case fSKU:
		p.SKU = val.s
	case fName:
		p.Name = val.s
	case fCategory:
		p.Category = val.s
	case fBrand:
		p.Brand = val.s
	case fPrice:
		p.Price = val.s
	case fCurrency:
		p.Currency = val.s
	case fStock:
		p.Stock = val.n
	case fStatus:
		p.Status = val.s
	case fDescription:
		p.Description = val.s
	case fImageURLs:
		p.ImageURLs = val.list
	}
}

// rowError is the one error of a failed row: the first problem, naming the
// others. Problems arrive in layer order, then field order.
func rowError(probs []problem) *failure.ImportError {
	first := probs[0]
	name := fieldNames[first.id]
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte(' ')
	if first.reason != failure.MissingField {
		b.WriteString(quote(first.value))
		b.WriteByte(' ')
	}
	b.WriteString(first.why)
	for i, o := range probs[1:] {
		if i == 0 {
			b.WriteString("; also: ")
		} else {
			b.WriteString(", ")
		}
		b.WriteString(fieldNames[o.id])
		b.WriteString(": ")
		b.WriteString(string(o.reason))
	}
	return &failure.ImportError{Layer: first.reason.Layer(), Reason: first.reason, Field: name, Message: b.String()}
}

// cell is field id's trimmed cell in values, "" when the file has no such
// column or the row is short.
func (c *Columns) cell(id fieldID, values []string) string { return trimCell(c.raw(id, values)) }

// raw is field id's cell in values as the file has it.
func (c *Columns) raw(id fieldID, values []string) string {
	if i := c.pos[id]; i >= 0 && i < len(values) {
		return values[i]
	}
	return ""
}
