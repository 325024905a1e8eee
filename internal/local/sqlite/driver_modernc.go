package sqlite

import (
	"errors"

	msqlite "modernc.org/sqlite"
)

// moderncCode returns the SQLite result code of a modernc.org/sqlite error
// (extended codes: the primary code is the low byte).
func moderncCode(err error) (int, bool) {
	var e *msqlite.Error
	if errors.As(err, &e) {
		return e.Code(), true
	}
	return 0, false
}
