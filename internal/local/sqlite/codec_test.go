package sqlite

import (
	"strings"
	"testing"
)

// TestAppendJSONStringBytes puts every byte value at every position of
// strings of several lengths (alone, and before a quote) and checks
// appendJSONString against a byte loop: the word-at-a-time skip must not
// miss a byte to escape.
func TestAppendJSONStringBytes(t *testing.T) {
	reference := func(s string) string {
		var b strings.Builder
		b.WriteByte('"')
		for i := 0; i < len(s); i++ {
			switch c := s[i]; {
			case c == '"' || c == '\\':
				b.WriteByte('\\')
				b.WriteByte(c)
			case c == '\n':
				b.WriteString(`\n`)
			case c == '\r':
				b.WriteString(`\r`)
			case c == '\t':
				b.WriteString(`\t`)
			case c < 0x20:
				b.WriteString(`\u00`)
				b.WriteByte(hexDigits[c>>4])
				b.WriteByte(hexDigits[c&0xf])
			default:
				b.WriteByte(c)
			}
		}
		b.WriteByte('"')
		return b.String()
	}
	for _, n := range []int{1, 7, 8, 9, 17, 24} {
		for pos := range n {
			for k := range 512 {
				s := []byte(strings.Repeat("a", n))
				s[pos] = byte(k % 256)
				if k >= 256 && pos+1 < n {
					s[pos+1] = '"'
				}
				if got, want := string(appendJSONString(nil, string(s))), reference(string(s)); got != want {
					t.Fatalf("appendJSONString(%q) = %s, want %s", s, got, want)
				}
			}
		}
	}
}
