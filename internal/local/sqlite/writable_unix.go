//go:build !windows && !plan9

package sqlite

import "syscall"

// writable reports whether this process may write the file at path (its
// permissions, and a read-only mount).
func writable(path string) bool {
	return syscall.Access(path, 2 /* W_OK */) == nil
}
