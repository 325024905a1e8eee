// Package text holds the module's one string helper that several layers
// need: cutting a string to a size without breaking a UTF-8 character.
package text

import "unicode/utf8"

// Truncate returns s when it is at most n bytes long. Otherwise it returns
// the longest prefix of s that, followed by mark, is at most n bytes and
// does not end inside a UTF-8 character, followed by mark ("..." or "…"
// for a person to read, "" for a hard size limit). When n is smaller than
// mark, mark alone may exceed n; n <= 0 with an empty mark gives "".
func Truncate(s string, n int, mark string) string {
	if len(s) <= n {
		return s
	}
	n = max(0, n-len(mark))
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + mark
}
