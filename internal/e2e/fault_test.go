package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/catalog-import/catalog-import/internal/aws/awstest"
	"github.com/catalog-import/catalog-import/internal/aws/faultproxy"
)

// TestDevUnderFaults: with 10% of the DynamoDB, S3 and SQS calls of
// `importctl dev` throttled, failing with a 500 or stalled (a fault-injecting
// proxy in front of moto), every row still ends imported exactly once or as
// one failure record, and the counts reconcile: the outcome is the one
// `importctl run` gives for the same file.
func TestDevUnderFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the handlers against moto through a fault-injecting proxy")
	}
	t.Parallel()
	dir := t.TempDir()
	flags, bucket := devStack(t)
	files := map[string]string{
		"incoming/demo.csv":       "../../testdata/demo/products-gbk.csv",
		"incoming/dups.csv":       filepath.Join(dir, "dups.csv"),
		"incoming/ragged.csv":     "../cli/testdata/input/ragged.csv",
		"incoming/products.jsonl": "../cli/testdata/input/products.jsonl",
	}
	writeDups(t, files["incoming/dups.csv"], 600)
	for key, file := range files {
		upload(t, bucket, key, file)
	}
	p, err := faultproxy.Start(faultproxy.Config{Target: awstest.Endpoint(t), Rate: 0.1, Stall: 300 * time.Millisecond, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	stack := flags[len(flags)-1]
	// 6 s invocations: importctl dev sends one moto request at a time
	// (awsclient.Settings.OneAtATime), and a stalled call holds that lock
	// for its 300 ms. Products are one put per SKU (decision 29), so a
	// chunk of 50 rows takes the lock some 50 times; with SQS's polling
	// stalled 1.4 times a second the lock is held by a stall about 40% of
	// the time, and 3 s invocations (2.4 s of work) could not commit a chunk.
	dev(t, 8*time.Minute, "--endpoint", p.URL, "--stack", stack, "--worker-timeout", "6s", "--visibility-timeout", "12s", "--retry-delay", "1s",
		"--shard-rows", "200", "--checkpoint-every", "50", "--log-level", "error")
	faults, calls := p.Injected()
	t.Logf("%d of %d calls faulted: %v", faults, calls, p.Counts())
	if faults == 0 {
		t.Fatal("no fault was injected")
	}
	batches := stackBatches(t, flags)
	for key, file := range files {
		b, ok := batches[key]
		if !ok {
			t.Errorf("no batch for %s", key)
			continue
		}
		local, _ := runImport(t, filepath.Join(dir, filepath.Base(key)+".db"), file)
		if diff := cmp.Diff(comparable(local), comparable(stackOutcome(t, flags, b)), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s (-importctl run +dev under faults):\n%s", key, diff)
		}
	}
}

// writeDups writes rows products over 50 SKUs, each repeated.
func writeDups(t *testing.T, path string, rows int) {
	t.Helper()
	var b strings.Builder
	b.WriteString("sku,name,category,price\n")
	for i := range rows {
		fmt.Fprintf(&b, "D-%02d,Item %d,Home,%d.00\n", (i*7)%50, i, i+1)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}
