//go:build windows || plan9

package sqlite

import "os"

// writable reports whether the file at path lacks the read-only attribute.
func writable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().Perm()&0o200 != 0
}
