package docscheck

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// root is the repository, from this package's directory.
const root = "../.."

// TestInvariantsDocCitesWhatExists: every symbol, test and file that the
// tables of docs/invariants.md cite exists, under the name given.
func TestInvariantsDocCitesWhatExists(t *testing.T) {
	md, err := os.ReadFile(filepath.Join(root, "docs", "invariants.md"))
	if err != nil {
		t.Fatal(err)
	}
	cs := Citations(md)
	kinds := map[Column]int{}
	for _, c := range cs {
		kinds[c.Column]++
	}
	// A table whose header changed would silently cite nothing.
	if kinds[Code] < 20 || kinds[Tests] < 20 {
		t.Fatalf("found %d code and %d test citations in docs/invariants.md: are the tables' code and tests columns still named so?", kinds[Code], kinds[Tests])
	}
	for _, err := range NewChecker(root).Check(cs) {
		t.Errorf("docs/invariants.md %v", err)
	}
	for _, target := range links(md) {
		if _, err := os.Stat(filepath.Join(root, "docs", filepath.FromSlash(target))); err != nil {
			t.Errorf("docs/invariants.md links to %s: %v", target, err)
		}
	}
}

// links returns the relative targets of md's links (anchors dropped).
func links(md []byte) []string {
	var out []string
	for _, m := range regexp.MustCompile(`\]\(([^)#\s]+)(#[^)]*)?\)`).FindAllSubmatch(md, -1) {
		if t := string(m[1]); !strings.Contains(t, "://") {
			out = append(out, t)
		}
	}
	return out
}

// TestCheckerFindsStaleNames: a table citing what does not exist (or not
// under that name) fails the check with an error naming the citation, and a
// table citing what exists passes.
func TestCheckerFindsStaleNames(t *testing.T) {
	const header = "| # | invariant | code | tests |\n|---|---|---|---|\n"
	cases := []struct {
		name, code, tests string
		want              string // in the only error; "" for none
	}{
		{"exists", "`internal/state.Store.Claim`, `internal/local/sqlite.(*DB).Checkpoint`, `internal/shard.Options.DeadlineMargin`, `internal/state.MaxSamples`, `internal/embedded.BatchID`, `internal/shard/resilience.go`, `template.yaml`",
			"`internal/shard.TestZombieCannotMoveCheckpoint`, `internal/state/statetest.Claim/AfterExpiryNewOwnerFencesZombie`, `internal/finalize.TestFinalize/a_lost_failure_record_fails_the_batch_and_is_named`, `internal/local/sqlite.TestStoreContract`", ""},
		{"renamed test", "", "`internal/shard.TestZombieCannotMoveTheCheckpoint`", "no func TestZombieCannotMoveTheCheckpoint"},
		{"renamed suite case", "", "`internal/state/statetest.Claim/AfterExpiryTheNewOwnerFencesZombie`", "no test or suite case"},
		{"suite case under another suite", "", "`internal/catalog/catalogtest.Claim/AfterExpiryNewOwnerFencesZombie`", "no test or suite case"},
		{"subtest that is not there", "", "`internal/finalize.TestFinalize/a_found_row`", "TestFinalize has no subtest a_found_row"},
		{"subtest named with spaces", "", "`internal/finalize.TestFinalize/a lost row fails the batch and is named`", "not a citation"},
		{"test in a package that moved", "", "`internal/cli.TestCrashResume`", "no func TestCrashResume"},
		{"package that is not there", "`internal/nosuch.Thing`", "", "no package directory"},
		{"renamed function", "`internal/embedded.BatchIdentity`", "", "no function, type, constant or variable BatchIdentity"},
		{"method of an interface that is not there", "`internal/state.Store.Lease`", "", "type Store has no method or field Lease"},
		{"pointer receiver cited as a value", "`internal/local/sqlite.DB.Checkpoint`", "", "cite (*DB).Checkpoint"},
		{"method that is not there", "`internal/aws/dynamostate.(*Store).Fence`", "", "no method Fence of Store"},
		{"a test cited as code", "`internal/shard.TestZombieCannotMoveCheckpoint`", "", "no function, type, constant or variable"},
		{"a symbol cited as a test", "", "`internal/shard.Options`", "no test or suite case"},
		{"file that is not there", "`internal/shard/fence.go`", "", "no such file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			md := header + "| 2 | one shard, one owner | " + tc.code + " | " + tc.tests + " |\n"
			cs := Citations([]byte(md))
			if len(cs) == 0 {
				t.Fatalf("no citation found in %q", md)
			}
			errs := NewChecker(root).Check(cs)
			switch {
			case tc.want == "" && len(errs) != 0:
				t.Errorf("errors for citations that exist: %v", errs)
			case tc.want != "" && (len(errs) != 1 || !strings.Contains(errs[0].Error(), tc.want)):
				t.Errorf("errors %v, want one containing %q", errs, tc.want)
			}
		})
	}
}

// TestCitationsReadOnlyCodeAndTestsColumns: spans elsewhere (the invariant's
// statement, another table's columns) are prose, and a '|' inside a code span
// does not split a cell.
func TestCitationsReadOnlyCodeAndTestsColumns(t *testing.T) {
	md := "text `not.a.citation`\n\n| invariant | code | tests |\n|:--|---|---|\n| `prose` | `a.B`, `c.(*D).E` | `f.TestG/h` |\n\n" +
		"| field | rule |\n|---|---|\n| `image_urls` | `|`-separated |\n\n| code | note |\n|---|---|\n| `x|y.Z` | `no` |\n"
	var got []string
	for _, c := range Citations([]byte(md)) {
		got = append(got, string(c.Column)+":"+c.Text)
	}
	want := []string{"code:a.B", "code:c.(*D).E", "tests:f.TestG/h", "code:x|y.Z"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("citations %q, want %q", got, want)
	}
}

// TestNoExternalDesignBrief: the repository stands on its own: nothing cites
// the design brief that lives outside it (docs/invariants.md states the
// invariants).
func TestNoExternalDesignBrief(t *testing.T) {
	brief := []byte("DESIGN" + ".md")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != root && (strings.HasPrefix(n, ".") || n == "build" || n == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(path) {
		case ".go", ".md", ".yaml", ".yml", ".toml", ".json", ".sql", ".txt", "":
		default:
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if i := bytes.Index(b, brief); i >= 0 {
			t.Errorf("%s:%d cites %s, which is not in the repository: cite docs/invariants.md", path, bytes.Count(b[:i], []byte("\n"))+1, brief)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
