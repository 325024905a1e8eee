package profile

import (
	"regexp"
	"regexp/syntax"
	"unicode/utf8"
)

// matcher is a pattern, compiled once, with a fast path for the common
// shape of identifier patterns: an anchored sequence of character classes,
// each repeated a bounded or unbounded number of times, such as the default
// sku pattern ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$. The fast path matches
// greedily; a greedy match of the whole text is a match, and when the greedy
// attempt fails the regexp decides. So the result is always the regexp's.
type matcher struct {
	re    *regexp.Regexp
	items []classRepeat // nil: no fast path
}

// classRepeat is one element of a simple pattern: a rune class (sorted
// inclusive ranges, as regexp/syntax gives them), repeated min..max times
// (max -1: unbounded).
type classRepeat struct {
	ranges   []rune
	min, max int
}

func newMatcher(re *regexp.Regexp) *matcher {
	m := &matcher{re: re}
	tree, err := syntax.Parse(re.String(), syntax.Perl)
	if err == nil {
		m.items = simpleItems(tree)
	}
	return m
}

// MatchString reports whether s matches the pattern.
func (m *matcher) MatchString(s string) bool {
	if m.items != nil && m.greedy(s) {
		return true
	}
	return m.re.MatchString(s)
}

func (m *matcher) greedy(s string) bool {
	i := 0
	for _, it := range m.items {
		n := 0
		for (it.max < 0 || n < it.max) && i < len(s) {
			r, w := rune(s[i]), 1
			if r >= utf8.RuneSelf {
				r, w = utf8.DecodeRuneInString(s[i:])
			}
			if !inRanges(it.ranges, r) {
				break
			}
			i += w
			n++
		}
		if n < it.min {
			return false
		}
	}
	return i == len(s)
}

func inRanges(ranges []rune, r rune) bool {
	for j := 0; j+1 < len(ranges); j += 2 {
		if r < ranges[j] {
			return false
		}
		if r <= ranges[j+1] {
			return true
		}
	}
	return false
}

// simpleItems returns the items of ^item item ... item$, or nil when the
// pattern has another shape.
func simpleItems(t *syntax.Regexp) []classRepeat {
	if t.Op != syntax.OpConcat || len(t.Sub) < 3 {
		return nil
	}
	subs := t.Sub
	if subs[0].Op != syntax.OpBeginText || subs[len(subs)-1].Op != syntax.OpEndText {
		return nil
	}
	var items []classRepeat
	for _, s := range subs[1 : len(subs)-1] {
		min, max := 1, 1
		switch s.Op {
		case syntax.OpRepeat:
			min, max = s.Min, s.Max
		case syntax.OpStar:
			min, max = 0, -1
		case syntax.OpPlus:
			min, max = 1, -1
		case syntax.OpQuest:
			min, max = 0, 1
		case syntax.OpLiteral:
			if s.Flags&syntax.FoldCase != 0 {
				return nil
			}
			for _, r := range s.Rune {
				items = append(items, classRepeat{ranges: []rune{r, r}, min: 1, max: 1})
			}
			continue
		}
		if s.Op != syntax.OpLiteral && s.Op != syntax.OpCharClass && s.Op != syntax.OpAnyCharNotNL {
			if len(s.Sub) != 1 {
				return nil
			}
			s = s.Sub[0]
		}
		var ranges []rune
		switch {
		case s.Op == syntax.OpCharClass:
			ranges = s.Rune
		case s.Op == syntax.OpAnyCharNotNL:
			ranges = []rune{0, '\n' - 1, '\n' + 1, utf8.MaxRune}
		case s.Op == syntax.OpLiteral && len(s.Rune) == 1 && s.Flags&syntax.FoldCase == 0:
			ranges = []rune{s.Rune[0], s.Rune[0]}
		default:
			return nil
		}
		items = append(items, classRepeat{ranges: ranges, min: min, max: max})
	}
	return items
}
