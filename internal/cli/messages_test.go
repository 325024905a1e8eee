package cli

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"unicode"
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
