package sqlite

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/catalog-import/catalog-import/internal/failure"
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
	n := 2
	for _, s := range a {
		n += len(s) + 3
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteByte('[')
	for i, s := range a {
		if i > 0 {
			b.WriteByte(',')
		}
		writeJSONString(&b, s)
	}
	b.WriteByte(']')
	return b.String()
}

const hexDigits = "0123456789abcdef"

// writeJSONString writes s as a JSON string. Invalid UTF-8 is kept as is
// (readers decode it as U+FFFD, as encoding/json would have written it).
func writeJSONString(b *strings.Builder, s string) {
	b.WriteByte('"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b.WriteString(s[start:i])
		switch c {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteString(`\u00`)
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0xf])
		}
		start = i + 1
	}
	b.WriteString(s[start:])
	b.WriteByte('"')
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
