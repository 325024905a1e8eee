package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/catalog-import/catalog-import/internal/aws/awstest"
	"github.com/catalog-import/catalog-import/internal/aws/s3store"
	"github.com/catalog-import/catalog-import/internal/aws/stack"
	"github.com/catalog-import/catalog-import/internal/pipeline/profilestest"
	"github.com/catalog-import/catalog-import/internal/profile"
	"github.com/catalog-import/catalog-import/internal/state"
)

// TestProfilePush: importctl profile push checks the file as the workers
// will and uploads it to the stack's bucket, where the splitter finds it;
// a bad file, a bad name or no --stack is refused with the problem named,
// and nothing is uploaded.
func TestProfilePush(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := awstest.Clients(t)
	name := awstest.Name("push")
	res, err := stack.Provision(ctx, c, name, stack.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "stock.yaml"), filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(good, []byte(profilestest.Stock), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("fields:\n  price: {scale: -1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	flags := []string{"--endpoint", awstest.Endpoint(t), "--region", c.Config.Region}
	store := s3store.NewProfiles(c.S3, res.Bucket)
	for _, tc := range []struct {
		name    string
		args    []string
		code    int
		want    string // in stdout (success) or stderr
		profile string // then stored under this name
	}{
		{"bad file", []string{"profile", "push", "bad", bad, "--stack", name}, ExitFailed, "fields.price.scale", ""},
		{"bad name", []string{"profile", "push", "Stock", good, "--stack", name}, ExitFailed, `profile name "Stock"`, ""},
		{"reserved name", []string{"profile", "push", "retries", good, "--stack", name}, ExitFailed, "reserved", ""},
		{"no stack", []string{"profile", "push", "stock", good}, ExitFailed, "needs --stack", ""},
		{"name differs", []string{"profile", "push", "price", good, "--stack", name}, ExitFailed, `calls itself "stock"`, ""},
		{"missing file", []string{"profile", "push", "stock", filepath.Join(dir, "none.yaml"), "--stack", name}, ExitFailed, "none.yaml", ""},
		{"pushed", []string{"profile", "push", "stock", good, "--stack", name}, 0, "profiles/stock.yaml (rule version", "stock"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := importctl(t, append(tc.args, flags...)...)
			got := errOut
			if tc.code == 0 {
				got = out
			}
			if code != tc.code || !strings.Contains(got, tc.want) {
				t.Fatalf("exit %d, want %d; stdout %q stderr %q, want %q", code, tc.code, out, errOut, tc.want)
			}
			if tc.profile != "" {
				p, err := store.Get(ctx, tc.profile)
				if err != nil || !strings.Contains(out, p.RuleVersion()) {
					t.Errorf("stored profile %s: %v, %v; output %q", tc.profile, p, err, out)
				}
			}
		})
	}
	for _, n := range []string{"bad", "price"} {
		if _, err := store.Get(ctx, n); err == nil {
			t.Errorf("a refused push stored profiles/%s.yaml", n)
		}
	}

	// retry-failures --stack names the parent's stored profile, if any.
	stock, err := profile.Parse([]byte(profilestest.Stock))
	if err != nil {
		t.Fatal(err)
	}
	ghost, err := profile.Parse([]byte(strings.Replace(profilestest.Stock, "name: stock", "name: ghost", 1)))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		parent *profile.Profile
		want   string
	}{
		{stock, "stock"},
		{profile.Default(), ""},
		{ghost, ""},
	} {
		got, err := retryProfile(ctx, store, state.Batch{ID: "b-1", Profile: tc.parent.Canonical()})
		if err != nil || got != tc.want {
			t.Errorf("retryProfile(parent under %s) = %q, %v; want %q", tc.parent.Name(), got, err, tc.want)
		}
	}
}
