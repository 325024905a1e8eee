package profile

import (
	"strings"
	"testing"
)

func TestCheckName(t *testing.T) {
	for _, tc := range []struct {
		name    string
		wantErr string
	}{
		{"stock", ""},
		{"price-feed_2", ""},
		{"0day", ""},
		{strings.Repeat("a", 64), ""},
		{"", "lower-case"},
		{strings.Repeat("a", 65), "lower-case"},
		{"Stock", "lower-case"},
		{"-stock", "lower-case"},
		{"a/b", "lower-case"},
		{"..", "lower-case"},
		{"stock.yaml", "lower-case"},
		{"retries", "reserved"},
	} {
		err := CheckName(tc.name)
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("CheckName(%q) = %v, want error %q", tc.name, err, tc.wantErr)
		}
	}
}

func TestCheckCompiles(t *testing.T) {
	if _, err := Check(DefaultYAML()); err != nil {
		t.Errorf("Check(default.yaml): %v", err)
	}
	if _, err := Check([]byte("fields:\n  price: {scale: -1}\n")); err == nil || !strings.Contains(err.Error(), "fields.price.scale") {
		t.Errorf("Check(bad) = %v, want the problem named", err)
	}
}

func TestCheckNamed(t *testing.T) {
	stock := []byte("name: stock\nmax_error_ratio: 0.5\n")
	for _, tc := range []struct {
		name    string
		data    []byte
		wantErr string
	}{
		{"stock", stock, ""},
		{"price", stock, `calls itself "stock"`},
		{"Stock", stock, "lower-case"},
		{"stock", []byte("name: stock\nfields:\n  price: {scale: -1}\n"), "fields.price.scale"},
	} {
		p, err := CheckNamed(tc.name, tc.data)
		if tc.wantErr == "" && (err != nil || p.Name() != tc.name) || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("CheckNamed(%q) = %v, want error %q", tc.name, err, tc.wantErr)
		}
	}
}
