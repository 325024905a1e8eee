package profile

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/text"
	"github.com/govalues/decimal"
	"golang.org/x/text/currency"
)

// rule is the compiled rule of one field. It is immutable once compiled, so
// a Validator can share it between goroutines.
type rule struct {
	id       fieldID
	name     string
	kind     string
	required bool

	hasDefault bool
	def        value

	minLen, maxLen int // -1 = none
	re             *matcher
	enum           map[string]string // fold key -> stored spelling
	hasMin, hasMax bool
	dmin, dmax     decimal.Decimal
	imin, imax     int64
	scale          int
	sep            string
	norm           normalize // sku: applied to the cell before the checks

	// Reasons given in messages, prepared once.
	whyLength, whyPattern, whyEnum, whyMin, whyMax, whyScale string
}

// value is one checked cell, as the product stores it.
type value struct {
	s    string
	n    int64
	list []string
}

// Reasons given in messages that do not depend on the rule.
const (
	whyRequired = "is required but empty"
	whyNumber   = "is not a number"
	whyInteger  = "is not an integer"
	whyDigits   = "has more than 19 significant digits"
	whyRange    = "is out of the range of decimal numbers"
	whyInt64    = "is too large for an integer"
	whyCurrency = "is not an ISO 4217 currency code"
	whyURL      = "is not an absolute http(s) URL with a host"
	whyBanned   = "is a banned category"
)

// compile prepares r from its validated spec.
func (r *rule) compile(s spec) {
	r.minLen, r.maxLen = s.MinLength, s.MaxLength
	switch {
	case r.minLen > 0 && r.maxLen >= 0:
		r.whyLength = fmt.Sprintf("must be %d to %d characters long", r.minLen, r.maxLen)
	case r.maxLen >= 0:
		r.whyLength = fmt.Sprintf("is longer than %d characters", r.maxLen)
	case r.minLen > 0:
		r.whyLength = fmt.Sprintf("is shorter than %d characters", r.minLen)
	}
	if r.re != nil {
		r.whyPattern = "does not match the pattern " + s.Pattern
	}
	if len(s.Enum) > 0 {
		r.enum = make(map[string]string, len(s.Enum))
		for _, e := range s.Enum {
			r.enum[foldKey(e)] = e
		}
		r.whyEnum = "is not one of " + strings.Join(s.Enum, ", ")
	}
	if s.Min != "" {
		r.hasMin, r.dmin = true, decimal.MustParse(s.Min)
		r.imin, _, _ = r.dmin.Int64(0)
		r.whyMin = "is below the minimum " + s.Min
	}
	if s.Max != "" {
		r.hasMax, r.dmax = true, decimal.MustParse(s.Max)
		r.imax, _, _ = r.dmax.Int64(0)
		r.whyMax = "is above the maximum " + s.Max
	}
	r.scale = s.Scale
	if r.scale >= 0 {
		r.whyScale = fmt.Sprintf("has more than %d decimals", r.scale)
	}
	r.sep = s.Separator
}

// defaultCheck checks a default text against the rule and, when it passes,
// keeps its checked value. It returns the problem, or "".
func (r *rule) defaultCheck(text string) string {
	v, reason, why, bad := r.check(text)
	if reason != "" {
		return fmt.Sprintf("%s %s", quote(bad), why)
	}
	r.hasDefault, r.def = true, v
	return ""
}

// check checks one trimmed, non-empty cell. On failure it returns the
// reason, why, and the bad value (the cell, or the bad item of a list).
func (r *rule) check(cell string) (v value, reason failure.Reason, why, bad string) {
	switch r.kind {
	case typeString, typeEnum:
		if r.minLen >= 0 || r.maxLen >= 0 {
			if !r.lengthOK(cell) {
				return v, failure.InvalidValue, r.whyLength, cell
			}
		}
		if r.re != nil && !r.re.MatchString(cell) {
			return v, failure.InvalidValue, r.whyPattern, cell
		}
		if r.enum != nil {
			e, ok := lookupFold(r.enum, cell)
			if !ok {
				return v, failure.InvalidValue, r.whyEnum, cell
			}
			cell = e
		}
		v.s = cell
	case typeDecimal:
		return r.checkDecimal(cell)
	case typeInteger:
		return r.checkInteger(cell)
	case typeCurrency:
		code, ok := parseCurrency(cell)
		if !ok {
			return v, failure.InvalidValue, whyCurrency, cell
		}
		if r.enum != nil {
			if _, ok := lookupFold(r.enum, code); !ok {
				return v, failure.InvalidValue, r.whyEnum, cell
			}
		}
		v.s = code
	case typeURLList:
		list, bad, ok := splitURLs(cell, r.sep)
		if !ok {
			return v, failure.InvalidValue, whyURL, bad
		}
		v.list = list
	}
	return v, "", "", ""
}

// lengthOK checks min_length and max_length in characters, counting only
// when the byte length cannot decide.
func (r *rule) lengthOK(s string) bool {
	n := len(s)
	if (r.maxLen < 0 || n <= r.maxLen) && (r.minLen <= 0 || n >= r.minLen*utf8.UTFMax) {
		return true
	}
	n = utf8.RuneCountInString(s)
	return (r.maxLen < 0 || n <= r.maxLen) && n >= r.minLen
}

// number is the shape of a numeric text: [sign] int [. frac] [e exp].
type number struct {
	neg       bool
	intEnd    int    // end of the sign and integer digits in the text
	frac      string // fraction digits without trailing zeros
	exp       bool   // has an exponent (then frac is not used)
	sigDigits int    // significant digits of int and frac (without exp)
}

// scanNumber reads s as a decimal number in the grammar of decimal.Parse.
func scanNumber(s string) (n number, ok bool) {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		n.neg = s[i] == '-'
		i++
	}
	start := i
	for i < len(s) && s[i] == '0' {
		i++
	}
	lead := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	digits := i - start
	n.intEnd = i
	n.sigDigits = i - lead
	if i < len(s) && s[i] == '.' {
		i++
		f := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		digits += i - f
		n.frac = strings.TrimRight(s[f:i], "0")
		if n.sigDigits == 0 {
			n.sigDigits = len(strings.TrimLeft(n.frac, "0"))
		} else {
			n.sigDigits += len(n.frac)
		}
	}
	if digits == 0 {
		return n, false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		e := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == e {
			return n, false
		}
		n.exp = true
	}
	return n, i == len(s)
}

func (r *rule) checkDecimal(cell string) (v value, reason failure.Reason, why, bad string) {
	n, ok := scanNumber(cell)
	if !ok {
		return v, failure.InvalidNumber, whyNumber, cell
	}
	if !n.exp && len(n.frac) > r.scale {
		return v, failure.InvalidValue, r.whyScale, cell
	}
	if n.sigDigits > decimal.MaxPrec {
		return v, failure.OutOfRange, whyDigits, cell
	}
	d, err := decimal.Parse(cell)
	if err != nil {
		return v, failure.OutOfRange, whyRange, cell
	}
	if d.MinScale() > r.scale {
		return v, failure.InvalidValue, r.whyScale, cell
	}
	if r.hasMin && d.Cmp(r.dmin) < 0 {
		return v, failure.OutOfRange, r.whyMin, cell
	}
	if r.hasMax && d.Cmp(r.dmax) > 0 {
		return v, failure.OutOfRange, r.whyMax, cell
	}
	switch {
	case canonicalDecimal(cell, r.scale):
		v.s = cell
	case !n.exp:
		v.s = decimalText(cell, n, r.scale)
	default:
		v.s = padDecimal(d.Trim(0).String(), r.scale)
	}
	return v, "", "", ""
}

// canonicalDecimal reports whether s already is the canonical text of a
// non-negative decimal with exactly scale decimals ("0.50", "12.00", "7").
func canonicalDecimal(s string, scale int) bool {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 || (s[0] == '0' && i > 1) {
		return false
	}
	if scale == 0 {
		return i == len(s)
	}
	if len(s) != i+1+scale || s[i] != '.' {
		return false
	}
	for _, c := range []byte(s[i+1:]) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// decimalText is the canonical text, with exactly scale decimals, of s, a
// number without exponent of at most 19 significant digits and at most scale
// significant decimals, scanned as n. It allocates the result only.
func decimalText(s string, n number, scale int) string {
	var buf [48]byte
	b := buf[:0]
	i := 0
	if s[0] == '+' || s[0] == '-' {
		i = 1
	}
	digits := strings.TrimLeft(s[i:n.intEnd], "0")
	if n.neg && (digits != "" || n.frac != "") {
		b = append(b, '-')
	}
	if digits == "" {
		b = append(b, '0')
	}
	b = append(b, digits...)
	if scale > 0 {
		b = append(b, '.')
		b = append(b, n.frac...)
		for k := len(n.frac); k < scale; k++ {
			b = append(b, '0')
		}
	}
	return string(b)
}

// padDecimal pads a decimal text without exponent to exactly scale decimals
// (it never has more).
func padDecimal(s string, scale int) string {
	if scale == 0 {
		return s
	}
	have := 0
	if i := strings.IndexByte(s, '.'); i >= 0 {
		have = len(s) - i - 1
	} else {
		s += "."
	}
	return s + strings.Repeat("0", scale-have)
}

func (r *rule) checkInteger(cell string) (v value, reason failure.Reason, why, bad string) {
	n, ok := scanNumber(cell)
	if !ok {
		return v, failure.InvalidNumber, whyNumber, cell
	}
	var x int64
	if !n.exp {
		if n.frac != "" {
			return v, failure.InvalidNumber, whyInteger, cell
		}
		digits := cell[:n.intEnd]
		if digits == "" || digits == "+" || digits == "-" {
			x = 0 // ".0", "-.00"
		} else {
			var err error
			if x, err = strconv.ParseInt(digits, 10, 64); err != nil {
				return v, failure.OutOfRange, whyInt64, cell
			}
		}
	} else {
		if n.sigDigits > decimal.MaxPrec {
			return v, failure.OutOfRange, whyDigits, cell
		}
		d, err := decimal.Parse(cell)
		if err != nil {
			return v, failure.OutOfRange, whyRange, cell
		}
		if !d.IsInt() {
			return v, failure.InvalidNumber, whyInteger, cell
		}
		var ok bool
		if x, _, ok = d.Int64(0); !ok {
			return v, failure.OutOfRange, whyInt64, cell
		}
	}
	if r.hasMin && x < r.imin {
		return v, failure.OutOfRange, r.whyMin, cell
	}
	if r.hasMax && x > r.imax {
		return v, failure.OutOfRange, r.whyMax, cell
	}
	v.n = x
	return v, "", "", ""
}

// parseCurrency returns the upper-case ISO 4217 code of s (any case).
func parseCurrency(s string) (string, bool) {
	if len(s) != 3 {
		return "", false
	}
	u, err := currency.ParseISO(s)
	if err != nil {
		return "", false
	}
	return u.String(), true
}

// splitURLs splits a url_list cell; empty items are skipped. It returns the
// first bad item when one is not an absolute http(s) URL with a host.
func splitURLs(cell, sep string) (list []string, bad string, ok bool) {
	n := strings.Count(cell, sep) + 1
	if n == 1 {
		if !validURL(cell) {
			return nil, cell, false
		}
		return []string{cell}, "", true
	}
	list = make([]string, 0, n)
	for item := range strings.SplitSeq(cell, sep) {
		item = trimCell(item)
		if item == "" {
			continue
		}
		if !validURL(item) {
			return nil, item, false
		}
		list = append(list, item)
	}
	return list, "", true
}

// validURL reports whether s is an absolute http or https URL with a host
// and no spaces or control characters.
func validURL(s string) bool {
	if schemeLen(s) == 0 {
		return false
	}
	i := 0
	for ; i+8 <= len(s); i += 8 { // eight printable ASCII bytes at a time
		if w := text.Word(s, i); text.HasLess(w, 0x21) || text.HasMore(w, 0x7e) {
			break
		}
	}
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if c <= ' ' || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, w := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || unicode.IsSpace(r) || unicode.IsControl(r) {
			return false
		}
		i += w
	}
	if ok, decided := fastURL(s); decided {
		return ok
	}
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" || u.Hostname() == "" {
		return false
	}
	return u.Scheme == "http" || u.Scheme == "https"
}

// fastURL decides the common case of validURL without allocating: a host of
// letters, digits, '.', '-', '_', '~' or non-ASCII, an optional numeric port,
// and no '%' anywhere. Anything else is left to url.Parse (decided false).
// s has no spaces or control characters.
func fastURL(s string) (ok, decided bool) {
	rest := s[schemeLen(s):]
	end := len(rest)
	for i := 0; i < len(rest); i++ {
		if c := rest[i]; c == '/' || c == '?' || c == '#' {
			end = i
			break
		}
	}
	host, tail := rest[:end], rest[end:]
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		for j := i + 1; j < len(host); j++ {
			if host[j] < '0' || host[j] > '9' {
				return false, false
			}
		}
		host = host[:i]
	}
	if host == "" {
		return false, true
	}
	for i := 0; i < len(host); i++ {
		if !hostByte[host[i]] {
			return false, false
		}
	}
	if strings.IndexByte(tail, '%') >= 0 {
		return false, false
	}
	return true, true
}

// hostByte says which bytes fastURL takes in a host: letters, digits, '.',
// '-', '_', '~' and any byte of a non-ASCII character.
var hostByte = func() (t [256]bool) {
	for c := range t {
		t[c] = c >= utf8.RuneSelf || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' || c == '~'
	}
	return t
}()

// schemeLen is the length of a leading "http://" or "https://" (any case),
// or 0.
func schemeLen(s string) int {
	if len(s) < len("http://") || s[0]|0x20 != 'h' || s[1]|0x20 != 't' || s[2]|0x20 != 't' || s[3]|0x20 != 'p' {
		return 0
	}
	switch {
	case s[4] == ':' && s[5] == '/' && s[6] == '/':
		return len("http://")
	case len(s) >= len("https://") && s[4]|0x20 == 's' && s[5] == ':' && s[6] == '/' && s[7] == '/':
		return len("https://")
	}
	return 0
}

// trimCell trims spaces from a cell: ASCII white space and every Unicode
// space, which includes NBSP (U+00A0) and the full-width space (U+3000)
// common in Excel files.
func trimCell(s string) string { return strings.TrimSpace(s) }

// foldKey is the case-insensitive key of a header, enum value or category.
func foldKey(s string) string { return strings.ToLower(s) }

// lookupFold looks s up in a map keyed by foldKey without allocating for
// short ASCII texts (and for texts already in lower case).
func lookupFold[V any](m map[string]V, s string) (V, bool) {
	var buf [64]byte
	if len(s) <= len(buf) {
		ascii := true
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c >= utf8.RuneSelf {
				ascii = false
				break
			}
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			buf[i] = c
		}
		if ascii {
			v, ok := m[string(buf[:len(s)])]
			return v, ok
		}
	}
	v, ok := m[foldKey(s)]
	return v, ok
}

// quote quotes a value for a message, cut to about 60 characters.
func quote(s string) string {
	const limit = 60
	if utf8.RuneCountInString(s) > limit {
		i, n := 0, 0
		for i = range s {
			if n == limit-1 {
				break
			}
			n++
		}
		s = s[:i] + "…"
	}
	return strconv.Quote(s)
}

// errNotCompiled is returned for a Profile that did not come from Parse.
var errNotCompiled = errors.New("profile: not a parsed profile (use Default, Parse or Load)")
