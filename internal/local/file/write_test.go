package file_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/catalog-import/catalog-import/internal/local/file"
)

// TestWriteFileMode: a file written by WriteFile has the mode a new file
// gets from os.Create (0666 less the umask), not CreateTemp's 0600.
func TestWriteFileMode(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	plain, err := os.Create(filepath.Join(dir, "plain"))
	if err != nil {
		t.Fatal(err)
	}
	plain.Close()
	want, _ := os.Stat(plain.Name())
	path := filepath.Join(dir, "errors.csv")
	if err := file.WriteFile(path, func(w io.Writer) error { _, err := io.WriteString(w, "row\n"); return err }); err != nil {
		t.Fatal(err)
	}
	got, err := os.Stat(path)
	if err != nil || got.Mode() != want.Mode() {
		t.Errorf("mode %v (%v), want %v as os.Create gives", got.Mode(), err, want.Mode())
	}
}

// TestWriteFileRemovesStale: a write removes the temporary files of its
// name that a killed process left (and those of earlier versions), keeps
// those of running processes and of other names, and a failed write
// leaves nothing.
func TestWriteFileRemovesStale(t *testing.T) {
	t.Parallel()
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Skip("no process to take a pid from:", err)
	}
	dir := t.TempDir()
	for _, name := range []string{
		fmt.Sprintf("errors.csv.%d-1.tmp", gone.Process.Pid),  // killed during a write
		"errors.csv.2961450185",                               // os.CreateTemp of an earlier version
		"errors.csv.1-7.tmp",                                  // pid 1 runs: a write under way
		fmt.Sprintf("errors.csv.%d-3.tmp", os.Getpid()),       // this process's own
		fmt.Sprintf("report.html.%d-1.tmp", gone.Process.Pid), // another report's: its own write cleans it
		"errors.csv.bak",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	boom := errors.New("boom")
	if err := file.WriteFile(filepath.Join(dir, "errors.csv"), func(io.Writer) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("failing write: %v, want its error", err)
	}
	es, _ := os.ReadDir(dir)
	var left []string
	for _, e := range es {
		left = append(left, e.Name())
	}
	want := []string{"errors.csv.1-7.tmp", fmt.Sprintf("errors.csv.%d-3.tmp", os.Getpid()), "errors.csv.bak",
		fmt.Sprintf("report.html.%d-1.tmp", gone.Process.Pid)}
	slices.Sort(want)
	if !slices.Equal(left, want) {
		t.Errorf("left %v, want %v", left, want)
	}
}
