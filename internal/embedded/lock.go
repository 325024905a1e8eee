package embedded

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// lock takes an exclusive flock(2) on the database file itself (creating
// it empty when it does not exist yet, which SQLite takes for a new
// database), so that one process at a time runs imports on it. The lock
// follows the file, not the path that names it: a symlink or a hard link to
// the same database meets the same lock. In-memory databases need none.
//
// SQLite locks with POSIX fcntl(2) byte-range locks, which on Linux are
// independent of flock(2), so this lock does not get in SQLite's way (nor
// in a reader's, such as importctl status). One thing matters: closing any
// descriptor of the file drops the process's fcntl locks on it, so the
// returned release must run after the database is closed (Run defers it
// first), and a process must not Run twice at once on one database.
// (SQLite itself names its WAL and shared-memory files after the path, so
// its locking does not see through a hard link; importctl runs are kept
// apart by this lock all the same.)
func lock(db string) (func(), error) {
	if db == ":memory:" {
		return func() {}, nil
	}
	f, err := os.OpenFile(db, os.O_CREATE|os.O_RDWR, 0o644)
	switch {
	case errors.Is(err, syscall.EROFS):
		return nil, fmt.Errorf("database %s is on a read-only file system: an import writes it", db)
	case errors.Is(err, fs.ErrPermission):
		mode := ""
		if fi, serr := os.Stat(db); serr == nil {
			mode = fmt.Sprintf(" (mode %v)", fi.Mode().Perm())
		}
		return nil, fmt.Errorf("database %s may not be written%s: an import writes it (chmod u+w %s, or use another database)", db, mode, db)
	case err != nil:
		return nil, fmt.Errorf("lock database %s: %w", db, unpath(err))
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("database %s is in use: another importctl run holds it%s", db, realName(db))
		}
		return nil, fmt.Errorf("lock database %s: %w", db, err)
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

// realName says which file db resolves to, when that is not db itself
// (" (the file /data/x.db)"), for the lock's message.
func realName(db string) string {
	abs, err := filepath.Abs(db)
	if err != nil {
		return ""
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil || real == abs {
		return ""
	}
	return fmt.Sprintf(" (the file %s)", real)
}

// unpath is the cause of a *fs.PathError, whose text would name the path
// again; other errors are returned as they are. errors.Is still sees
// fs.ErrNotExist or fs.ErrPermission through it.
func unpath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
