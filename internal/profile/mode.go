package profile

import (
	"errors"
	"strings"

	"github.com/catalog-import/catalog-import/internal/catalog"
	"github.com/catalog-import/catalog-import/internal/failure"
)

// This file holds what the write mode changes on the profile side: which
// columns a header needs, and which fields a row carries into its write.
// The sink applies the mode to the catalog (catalog.Sink).

// The write modes, by their catalog names.
const (
	modeUpsert     = catalog.Upsert
	modeReplace    = catalog.Replace
	modeUpdate     = catalog.Update
	modeCreateOnly = catalog.CreateOnly
	modeDelete     = catalog.Delete
)

// writeModeNames lists the write modes in the order the docs give them.
func writeModeNames() []string {
	return []string{string(modeUpsert), string(modeReplace), string(modeUpdate), string(modeCreateOnly), string(modeDelete)}
}

// parseWriteMode reads a profile's write_mode (catalog.ParseWriteMode:
// "" is upsert), returning the problem's text for the path write_mode.
func parseWriteMode(s string) (catalog.WriteMode, error) {
	m, err := catalog.ParseWriteMode(strings.TrimSpace(s))
	if ie, ok := failure.As(err); ok {
		return catalog.Upsert, errors.New(ie.Message)
	}
	return m, err
}

// needsRequired reports whether rows of mode must carry every required
// field: upsert, replace and create-only may create products; update changes
// only the fields a file has, delete reads only the sku.
func needsRequired(mode catalog.WriteMode) bool {
	return mode != modeUpdate && mode != modeDelete
}

// WriteModeSummary says in one line what write mode m does with a row, for
// people (importctl profile).
func WriteModeSummary(m catalog.WriteMode) string {
	switch m {
	case modeUpsert:
		return "creates missing products; changes only the fields whose columns the file has (defaults only at creation)"
	case modeReplace:
		return "the product becomes the row: fields without a column take their defaults"
	case modeUpdate:
		return "existing SKUs only (UnknownSKU otherwise), only the fields whose columns the file has; the header needs sku and one field"
	case modeCreateOnly:
		return "creates missing products; a SKU another upload holds is SKUExists"
	case modeDelete:
		return "removes the listed SKUs (only the sku column is read); they stay removed against any older upload"
	}
	return "unknown write mode"
}

// catalogField is the catalog's stamped field for profile field id (not
// sku): the catalog numbers the same fields in the same order, from name.
func catalogField(id fieldID) catalog.Field { return catalog.Field(id - fName) }

// Present returns the product fields (sku excluded) that rows resolved with
// c carry into their write under the validator's write mode, in the order of
// Fields: every field with a column, none in delete mode. A write changes
// only these fields of an existing product; the others hold defaults, used
// only when the write creates the product. Validate sets the same set as
// the product's Present.
func (v *Validator) Present(c *Columns) []string {
	var out []string
	if c == nil || v.p.writeMode == modeDelete {
		return out
	}
	for id := fName; id < numFields; id++ {
		if c.pos[id] >= 0 {
			out = append(out, fieldNames[id])
		}
	}
	return out
}
