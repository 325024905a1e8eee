// Package profile maps the columns of a source file to product fields and
// holds the row rules of an import: required fields, types, ranges, lengths,
// enums, patterns, banned categories, the unique key and the write mode.
//
// A profile is a YAML file (see default.yaml, the built-in "default" profile,
// for every key). A profile only says what differs from the default profile:
// each field it mentions is merged key by key onto the default's entry. Parse
// turns a file into a Profile; Compile turns a Profile into a Validator that
// resolves a header (Header, Names) and checks rows (Validate) concurrently.
//
// The rule version of a profile (RuleVersion) is a hash of its canonical
// content (Canonical: defaults merged, keys sorted). A batch stores the
// canonical profile it ran with, and the rule version is stamped on every
// failure record, so a failure can always be traced to the exact rules that
// produced it.
package profile

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"sync"

	"github.com/catalog-import/catalog-import/internal/catalog"
)

//go:embed default.yaml
var defaultYAML []byte

// DefaultYAML returns the text of the built-in default profile, a starting
// point users can copy (importctl prints it).
func DefaultYAML() []byte { return slices.Clone(defaultYAML) }

// MaxSize is the largest profile file Load reads.
const MaxSize = 1 << 20

// Profile is a parsed profile with the default profile's rules merged in and
// every rule validated. It is immutable and safe for concurrent use.
type Profile struct {
	name          string
	writeMode     catalog.WriteMode
	maxErrorRatio float64
	// maxQuotedLines and maxQuotedBytes are the unbalanced-quote limits
	// (0: the scanner's defaults).
	maxQuotedLines int
	maxQuotedBytes int
	formulaText    string // formula_text: allow or refuse
	banned         []string
	sheets         []string
	specs          [numFields]spec
	rules          [numFields]*rule
	weight         *weightSpec // nil: no weight declared
	canonical      []byte
	version        string
}

var (
	defaultRaw = sync.OnceValue(func() *rawProfile {
		var ps problems
		raw := decodeRaw(defaultYAML, &ps)
		if len(ps) > 0 {
			panic("profile: built-in default.yaml: " + errors.Join(ps...).Error())
		}
		return raw
	})
	defaultProfile = sync.OnceValue(func() *Profile {
		p, err := parse(defaultYAML, nil)
		if err != nil {
			panic("profile: built-in default.yaml: " + err.Error())
		}
		return p
	})
)

// Default returns the built-in default profile: the standard product
// columns of docs/invariants.md with the Chinese header aliases, write mode upsert, no
// banned categories and no max_error_ratio.
func Default() *Profile { return defaultProfile() }

// Parse reads a profile from YAML and merges it onto the default profile:
// fields it does not mention keep the default's rules, and a field it
// mentions keeps every key it does not give (a key it gives replaces the
// default's, columns included; when it changes a field's type, the default's
// keys that do not apply to the new type are dropped).
//
// Unknown keys are errors. Every problem names its path (for example
// "fields.price.scale: must be >= 0"), and all problems are reported at once,
// joined with errors.Join.
func Parse(data []byte) (*Profile, error) { return parse(data, defaultRaw()) }

// Load reads and parses the profile file at path. Its errors begin
// "profile <path>:" (callers need not name the file again).
func Load(path string) (*Profile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("profile %s: %w", path, unpath(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("profile %s: %w", path, unpath(err))
	}
	if len(data) > MaxSize {
		return nil, fmt.Errorf("profile %s: larger than %d bytes", path, MaxSize)
	}
	p, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("profile %s:\n%w", path, err)
	}
	return p, nil
}

// parse parses data merged onto base (nil: data must define every field).
func parse(data []byte, base *rawProfile) (*Profile, error) {
	var ps problems
	raw := decodeRaw(data, &ps)
	if raw == nil {
		return nil, errors.Join(ps...)
	}
	p := &Profile{}
	var mode string
	p.name, mode, p.maxErrorRatio, p.banned = validateTop(raw, &ps)
	p.writeMode = catalog.WriteMode(mode)
	p.maxQuotedLines, p.maxQuotedBytes = validateQuoteLimits(raw, &ps)
	p.formulaText = validateFormulaText(raw, &ps)
	p.sheets = validateSheets(raw, &ps)
	for id := range numFields {
		var b *rawField
		if base != nil {
			b = base.Fields[id]
		} else if raw.Fields[id] == nil {
			ps.add("fields."+fieldNames[id], "missing")
			continue
		}
		p.specs[id], p.rules[id] = buildSpec(id, merge(b, raw.Fields[id]), &ps)
	}
	checkAliases(&p.specs, &ps)
	if raw.Weight != nil {
		p.weight = buildWeight(raw.Weight, &p.specs, &ps)
	}
	if len(ps) > 0 {
		return nil, errors.Join(ps...)
	}
	p.canonical = canonical(p)
	sum := sha256.Sum256(p.canonical)
	p.version = hex.EncodeToString(sum[:])[:12]
	return p, nil
}

// Name returns the profile's name.
func (p *Profile) Name() string { return p.name }

// WriteMode returns how products that another batch wrote are treated.
func (p *Profile) WriteMode() catalog.WriteMode { return p.writeMode }

// MaxErrorRatio returns the failed/processed ratio above which a batch is
// stopped (ABORTED); 0 means none.
func (p *Profile) MaxErrorRatio() float64 { return p.maxErrorRatio }

// QuoteLimits returns the profile's max_quoted_lines and max_quoted_bytes:
// how many line breaks and bytes a quoted csv/tsv cell may span before its
// opening quote is taken as unbalanced (record.Limits). Zero means the
// default (record.DefaultMaxQuotedLines, record.DefaultMaxQuotedBytes). The
// splitter and the worker read a file under the same limits, so they agree
// on its records.
func (p *Profile) QuoteLimits() (lines, bytes int) { return p.maxQuotedLines, p.maxQuotedBytes }

// RefusesFormulas reports whether the profile refuses formula text in text
// fields (formula_text: refuse): a cell a spreadsheet would evaluate, see
// Validator.Validate.
func (p *Profile) RefusesFormulas() bool { return p.formulaText == formulaRefuse }

// SKUNormalization describes how a SKU cell is normalised before it is
// checked and compared (fields.sku.normalize), as `importctl profile`
// shows it: "trim, case preserve, nfkc off" for the default.
func (p *Profile) SKUNormalization() string {
	n := p.specs[fSKU].Normalize
	trim, nfkc := "trim", "nfkc off"
	if !n.Trim {
		trim = "no trim"
	}
	if n.NFKC {
		nfkc = "nfkc on"
	}
	return trim + ", case " + n.Case + ", " + nfkc
}

// BannedCategories returns the banned categories (matched ignoring case),
// sorted.
func (p *Profile) BannedCategories() []string { return slices.Clone(p.banned) }

// UniqueSKU reports whether SKUs must be unique within a file (later rows
// with a SKU already seen are DuplicateSKU failures).
func (p *Profile) UniqueSKU() bool { return p.specs[fSKU].Unique }

// Columns returns the header names that match field (its own name first,
// then its aliases), or nil for an unknown field.
func (p *Profile) Columns(field string) []string {
	id, ok := fieldByName(field)
	if !ok {
		return nil
	}
	return append([]string{field}, p.specs[id].Columns...)
}

// Sheets returns the names of the workbook sheets to import (sorted), or
// nil: every visible sheet. Names match ignoring case and surrounding spaces.
func (p *Profile) Sheets() []string { return slices.Clone(p.sheets) }

// Canonical returns the canonical YAML of the effective profile: the default
// profile's rules merged in, aliases and banned categories deduplicated and
// sorted, keys sorted. Equal rules give equal bytes; a batch stores them.
// Parsing the canonical text gives the same profile back.
func (p *Profile) Canonical() []byte { return slices.Clone(p.canonical) }

// RuleVersion returns the first 12 hex digits of the SHA-256 of Canonical,
// the version stamped on every failure record.
func (p *Profile) RuleVersion() string { return p.version }

// Compile returns a Validator for the profile.
func (p *Profile) Compile() (*Validator, error) {
	if p == nil || p.version == "" {
		return nil, errNotCompiled
	}
	v := &Validator{p: p, formula: p.formulaText == formulaRefuse, rules: p.rules, aliases: map[string]fieldID{}}
	for id := range numFields {
		v.aliases[foldKey(fieldNames[id])] = id
		for _, c := range p.specs[id].Columns {
			v.aliases[foldKey(c)] = id
		}
	}
	if len(p.banned) > 0 {
		v.banned = make(map[string]struct{}, len(p.banned))
		for _, b := range p.banned {
			v.banned[foldKey(b)] = struct{}{}
		}
	}
	return v, nil
}

// unpath is the cause of a *fs.PathError, whose text would name the path a
// second time; errors.Is still sees fs.ErrNotExist through it.
func unpath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
