package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/catalog-import/catalog-import/internal/cli"
	"github.com/catalog-import/catalog-import/internal/failure"
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

// TestRetryFailuresOfWorkbook: the failed rows of a three-sheet workbook are
// retried from a CSV fix file that names each row's sheet; under a profile
// that accepts what failed, they import and their failures (keyed by sheet
// and row) are resolved in the parent.
func TestRetryFailuresOfWorkbook(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "wb.db")
	book := filepath.Join(dir, "supplier.xlsx")
	writeProductWorkbook(t, book, 600, 3)
	_, parent := runImport(t, db, book)
	if parent.RowsFailed == 0 {
		t.Fatal("the generated workbook has no failures")
	}
	code, out, errOut := importctl(t, "retry-failures", "--db", db, "--dry-run", parent.BatchID)
	if code != 0 || !strings.Contains(out, "would retry") {
		t.Fatalf("dry run: exit %d\n%s%s", code, out, errOut)
	}
	relaxed := filepath.Join(dir, "relaxed.yaml")
	os.WriteFile(relaxed, []byte(relaxedProfile), 0o644)
	code, out, errOut = importctl(t, "retry-failures", "--db", db, "-p", relaxed, parent.BatchID)
	if code != cli.ExitRowFails && code != cli.ExitOK {
		t.Fatalf("retry-failures: exit %d\n%s%s", code, out, errOut)
	}
	p := batchJSON(t, parent.BatchID, "--db", db)
	var child state.Batch
	code, list, _ := importctl(t, "status", "--json", "--db", db)
	var bs []state.Batch
	if err := json.Unmarshal([]byte(list), &bs); code != 0 || err != nil {
		t.Fatalf("status: %v", err)
	}
	for _, b := range bs {
		if b.Parent == parent.BatchID {
			child = b
		}
	}
	if child.ID == "" || child.Counts.Imported == 0 || p.Resolved != child.Counts.Imported {
		t.Fatalf("child %s imported %d, parent resolved %d; want the same, > 0\n%s", child.ID, child.Counts.Imported, p.Resolved, out)
	}
	_, recs, _ := importctl(t, "failures", "--db", db, "--format", "jsonl", parent.BatchID)
	sheets := map[string]int{}
	for line := range strings.SplitSeq(strings.TrimSpace(recs), "\n") {
		var r failure.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		if r.ResolvedBy == child.ID {
			sheets[r.Sheet]++
		}
	}
	if len(sheets) < 2 || sheets[failure.NoSheet] != 0 {
		t.Errorf("resolved records by sheet %v, want records of several workbook sheets", sheets)
	}
}
