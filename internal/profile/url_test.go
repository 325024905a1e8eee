package profile

import (
	"net/url"
	"testing"
	"unicode"
	"unicode/utf8"
)

// validURLReference is validURL as it was before its word-at-a-time scan
// and fastURL's host table: a byte loop, then url.Parse.
func validURLReference(s string) bool {
	if schemeLen(s) == 0 {
		return false
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c <= ' ' || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, w := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || unicode.IsSpace(r) || unicode.IsControl(r) {
			return false
		}
		i += w
	}
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" || u.Hostname() == "" {
		return false
	}
	return u.Scheme == "http" || u.Scheme == "https"
}

// TestValidURLBytes puts every byte value at every position of URLs (in
// the scheme, the host, the port, the path) and checks that validURL
// answers as the byte loop and url.Parse do.
func TestValidURLBytes(t *testing.T) {
	for _, base := range []string{
		"https://img.example.com/a/123.jpg",
		"http://h:8080/p?q=1#f",
		"https://图片.中国/1.jpg",
		"https://x.y/abcdefghijklmnopqrstuvwxyz0123456789",
	} {
		for pos := range len(base) {
			for b := range 256 {
				s := base[:pos] + string([]byte{byte(b)}) + base[pos+1:]
				if got, want := validURL(s), validURLReference(s); got != want {
					t.Errorf("validURL(%q) = %v, want %v", s, got, want)
				}
			}
		}
	}
}
