package file

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/catalog-import/catalog-import/internal/profile"
)

// Profiles is a folder of named profiles, <Dir>/<name>.yaml
// (pipeline.Profiles): the local counterpart of a stack's profiles/.
type Profiles struct {
	Dir string
}

// Get reads <Dir>/<name>.yaml and checks it (profile.CheckNamed). A name profile.CheckName refuses, or no such file, is an
// error matching profile.ErrNotFound; a profile that does not check names
// its file and problems.
func (p Profiles) Get(ctx context.Context, name string) (*profile.Profile, error) {
	if err := profile.CheckName(name); err != nil {
		return nil, fmt.Errorf("%w: %w", profile.ErrNotFound, err)
	}
	path := filepath.Join(p.Dir, name+".yaml")
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: no %s", profile.ErrNotFound, path)
	}
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	if len(data) > profile.MaxSize {
		return nil, fmt.Errorf("profile %s: larger than %d bytes", path, profile.MaxSize)
	}
	pr, err := profile.CheckNamed(name, data)
	if err != nil {
		return nil, fmt.Errorf("profile %s:\n%w", path, err)
	}
	return pr, nil
}
