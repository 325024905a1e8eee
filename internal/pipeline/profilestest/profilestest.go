// Package profilestest is the contract suite of the named profiles port
// (pipeline.Profiles): where uploads find the profile they name. Every
// adapter (internal/local/file, internal/aws/s3store) calls Run from its
// own test.
//
// The suite pins what the splitter relies on: a stored profile comes back
// with the rule version the file has; an unknown name, or one that cannot
// be a profile's, matches profile.ErrNotFound (the upload is then rejected
// naming it, or falls back to the default profile); a stored file that is
// not a valid profile, or that calls itself by another name (name:), is
// an error naming the problem, not ErrNotFound;
// storing a name again replaces the profile.
package profilestest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/catalog-import/catalog-import/internal/pipeline"
	"github.com/catalog-import/catalog-import/internal/profile"
)

// Put stores data, as it is (valid or not), as the profile called name,
// behind the adapter's back.
type Put func(t *testing.T, name string, data []byte)

// Stock is a valid profile that differs from the default: the stock feed
// of the README (sku and stock only).
const Stock = `name: stock
fields:
  name: {required: false}
  category: {required: false}
  brand: {required: false}
  price: {required: false}
  currency: {required: false}
  status: {required: false}
`

// Run runs the suite. newStore returns a fresh, empty store and the way to
// put files into it.
func Run(t *testing.T, newStore func(t *testing.T) (pipeline.Profiles, Put)) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s pipeline.Profiles, put Put)
	}{
		{"StoredProfileReadsBack", testReadBack},
		{"UnknownNameNotFound", testUnknown},
		{"InvalidNameNotFound", testInvalidName},
		{"InvalidProfileNamesProblem", testInvalidProfile},
		{"PutAgainReplaces", testReplace},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, put := newStore(t)
			tc.fn(t, s, put)
		})
	}
}

func ctxOf(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustParse(t *testing.T, data string) *profile.Profile {
	t.Helper()
	p, err := profile.Parse([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func testReadBack(t *testing.T, s pipeline.Profiles, put Put) {
	put(t, "stock", []byte(Stock))
	got, err := s.Get(ctxOf(t), "stock")
	if err != nil {
		t.Fatalf("Get(stock): %v", err)
	}
	if want := mustParse(t, Stock).RuleVersion(); got.RuleVersion() != want {
		t.Errorf("Get(stock).RuleVersion() = %s, want %s (the stored file's)", got.RuleVersion(), want)
	}
	if got.RuleVersion() == profile.Default().RuleVersion() {
		t.Errorf("Get(stock) has the default profile's rule version")
	}
}

func testUnknown(t *testing.T, s pipeline.Profiles, put Put) {
	put(t, "stock", []byte(Stock))
	for _, name := range []string{"price", "stoc", "stock2"} {
		if _, err := s.Get(ctxOf(t), name); !errors.Is(err, profile.ErrNotFound) {
			t.Errorf("Get(%q) = %v, want an error matching profile.ErrNotFound", name, err)
		}
	}
}

func testInvalidName(t *testing.T, s pipeline.Profiles, put Put) {
	for _, name := range []string{"", "../stock", "a/b", "Stock", "retries", "-x", strings.Repeat("a", 65)} {
		if _, err := s.Get(ctxOf(t), name); !errors.Is(err, profile.ErrNotFound) {
			t.Errorf("Get(%q) = %v, want an error matching profile.ErrNotFound", name, err)
		}
	}
}

func testInvalidProfile(t *testing.T, s pipeline.Profiles, put Put) {
	for _, tc := range []struct{ name, data, want string }{
		{"typo", "fields:\n  price: {scale: -1}\n", "fields.price.scale"},
		{"unknown-key", "colour: blue\n", "colour"},
		{"not-yaml", "fields: [\n", "yaml"},
		{"other-name", Stock, `calls itself "stock"`},
	} {
		put(t, tc.name, []byte(tc.data))
		_, err := s.Get(ctxOf(t), tc.name)
		if err == nil || errors.Is(err, profile.ErrNotFound) {
			t.Errorf("Get(%q) of an invalid profile = %v, want an error naming the problem", tc.name, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("Get(%q) = %q, want it to name the profile and %q", tc.name, err, tc.want)
		}
	}
}

func testReplace(t *testing.T, s pipeline.Profiles, put Put) {
	put(t, "stock", []byte(Stock))
	first, err := s.Get(ctxOf(t), "stock")
	if err != nil {
		t.Fatal(err)
	}
	second := Stock + "max_error_ratio: 0.5\n"
	put(t, "stock", []byte(second))
	got, err := s.Get(ctxOf(t), "stock")
	if err != nil {
		t.Fatal(err)
	}
	if want := mustParse(t, second).RuleVersion(); got.RuleVersion() != want || got.RuleVersion() == first.RuleVersion() {
		t.Errorf("Get after a second put: rule version %s, want %s (the first was %s)", got.RuleVersion(), want, first.RuleVersion())
	}
}
