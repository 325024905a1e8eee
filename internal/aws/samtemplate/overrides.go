package samtemplate

import (
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ParameterOverrides parses the values of --parameter-overrides as sam
// local invoke reads them and checks each against the template's
// declaration as CloudFormation would at deploy time. A value holds pairs
// separated by spaces, each Name=value or ParameterKey=Name,ParameterValue=value;
// a value with spaces is double-quoted ("a b", with \" and \\ inside). A
// later pair for the same name wins. The result is Refs.Parameters.
func (t *Template) ParameterOverrides(values []string) (map[string]string, error) {
	out := map[string]string{}
	for _, v := range values {
		pairs, err := splitOverrides(v)
		if err != nil {
			return nil, err
		}
		for _, p := range pairs {
			if err := t.checkParameter(p[0], p[1]); err != nil {
				return nil, err
			}
			out[p[0]] = p[1]
		}
	}
	return out, nil
}

// splitOverrides splits one --parameter-overrides value into (name, value)
// pairs: SAM's grammar (samcli/cli/types.py, CfnParameterOverridesType),
// where a name is letters and digits and a value is a double-quoted string
// or a run of characters up to the next space.
func splitOverrides(s string) ([][2]string, error) {
	var out [][2]string
	for {
		s = strings.TrimLeft(s, " \t\n")
		if s == "" {
			return out, nil
		}
		name, after, ok := strings.Cut(s, "=")
		want := "Name=value (or ParameterKey=Name,ParameterValue=value)"
		if rest, long := strings.CutPrefix(s, "ParameterKey="); long {
			name, after, ok = strings.Cut(rest, ",ParameterValue=")
			want = "ParameterKey=Name,ParameterValue=value"
		}
		if !ok || !validName(name) {
			return nil, fmt.Errorf("%q: want %s", firstWord(s), want)
		}
		value, rest, err := overrideValue(after)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out, s = append(out, [2]string{name, value}), rest
	}
}

// overrideValue reads a value at the start of s: a double-quoted string
// (backslash escapes the next character) or everything up to a blank. It
// returns the value and what follows it.
func overrideValue(s string) (value, rest string, err error) {
	if !strings.HasPrefix(s, `"`) {
		i := strings.IndexAny(s, " \t\n")
		if i < 0 {
			return s, "", nil
		}
		return s[:i], s[i:], nil
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '"':
			rest = s[i+1:]
			if rest != "" && !strings.ContainsRune(" \t\n", rune(rest[0])) {
				return "", "", fmt.Errorf("text %q right after the closing quote", firstWord(rest))
			}
			return b.String(), rest, nil
		default:
			b.WriteByte(c)
		}
	}
	return "", "", fmt.Errorf("the quoted value %s has no closing quote", s)
}

func validName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
			return false
		}
	}
	return true
}

func firstWord(s string) string {
	if i := strings.IndexAny(s, " \t\n"); i >= 0 {
		return s[:i]
	}
	return s
}

// ParameterNames returns the template's parameters, sorted.
func (t *Template) ParameterNames() []string {
	return slices.Sorted(maps.Keys(t.decls))
}

// checkParameter checks value against parameter name's declaration:
// Type Number, MinValue, MaxValue, AllowedValues, AllowedPattern,
// MinLength and MaxLength, as CloudFormation does.
func (t *Template) checkParameter(name, value string) error {
	d, ok := t.decls[name]
	if !ok {
		return fmt.Errorf("the template has no parameter %s (it has %s)", name, strings.Join(t.ParameterNames(), ", "))
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("parameter %s=%q: %s", name, value, fmt.Sprintf(format, args...))
	}
	limit := func(key string) (float64, bool) {
		f, err := strconv.ParseFloat(scalar(get(d, key)), 64)
		return f, err == nil
	}
	if scalar(get(d, "Type")) == "Number" {
		n, err := strconv.ParseFloat(value, 64)
		if err != nil || math.IsInf(n, 0) || math.IsNaN(n) {
			return bad("want a number (Type: Number)")
		}
		if lo, ok := limit("MinValue"); ok && n < lo {
			return bad("want at least %s (MinValue)", scalar(get(d, "MinValue")))
		}
		if hi, ok := limit("MaxValue"); ok && n > hi {
			return bad("want at most %s (MaxValue)", scalar(get(d, "MaxValue")))
		}
	}
	if allowed := get(d, "AllowedValues"); allowed != nil {
		var vals []string
		for _, a := range allowed.Content {
			vals = append(vals, scalar(a))
		}
		if !slices.Contains(vals, value) {
			return bad("want one of %s (AllowedValues)", strings.Join(vals, ", "))
		}
	}
	if p := scalar(get(d, "AllowedPattern")); p != "" {
		re, err := regexp.Compile(`^(?:` + p + `)$`)
		if err != nil {
			return fmt.Errorf("parameter %s: AllowedPattern %q: %w", name, p, err)
		}
		if !re.MatchString(value) {
			return bad("does not match %s (AllowedPattern)", p)
		}
	}
	if lo, ok := limit("MinLength"); ok && float64(utf8.RuneCountInString(value)) < lo {
		return bad("want at least %s characters (MinLength)", scalar(get(d, "MinLength")))
	}
	if hi, ok := limit("MaxLength"); ok && float64(utf8.RuneCountInString(value)) > hi {
		return bad("want at most %s characters (MaxLength)", scalar(get(d, "MaxLength")))
	}
	return nil
}
