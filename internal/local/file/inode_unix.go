//go:build !windows && !plan9

package file

import (
	"errors"
	"io/fs"
	"syscall"
)

// inode returns the file's inode number, or 0 if fi does not carry one.
func inode(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino)
	}
	return 0
}

// running reports whether process pid exists on this host.
func running(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
