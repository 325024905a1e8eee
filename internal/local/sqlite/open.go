package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ApplicationID is the SQLite application_id of an importctl database
// ("CIMP"), set by Open in every database it creates or upgrades.
const ApplicationID = 0x43494d50

// ErrNotOurs is the error of Open on a file that is not an importctl
// database (another program's SQLite database, or not SQLite at all): Open
// refuses it before it changes anything. Test it with errors.Is.
var ErrNotOurs = errors.New("not an importctl database")

// inspection is what Open reads of a file before it changes anything.
type inspection struct {
	empty   bool // no table yet: a new database
	version int  // PRAGMA user_version
}

// inspect reads the file's header (application_id, user_version) and its
// tables on a read-only connection that sets no pragma (a foreign
// database's journal mode stays as it is), and refuses a file that is not
// an importctl database: one whose application_id is another program's,
// or, without one, that lacks the batches table of every version of ours.
// A missing or empty file is a new database.
func inspect(ctx context.Context, path string, o Options, immutable bool) (inspection, error) {
	if fi, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) || (err == nil && fi.Size() == 0) {
		return inspection{empty: true}, nil
	}
	q := url.Values{"mode": {"ro"}}
	if immutable {
		q.Set("immutable", "1")
	}
	c, err := sql.Open(o.Driver, fileURI(path, q))
	if err != nil {
		return inspection{}, err
	}
	defer c.Close()
	var id, version int
	if err := c.QueryRowContext(ctx, "PRAGMA application_id").Scan(&id); err != nil {
		if code, ok := resultCode(err); ok && code&0xff == codeNotADB {
			return inspection{}, fmt.Errorf("%w: the file is not SQLite", ErrNotOurs)
		}
		return inspection{}, mapErr(err)
	}
	if err := c.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return inspection{}, mapErr(err)
	}
	rows, err := c.QueryContext(ctx, `SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	if err != nil {
		return inspection{}, mapErr(err)
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return inspection{}, mapErr(err)
		}
		tables = append(tables, t)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return inspection{}, mapErr(err)
	}
	var ours bool
	switch id {
	case ApplicationID:
		ours = true
	case 0: // written before application_id was set: ours if it has our batches table
		var cols int
		if err := c.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('batches') WHERE name IN ('batch_id', 'status', 'rows_total')`).Scan(&cols); err != nil {
			return inspection{}, mapErr(err)
		}
		ours = len(tables) == 0 || cols == 3
	}
	if !ours {
		what := "no tables"
		switch len(tables) {
		case 0:
		case 1:
			what = "the table " + tables[0]
		default:
			what = "the tables " + strings.Join(first(tables, 8), ", ")
		}
		return inspection{}, fmt.Errorf("%w: it holds %s (application_id %#x, importctl's is %#x); nothing in it was changed",
			ErrNotOurs, what, id, ApplicationID)
	}
	return inspection{empty: len(tables) == 0, version: version}, nil
}

// first is the first n of s, with "..." when there are more.
func first(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(slices.Clip(s[:n]), "...")
}

// fileURI is path as an SQLite URI filename with query q (SQLite's own
// parameters such as mode and immutable apply only to URIs; both drivers
// pass a "file:" name to SQLite whole and read their own parameters from
// the same query).
func fileURI(path string, q url.Values) string {
	return "file:" + strings.ReplaceAll(path, "%", "%25") + "?" + q.Encode()
}

// readOnlyDSN is the data source name of the read pool of a database
// opened read-only: mode=ro, and immutable=1 when the file cannot be
// written and has no write-ahead log (a read-only mount, or a file without
// write permission: nothing can be pending, and SQLite then needs no -shm
// file, which it would otherwise create with the database's read-only
// mode).
func readOnlyDSN(path string, o Options, immutable bool) string {
	q := url.Values{"mode": {"ro"}}
	if immutable {
		q.Set("immutable", "1")
	}
	ms := strconv.FormatInt(o.BusyTimeout.Milliseconds(), 10)
	switch o.Driver {
	case DriverMattn:
		q.Set("_busy_timeout", ms)
		q.Set("_query_only", "1")
		q.Set("_mutex", "no")
	default:
		q.Add("_pragma", "busy_timeout("+ms+")")
		q.Add("_pragma", "query_only(1)")
	}
	return fileURI(path, q)
}

// immutableFile reports whether the database at path can be read as
// immutable: this process cannot write it and it has no write-ahead log.
func immutableFile(path string) bool {
	if writable(path) {
		return false
	}
	_, err := os.Stat(path + "-wal")
	return errors.Is(err, fs.ErrNotExist)
}

// checkWritable checks, before a writable open, that the database and the
// -wal and -shm files SQLite keeps beside it can be written. A read of a
// database whose file was read-only made those files with its read-only
// mode; once the database is writable again they would make every write
// fail "attempt to write a readonly database" without naming them. Such a
// file that this process owns is given the database's mode; otherwise the
// error names it.
func checkWritable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return nil // a new database: SQLite creates it
	}
	if !writable(path) {
		return fmt.Errorf("the file is read-only (mode %v): writing needs it writable (chmod u+w %s)", fi.Mode().Perm(), path)
	}
	if dir := filepath.Dir(path); !writable(dir) {
		if _, err := os.Stat(path + "-wal"); err != nil {
			return fmt.Errorf("the folder %s is read-only: SQLite keeps its -wal and -shm files beside the database", dir)
		}
	}
	for _, side := range []string{path + "-wal", path + "-shm"} {
		sfi, err := os.Stat(side)
		if err != nil || writable(side) {
			continue
		}
		if err := os.Chmod(side, fi.Mode().Perm()); err != nil || !writable(side) {
			return fmt.Errorf("%s is read-only (mode %v; made by a read of the database while it was read-only): "+
				"make it writable (chmod u+w %s), or remove it while nothing has the database open", side, sfi.Mode().Perm(), side)
		}
	}
	return nil
}

// resultCode returns the SQLite result code of a driver error.
func resultCode(err error) (int, bool) {
	if code, ok := mattnCode(err); ok {
		return code, true
	}
	return moderncCode(err)
}

// SQLite result codes Open tells apart.
const (
	codeReadOnly = 8
	codeNotADB   = 26
)
