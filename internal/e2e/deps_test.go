package e2e

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMakeDeps: `make deps` says what it installs and why, and when it
// cannot install a missing tool it stops with a message that says what to
// do (it ran apt-get and pip quietly, and pip's failure against an
// unreachable PyPI said nothing of moto). A missing tool is simulated by
// naming a command that does not exist (the Makefile's SQLITE3 and
// MOTO_SERVER); PyPI is out of reach at a closed local port.
func TestMakeDeps(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	for _, tc := range []struct {
		name     string
		args     []string
		asNobody bool // apt needs root: run make as another user
		exit     int
		stdout   string
		stderr   string
	}{
		{name: "everything there", args: []string{"deps"}, stdout: "deps: sqlite3, chromium, staticcheck, cfn-lint and moto_server are installed"},
		{name: "moto missing, PyPI out of reach",
			args:   []string{"deps", "MOTO_SERVER=no-such-moto_server", "PIP_INDEX_URL=http://127.0.0.1:9/simple"},
			exit:   2,
			stdout: "deps: no-such-moto_server not found: installing moto[server]==5.2.1 with pip (the AWS integration tests run against moto_server)",
			stderr: "deps: no-such-moto_server not found and pip cannot reach PyPI (http://127.0.0.1:9/simple): install moto[server]==5.2.1 where it can"},
		{name: "sqlite3 missing, not root", args: []string{"deps", "SQLITE3=no-such-sqlite3"}, asNobody: true, exit: 2,
			stdout: "deps: no-such-sqlite3 not found: installing the Debian package sqlite3 (the tests read databases with the sqlite3 CLI)",
			stderr: "deps: cannot install sqlite3: apt-get needs root. Run 'sudo apt-get install sqlite3'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if !tc.asNobody {
				for _, tool := range []string{"sqlite3", "chromium", "cfn-lint", "moto_server"} {
					if _, err := exec.LookPath(tool); err != nil {
						t.Skipf("%s is missing: make deps would install it (run make deps first)", tool)
					}
				}
			}
			line := append([]string{"make", "-s", "-C", "../.."}, tc.args...)
			if tc.asNobody && os.Geteuid() == 0 {
				if _, err := exec.LookPath("setpriv"); err != nil {
					t.Skip("root without setpriv: cannot run make as another user")
				}
				line = append([]string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"}, line...)
			}
			cmd := exec.Command(line[0], line[1:]...)
			cmd.Env = os.Environ()
			if tc.asNobody { // its sqlite3 check fails first: nothing needs a home
				cmd.Env = append(cmd.Env, "HOME=/nonexistent")
			}
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.exit || !strings.Contains(out.String(), tc.stdout) || !strings.Contains(errb.String(), tc.stderr) {
				t.Errorf("%v: exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit %d, stdout with %q, stderr with %q",
					line, code, out.String(), errb.String(), tc.exit, tc.stdout, tc.stderr)
			}
		})
	}
}
