package text

import (
	"encoding/binary"
	"testing"
)

// TestWordTests: each word test answers as a byte loop does, for every
// byte value at every position of a word of otherwise plain bytes, and for
// words of two unusual bytes.
func TestWordTests(t *testing.T) {
	loop := func(b []byte, f func(c byte) bool) bool {
		for _, c := range b {
			if f(c) {
				return true
			}
		}
		return false
	}
	check := func(b []byte) {
		t.Helper()
		w := Word(string(b), 0)
		if want := binary.LittleEndian.Uint64(b); w != want {
			t.Fatalf("Word(%q) = %#x, want %#x", b, w, want)
		}
		for _, n := range []byte{0x01, 0x20, 0x21, 0x80} {
			if got, want := HasLess(w, n), loop(b, func(c byte) bool { return c < n }); got != want {
				t.Fatalf("HasLess(%q, %#x) = %v, want %v", b, n, got, want)
			}
		}
		for _, n := range []byte{0x00, 0x7e, 0x7f} {
			if got, want := HasMore(w, n), loop(b, func(c byte) bool { return c > n }); got != want {
				t.Fatalf("HasMore(%q, %#x) = %v, want %v", b, n, got, want)
			}
		}
		for _, x := range []byte{0, '"', '\\', 0xff} {
			if got, want := HasByte(w, x), loop(b, func(c byte) bool { return c == x }); got != want {
				t.Fatalf("HasByte(%q, %#x) = %v, want %v", b, x, got, want)
			}
		}
	}
	for pos := range 8 {
		for v := range 256 {
			b := []byte("abcdefgh")
			b[pos] = byte(v)
			check(b)
		}
	}
	for v := range 256 {
		for u := range 256 {
			check([]byte{byte(v), 'x', 'x', byte(u), 'x', 'x', 'x', byte(v ^ u)})
		}
	}
}

// BenchmarkWord: the word load of a string must stay a few instructions
// (it is inlined into the scanning loops).
func BenchmarkWord(b *testing.B) {
	s := "https://img.example.com/a/123.jpg"
	var sink uint64
	for b.Loop() {
		for i := 0; i+8 <= len(s); i += 8 {
			sink += Word(s, i)
		}
	}
	_ = sink
}
