package file

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/catalog-import/catalog-import/internal/profile"
)

// Profiles is a folder of named profiles, <Dir>/<name>.yaml
// (pipeline.Profiles): the local counterpart of a stack's profiles/.
type Profiles struct {
	Dir string
}

// Get loads <Dir>/<name>.yaml and compiles it (profile.Load,
// profile.Check). A name profile.CheckName refuses, or no such file, is an
// error matching profile.ErrNotFound; a profile that does not check names
// its file and problems.
func (p Profiles) Get(ctx context.Context, name string) (*profile.Profile, error) {
	if err := profile.CheckName(name); err != nil {
		return nil, fmt.Errorf("%w: %w", profile.ErrNotFound, err)
	}
	path := filepath.Join(p.Dir, name+".yaml")
	pr, err := profile.Load(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: no %s", profile.ErrNotFound, path)
	}
	if err != nil {
		return nil, err
	}
	if _, err := pr.Compile(); err != nil {
		return nil, fmt.Errorf("profile %s:\n%w", path, err)
	}
	return pr, nil
}
