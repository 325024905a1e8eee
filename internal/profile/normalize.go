package profile

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// This file holds two rules on text cells: how a SKU is normalised before
// it is checked and compared (fields.sku.normalize), and whether formula
// text is refused in text fields (formula_text).

// SKU cases (normalize.case).
const (
	casePreserve = "preserve"
	caseUpper    = "upper"
	caseLower    = "lower"
)

// normalize is the effective normalize rule of the sku: what is done to a
// SKU cell before its checks, so that the SKU the uniqueness check
// (DuplicateSKU) and the catalog compare is the normalised one.
type normalize struct {
	Trim bool   // remove leading and trailing spaces (NBSP and U+3000 included)
	Case string // preserve, upper or lower
	NFKC bool   // Unicode NFKC: full-width ＡＢＣ１ is ABC1, ① is 1
}

// defaultNormalize is the rule of a profile that says nothing: trim only,
// what every cell gets.
var defaultNormalize = normalize{Trim: true, Case: casePreserve}

// buildNormalize validates a normalize entry merged onto the default's.
func buildNormalize(r *rawNormalize, path string, ps *problems) normalize {
	n := defaultNormalize
	if r.Trim != nil {
		n.Trim = *r.Trim
	}
	if r.NFKC != nil {
		n.NFKC = *r.NFKC
	}
	if r.Case != nil {
		switch c := strings.ToLower(trimCell(*r.Case)); c {
		case casePreserve, caseUpper, caseLower:
			n.Case = c
		default:
			ps.add(path+".case", "unknown case %q (preserve, upper or lower)", *r.Case)
		}
	}
	return n
}

// apply normalises a SKU cell (untrimmed): NFKC, then trimming, then case.
// It returns cell itself when nothing changes.
func (n normalize) apply(cell string) string {
	s := cell
	if n.NFKC {
		if !utf8.ValidString(s) {
			// NFKC leaves a character after an invalid byte as it is, and
			// a case mapping turns the byte into U+FFFD, after which the
			// next pass would compose it ("\xf4ŉ" -> "\uFFFDŉ" ->
			// "\uFFFDʼn"): replace invalid bytes first, as the case
			// mapping would. (Rows of invalid UTF-8 fail InvalidEncoding
			// before they get here; this keeps apply a fixed point.)
			s = strings.ToValidUTF8(s, string(utf8.RuneError))
		}
		s = norm.NFKC.String(s)
	}
	if n.Trim {
		s = trimCell(s)
	}
	switch n.Case {
	case caseUpper:
		s = strings.ToUpper(s)
	case caseLower:
		s = strings.ToLower(s)
	}
	if n.NFKC && len(s) != len(cell) {
		// A case mapping can leave text that NFKC changes again (rare
		// compatibility characters); one more pass makes the result a
		// fixed point, so a normalised SKU normalises to itself.
		s = norm.NFKC.String(s)
	}
	return s
}

// formula_text values.
const (
	formulaAllow  = "allow"
	formulaRefuse = "refuse"
)

// validateFormulaText checks formula_text (absent: allow).
func validateFormulaText(raw *rawProfile, ps *problems) string {
	if raw.FormulaText == nil {
		return formulaAllow
	}
	switch v := strings.ToLower(trimCell(*raw.FormulaText)); v {
	case formulaAllow, formulaRefuse:
		return v
	}
	ps.add("formula_text", "must be allow or refuse, not %q", *raw.FormulaText)
	return formulaAllow
}

// isFormula reports whether a text cell is formula text: a spreadsheet that
// opens an export holding it would evaluate it. After leading spaces (a
// tab or CR included), it starts with = or @, or with + or - and is not a
// number ("-5" and "+86" are numbers; "- 100% cotton", "+SUM(1;2)" and
// "-2+3+cmd|' /C calc'!A0" are not). It returns the leading character.
func isFormula(cell string) (lead byte, ok bool) {
	s := strings.TrimLeftFunc(cell, unicode.IsSpace)
	if s == "" {
		return 0, false
	}
	switch s[0] {
	case '=', '@':
		return s[0], true
	case '+', '-':
		if _, num := scanNumber(s); !num {
			return s[0], true
		}
	}
	return 0, false
}
