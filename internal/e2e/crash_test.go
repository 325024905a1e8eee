package e2e

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/catalog-import/catalog-import/internal/cli"
	"github.com/catalog-import/catalog-import/internal/local/sqlite"
)

// TestCrashResume kills `importctl run` (SIGKILL, no chance to clean up) at
// several points of a 200k-row import with faults, reruns it until it
// finishes, and checks what a user would: the products and failure records
// are identical to a clean run's, no failure is recorded twice, the counts
// reconcile, and each rerun resumed instead of starting over (failures
// recorded before a kill are still the ones recorded then).
func TestCrashResume(t *testing.T) {
	if testing.Short() {
		t.Skip("builds importctl and imports 200k rows several times")
	}
	t.Parallel()
	dir := t.TempDir()
	bin := sharedImportctl(t)
	file := filepath.Join(dir, "products.csv")
	writeProducts(t, file, 200_000, 3)
	args := []string{"run", "--json", "--quiet", "--shard-rows", "20000", "--checkpoint-every", "100"}

	cleanDB := filepath.Join(dir, "clean.db")
	clean := runBin(t, bin, append(args, "--db", cleanDB, file)...)

	crashDB := filepath.Join(dir, "crash.db")
	var firstKill time.Time
	var done int64
	for i, more := range []int64{15_000, 40_000, 60_000} { // kill after this many more rows
		cmd := exec.Command(bin, append(args, "--db", crashDB, file)...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done = waitRows(t, crashDB, done+more, 60*time.Second)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if i == 0 {
			firstKill = time.Now().UTC()
		}
		t.Logf("killed run %d with %d rows checkpointed", i+1, done)
	}
	// Touching the file (same content, new mtime) must not stop the resume.
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(file, later, later); err != nil {
		t.Fatal(err)
	}
	final := runBin(t, bin, append(args, "--db", crashDB, file)...)
	if !final.Resumed {
		t.Errorf("the run after the kills did not resume: %+v", final)
	}
	if final.BatchID != clean.BatchID || final.Status != clean.Status {
		t.Errorf("final %s %s, clean %s %s", final.BatchID, final.Status, clean.BatchID, clean.Status)
	}
	for _, s := range []cli.RunJSON{clean, final} {
		if s.RowsTotal != 200_000 || s.RowsImported+s.RowsFailed+s.RowsSkipped != s.RowsTotal {
			t.Errorf("counts do not reconcile: %+v", s)
		}
	}
	if !cmp.Equal(clean.FailuresByReason, final.FailuresByReason) || clean.RowsImported != final.RowsImported {
		t.Errorf("clean run %v / %d imported, crashed run %v / %d imported",
			clean.FailuresByReason, clean.RowsImported, final.FailuresByReason, final.RowsImported)
	}

	cdb, kdb := openRaw(t, cleanDB), openRaw(t, crashDB)
	const products = `SELECT sku, name, category, brand, price, currency, stock, status, description, image_urls, batch_id, source_row FROM products_view ORDER BY sku`
	const failures = `SELECT batch_id, sheet, row, layer, reason, field, message, raw_line, rule_version, shard FROM failures ORDER BY batch_id, sheet, row`
	for _, q := range []string{products, failures} {
		want, got := dump(t, cdb, q), dump(t, kdb, q)
		if len(want) == 0 {
			t.Fatalf("clean run stored nothing for %s", q)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("crashed run differs from the clean run for %q (-clean +crashed):\n%.3000s", q, diff)
		}
	}
	if n := count(t, kdb, `SELECT count(*) FROM failures`); n != final.RowsFailed {
		t.Errorf("%d failure records for %d failed rows", n, final.RowsFailed)
	}
	// Failures below the first kill's checkpoint were not recorded again.
	if n := count(t, kdb, `SELECT count(*) FROM failures WHERE failure_at < ?`, firstKill.Format(time.RFC3339Nano)); n == 0 {
		t.Errorf("every failure was recorded after the first kill: the reruns started over")
	}
}

func runBin(t *testing.T, bin string, args ...string) cli.RunJSON {
	t.Helper()
	out, err := exec.Command(bin, args...).Output()
	if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() != cli.ExitRowFails) {
		t.Fatalf("importctl %v: %v %s", args, err, ee.Stderr)
	}
	var s cli.RunJSON
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatalf("importctl %v: %q: %v", args, out, err)
	}
	return s
}

// waitRows polls the database (as another process would, through one
// read-only connection) until the batch has at least n rows checkpointed.
func waitRows(t *testing.T, db string, n int64, timeout time.Duration) int64 {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var conn *sql.DB
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	for time.Now().Before(deadline) {
		if conn == nil {
			if _, err := os.Stat(db); err == nil {
				conn, _ = sql.Open(sqlite.DefaultDriver, "file:"+db+"?mode=ro")
			}
		}
		if conn != nil {
			var done int64
			err := conn.QueryRow(`SELECT rows_imported + rows_superseded + rows_failed + rows_skipped FROM batches LIMIT 1`).Scan(&done)
			if err == nil && done >= n {
				return done
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("%s never reached %d rows", db, n)
	return 0
}

func openRaw(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open(sqlite.DefaultDriver, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func dump(t *testing.T, db *sql.DB, q string) []string {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, v := range vals {
			if bs, ok := v.([]byte); ok {
				v = string(bs)
			}
			fmt.Fprintf(&b, "%v|", v)
		}
		out = append(out, b.String())
	}
	return out
}

func count(t *testing.T, db *sql.DB, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
