package sqlite

import (
	"bytes"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/catalog-import/catalog-import/internal/state"
)

// TestRefusesForeignDatabase: a file that is not an importctl database is
// refused before anything in it changes (its journal mode was switched to
// WAL before "no such column: batch_id"), with a message that says so; an
// empty file and a database of ours, with or without its application_id,
// open.
func TestRefusesForeignDatabase(t *testing.T) {
	t.Parallel()
	for _, driver := range drivers() {
		for _, tc := range []struct {
			name string
			sql  string // run on a new database (statements, or a .sql file); "" writes garbage instead
			ours bool
			says string
		}{
			{"another program's products table", "CREATE TABLE products (id INTEGER PRIMARY KEY, title TEXT); CREATE TABLE orders (id INTEGER); INSERT INTO products VALUES (1, 'x')",
				false, "not an importctl database: it holds the tables orders, products (application_id 0x0"},
			{"another program's application_id", "PRAGMA application_id = 1234; CREATE TABLE t (x)", false, "application_id 0x4d2"},
			{"another program's empty database", "PRAGMA application_id = 1234", false, "no tables"},
			{"not SQLite", "", false, "not an importctl database: the file is not SQLite"},
			{"ours before application_id", "testdata/schema-v1.sql", true, ""},
			{"an empty SQLite database", "PRAGMA user_version = 0", true, ""},
		} {
			t.Run(driver+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				path := filepath.Join(t.TempDir(), "shop.db")
				if tc.sql == "" {
					os.WriteFile(path, bytes.Repeat([]byte("not a database\n"), 400), 0o644)
				} else {
					c, err := sql.Open(driver, path)
					if err != nil {
						t.Fatal(err)
					}
					stmts := strings.Split(tc.sql, "; ")
					if strings.HasSuffix(tc.sql, ".sql") {
						data, err := os.ReadFile(tc.sql)
						if err != nil {
							t.Fatal(err)
						}
						stmts = []string{string(data)}
					}
					for _, stmt := range stmts {
						if _, err := c.Exec(stmt); err != nil {
							t.Fatalf("%s: %v", stmt, err)
						}
					}
					c.Close()
				}
				before, _ := os.ReadFile(path)
				db, err := Open(path, Options{Driver: driver})
				if tc.ours {
					if err != nil {
						t.Fatalf("Open: %v", err)
					}
					var id int
					if err := db.wc.QueryRowContext(t.Context(), "PRAGMA application_id").Scan(&id); err != nil || id != ApplicationID {
						t.Errorf("application_id %#x (%v), want %#x", id, err, ApplicationID)
					}
					db.Close()
					return
				}
				if err == nil {
					db.Close()
					t.Fatal("Open succeeded")
				}
				if !errors.Is(err, ErrNotOurs) || !strings.Contains(err.Error(), tc.says) || !strings.HasPrefix(err.Error(), "open database "+path+": ") {
					t.Errorf("Open: %v\nwant ErrNotOurs saying %q", err, tc.says)
				}
				if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
					t.Errorf("the refused file changed (%d bytes -> %d)", len(before), len(after))
				}
				for _, side := range []string{"-wal", "-journal"} {
					if _, err := os.Stat(path + side); err == nil {
						t.Errorf("Open left %s%s", path, side)
					}
				}
			})
		}
	}
}

// TestReadOnlyOpen: Options.ReadOnly reads a database of the current schema
// without a writer (writes fail and say so), and opens an older one
// writable, upgrading it.
func TestReadOnlyOpen(t *testing.T) {
	t.Parallel()
	for _, driver := range drivers() {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "import.db")
			db := must(Open(path, Options{Driver: driver}))
			if _, _, err := db.CreateBatch(t.Context(), state.Batch{ID: "b-1", Status: state.BatchRunning}, nil); err != nil {
				t.Fatal(err)
			}
			db.Close()

			ro, err := Open(path, Options{Driver: driver, ReadOnly: true})
			if err != nil {
				t.Fatalf("read-only Open: %v", err)
			}
			if !ro.readOnly {
				t.Error("a database of the current schema was not opened read-only")
			}
			if b, err := ro.GetBatch(t.Context(), "b-1"); err != nil || b.ID != "b-1" {
				t.Errorf("GetBatch read-only: %+v, %v", b, err)
			}
			_, _, err = ro.CreateBatch(t.Context(), state.Batch{ID: "b-2"}, nil)
			if err == nil || !strings.Contains(err.Error(), "open read-only") {
				t.Errorf("CreateBatch on a read-only database: %v, want it refused", err)
			}
			ro.Close()

			db = must(Open(path, Options{Driver: driver}))
			if _, err := db.wc.ExecContext(t.Context(), "PRAGMA user_version = 4"); err != nil {
				t.Fatal(err)
			}
			db.Close()
			old, err := Open(path, Options{Driver: driver, ReadOnly: true})
			if err != nil {
				t.Fatalf("read-only Open of an older schema: %v", err)
			}
			defer old.Close()
			if old.readOnly {
				t.Error("a database of an older schema was opened read-only, not upgraded")
			}
		})
	}
}
