package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/catalog-import/catalog-import/internal/profile"
)

// TestProfilePrint: `importctl profile` shows the effective rules a user
// needs to predict a run: each field's own name matches besides its
// (Chinese) aliases, the SKU normalisation and formula_text spelled out
// even at their defaults; and what it prints is a profile with the same
// rule version.
func TestProfilePrint(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	strict := filepath.Join(dir, "strict.yaml")
	if err := os.WriteFile(strict, []byte("name: strict\nformula_text: refuse\nfields:\n  sku: {normalize: {case: upper, nfkc: true}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want []string
		p    *profile.Profile
	}{
		{"default", []string{"profile"}, []string{
			`columns: # and "sku" itself: a field's own name always matches (any case)`,
			"      - 商品编码\n",
			`columns: # and "price" itself`,
			"    normalize:\n      case: preserve\n      nfkc: false\n      trim: true\n",
			"formula_text: allow\n",
		}, profile.Default()},
		{"a profile file", []string{"profile", strict}, []string{
			"    normalize:\n      case: upper\n      nfkc: true\n      trim: true\n",
			"formula_text: refuse\n",
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := importctl(t, tc.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			p, err := profile.Parse([]byte(out))
			if err != nil {
				t.Fatalf("the output is not a profile: %v", err)
			}
			if !strings.Contains(out, "# rule version "+p.RuleVersion()+"\n") {
				t.Errorf("the output parses to rule version %s, not the one it prints:\n%s", p.RuleVersion(), out)
			}
			if tc.p != nil && p.RuleVersion() != tc.p.RuleVersion() {
				t.Errorf("rule version %s, want %s", p.RuleVersion(), tc.p.RuleVersion())
			}
		})
	}
}
