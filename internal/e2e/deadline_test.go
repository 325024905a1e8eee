package e2e

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/catalog-import/catalog-import/internal/aws/awstest"
	"github.com/catalog-import/catalog-import/internal/aws/faultproxy"
	"github.com/catalog-import/catalog-import/internal/record/recordtest"
	"github.com/catalog-import/catalog-import/internal/state"
)

// TestDevDeadlineHandsOn: one large shard and a 3-second worker timeout.
// Each invocation stops near its deadline, checkpoints and sends the rest of
// the shard on as a continuation (invariant 8); the batch completes exactly
// as `importctl run` completes the file. Every DynamoDB transaction and
// UpdateItem is held 150 ms by a proxy: every claim and checkpoint is one
// or the other (decision 30: a checkpoint is an UpdateItem of the shard when
// its chunk has no failure records, else a transaction with them), so the
// shard never fits in one invocation, however fast the machine (without the
// proxy an idle machine imported the shard in one).
func TestDevDeadlineHandsOn(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the handlers against moto")
	}
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "big-shard.csv")
	writeProducts(t, file, 2000, 5)

	opts := []string{"--worker-timeout", "3s", "--visibility-timeout", "6s", "--retry-delay", "1s", "--shard-rows", "100000", "--checkpoint-every", "100",
		"--log-level", os.Getenv("TEST_LOG_LEVEL") + map[bool]string{true: "warn"}[os.Getenv("TEST_LOG_LEVEL") == ""]}
	flags, bucket := devStack(t, opts...)
	upload(t, bucket, "incoming/big-shard.csv", file)
	p, err := faultproxy.Start(faultproxy.Config{Target: awstest.Endpoint(t), Rate: 1, Faults: []faultproxy.Fault{faultproxy.Stall},
		Stall: 150 * time.Millisecond, Services: []string{"dynamodb"},
		Only: func(r *http.Request) bool {
			target := r.Header.Get("X-Amz-Target")
			return strings.HasSuffix(target, ".TransactWriteItems") || strings.HasSuffix(target, ".UpdateItem")
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	dev(t, devLimit(10*time.Minute), append([]string{"--endpoint", p.URL, "--stack", flags[len(flags)-1]}, opts...)...)
	stalled, _ := p.Injected()

	b := stackBatches(t, flags)["incoming/big-shard.csv"]
	_, out, _ := importctl(t, append([]string{"status", "--json", b.ID}, flags...)...)
	var st struct {
		Shards []state.Shard `json:"shard_list"`
	}
	json.Unmarshal([]byte(out), &st)
	if len(st.Shards) != 1 || st.Shards[0].Attempts < 2 {
		t.Fatalf("shards %+v: want one shard handed on at least once", st.Shards)
	}
	if stalled < int64(2*st.Shards[0].Attempts) {
		t.Errorf("%d transactions and updates held by the proxy in %d invocations, want at least a claim and a checkpoint in each", stalled, st.Shards[0].Attempts)
	}
	t.Logf("one shard of %d rows, %d invocations, %d transactions and updates held", st.Shards[0].Rows, st.Shards[0].Attempts, stalled)
	local, _ := runImport(t, filepath.Join(dir, "local.db"), file)
	if diff := cmp.Diff(comparable(local), comparable(stackOutcome(t, flags, b)), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("(-importctl run +dev with a 3 s deadline):\n%s", diff)
	}
}

// devLimit is limit, or TEST_DEV_LIMIT when set (to debug a slow run).
func devLimit(limit time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv("TEST_DEV_LIMIT")); err == nil {
		return d
	}
	return limit
}

// writeProducts writes a generated product CSV of rows rows, with faults.
func writeProducts(t *testing.T, path string, rows int, seed int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	if err := recordtest.WriteProductCSV(w, rows, seed, true); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
