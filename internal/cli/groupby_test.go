package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFailuresGroupByGolden: --group-by reason, layer and field count a
// batch's failed rows in every output format, and filters apply first.
func TestFailuresGroupByGolden(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "t.db")
	_, s := runImport(t, db, filepath.Join("testdata", "input", "gbk-excel.csv"))
	got := map[string][]string{}
	for _, tc := range []struct{ name, group, format string }{
		{"reason-table", "reason", "table"}, {"layer-table", "layer", "table"}, {"field-table", "field", "table"},
		{"reason-csv", "reason", "csv"}, {"layer-csv", "layer", "csv"}, {"field-csv", "field", "csv"},
		{"reason-jsonl", "reason", "jsonl"}, {"layer-jsonl", "layer", "jsonl"}, {"field-jsonl", "field", "jsonl"},
	} {
		code, out, stderr := importctl(t, "failures", "--db", db, "--group-by", tc.group, "--format", tc.format, s.BatchID)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", tc.name, code, stderr)
		}
		got[tc.name] = strings.Split(strings.TrimRight(out, "\n"), "\n")
	}
	_, out, _ := importctl(t, "failures", "--db", db, "--group-by", "field", "--layer", "semantic", "--limit", "2", s.BatchID)
	got["field-table-semantic-top-2"] = strings.Split(strings.TrimRight(out, "\n"), "\n")
	golden(t, "failures-group-by", got)

	for _, args := range [][]string{{"--group-by", "sheet"}, {"--group-by", "reason", "--format", "fixfile"}} {
		if code, _, _ := importctl(t, append(append([]string{"failures", "--db", db}, args...), s.BatchID)...); code != ExitFailed {
			t.Errorf("failures %v: exit %d, want %d", args, code, ExitFailed)
		}
	}
}

// TestReportCommand: importctl report renders the batch's page from the
// store, with the batch's numbers, to a file or stdout.
func TestReportCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "t.db")
	_, s := runImport(t, db, filepath.Join("testdata", "input", "gbk-excel.csv"))
	out := filepath.Join(dir, "page.html")
	if code, _, stderr := importctl(t, "report", "--db", db, "-o", out, s.BatchID); code != 0 {
		t.Fatalf("report: exit %d: %s", code, stderr)
	}
	page, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	_, stdout, _ := importctl(t, "report", "--db", db, "-o", "-", s.BatchID)
	for _, p := range []string{string(page), stdout} {
		for _, want := range []string{string(s.Status), `data-value="9">9</span> rows`, `data-value="7">7</span> failed`,
			`data-key="InvalidValue" data-count="3"`} {
			if !strings.Contains(p, want) {
				t.Errorf("report page lacks %q", want)
			}
		}
	}
	if code, _, _ := importctl(t, "report", "--db", db, "b-missing"); code != ExitFailed {
		t.Errorf("report of an unknown batch: exit %d", code)
	}
}
