// Package text holds the string helpers that several layers need: cutting
// a string to a size without breaking a UTF-8 character, and telling two
// times apart in a message.
package text

import (
	"time"
	"unicode/utf8"
)

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

// Moments formats two times that a message compares ("modified a -> b") so
// that a person sees them differ: the time of day, with the date when they
// fall on different days, and with nanoseconds when they fall in the same
// second. Both are shown in the process's time zone.
func Moments(a, b time.Time) (string, string) {
	a, b = a.Local(), b.Local()
	layout := time.TimeOnly
	if a.Format(time.DateOnly) != b.Format(time.DateOnly) {
		layout = time.DateTime
	}
	if !a.Equal(b) && a.Truncate(time.Second).Equal(b.Truncate(time.Second)) {
		layout += ".000000000"
	}
	return a.Format(layout), b.Format(layout)
}
