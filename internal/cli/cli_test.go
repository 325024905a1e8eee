package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/catalog-import/catalog-import/internal/failure"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// importctl runs the CLI in process and returns its exit code and outputs.
func importctl(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(context.Background(), Env{Stdout: &out, Stderr: &errb}, args)
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

func runImport(t *testing.T, db, file string, extra ...string) (outcome, RunJSON) {
	t.Helper()
	args := append([]string{"run", "--json", "--quiet", "--db", db}, extra...)
	code, stdout, stderr := importctl(t, append(args, file)...)
	var s RunJSON
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

func golden(t *testing.T, name string, got any) {
	t.Helper()
	b, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "golden", name+".json")
	if *update {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update to create it)", err)
	}
	if diff := cmp.Diff(strings.TrimSpace(string(want)), strings.TrimSpace(string(b))); diff != "" {
		t.Errorf("%s differs from %s (-want +got):\n%s", name, path, diff)
	}
}

// TestRunGolden imports every kind of real-world and bad input and compares
// what a user sees (exit code, summary, failures) with golden files.
func TestRunGolden(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, file string
		exit       int
	}{
		{"clean", "clean.csv", ExitOK},
		{"gbk-excel", "gbk-excel.csv", ExitRowFails},
		{"utf8-bom", "utf8-bom.csv", ExitRowFails},
		{"utf16-excel-unicode-text", "excel-unicode.txt", ExitRowFails},
		{"jsonl", "products.jsonl", ExitRowFails},
		{"header-only", "header-only.csv", ExitOK},
		{"empty", "empty.csv", ExitFailed},
		{"binary", "binary.csv", ExitFailed},
		{"missing-columns", "missing-columns.csv", ExitFailed},
		{"ragged", "ragged.csv", ExitRowFails},
		{"unbalanced-quote-at-end", "unbalanced-quote.csv", ExitRowFails},
		{"invalid-utf8-in-a-row", "invalid-utf8.csv", ExitRowFails},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := filepath.Join(t.TempDir(), "t.db")
			got, s := runImport(t, db, filepath.Join("testdata", "input", tc.file))
			if got.Exit != tc.exit {
				t.Errorf("exit %d, want %d (%s: %s)", got.Exit, tc.exit, got.Status, got.Message)
			}
			if s.RowsTotal != s.RowsImported+s.RowsFailed+s.RowsSkipped {
				t.Errorf("counts do not reconcile: %+v", s)
			}
			if s.RowsFailed > 0 {
				if _, err := os.Stat(s.Report); err != nil {
					t.Errorf("report %q: %v", s.Report, err)
				}
			}
			golden(t, "run-"+tc.name, got)
		})
	}
}

// TestRunAgain: the same file and profile make one batch; a second run
// reports it and imports nothing.
func TestRunAgain(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "t.db")
	file := filepath.Join("testdata", "input", "gbk-excel.csv")
	first, s1 := runImport(t, db, file)
	second, s2 := runImport(t, db, file)
	if s1.BatchID != s2.BatchID || !s2.AlreadyFinished || s2.Resumed || s1.AlreadyFinished {
		t.Errorf("second run: batch %s (first %s), already_finished %v, resumed %v", s2.BatchID, s1.BatchID, s2.AlreadyFinished, s2.Resumed)
	}
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("second run reports another outcome (-first +second):\n%s", diff)
	}
	// Another profile is another batch of the same file.
	prof := filepath.Join(t.TempDir(), "p.yaml")
	os.WriteFile(prof, []byte("name: strict\nwrite_mode: create-only\n"), 0o644)
	third, s3 := runImport(t, db, file, "--profile", prof)
	if s3.BatchID == s1.BatchID || s3.AlreadyFinished {
		t.Errorf("a new profile reused batch %s", s3.BatchID)
	}
	// create-only: every row whose SKU the first batch imported now exists,
	// its in-file duplicates included.
	want := s1.RowsImported + s1.FailuresByReason[failure.DuplicateSKU]
	if third.ByReason[failure.SKUExists] != want {
		t.Errorf("create-only rerun: %d SKUExists, want %d", third.ByReason[failure.SKUExists], want)
	}
}

// TestValidateWritesNothing: validate gives the run's summary and leaves no database.
func TestValidateWritesNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := "importctl.db" // the default --db, which validate does not use
	file := filepath.Join("testdata", "input", "gbk-excel.csv")
	code, stdout, stderr := importctl(t, "validate", "--json", file)
	var v RunJSON
	if err := json.Unmarshal([]byte(stdout), &v); err != nil {
		t.Fatalf("validate: %q %q", stdout, stderr)
	}
	run, s := runImport(t, filepath.Join(dir, "real.db"), file)
	if code != run.Exit || v.RowsFailed != s.RowsFailed || v.RowsImported != s.RowsImported || !cmp.Equal(v.FailuresByReason, s.FailuresByReason) {
		t.Errorf("validate says exit %d %+v, run says exit %d %+v", code, v, run.Exit, s)
	}
	if _, err := os.Stat(db); !os.IsNotExist(err) {
		t.Errorf("validate created %s", db)
	}
	if !v.DryRun || v.Report != "" {
		t.Errorf("validate: dry_run %v report %q", v.DryRun, v.Report)
	}
}

// TestHugeLine: a 50 MB single-line record fails alone (RowTooLarge); the
// rows around it import.
func TestHugeLine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "huge.csv")
	var b bytes.Buffer
	b.WriteString("sku,name,category,price,description\nH-1,Lamp,Home,1.00,ok\nH-2,Lamp,Home,1.00,")
	b.Write(bytes.Repeat([]byte("x"), 50<<20))
	b.WriteString("\nH-3,Lamp,Home,1.00,ok\n")
	os.WriteFile(file, b.Bytes(), 0o644)
	got, _ := runImport(t, filepath.Join(dir, "t.db"), file)
	want := []string{"row 3 syntax/RowTooLarge"}
	if got.Rows != [4]int64{3, 2, 1, 0} || len(got.Failures) != 1 || !strings.HasPrefix(got.Failures[0], want[0]) {
		t.Errorf("got %+v, want 3 rows, 2 imported, %v", got, want)
	}
}

// TestFailuresCSVIsFormulaSafe: the exported failures never start a cell
// with a formula character.
func TestFailuresCSVIsFormulaSafe(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "evil.csv")
	os.WriteFile(file, []byte("sku,name,category,price\n=HYPERLINK(\"http://evil\"),Lamp,Home,1.00\nE-2,+cmd,@Home,-1\n"), 0o644)
	db := filepath.Join(dir, "t.db")
	_, s := runImport(t, db, file)
	code, out, _ := importctl(t, "failures", "--db", db, "--format", "csv", s.BatchID)
	if code != 0 {
		t.Fatalf("failures exit %d", code)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		for _, cell := range strings.Split(line, ",") {
			cell = strings.TrimPrefix(cell, `"`)
			if cell != "" && strings.ContainsRune("=+-@", rune(cell[0])) {
				t.Errorf("cell %q of %q starts with a formula character", cell, line)
			}
		}
	}
	report, _ := os.ReadFile(s.Report)
	if bytes.Contains(report, []byte(",=HYPERLINK")) || bytes.Contains(report, []byte("\n=")) {
		t.Errorf("report is not neutralised:\n%s", report)
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"run"},
		{"run", "--no-such-flag", "x.csv"},
		{"failures", "--db", filepath.Join(t.TempDir(), "none.db"), "b-1"},
		{"failures", "--reason", "NoSuchReason", "b-1"},
		{"run", "--profile", filepath.Join("testdata", "input", "clean.csv"), "x.csv"},
	} {
		if code, _, stderr := importctl(t, args...); code != ExitFailed || stderr == "" {
			t.Errorf("importctl %v: exit %d, stderr %q; want exit 2 with a message", args, code, stderr)
		}
	}
}

func TestPreviewGolden(t *testing.T) {
	t.Parallel()
	code, out, stderr := importctl(t, "preview", "-n", "4", filepath.Join("testdata", "input", "gbk-excel.csv"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	golden(t, "preview-gbk", map[string]any{"stderr": stderr, "stdout": strings.Split(strings.TrimSpace(out), "\n")})
}

func TestStatus(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "t.db")
	_, s := runImport(t, db, filepath.Join("testdata", "input", "gbk-excel.csv"))
	code, out, _ := importctl(t, "status", "--db", db)
	if code != 0 || !strings.Contains(out, s.BatchID) || !strings.Contains(out, "COMPLETED_WITH_ERRORS") {
		t.Errorf("status list: exit %d\n%s", code, out)
	}
	code, out, _ = importctl(t, "status", "--db", db, s.BatchID)
	if code != 0 || !strings.Contains(out, "SHARD") || !strings.Contains(out, "DONE") {
		t.Errorf("status of a batch: exit %d\n%s", code, out)
	}
}
