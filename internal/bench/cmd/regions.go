package main

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Generated regions of a markdown document: the bench rewrites what lies
// between
//
//	<!-- bench:NAME -->
//	...
//	<!-- /bench:NAME -->
//
// and leaves the rest of the document as it is. A region whose opening
// marker ends its line is a block (its content on lines of its own, blank
// lines around it, so that a table renders, indented as the marker is, so
// that it stays within a list item); otherwise it is inline, within
// a sentence or a table cell, and its content is one line.

// comment is an HTML comment, over lines or not.
var comment = regexp.MustCompile(`(?s)<!--.*?-->`)

// marker is the exact form of a region's opening or closing marker.
var marker = regexp.MustCompile(`^<!-- (/?)bench:([a-z0-9-]+) -->$`)

// region is one generated region of a document: its name and the byte
// offsets of its opening and closing markers ([start, end)).
type region struct {
	name        string
	open, close [2]int
}

// block tells whether the region's content goes on lines of its own.
func (r region) block(doc string) bool { return r.open[1] < len(doc) && doc[r.open[1]] == '\n' }

// indent is the white space before the region's opening marker on its
// line (a region within a list item), or "" when other text precedes it.
func (r region) indent(doc string) string {
	start := strings.LastIndexByte(doc[:r.open[0]], '\n') + 1
	if ind := doc[start:r.open[0]]; strings.TrimSpace(ind) == "" {
		return ind
	}
	return ""
}

// lineOf is the line of offset i of doc, from 1.
func lineOf(doc string, i int) int { return strings.Count(doc[:i], "\n") + 1 }

// findRegions returns the regions of doc in order. Every region must be
// one of known, opened and closed once, not within another; a comment
// that mentions "bench:" must be an exact marker. Comments within code
// spans and code blocks are not markers.
func findRegions(doc string, known []string) ([]region, error) {
	var (
		out  []region
		open *region
	)
	// Comments within code are text (a marker quoted in prose).
	masked := codeSpan.ReplaceAllStringFunc(doc, func(c string) string { return strings.Repeat(" ", len(c)) })
	for _, loc := range comment.FindAllStringIndex(masked, -1) {
		text := doc[loc[0]:loc[1]]
		if !strings.Contains(text, "bench:") {
			continue
		}
		m := marker.FindStringSubmatch(text)
		if m == nil {
			return nil, fmt.Errorf("line %d: malformed region marker %q (want <!-- bench:NAME --> or <!-- /bench:NAME -->)", lineOf(doc, loc[0]), text)
		}
		closing, name := m[1] == "/", m[2]
		if !slices.Contains(known, name) {
			return nil, fmt.Errorf("line %d: unknown region %q", lineOf(doc, loc[0]), name)
		}
		switch {
		case !closing && open != nil:
			return nil, fmt.Errorf("line %d: region %q opened inside region %q (line %d)", lineOf(doc, loc[0]), name, open.name, lineOf(doc, open.open[0]))
		case !closing:
			open = &region{name: name, open: [2]int{loc[0], loc[1]}}
		case open == nil:
			return nil, fmt.Errorf("line %d: region %q closed but not opened", lineOf(doc, loc[0]), name)
		case open.name != name:
			return nil, fmt.Errorf("line %d: region %q closed inside region %q (line %d)", lineOf(doc, loc[0]), name, open.name, lineOf(doc, open.open[0]))
		default:
			open.close = [2]int{loc[0], loc[1]}
			out = append(out, *open)
			open = nil
		}
	}
	if open != nil {
		return nil, fmt.Errorf("line %d: region %q is not closed", lineOf(doc, open.open[0]), open.name)
	}
	return out, nil
}

// rewriteRegions returns doc with the content of each region named in fill
// replaced by fill's text; the other regions, and everything outside
// regions, are left as they are. A name of fill that is not known, or that
// no region of doc has, is an error (a figure the bench would lose), and
// so is inline content over several lines.
func rewriteRegions(doc string, known []string, fill map[string]string) (string, error) {
	rs, err := findRegions(doc, known)
	if err != nil {
		return "", err
	}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range fill {
			if !yield(k) {
				return
			}
		}
	}) {
		if !slices.Contains(known, name) {
			return "", fmt.Errorf("no region %q is known", name)
		}
		if !slices.ContainsFunc(rs, func(r region) bool { return r.name == name }) {
			return "", fmt.Errorf("the document has no region %q", name)
		}
	}
	var b strings.Builder
	prev := 0
	for _, r := range rs {
		b.WriteString(doc[prev:r.open[1]])
		text, ok := fill[r.name]
		switch {
		case !ok:
			b.WriteString(doc[r.open[1]:r.close[0]])
		case r.block(doc):
			ind := r.indent(doc)
			b.WriteString("\n\n")
			for line := range strings.SplitSeq(strings.TrimSpace(text), "\n") {
				if strings.TrimSpace(line) != "" {
					b.WriteString(ind + line)
				}
				b.WriteString("\n")
			}
			b.WriteString("\n" + ind)
		case strings.Contains(strings.TrimSpace(text), "\n"):
			return "", fmt.Errorf("line %d: inline region %q: content over several lines", lineOf(doc, r.open[0]), r.name)
		default:
			b.WriteString(strings.TrimSpace(text))
		}
		prev = r.close[0]
	}
	b.WriteString(doc[prev:])
	return b.String(), nil
}

// placeholder is a word in capitals with underscores (SPLIT_RATE): a
// figure not yet filled in, outside code spans.
var placeholder = regexp.MustCompile(`\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b`)

// codeSpan is a fenced code block or a code span.
var codeSpan = regexp.MustCompile("(?s)```.*?```|`[^`\n]*`")

// placeholders returns the unfilled placeholders of doc: words in capitals
// with underscores outside comments and code.
func placeholders(doc string) []string {
	prose := codeSpan.ReplaceAllString(comment.ReplaceAllString(doc, " "), " ")
	return placeholder.FindAllString(prose, -1)
}
