package embedded

import (
	"bufio"
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/catalog-import/catalog-import/internal/local/sqlite"
	"github.com/catalog-import/catalog-import/internal/state"
)

// lockHelperEnv makes TestLockHelperProcess the other importctl run: it
// takes the lock on the database the variable names, writes in an open
// SQLite transaction, says "ready" and holds both until its stdin closes.
const lockHelperEnv = "EMBEDDED_LOCK_HELPER_DB"

func TestLockHelperProcess(t *testing.T) {
	db := os.Getenv(lockHelperEnv)
	if db == "" {
		t.Skip("the helper process of TestLockFollowsTheDatabaseFile")
	}
	unlock, err := lock(db)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	conn, err := sql.Open(sqlite.DefaultDriver, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetMaxOpenConns(1)
	if _, err := conn.Exec("BEGIN IMMEDIATE"); err != nil {
		t.Fatalf("SQLite under the lock: %v", err)
	}
	if _, err := conn.Exec("CREATE TABLE held(x)"); err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("ready\n")
	bufio.NewReader(os.Stdin).ReadString('\n') // until the parent closes stdin
	if _, err := conn.Exec("COMMIT"); err != nil {
		t.Fatal(err)
	}
}

// holdLock starts another process holding the lock on db (and a SQLite
// write transaction on it) and returns a function that ends it.
func holdLock(t *testing.T, db string) func() {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelperProcess$")
	cmd.Env = append(os.Environ(), lockHelperEnv+"="+db)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if line != "ready\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper process: %q", line)
	}
	done := false
	stop := func() {
		if done {
			return
		}
		done = true
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("helper process: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

// TestLockFollowsTheDatabaseFile: while one importctl run holds a database,
// a second run is refused whichever path names the file (the same path, a
// symlink, a hard link), with a message naming the database; once the first
// ends, the second runs. The lock leaves SQLite's own locking as it was:
// the holder writes under it, a reader still reads, and a second writer
// still finds SQLite's write lock taken.
func TestLockFollowsTheDatabaseFile(t *testing.T) {
	for _, tc := range []struct {
		name  string
		alias func(t *testing.T, db string) string
	}{
		{"same path", func(t *testing.T, db string) string { return db }},
		{"symlink", func(t *testing.T, db string) string {
			p := filepath.Join(t.TempDir(), "link.db")
			if err := os.Symlink(db, p); err != nil {
				t.Fatal(err)
			}
			return p
		}},
		{"hard link", func(t *testing.T, db string) string {
			p := filepath.Join(filepath.Dir(db), "hard.db")
			if err := os.Link(db, p); err != nil {
				t.Fatal(err)
			}
			return p
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			db := filepath.Join(dir, "catalog.db")
			src := filepath.Join(dir, "products.csv")
			if err := os.WriteFile(src, []byte(productsCSV(3)), 0o644); err != nil {
				t.Fatal(err)
			}
			first, err := Run(context.Background(), Config{DB: db}, src) // the database exists
			if err != nil || first.Batch.Status != state.BatchCompleted {
				t.Fatalf("first run: %+v, %v", first.Batch, err)
			}
			alias := tc.alias(t, db)
			stop := holdLock(t, db)

			_, err = Run(context.Background(), Config{DB: alias, Salt: "second"}, src)
			want := "database " + alias + " is in use: another importctl run holds it"
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("second run via %s: error %v, want it to say %q", tc.name, err, want)
			}
			// SQLite's own locks are untouched: a reader reads, a second
			// writer finds the holder's write lock. (Through db's own path:
			// SQLite names its WAL and shared-memory files after the path, so
			// its locking does not see through hard links; the flock does.)
			conn, err := sql.Open(sqlite.DefaultDriver, db)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			var n int
			if err := conn.QueryRow("SELECT count(*) FROM sqlite_master").Scan(&n); err != nil || n == 0 {
				t.Errorf("reader under the lock: %d tables, %v", n, err)
			}
			if _, err := conn.Exec("CREATE TABLE other(x)"); err == nil {
				t.Errorf("a second SQLite writer wrote while the holder's write transaction was open")
			}
			conn.Close()

			stop()
			sum, err := Run(context.Background(), Config{DB: alias, Salt: "second"}, src)
			if err != nil || sum.Batch.Status != state.BatchCompleted {
				t.Fatalf("run via %s after the lock was released: %+v, %v", tc.name, sum.Batch, err)
			}
		})
	}
}

// TestLockCreatesTheDatabase: the lock of a database that does not exist
// yet creates it empty, and SQLite makes a database of it.
func TestLockCreatesTheDatabase(t *testing.T) {
	db := filepath.Join(t.TempDir(), "new.db")
	src := filepath.Join(t.TempDir(), "products.csv")
	if err := os.WriteFile(src, []byte(productsCSV(3)), 0o644); err != nil {
		t.Fatal(err)
	}
	sum, err := Run(context.Background(), Config{DB: db}, src)
	if err != nil || sum.Batch.Status != state.BatchCompleted {
		t.Fatalf("run on a new database: %+v, %v", sum.Batch, err)
	}
	if _, err := os.Stat(db + ".lock"); err == nil {
		t.Errorf("%s.lock exists: the lock is the database file's own", db)
	}
}
