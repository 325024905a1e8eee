package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/catalog-import/catalog-import/internal/aws/awstest"
	"github.com/catalog-import/catalog-import/internal/cli"
	"github.com/catalog-import/catalog-import/internal/failure"
)

// TestMain stops the shared moto server (awstest) and removes the shared
// importctl binary (sharedImportctl) once the tests have run.
func TestMain(m *testing.M) {
	code := m.Run()
	awstest.Stop()
	removeSharedImportctl()
	os.Exit(code)
}

// importctl runs the CLI in process and returns its exit code and outputs.
func importctl(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = cli.Main(context.Background(), cli.Env{Stdout: &out, Stderr: &errb}, args)
	return code, out.String(), errb.String()
}

// outcome is what a user checks after an import: the exit code, the summary
// and every failed row. Volatile values (ids, paths, times) are left out.
type outcome struct {
	Exit     int                      `json:"exit"`
	Status   string                   `json:"status"`
	Message  string                   `json:"message,omitempty"`
	Rows     [4]int64                 `json:"rows_total_imported_failed_skipped"`
	ByReason map[failure.Reason]int64 `json:"failures_by_reason"`
	Failures []string                 `json:"failures"`
}

// runImport runs `importctl run --json` of file into db and returns the
// outcome and the summary.
func runImport(t *testing.T, db, file string, extra ...string) (outcome, cli.RunJSON) {
	t.Helper()
	args := append([]string{"run", "--json", "--quiet", "--db", db}, extra...)
	code, stdout, stderr := importctl(t, append(args, file)...)
	var s cli.RunJSON
	if err := json.Unmarshal([]byte(stdout), &s); err != nil {
		t.Fatalf("run %s: exit %d, stdout %q, stderr %q: %v", file, code, stdout, stderr, err)
	}
	o := outcome{Exit: code, Status: string(s.Status), Message: s.Message,
		Rows: [4]int64{s.RowsTotal, s.RowsImported, s.RowsFailed, s.RowsSkipped}, ByReason: s.FailuresByReason}
	if s.RowsFailed > 0 {
		_, fl, ferr := importctl(t, "failures", "--db", db, "--format", "jsonl", s.BatchID)
		for line := range strings.SplitSeq(strings.TrimSpace(fl), "\n") {
			var r failure.Record
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("failures: %q %s: %v", line, ferr, err)
			}
			o.Failures = append(o.Failures, fmt.Sprintf("row %d %s/%s %s: %s", r.Row, r.Layer, r.Reason, r.Field, r.Message))
		}
	}
	return o, s
}
