package file_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/catalog-import/catalog-import/internal/finalize"
	"github.com/catalog-import/catalog-import/internal/finalize/reportstest"
	"github.com/catalog-import/catalog-import/internal/local/file"
)

var _ finalize.Reports = file.Reports{}

// dirReader reads reports back from their folder.
type dirReader string

func (d dirReader) Read(_ context.Context, location string) ([]byte, error) {
	return os.ReadFile(location)
}

func (d dirReader) List(_ context.Context, batchID string) ([]string, error) {
	es, err := os.ReadDir(filepath.Join(string(d), batchID))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names, err
}

func TestReportsContract(t *testing.T) {
	reportstest.Run(t, func(t *testing.T) (finalize.Reports, reportstest.Reader) {
		dir := t.TempDir()
		return file.Reports{Dir: dir}, dirReader(dir)
	})
}

// TestReportsWithoutDir: a dry run keeps no reports, but the report is
// still written (its errors still count).
func TestReportsWithoutDir(t *testing.T) {
	var wrote bool
	loc, err := file.Reports{}.Put(t.Context(), "b-1", "errors.csv", func(w io.Writer) error {
		_, err := io.WriteString(w, "sku\n")
		wrote = err == nil
		return err
	})
	if loc != "" || err != nil || !wrote {
		t.Errorf("Put without a folder: %q, %v (written: %v); want no location and no error", loc, err, wrote)
	}
	boom := errors.New("boom")
	if _, err := (file.Reports{}).Put(t.Context(), "b-1", "errors.csv", func(io.Writer) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("Put without a folder, failing writer: %v, want its error", err)
	}
}
