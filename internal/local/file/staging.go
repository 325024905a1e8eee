package file

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/catalog-import/catalog-import/internal/object"
)

// Staging is the staging area of embedded runs (split.Stager): a batch's
// staged objects are the files Dir/<batch>/<name>, read back by Source.
// Each is written to a temporary file and renamed into place, so a reader
// sees a whole object or none, and a name staged again is a new file (a new
// inode, so a new version tag). It is safe for concurrent use.
type Staging struct {
	Dir string
}

// Stage writes data as Dir/<batchID>/<name> and returns it as Source reads
// it (its URI is the absolute path). batchID and name must be plain names
// (no path separators).
func (s Staging) Stage(ctx context.Context, batchID, name string, data []byte) (object.Info, error) {
	if err := ctx.Err(); err != nil {
		return object.Info{}, err
	}
	dir, err := s.batchDir(batchID)
	if err != nil {
		return object.Info{}, err
	}
	if !plain(name) {
		return object.Info{}, fmt.Errorf("file: staged object name %q is not a plain name", name)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return object.Info{}, fmt.Errorf("stage %s: %w", name, err)
	}
	tmp, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return object.Info{}, fmt.Errorf("stage %s: %w", name, err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return object.Info{}, fmt.Errorf("stage %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return object.Info{}, fmt.Errorf("stage %s: %w", name, err)
	}
	path, err := filepath.Abs(filepath.Join(dir, name))
	if err != nil {
		return object.Info{}, fmt.Errorf("stage %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return object.Info{}, fmt.Errorf("stage %s: %w", name, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return object.Info{}, fmt.Errorf("stage %s: %w", name, err)
	}
	return object.Info{URI: path, Size: fi.Size(), ETag: ETag(fi), ModTime: fi.ModTime()}, nil
}

// Unstage removes Dir/<batchID>.
func (s Staging) Unstage(ctx context.Context, batchID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dir, err := s.batchDir(batchID)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("unstage %s: %w", batchID, err)
	}
	return nil
}

func (s Staging) batchDir(batchID string) (string, error) {
	if s.Dir == "" {
		return "", fmt.Errorf("file: staging has no directory")
	}
	if !plain(batchID) {
		return "", fmt.Errorf("file: batch id %q is not a plain name", batchID)
	}
	return filepath.Join(s.Dir, batchID), nil
}

// plain reports whether name can be one path element.
func plain(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, `/\`)
}
