//go:build cgo

package sqlite

import (
	"errors"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// defaultDriver is mattn's cgo driver: it measured faster than modernc's
// (BenchmarkSinkWrite, BenchmarkCheckpoint).
const defaultDriver = DriverMattn

// mattnCode returns the SQLite result code of a go-sqlite3 error.
func mattnCode(err error) (int, bool) {
	var e sqlite3.Error
	if errors.As(err, &e) {
		return int(e.Code), true
	}
	return 0, false
}
