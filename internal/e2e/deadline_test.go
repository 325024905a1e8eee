package e2e

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/catalog-import/catalog-import/internal/record/recordtest"
	"github.com/catalog-import/catalog-import/internal/state"
)

// TestDevDeadlineHandsOn: one large shard and a 3-second worker timeout.
// Each invocation stops near its deadline, checkpoints and sends the rest of
// the shard on as a continuation (invariant 8); the batch completes exactly
// as `importctl run` completes the file.
func TestDevDeadlineHandsOn(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the handlers against moto")
	}
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "big-shard.csv")
	writeProducts(t, file, 2000, 5)

	opts := []string{"--worker-timeout", "3s", "--shard-rows", "100000", "--checkpoint-every", "100", "--log-level", os.Getenv("TEST_LOG_LEVEL") + map[bool]string{true: "warn"}[os.Getenv("TEST_LOG_LEVEL") == ""]}
	flags, bucket := devStack(t, opts...)
	upload(t, bucket, "incoming/big-shard.csv", file)
	dev(t, devLimit(10*time.Minute), append(flags, opts...)...)

	b := stackBatches(t, flags)["incoming/big-shard.csv"]
	_, out, _ := importctl(t, append([]string{"status", "--json", b.ID}, flags...)...)
	var st struct {
		Shards []state.Shard `json:"shard_list"`
	}
	json.Unmarshal([]byte(out), &st)
	if len(st.Shards) != 1 || st.Shards[0].Attempts < 2 {
		t.Fatalf("shards %+v: want one shard handed on at least once", st.Shards)
	}
	t.Logf("one shard of %d rows, %d invocations", st.Shards[0].Rows, st.Shards[0].Attempts)
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

// buildImportctl builds the importctl binary into dir (for tests that kill it).
func buildImportctl(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "importctl")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/importctl").CombinedOutput(); err != nil {
		t.Fatalf("build importctl: %v\n%s", err, out)
	}
	return bin
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
