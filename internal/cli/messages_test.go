package cli

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"unicode"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/local/sqlite"
)

// repeatedPhrase returns what msg says twice, or "": two words in a row
// that it said before ("stat x.csv: stat x.csv"), or a name (a word with a
// dot, slash, dash or digit: a file, a batch id) that it named before. An
// error wrapped by a caller that repeats what its callee already said
// reads like that.
func repeatedPhrase(msg string) string {
	names := map[string]bool{}
	pairs := map[string]bool{}
	for _, part := range strings.FieldsFunc(msg, func(r rune) bool { return r == ':' || r == '\n' }) {
		words := strings.FieldsFunc(part, func(r rune) bool {
			return unicode.IsSpace(r) || strings.ContainsRune(`,;()[]"'`+"`", r)
		})
		for i, w := range words {
			if len(w) >= 3 && strings.ContainsFunc(w, func(r rune) bool { return unicode.IsDigit(r) || strings.ContainsRune("./-_", r) }) {
				if names[w] {
					return w
				}
				names[w] = true
			}
			if i > 0 {
				pair := strings.ToLower(words[i-1] + " " + w)
				if pairs[pair] {
					return pair
				}
				pairs[pair] = true
			}
		}
	}
	return ""
}

func TestRepeatedPhrase(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ msg, want string }{
		{"read nosuch.csv: stat nosuch.csv: stat nosuch.csv: no such file or directory", "nosuch.csv"},
		{"profile x.yaml: profile x.yaml: bad", "x.yaml"},
		{"release leases of b-1: release leases of b-1: Throttled", "release leases"},
		{"open the file: open the file", "open the"},
		{"stat nosuch.csv: no such file or directory", ""},
		{"no batch b-nosuch in /tmp/t.db", ""},
		{"run takes FILE (got 0 arguments)\nusage: importctl run [flags] FILE", ""},
	} {
		if got := repeatedPhrase(tc.msg); got != tc.want {
			t.Errorf("repeatedPhrase(%q) = %q, want %q", tc.msg, got, tc.want)
		}
	}
}

// TestErrorsNameThingsOnce runs the commands a user gets wrong first and
// checks that each error names its file, batch or step once ("stat x: stat
// x:" was a callee's phrase repeated by its caller).
func TestErrorsNameThingsOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "t.db")
	_, s := runImport(t, db, filepath.Join("testdata", "input", "gbk-excel.csv"))
	csv := filepath.Join("testdata", "input", "clean.csv")
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("fields:\n  price:\n    scale: -1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("not a database\n", 400)), 0o644); err != nil {
		t.Fatal(err)
	}
	locked := filepath.Join(dir, "locked.db")
	lf, err := os.Create(locked)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	shop := filepath.Join(dir, "shop.db") // another program's database
	if c, err := sql.Open(sqlite.DriverModernc, shop); err != nil {
		t.Fatal(err)
	} else if _, err := c.Exec("CREATE TABLE products (id INTEGER PRIMARY KEY, title TEXT)"); err != nil {
		t.Fatal(err)
	} else {
		c.Close()
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"another program's database", []string{"run", "--db", shop, csv}},
		{"status of another program's database", []string{"status", "--db", shop}},
		{"run a missing file", []string{"run", "--db", db, filepath.Join(dir, "nosuch.csv")}},
		{"validate a missing file", []string{"validate", filepath.Join(dir, "nosuch.csv")}},
		{"preview a missing file", []string{"preview", filepath.Join(dir, "nosuch.csv")}},
		{"run a folder", []string{"run", "--db", db, dir}},
		{"database in a missing folder", []string{"run", "--db", filepath.Join(dir, "no", "such", "t.db"), csv}},
		{"database that is not one", []string{"run", "--db", garbage, csv}},
		{"status of a database that is not one", []string{"status", "--db", garbage}},
		{"database in use", []string{"run", "--db", locked, csv}},
		{"missing profile", []string{"run", "--db", db, "-p", filepath.Join(dir, "nosuch.yaml"), csv}},
		{"profile that is not YAML", []string{"run", "--db", db, "-p", csv, csv}},
		{"profile with a bad rule", []string{"run", "--db", db, "-p", bad, csv}},
		{"profile command, bad rule", []string{"profile", bad}},
		{"profile command, missing file", []string{"profile", filepath.Join(dir, "nosuch.yaml")}},
		{"status of an unknown batch", []string{"status", "--db", db, "b-nosuch"}},
		{"failures of an unknown batch", []string{"failures", "--db", db, "b-nosuch"}},
		{"report of an unknown batch", []string{"report", "--db", db, "b-nosuch"}},
		{"retry of an unknown batch", []string{"retry-failures", "--db", db, "b-nosuch"}},
		{"cancel of an unknown batch", []string{"cancel", "--db", db, "b-nosuch"}},
		{"cancel of a finished batch", []string{"cancel", "--db", db, s.BatchID}},
		{"unknown reason", []string{"failures", "--db", db, "--reason", "Nope", s.BatchID}},
		{"unknown flag", []string{"run", "--nope", csv}},
		{"no file", []string{"run"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := importctl(t, tc.args...)
			if code == ExitOK || stderr == "" {
				t.Fatalf("importctl %v: exit %d, stderr %q; want an error", tc.args, code, stderr)
			}
			t.Logf("importctl %v:\n%s", tc.args, stderr)
			if p := repeatedPhrase(stderr); p != "" {
				t.Errorf("importctl %v says %q twice:\n%s", tc.args, p, stderr)
			}
		})
	}
}

// importctlIn runs importctl (this test binary, see TestMain) after the
// shell commands setup, in a mount namespace of its own, so that setup
// may mount a small tmpfs (a full disk) or remount a folder read-only. It
// skips the test where that cannot be done (no unshare, no privilege).
func importctlIn(t *testing.T, setup string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	if out, err := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", "mount -t tmpfs -o size=4k tmpfs \"$(mktemp -d)\"").CombinedOutput(); err != nil {
		t.Skipf("cannot mount in a namespace of its own here (%v: %s)", err, bytes.TrimSpace(out))
	}
	return importctlExec(t, os.Args[0], []string{"unshare", "-m", "--propagation", "private", "sh", "-c", setup + ` && exec "$0" "$@"`}, args...)
}

// importctlExec runs binary (this test binary, or a copy of it) as
// importctl with args, after the command line wrap (which runs it).
func importctlExec(t *testing.T, binary string, wrap []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	line := append(append(wrap[1:len(wrap):len(wrap)], binary), args...)
	cmd := exec.Command(wrap[0], line...)
	cmd.Env = append(os.Environ(), "IMPORTCTL_TEST_MAIN=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("importctl %v: %v", args, err)
	}
	return code, out.String(), errb.String()
}

// TestJSONErrors: with --json every outcome is JSON on stdout, an error
// too (one ErrorJSON object, its message the one on stderr), so that a
// script can parse whatever happens.
func TestJSONErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "t.db")
	_, s := runImport(t, db, filepath.Join("testdata", "input", "gbk-excel.csv"))
	csv := filepath.Join("testdata", "input", "clean.csv")
	locked := filepath.Join(dir, "locked.db")
	lf, err := os.Create(locked)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	var big strings.Builder
	big.WriteString("sku,name,category,brand,price,currency,stock,status,description,image_urls\n")
	for i := range 20000 {
		fmt.Fprintf(&big, "S-%06d,Product %d with a long name,Home/Kitchen,Brand,%d.50,CNY,%d,active,the description of product %d,\n", i, i, i%500+1, i%90, i)
	}
	bigCSV := filepath.Join(dir, "big.csv")
	if err := os.WriteFile(bigCSV, []byte(big.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	full := filepath.Join(dir, "full")
	if err := os.Mkdir(full, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		setup  string // run in a mount namespace of its own (see importctlIn)
		args   []string
		reason failure.Reason
		batch  bool
		says   string
	}{
		{name: "no file", args: []string{"run", "--json"}, says: "run takes FILE"},
		{name: "unknown flag before --json", args: []string{"run", "--nope", "--json", csv}, says: "unknown flag: --nope"},
		{name: "missing file", args: []string{"run", "--json", "--db", db, filepath.Join(dir, "nosuch.csv")}, says: "no such file"},
		{name: "validate, missing profile", args: []string{"validate", "--json", "-p", filepath.Join(dir, "nosuch.yaml"), csv}, says: "nosuch.yaml"},
		{name: "database in use", args: []string{"run", "--json", "--db", locked, csv}, says: "is in use"},
		{name: "status of an unknown batch", args: []string{"status", "--json", "--db", db, "b-nosuch"}, says: "no batch b-nosuch"},
		{name: "status without a database", args: []string{"status", "--json", "--db", filepath.Join(dir, "none.db")}, says: "no database"},
		{name: "cancel of a finished batch", args: []string{"cancel", "--json", "--db", db, s.BatchID}, says: "nothing to cancel"},
		{name: "disk full", setup: "mount -t tmpfs -o size=512k tmpfs " + full, args: []string{"run", "--json", "--quiet", "--db", filepath.Join(full, "t.db"), bigCSV},
			reason: failure.Internal, batch: true, says: "database or disk is full"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var (
				code           int
				stdout, stderr string
			)
			if tc.setup != "" {
				code, stdout, stderr = importctlIn(t, tc.setup, tc.args...)
			} else {
				code, stdout, stderr = importctl(t, tc.args...)
			}
			if code != ExitFailed {
				t.Errorf("exit %d, want %d", code, ExitFailed)
			}
			var e ErrorJSON
			dec := json.NewDecoder(strings.NewReader(stdout))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&e); err != nil || dec.More() {
				t.Fatalf("stdout is not one JSON object (%v):\n%s\nstderr: %s", err, stdout, stderr)
			}
			if p := repeatedPhrase(stderr); p != "" {
				t.Errorf("says %q twice: %s", p, stderr)
			}
			if e.Status != ErrorStatus || e.ExitCode != code || e.Reason != tc.reason || (e.BatchID != "") != tc.batch ||
				!strings.Contains(e.Error, tc.says) || "importctl: "+e.Error+"\n" != stderr {
				t.Errorf("got %+v\nwant status %s, exit code %d, reason %q, a batch %v, an error saying %q as stderr does: %s",
					e, ErrorStatus, code, tc.reason, tc.batch, tc.says, stderr)
			}
		})
	}
}

// TestErrorJSONReason: an error that carries a reason code (a file changed
// while it was read) gives it to scripts.
func TestErrorJSONReason(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("split: %w", failure.New(failure.SourceChanged, "", "products.csv changed while it was read (size 6 -> 8 bytes)"))
	got := errorJSON(err, ExitFailed, "b-1")
	want := ErrorJSON{Status: ErrorStatus, Error: err.Error(), Reason: failure.SourceChanged, ExitCode: ExitFailed, BatchID: "b-1"}
	if got != want {
		t.Errorf("errorJSON = %+v, want %+v", got, want)
	}
}

// TestGlobalFlagsWhereUsed: a command's help shows the global flags it
// uses and no other, and one it does not use is refused rather than
// ignored (`run --stack prod` imported locally). The top-level help names
// every format.
func TestGlobalFlagsWhereUsed(t *testing.T) {
	t.Parallel()
	csv := filepath.Join("testdata", "input", "clean.csv")
	for _, tc := range []struct {
		cmd        []string
		shows      []string
		hides      []string
		refuses    []string // a command line it refuses
		refusedFor string
	}{
		{[]string{"run"}, []string{"--db", "--verbose"}, []string{"--stack", "--endpoint", "--region"},
			[]string{"run", "--stack", "prod", csv}, "importctl run does not use --stack"},
		{[]string{"validate"}, []string{"--verbose"}, []string{"--db", "--stack", "--endpoint"},
			[]string{"validate", "--db", "shop.db", csv}, "importctl validate does not use --db"},
		{[]string{"preview"}, nil, []string{"--db", "--stack", "--endpoint", "--region", "--verbose"},
			[]string{"preview", "--endpoint", "http://127.0.0.1:5000", csv}, "importctl preview does not use --endpoint"},
		{[]string{"profile"}, nil, []string{"--db", "--stack", "--endpoint"},
			[]string{"profile", "--stack", "prod"}, "importctl profile does not use --stack"},
		{[]string{"redrive"}, []string{"--stack", "--endpoint", "--region", "--verbose"}, []string{"--db"}, // --verbose: the splits of --uploads log
			[]string{"redrive", "--db", "x.db", "--stack", "prod"}, "importctl redrive does not use --db"},
		{[]string{"status"}, []string{"--db", "--stack", "--endpoint", "--region"}, []string{"--verbose"}, nil, ""},
		{[]string{"profile", "push"}, []string{"--stack", "--endpoint"}, []string{"--db"}, nil, ""},
		{[]string{"scale"}, []string{"--stack", "--endpoint", "--region"}, []string{"--db", "--verbose"},
			[]string{"scale", "--db", "x.db", "--stack", "prod", "--concurrency", "4"}, "importctl scale does not use --db"},
		{[]string{"invoke"}, []string{"--stack", "--endpoint", "--region"}, []string{"--db", "--verbose"}, nil, ""},
	} {
		t.Run(strings.Join(tc.cmd, " "), func(t *testing.T) {
			code, help, stderr := importctl(t, append(tc.cmd, "--help")...)
			if code != 0 {
				t.Fatalf("--help: exit %d %s", code, stderr)
			}
			for _, f := range tc.shows {
				if !strings.Contains(help, f+" ") {
					t.Errorf("help does not show %s:\n%s", f, help)
				}
			}
			for _, f := range tc.hides {
				if strings.Contains(help, f+" ") {
					t.Errorf("help shows %s, which the command does not use:\n%s", f, help)
				}
			}
			if tc.refuses != nil {
				if code, _, stderr := importctl(t, tc.refuses...); code != ExitFailed || !strings.Contains(stderr, tc.refusedFor) {
					t.Errorf("importctl %v: exit %d, %q; want exit 2 saying %q", tc.refuses, code, stderr, tc.refusedFor)
				}
			}
		})
	}
	if _, help, _ := importctl(t, "--help"); !strings.Contains(help, "XLSX") {
		t.Errorf("top-level help does not name XLSX:\n%s", help)
	}
}

// TestReportModes: the error report, the batch page finalization writes and
// the page `importctl report` writes have one mode: a new file's (0644
// under the usual umask; errors.csv and report.html were 0600).
func TestReportModes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "t.db")
	_, s := runImport(t, db, filepath.Join("testdata", "input", "gbk-excel.csv"))
	page := filepath.Join(dir, "page.html")
	if code, _, stderr := importctl(t, "report", "--db", db, "-o", page, s.BatchID); code != 0 {
		t.Fatalf("report: exit %d %s", code, stderr)
	}
	plain, err := os.Create(filepath.Join(dir, "plain"))
	if err != nil {
		t.Fatal(err)
	}
	plain.Close()
	want, _ := os.Stat(plain.Name())
	for _, p := range []string{s.Report, s.HTMLReport, page} {
		if fi, err := os.Stat(p); err != nil || fi.Mode() != want.Mode() {
			t.Errorf("%s: mode %v (%v), want %v", p, fi.Mode(), err, want.Mode())
		}
	}
}

// TestReadOnlyDatabase: reading commands read a database they cannot
// write (on a read-only mount, or without write permission) and leave no
// file behind with its read-only mode; an import says why it cannot write
// one; and a -shm file left read-only by such a read (older versions made
// one) is made writable again, or named when it cannot be.
func TestReadOnlyDatabase(t *testing.T) {
	t.Parallel()
	gbk := filepath.Join("testdata", "input", "gbk-excel.csv")
	t.Run("read-only mount", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		db := filepath.Join(dir, "t.db")
		_, s := runImport(t, db, gbk)
		ro := "mount --bind " + dir + " " + dir + " && mount -o remount,bind,ro " + dir
		for _, tc := range []struct {
			args []string
			exit int
			says string
		}{
			{[]string{"status", "--db", db}, 0, s.BatchID},
			{[]string{"status", "--db", db, s.BatchID}, 0, "SHARD"},
			{[]string{"failures", "--db", db, s.BatchID}, 0, "InvalidNumber"},
			{[]string{"run", "--db", db, gbk}, ExitFailed, "database " + db + " is on a read-only file system: an import writes it"},
		} {
			code, stdout, stderr := importctlIn(t, ro, tc.args...)
			if code != tc.exit || !strings.Contains(stdout+stderr, tc.says) {
				t.Errorf("importctl %v on a read-only mount: exit %d\n%s%s\nwant exit %d saying %q", tc.args, code, stdout, stderr, tc.exit, tc.says)
			}
		}
	})
	t.Run("no write permission", func(t *testing.T) {
		t.Parallel()
		// As root permissions do not apply: run importctl as nobody, from a
		// copy of this binary in a folder nobody may enter.
		dir, bin := t.TempDir(), os.Args[0]
		wrap := []string{"env"}
		if os.Geteuid() == 0 {
			if _, err := exec.LookPath("setpriv"); err != nil {
				t.Skip("root without setpriv: cannot run importctl as another user")
			}
			dir = filepath.Join(dir, "nobody")
			bin = filepath.Join(dir, "importctl")
			data, err := os.ReadFile(os.Args[0])
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(bin, data, 0o755); err != nil {
				t.Fatal(err)
			}
			for d := filepath.Dir(dir); d != filepath.Dir(d) && strings.HasPrefix(d, os.TempDir()+"/"); d = filepath.Dir(d) {
				if err := os.Chmod(d, 0o755); err != nil { // t.TempDir's folders are 0700
					t.Fatal(err)
				}
			}
			if err := os.Chown(dir, 65534, 65534); err != nil {
				t.Fatal(err)
			}
			wrap = []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"}
		}
		for _, name := range []string{"gbk-excel.csv", "clean.csv"} {
			data, _ := os.ReadFile(filepath.Join("testdata", "input", name))
			os.WriteFile(filepath.Join(dir, name), data, 0o644)
		}
		db := filepath.Join(dir, "t.db")
		as := func(args ...string) (int, string) {
			code, stdout, stderr := importctlExec(t, bin, wrap, args...)
			return code, stdout + stderr
		}
		if code, out := as("run", "--quiet", "--db", db, filepath.Join(dir, "gbk-excel.csv")); code != ExitRowFails {
			t.Fatalf("first import: exit %d\n%s", code, out)
		}
		os.Chmod(db, 0o444)
		if code, out := as("status", "--db", db); code != 0 || !strings.Contains(out, "COMPLETED_WITH_ERRORS") {
			t.Errorf("status of a read-only database: exit %d\n%s", code, out)
		}
		for _, side := range []string{"-shm", "-wal"} {
			if fi, err := os.Stat(db + side); err == nil && fi.Mode().Perm()&0o200 == 0 {
				t.Errorf("status left %s%s with mode %v", db, side, fi.Mode().Perm())
			}
		}
		if code, out := as("run", "--quiet", "--db", db, filepath.Join(dir, "clean.csv")); code != ExitFailed ||
			!strings.Contains(out, "database "+db+" may not be written (mode -r--r--r--): an import writes it") {
			t.Errorf("import into a read-only database: exit %d\n%s", code, out)
		}
		os.Chmod(db, 0o644)
		for _, side := range []string{"-shm", "-wal"} { // what a read of the read-only file left before
			os.WriteFile(db+side, nil, 0o444)
			os.Chown(db+side, 65534, 65534)
		}
		if code, out := as("run", "--quiet", "--db", db, filepath.Join(dir, "clean.csv")); code != 0 {
			t.Errorf("import after chmod 644 on the database: exit %d\n%s", code, out)
		}
		if os.Geteuid() == 0 { // a -shm of another owner: named
			os.WriteFile(db+"-shm", nil, 0o444)
			os.Chown(db+"-shm", 0, 0)
			if code, out := as("run", "--quiet", "--db", db, filepath.Join(dir, "gbk-excel.csv")); code != ExitFailed ||
				!strings.Contains(out, db+"-shm is read-only (mode -r--r--r--") {
				t.Errorf("import with a read-only -shm of another owner: exit %d\n%s", code, out)
			}
		}
	})
}

// TestReasonRule: failures, retry-failures and redrive take --reason by one
// rule: a reason code, in any case; anything else is refused with the
// same message (redrive compared a substring of the message, failures the
// exact code).
func TestReasonRule(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "t.db")
	_, s := runImport(t, db, filepath.Join("testdata", "input", "gbk-excel.csv"))
	_, exact, _ := importctl(t, "failures", "--db", db, "--reason", "DuplicateSKU", "--format", "jsonl", s.BatchID)
	if strings.Count(exact, "\n") != 1 {
		t.Fatalf("failures --reason DuplicateSKU: %q, want one record", exact)
	}
	for _, tc := range []struct {
		name string
		args []string
		exit int
		says string
	}{
		{"failures, lower case", []string{"failures", "--db", db, "--reason", "duplicatesku", "--format", "jsonl", s.BatchID}, 0, exact},
		{"retry-failures, lower case", []string{"retry-failures", "--db", db, "--dry-run", "--reason", "invalidnumber", s.BatchID}, 0, "would retry 1 rows (InvalidNumber 1)"},
		{"failures, part of a code", []string{"failures", "--db", db, "--reason", "Duplicate", s.BatchID}, ExitFailed, `unknown reason "Duplicate" (known: [MalformedRow`},
		{"retry-failures, part of a code", []string{"retry-failures", "--db", db, "--reason", "Duplicate", s.BatchID}, ExitFailed, `unknown reason "Duplicate" (known: [MalformedRow`},
		{"redrive, part of a code", []string{"redrive", "--stack", "prod", "--reason", "Denied"}, ExitFailed, `unknown reason "Denied" (known: [MalformedRow`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := importctl(t, tc.args...)
			if code != tc.exit || !strings.Contains(stdout+stderr, tc.says) {
				t.Errorf("exit %d\n%s%s\nwant exit %d saying %q", code, stdout, stderr, tc.exit, tc.says)
			}
		})
	}
	for _, cmd := range []string{"failures", "retry-failures", "redrive"} {
		if _, help, _ := importctl(t, cmd, "--help"); !strings.Contains(help, "in any case") {
			t.Errorf("%s --help does not say how --reason matches:\n%s", cmd, help)
		}
	}
}

// TestFixFileShownResolved: a fix file's rows that import are shown
// resolved on the parent's report page (which finalization wrote before),
// and a fix file with no row left to fix says why on stderr instead of
// printing a header alone without a word.
func TestFixFileShownResolved(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "t.db")
	file := filepath.Join(dir, "products.csv")
	os.WriteFile(file, []byte("sku,name,category,brand,price,currency,stock,status\n"+
		"A-1,Lamp,Home,Acme,1.00,CNY,1,active\nA-2,Pen,Office,Acme,abc,CNY,1,active\nA-3,Cup,Home,Acme,x1,CNY,1,active\n"+
		"A-1,Lamp,Home,Acme,1.00,CNY,1,active\n"), 0o644)
	_, parent := runImport(t, db, file)
	code, fix, stderr := importctl(t, "failures", "--db", db, "--format", "fixfile", parent.BatchID)
	if code != 0 || strings.Count(fix, "\n") != 3 {
		t.Fatalf("fix file: exit %d %s\n%s", code, stderr, fix)
	}
	fixed := filepath.Join(dir, "fix.csv")
	os.WriteFile(fixed, []byte(strings.NewReplacer(",abc,", ",2.00,", ",x1,", ",3.00,").Replace(fix)), 0o644)
	_, child := runImport(t, db, fixed)
	if child.RowsImported != 2 {
		t.Fatalf("fix file: %+v, want 2 rows imported", child)
	}
	page, err := os.ReadFile(parent.HTMLReport)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`id="resolved" data-value="2">2 of 3 failed rows imported since by later batches`,
		`<th>resolved by</th>`, `<td class="key resolved-by">` + child.BatchID + `</td>`} {
		if !strings.Contains(string(page), want) {
			t.Errorf("the parent's report page does not show %q", want)
		}
	}

	code, out, stderr := importctl(t, "failures", "--db", db, "--format", "fixfile", parent.BatchID)
	if code != 0 || strings.Count(out, "\n") != 1 ||
		stderr != "importctl: no row to fix: the 1 unresolved failures of batch "+parent.BatchID+" are DuplicateSKU, which a fix file leaves out unless --reason DuplicateSKU asks for them (imported again, such a row would replace the product of its SKU's first row)\n" {
		t.Errorf("fix file with nothing to fix: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	code, out, stderr = importctl(t, "failures", "--db", db, "--format", "fixfile", "--layer", "syntax", parent.BatchID)
	if code != 0 || strings.Count(out, "\n") != 1 || stderr != "importctl: no row to fix: batch "+parent.BatchID+" has no unresolved failures in layer syntax\n" {
		t.Errorf("fix file of a layer with no failures: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
}
