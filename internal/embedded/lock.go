package embedded

import (
	"fmt"
	"os"
	"syscall"
)

// lock takes an exclusive lock next to the database so that one process at a
// time runs imports on it. In-memory databases need none.
func lock(db string) (func(), error) {
	if db == ":memory:" {
		return func() {}, nil
	}
	f, err := os.OpenFile(db+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", db, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("database %s is in use by another importctl run (%s.lock is held)", db, db)
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}
