package cli

import (
	"bytes"
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
	for _, tc := range []struct {
		name string
		args []string
	}{
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
	cmd := exec.Command("unshare", append([]string{"-m", "--propagation", "private", "sh", "-c", setup + ` && exec "$0" "$@"`, os.Args[0]}, args...)...)
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
		{[]string{"redrive"}, []string{"--stack", "--endpoint", "--region"}, []string{"--db", "--verbose"},
			[]string{"redrive", "--db", "x.db", "--stack", "prod"}, "importctl redrive does not use --db"},
		{[]string{"status"}, []string{"--db", "--stack", "--endpoint", "--region"}, []string{"--verbose"}, nil, ""},
		{[]string{"profile", "push"}, []string{"--stack", "--endpoint"}, []string{"--db"}, nil, ""},
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
