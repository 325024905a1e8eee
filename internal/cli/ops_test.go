package cli

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestRunSizeAndRateFlags: embedded runs have no size limit unless
// --max-file-bytes asks for one, and then a larger file is REJECTED (exit
// 2) with the size and the limit named; --write-rate caps the writes and
// the import ends as without it; a negative rate is a usage error.
func TestRunSizeAndRateFlags(t *testing.T) {
	t.Parallel()
	const file = "testdata/input/clean.csv"
	dir := t.TempDir()
	plain, _ := runImport(t, filepath.Join(dir, "a.db"), file)
	if plain.Status != "COMPLETED" {
		t.Fatalf("clean.csv: %+v", plain)
	}
	big, _ := runImport(t, filepath.Join(dir, "b.db"), file, "--max-file-bytes", "40")
	if big.Exit != ExitFailed || big.Status != "REJECTED" || !strings.Contains(big.Message, "over the limit of 40 B (40 bytes)") {
		t.Errorf("--max-file-bytes 40: %+v, want REJECTED naming the limit", big)
	}
	limited, _ := runImport(t, filepath.Join(dir, "c.db"), file, "--write-rate", "100000", "--max-file-bytes", "1000000")
	if limited.Status != plain.Status || limited.Rows != plain.Rows {
		t.Errorf("--write-rate: %+v, want %+v", limited, plain)
	}
	if code, _, stderr := importctl(t, "run", "--db", filepath.Join(dir, "d.db"), "--write-rate", "-5", file); code != ExitFailed || !strings.Contains(stderr, "--write-rate") {
		t.Errorf("--write-rate -5: exit %d, %q", code, stderr)
	}
}
