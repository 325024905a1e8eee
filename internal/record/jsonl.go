package record

import (
	"encoding/json"
	"strings"

	"github.com/catalog-import/catalog-import/internal/failure"
)

// parseJSON parses one JSON Lines record: it must be one JSON object whose
// values are scalars or arrays of scalars. The text is first checked with
// json.Valid (so errors carry encoding/json's message); the object is then
// walked by hand to keep key order, find duplicate keys (encoding/json keeps
// the last one silently) and keep numbers as their literal text.
func (p *Parser) parseJSON(row *Row, text []byte, bad int) {
	row.Text = string(text)
	t := row.Text
	if !json.Valid(text) {
		if bad >= 0 {
			row.Err = failure.New(failure.InvalidEncoding, "", "bytes that are not valid %s", p.d.Encoding)
			return
		}
		var m json.RawMessage
		err := json.Unmarshal(text, &m)
		msg := "invalid JSON"
		if err != nil {
			msg = "invalid JSON: " + err.Error()
		}
		row.Err = failure.Wrap(failure.MalformedRow, "", err, msg)
		return
	}
	i := skipWS(t, 0)
	if t[i] != '{' {
		row.Err = failure.New(failure.SchemaMismatch, "", "line is a JSON %s, not an object", jsonKind(t[i]))
		return
	}
	keys, vals, spans := p.keys[:0], p.vals[:0], p.jspans[:0]
	var shapeErr error
	i = skipWS(t, i+1)
	if t[i] != '}' {
		for {
			ks := i
			ke, esc := strEnd(t, i)
			key := unquote(t, ks, ke, esc)
			i = skipWS(t, ke)
			i = skipWS(t, i+1) // ':'
			var val string
			switch c := t[i]; c {
			case '"':
				ve, esc := strEnd(t, i)
				val = unquote(t, i, ve, esc)
				i = ve
			case '{':
				e := skipValue(t, i)
				val = t[i:e]
				i = e
				if shapeErr == nil {
					shapeErr = failure.New(failure.SchemaMismatch, key, "key %q holds a nested object", key)
				}
			case '[':
				var nested bool
				val, i, nested = p.array(t, i)
				if nested && shapeErr == nil {
					shapeErr = failure.New(failure.SchemaMismatch, key, "key %q holds an array of objects or arrays", key)
				}
			case 't':
				val = "true"
				i += 4
			case 'f':
				val = "false"
				i += 5
			case 'n':
				val = ""
				i += 4
			default:
				e := numEnd(t, i)
				val = t[i:e]
				i = e
			}
			if shapeErr == nil && p.dupKey(keys, key) {
				shapeErr = failure.New(failure.MalformedRow, key, "duplicate key %q", key)
			}
			keys = append(keys, key)
			vals = append(vals, val)
			spans = append(spans, ks, i)
			i = skipWS(t, i)
			if t[i] != ',' {
				break
			}
			i = skipWS(t, i+1)
		}
	}
	p.keys, p.vals, p.jspans = keys, vals, spans

	names := p.alloc(len(keys))
	copy(names, keys)
	values := p.alloc(len(vals))
	copy(values, vals)
	row.Names, row.Values, row.Cells = names, values, values
	switch {
	case bad >= 0:
		key := ""
		for j := 0; j < len(spans); j += 2 {
			if spans[j] <= bad && bad < spans[j+1] {
				key = keys[j/2]
				break
			}
		}
		if key != "" {
			row.Err = failure.New(failure.InvalidEncoding, key, "bytes that are not valid %s in key %q", p.d.Encoding, key)
		} else {
			row.Err = failure.New(failure.InvalidEncoding, "", "bytes that are not valid %s", p.d.Encoding)
		}
	case shapeErr != nil:
		row.Err = shapeErr
	}
}

// dupKey reports whether key is among keys (the keys so far of one object).
func (p *Parser) dupKey(keys []string, key string) bool {
	if len(keys) < 32 {
		for _, k := range keys {
			if k == key {
				return true
			}
		}
		return false
	}
	if len(keys) == 32 {
		if p.seen == nil {
			p.seen = make(map[string]struct{})
		}
		clear(p.seen)
		for _, k := range keys {
			p.seen[k] = struct{}{}
		}
	}
	if _, ok := p.seen[key]; ok {
		return true
	}
	p.seen[key] = struct{}{}
	return false
}

// array reads an array of scalars at t[i] (valid JSON) and joins its
// elements with "|". nested reports an element that is an object or array.
func (p *Parser) array(t string, i int) (val string, end int, nested bool) {
	start := i
	i = skipWS(t, i+1)
	if t[i] == ']' {
		return "", i + 1, false
	}
	var sb strings.Builder
	for n := 0; ; n++ {
		if n > 0 {
			sb.WriteByte('|')
		}
		switch c := t[i]; c {
		case '"':
			e, esc := strEnd(t, i)
			sb.WriteString(unquote(t, i, e, esc))
			i = e
		case '{', '[':
			e := skipValue(t, start)
			return t[start:e], e, true
		case 't':
			sb.WriteString("true")
			i += 4
		case 'f':
			sb.WriteString("false")
			i += 5
		case 'n':
			i += 4
		default:
			e := numEnd(t, i)
			sb.WriteString(t[i:e])
			i = e
		}
		i = skipWS(t, i)
		if t[i] == ']' {
			return sb.String(), i + 1, false
		}
		i = skipWS(t, i+1) // ','
	}
}

// skipWS returns the index of the first non-whitespace byte at or after i.
func skipWS(t string, i int) int {
	for i < len(t) {
		switch t[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// strEnd returns the index just past the JSON string starting at t[i] and
// whether it holds escapes.
func strEnd(t string, i int) (int, bool) {
	j := i + 1
	for {
		k := strings.IndexByte(t[j:], '"')
		if k < 0 { // not valid JSON; cannot happen after json.Valid
			return len(t), false
		}
		q := j + k
		b := q - 1
		for b > i && t[b] == '\\' {
			b--
		}
		if (q-1-b)%2 == 0 {
			return q + 1, strings.IndexByte(t[i+1:q], '\\') >= 0
		}
		j = q + 1
	}
}

// unquote returns the value of the JSON string t[s:e].
func unquote(t string, s, e int, esc bool) string {
	if !esc {
		return t[s+1 : e-1]
	}
	var v string
	if err := json.Unmarshal([]byte(t[s:e]), &v); err != nil {
		return t[s+1 : e-1]
	}
	return v
}

// numEnd returns the index just past the JSON number at t[i].
func numEnd(t string, i int) int {
	for i < len(t) {
		switch c := t[i]; {
		case c >= '0' && c <= '9', c == '-', c == '+', c == '.', c == 'e', c == 'E':
			i++
		default:
			return i
		}
	}
	return i
}

// skipValue returns the index just past the object or array at t[i].
func skipValue(t string, i int) int {
	depth := 0
	for j := i; j < len(t); j++ {
		switch t[j] {
		case '"':
			e, _ := strEnd(t, j)
			j = e - 1
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return j + 1
			}
		}
	}
	return len(t)
}

// jsonKind names the kind of JSON value that starts with c.
func jsonKind(c byte) string {
	switch c {
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}
