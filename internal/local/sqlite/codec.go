package sqlite

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/text"
)

// timeLayout is RFC 3339 with nine fraction digits: fixed width, so stored
// times sort as text, and readable by time.RFC3339Nano.
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// timeArg is the column value of t: UTC text, or NULL for the zero time.
func timeArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(timeLayout)
}

// parseTime reads a time column; NULL is the zero time. The result is UTC.
func parseTime(s sql.NullString) (time.Time, error) {
	if !s.Valid || s.String == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s.String)
	if err != nil {
		return time.Time{}, fmt.Errorf("parse stored time %q: %w", s.String, err)
	}
	return t.UTC(), nil
}

// jsonArg is the column value of v as JSON text, or NULL when empty is true.
func jsonArg(v any, empty bool) (any, error) {
	if empty {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// parseJSON decodes a JSON column into v; NULL leaves v alone.
func parseJSON(s sql.NullString, v any) error {
	if !s.Valid || s.String == "" {
		return nil
	}
	if err := json.Unmarshal([]byte(s.String), v); err != nil {
		return fmt.Errorf("parse stored JSON %.40q: %w", s.String, err)
	}
	return nil
}

// stringsArg encodes a list of strings as a JSON array (NULL when empty). It
// is the hot path of product writes, hence hand written; the output is what
// encoding/json would produce, except that <, > and & are not escaped.
func stringsArg(a []string) any {
	if len(a) == 0 {
		return nil
	}
	return string(appendStrings(nil, a))
}

// appendStrings appends stringsArg's JSON array of a (a must not be empty).
func appendStrings(b []byte, a []string) []byte {
	n := 2
	for _, s := range a {
		n += len(s) + 3
	}
	b = slices.Grow(b, n)
	b = append(b, '[')
	for i, s := range a {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
	}
	return append(b, ']')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. Invalid UTF-8 is kept as is
// (readers decode it as U+FFFD, as encoding/json would have written it).
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start, i := 0, 0
	for ; i+8 <= len(s); i += 8 { // eight bytes that need no escape at a time
		if w := text.Word(s, i); text.HasLess(w, 0x20) || text.HasByte(w, '"') || text.HasByte(w, '\\') {
			break
		}
	}
	for ; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, `\n`...)
		case '\r':
			b = append(b, `\r`...)
		case '\t':
			b = append(b, `\t`...)
		default:
			b = append(b, `\u00`...)
			b = append(b, hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// parseStrings decodes a JSON array column; NULL and [] are nil.
func parseStrings(s sql.NullString) ([]string, error) {
	if !s.Valid || s.String == "" || s.String == "[]" {
		return nil, nil
	}
	var a []string
	if err := json.Unmarshal([]byte(s.String), &a); err != nil {
		return nil, fmt.Errorf("parse stored JSON array %.40q: %w", s.String, err)
	}
	if len(a) == 0 {
		return nil, nil
	}
	return a, nil
}

// placeholders returns "(?,?,...),(?,...)" for rows rows of cols columns.
func placeholders(rows, cols int) string {
	one := "(" + strings.TrimSuffix(strings.Repeat("?,", cols), ",") + ")"
	return strings.TrimSuffix(strings.Repeat(one+",", rows), ",")
}

type scanner interface{ Scan(dest ...any) error }

func invalid(field, format string, args ...any) error {
	return failure.New(failure.Internal, field, "invalid argument: "+format, args...)
}
