//go:build windows || plan9

package file

import "io/fs"

// inode returns 0: this system's FileInfo carries no inode number, so the
// version tag rests on size and modification time alone.
func inode(fs.FileInfo) uint64 { return 0 }

// running reports true: this system offers no cheap check, so temporary
// files are never taken for stale.
func running(int) bool { return true }
