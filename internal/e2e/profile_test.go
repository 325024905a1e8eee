package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestDevProfilePerUpload: a profile pushed with `importctl profile push`
// to the stack of `importctl dev` is picked by an upload in its folder
// under incoming/, with no redeploy: the batch carries its rule version and
// ends as `importctl run --profile` ends the same file, failure for
// failure. The same file in a folder that names no profile runs under the
// default profile (and is rejected by it).
func TestDevProfilePerUpload(t *testing.T) {
	flags, bucket := devStack(t)
	dir := t.TempDir()
	prof, feed := filepath.Join(dir, "stock.yaml"), filepath.Join(dir, "stock.csv")
	if err := os.WriteFile(prof, []byte("name: stock-feed\nwrite_mode: update\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(feed, []byte("sku,stock\nA-1,5\nA-2,-3\nA-3,x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := importctl(t, append([]string{"profile", "push", "stock-feed", prof}, flags...)...)
	if code != 0 {
		t.Fatalf("profile push: exit %d\n%s%s", code, out, errOut)
	}
	upload(t, bucket, "incoming/stock-feed/0815.csv", feed)
	upload(t, bucket, "incoming/supplier-a/0815.csv", feed)
	dev(t, 2*time.Minute, append([]string{"--log-level", "error"}, flags...)...)

	local, summary := runImport(t, filepath.Join(t.TempDir(), "x.db"), feed, "--profile", prof)
	if local.Rows != [4]int64{3, 0, 3, 0} {
		t.Fatalf("importctl run --profile: rows %v, want 3 failed (UnknownSKU, OutOfRange, InvalidNumber)", local.Rows)
	}
	batches := stackBatches(t, flags)
	b := batches["incoming/stock-feed/0815.csv"]
	if b.RuleVersion != summary.RuleVersion || !strings.Contains(out, summary.RuleVersion) {
		t.Errorf("batch of incoming/stock-feed/: rule version %q, want the pushed profile's %s (push said %q)", b.RuleVersion, summary.RuleVersion, out)
	}
	if diff := cmp.Diff(comparable(local), comparable(stackOutcome(t, flags, b))); diff != "" {
		t.Errorf("on the stack vs importctl run --profile (-run +stack):\n%s", diff)
	}
	if other := batches["incoming/supplier-a/0815.csv"]; other.RuleVersion == summary.RuleVersion || other.Status != "REJECTED" {
		t.Errorf("batch of incoming/supplier-a/: %s under rules %s, want REJECTED under the default profile", other.Status, other.RuleVersion)
	}
}
