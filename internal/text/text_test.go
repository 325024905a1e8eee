package text_test

import (
	"testing"
	"time"
	"unicode/utf8"

	"github.com/catalog-import/catalog-import/internal/text"
)

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		name, s string
		n       int
		mark    string
		want    string
	}{
		{"short", "abc", 5, "...", "abc"},
		{"exact", "abcde", 5, "...", "abcde"},
		{"ascii", "abcdefgh", 6, "...", "abc..."},
		{"no mark", "abcdefgh", 4, "", "abcd"},
		{"empty", "", 0, "", ""},
		{"zero", "abc", 0, "", ""},
		{"mark longer than n", "abcdef", 2, "...", "..."},
		// 商品名称 is 4 characters of 3 bytes each.
		{"CJK at a boundary", "商品名称", 9, "", "商品名"},
		{"CJK inside a character", "商品名称", 8, "", "商品"},
		{"CJK with mark", "商品名称", 10, "...", "商品..."},
		{"CJK with ellipsis", "商品名称", 11, "…", "商品…"},
		{"CJK one byte short", "商品名称", 11, "", "商品名"},
		{"mixed", "SKU 商品编码 x", 7, "", "SKU 商"},
		{"four-byte emoji", "a😀b", 4, "", "a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := text.Truncate(tc.s, tc.n, tc.mark)
			if got != tc.want {
				t.Errorf("Truncate(%q, %d, %q) = %q, want %q", tc.s, tc.n, tc.mark, got, tc.want)
			}
			if !utf8.ValidString(got) {
				t.Errorf("Truncate(%q, %d, %q) = %q: not valid UTF-8", tc.s, tc.n, tc.mark, got)
			}
			if len(tc.s) > tc.n && len(tc.mark) <= tc.n && len(got) > tc.n {
				t.Errorf("Truncate(%q, %d, %q) = %q: %d bytes", tc.s, tc.n, tc.mark, got, len(got))
			}
		})
	}
}

func TestMoments(t *testing.T) {
	at := time.Date(2024, 3, 1, 10, 2, 11, 0, time.Local)
	for _, tc := range []struct {
		name         string
		a, b         time.Time
		wantA, wantB string
	}{
		{"same day", at, at.Add(3*time.Minute + 29*time.Second), "10:02:11", "10:05:40"},
		{"another day", at, at.AddDate(0, 0, 1), "2024-03-01 10:02:11", "2024-03-02 10:02:11"},
		{"same second", at, at.Add(5 * time.Millisecond), "10:02:11.000000000", "10:02:11.005000000"},
		{"equal", at, at, "10:02:11", "10:02:11"},
	} {
		a, b := text.Moments(tc.a, tc.b)
		if a != tc.wantA || b != tc.wantB {
			t.Errorf("%s: Moments = %q, %q; want %q, %q", tc.name, a, b, tc.wantA, tc.wantB)
		}
	}
}
