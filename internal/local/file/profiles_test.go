package file_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/catalog-import/catalog-import/internal/local/file"
	"github.com/catalog-import/catalog-import/internal/pipeline"
	"github.com/catalog-import/catalog-import/internal/pipeline/profilestest"
)

var _ pipeline.Profiles = file.Profiles{}

func TestProfilesContract(t *testing.T) {
	profilestest.Run(t, func(t *testing.T) (pipeline.Profiles, profilestest.Put) {
		dir := t.TempDir()
		return file.Profiles{Dir: dir}, func(t *testing.T, name string, data []byte) {
			if err := os.WriteFile(filepath.Join(dir, name+".yaml"), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	})
}
