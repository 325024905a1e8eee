package file

import (
	"context"
	"io"
	"os"
	"path/filepath"

	"github.com/catalog-import/catalog-import/internal/finalize"
)

// Reports is the report store of embedded runs (finalize.Reports): a
// batch's reports are the files Dir/<batch>/<name>, like reports/<batch>/
// on S3. Each is written with WriteFile: through a temporary file renamed
// into place, so a failing writer leaves no partial report (and a killed
// one no temporary file after the next write), with the mode a shell gives
// a new file. An empty Dir keeps no reports
// (a dry run): the writer still runs, into io.Discard.
type Reports struct {
	Dir string
}

// Put writes the report and returns its path.
func (r Reports) Put(_ context.Context, batchID, name string, write func(io.Writer) error) (string, error) {
	if err := finalize.ReportName(batchID, name); err != nil {
		return "", err
	}
	if r.Dir == "" {
		return "", write(io.Discard)
	}
	dir := filepath.Join(r.Dir, batchID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, name)
	if err := WriteFile(path, write); err != nil {
		return "", err
	}
	return path, nil
}
