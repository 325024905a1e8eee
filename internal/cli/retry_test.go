package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/local/sqlite"
	"github.com/catalog-import/catalog-import/internal/state"
)

// relaxedProfile accepts the status "deleted" that the default profile
// refuses: the "rule fix" of the retry tests.
const relaxedProfile = "name: relaxed\nfields:\n  status:\n    enum: [active, inactive, draft, deleted]\n"

// batchJSON reads one batch with `importctl status --json`.
func batchJSON(t *testing.T, id string, flags ...string) state.Batch {
	t.Helper()
	code, out, errOut := importctl(t, append([]string{"status", "--json", id}, flags...)...)
	if code != 0 {
		t.Fatalf("status %s: exit %d %s", id, code, errOut)
	}
	var b state.Batch
	if err := json.Unmarshal([]byte(out), &b); err != nil {
		t.Fatalf("status %s: %v\n%s", id, err, out)
	}
	return b
}

// unresolvedRows counts `failures --unresolved --format jsonl` lines.
func unresolvedRows(t *testing.T, id string, flags ...string) int {
	t.Helper()
	code, out, errOut := importctl(t, append([]string{"failures", "--unresolved", "--format", "jsonl", id}, flags...)...)
	if code != 0 {
		t.Fatalf("failures: exit %d %s", code, errOut)
	}
	return strings.Count(out, "\n")
}

// TestRetryFailures: after a rule fix, retry-failures re-imports only the
// failed rows of the GBK demo (duplicates left out) as a child batch linked
// to the parent; the rows that import now are marked resolved in the parent
// and the others fail again in the child. A dry run says the same and
// writes nothing; a second retry is a new attempt that resolves nothing more.
func TestRetryFailures(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "shop.db")
	relaxed := filepath.Join(dir, "relaxed.yaml")
	os.WriteFile(relaxed, []byte(relaxedProfile), 0o644)
	_, parent := runImport(t, db, "../../testdata/demo/products-gbk.csv")
	retried := parent.RowsFailed - parent.FailuresByReason["DuplicateSKU"]
	deleted := int64(5) // rows whose only fault is status "deleted"

	code, out, errOut := importctl(t, "retry-failures", "--db", db, "--dry-run", "-p", relaxed, parent.BatchID)
	if code != 0 || !strings.Contains(out, "would retry 45 rows") || !strings.Contains(out, ": 5 would import, 40 would fail again") {
		t.Fatalf("dry run: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, _ := importctl(t, "status", "--db", db); code != 0 || strings.Count(out, "\n") != 2 {
		t.Fatalf("a dry run made a batch:\n%s", out)
	}

	code, out, errOut = importctl(t, "retry-failures", "--db", db, "-p", relaxed, parent.BatchID)
	if code != ExitRowFails {
		t.Fatalf("retry-failures: exit %d, want %d (rows failed again)\n%s%s", code, ExitRowFails, out, errOut)
	}
	childID := ""
	for line := range strings.SplitSeq(out, "\n") {
		if id, ok := strings.CutPrefix(line, "batch     "); ok {
			childID = strings.Fields(id)[0]
		}
	}
	child := batchJSON(t, childID, "--db", db)
	if child.Parent != parent.BatchID || child.Counts.Total != retried || child.Counts.Imported != deleted ||
		child.Counts.Failed != retried-deleted || child.Status != state.BatchCompletedWithErrors {
		t.Errorf("child %s: parent %s, %+v, %s; want parent %s, %d rows, %d imported, %d failed",
			child.ID, child.Parent, child.Counts, child.Status, parent.BatchID, retried, deleted, retried-deleted)
	}
	p := batchJSON(t, parent.BatchID, "--db", db)
	if p.Resolved != deleted || p.Counts != (state.Counts{Total: parent.RowsTotal, Imported: parent.RowsImported, Failed: parent.RowsFailed}) {
		t.Errorf("parent after the retry: resolved %d, counts %+v; want %d resolved, counts unchanged", p.Resolved, p.Counts, deleted)
	}
	if n := unresolvedRows(t, parent.BatchID, "--db", db); int64(n) != parent.RowsFailed-deleted {
		t.Errorf("failures --unresolved: %d rows, want %d", n, parent.RowsFailed-deleted)
	}
	if !strings.Contains(out, "5 of 50 failed rows resolved") {
		t.Errorf("retry output does not say what it resolved:\n%s", out)
	}

	// Again with nothing changed: a new attempt of the 40 rows left, which
	// resolves nothing.
	code, out, _ = importctl(t, "retry-failures", "--db", db, "-p", relaxed, parent.BatchID)
	if code != ExitRowFails || !strings.Contains(out, "retrying 40 rows") || strings.Contains(out, childID) {
		t.Errorf("second retry: exit %d\n%s", code, out)
	}
	if p := batchJSON(t, parent.BatchID, "--db", db); p.Resolved != deleted {
		t.Errorf("parent resolved %d after a retry that imported nothing, want %d", p.Resolved, deleted)
	}
	// An unknown batch is a usage error; so is a batch still running.
	if code, _, errOut := importctl(t, "retry-failures", "--db", db, "b-nope"); code != ExitFailed || !strings.Contains(errOut, "no batch b-nope") {
		t.Errorf("unknown batch: exit %d %s", code, errOut)
	}
	st, err := sqlite.Open(db, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = st.CreateBatch(t.Context(), state.Batch{ID: "b-running", Source: state.Source{URI: "x.csv"}, Layout: state.Layout{Format: "csv"}},
		[]state.Shard{{Sheet: failure.NoSheet, End: 10, FirstRow: 2, Rows: 1}})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := importctl(t, "retry-failures", "--db", db, "b-running"); code != ExitFailed || !strings.Contains(errOut, "still RUNNING") {
		t.Errorf("running batch: exit %d %s", code, errOut)
	}
}

// TestRetryLeftOut: retry-failures says which failures it leaves out and
// why, rather than "no failures of the reasons asked for" when no reason
// was asked and the batch's failures are duplicates.
func TestRetryLeftOut(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "t.db")
	dup := filepath.Join(dir, "dup.csv")
	os.WriteFile(dup, []byte("sku,name,category,brand,price,currency,stock,status\n"+strings.Repeat("A,n,c,b,1.00,CNY,1,active\n", 3)), 0o644)
	_, dups := runImport(t, db, dup)
	_, mixed := runImport(t, db, filepath.Join("testdata", "input", "gbk-excel.csv"))
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"only duplicates, no reason asked", []string{"--dry-run", dups.BatchID},
			"nothing to retry: the 2 unresolved failures of batch " + dups.BatchID + " are DuplicateSKU, which a retry leaves out unless --reason DuplicateSKU asks for them"},
		{"only duplicates, another reason asked", []string{"--dry-run", "--reason", "InvalidNumber", dups.BatchID},
			"nothing to retry: batch " + dups.BatchID + " has no unresolved failures of InvalidNumber (its unresolved failures: DuplicateSKU 2)"},
		{"only duplicates, another layer asked", []string{"--dry-run", "--layer", "syntax", dups.BatchID},
			"nothing to retry: batch " + dups.BatchID + " has no unresolved failures in layer syntax"},
		{"duplicates asked for", []string{"--dry-run", "--reason", "DuplicateSKU", dups.BatchID},
			"would retry 2 rows (DuplicateSKU 2) of batch " + dups.BatchID + "\nunder the current rules"},
		{"some duplicates left out", []string{"--dry-run", mixed.BatchID},
			"of batch " + mixed.BatchID + "\nleft out 1 DuplicateSKU row: --reason DuplicateSKU retries them"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := importctl(t, append([]string{"retry-failures", "--db", db}, tc.args...)...)
			if code != 0 || !strings.Contains(out, tc.want) {
				t.Errorf("exit %d\n%s%s\nwant it to say %q", code, out, errOut, tc.want)
			}
		})
	}
}
