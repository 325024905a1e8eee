package file

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// WriteFile writes the file at path with write, through a temporary file in
// the same folder that is renamed into place once write and the close
// succeeded: a reader sees the old file or the new one, never a part, and a
// failed write leaves no file.
//
// The file is created with mode 0666 less the process's umask, as a shell
// redirection or cp makes one (0644 under the usual umask), whoever writes
// it: every report has the mode of the database beside it.
//
// The temporary file is <name>.<pid>-<n>.tmp. A process killed during a
// write leaves its temporary file behind; the next write of the same path
// removes those of processes that are gone (and <name>.<digits>, the
// temporary files of earlier versions), so a kill during finalization does
// not leave them for ever. A process on another host sharing the folder is
// taken for gone: its write then fails and is retried by finalization.
func WriteFile(path string, write func(io.Writer) error) error {
	dir, name := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	removeStale(dir, name)
	var (
		f   *os.File
		tmp string
		err error
	)
	for range 100 {
		tmp = filepath.Join(dir, fmt.Sprintf("%s.%d-%d.tmp", name, os.Getpid(), rand.Uint32()))
		if f, err = os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666); !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	if err != nil {
		return err
	}
	defer os.Remove(tmp) // a no-op once renamed
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// removeStale removes the temporary files of name in dir that no running
// process is writing (see WriteFile). It is best effort: a file it cannot
// remove stays for a later write.
func removeStale(dir, name string) {
	es, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range es {
		rest, ok := strings.CutPrefix(e.Name(), name+".")
		if !ok || e.IsDir() {
			continue
		}
		if ours, ok := strings.CutSuffix(rest, ".tmp"); ok {
			pid, _, ok := strings.Cut(ours, "-")
			if n, err := strconv.Atoi(pid); ok && err == nil && n != os.Getpid() && !running(n) {
				os.Remove(filepath.Join(dir, e.Name()))
			}
			continue
		}
		if _, err := strconv.ParseUint(rest, 10, 64); err == nil { // os.CreateTemp(dir, name+".*")
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}
