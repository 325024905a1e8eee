package text

// Eight bytes at a time: the hot loops that look for a few byte values in
// rows and cells (control characters, characters a URL or a JSON string
// must not hold) skip eight bytes per step while none is there, with the
// classic "has a byte less than n" word test, and look at the bytes one
// by one only in the word that holds one.

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// Word returns the eight bytes of s from i as a little-endian word
// (i+8 <= len(s)); binary.LittleEndian.Uint64 is the same for a []byte.
func Word(s string, i int) uint64 {
	_ = s[i+7]
	return uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
		uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
}

// HasLess reports whether a byte of w is less than n (n <= 0x80).
func HasLess(w uint64, n byte) bool {
	return (w-uint64(n)*ones)&^w&highs != 0
}

// HasMore reports whether a byte of w is more than n (n < 0x80).
func HasMore(w uint64, n byte) bool {
	return (w+uint64(0x7f-n)*ones|w)&highs != 0
}

// HasByte reports whether a byte of w is b.
func HasByte(w uint64, b byte) bool {
	return HasLess(w^uint64(b)*ones, 1)
}
