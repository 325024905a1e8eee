package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readmeBlock returns the commands of the fenced block that follows the
// line `<!-- readme-test: NAME ...-->` in the README: one per line, without
// comments and blank lines.
func readmeBlock(t *testing.T, readme, name string) []string {
	t.Helper()
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "<!-- readme-test: "+name+" ")
	if !ok {
		t.Fatalf("%s has no <!-- readme-test: %s --> marker", readme, name)
	}
	lines := strings.Split(after, "\n")[1:]
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "```") {
		t.Fatalf("%s: the readme-test: %s marker is not followed by a fenced block", readme, name)
	}
	var cmds []string
	for _, l := range lines[1:] {
		if strings.HasPrefix(l, "```") {
			return cmds
		}
		if i := strings.Index(l, "#"); i >= 0 && (i == 0 || l[i-1] == ' ') {
			l = l[:i]
		}
		if l = strings.TrimSpace(l); l != "" {
			cmds = append(cmds, l)
		}
	}
	t.Fatalf("%s: the readme-test: %s block does not end", readme, name)
	return nil
}

// TestReadmeLocalAWS runs the README's local AWS section as written, from
// the repository root, in an environment without AWS credentials or
// settings: its first command (make dev) in the background, then, once that
// has printed its commands, the others in order, the last (status) again
// until the batch has finished; then Ctrl-C to the make job. The README's
// upload and status commands must be the ones dev prints (with the README's
// file for products.csv), the batch must end as the README says (the demo
// file: 1000 rows, 950 imported, 50 failed), and no moto_server or importctl
// may be left running. Two substitutions: PORT is the port dev printed, and
// bin/importctl is built in a temporary directory (MAKEFLAGS=IMPORTCTL=...),
// so the test writes nothing into the checkout.
func TestReadmeLocalAWS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds importctl with make and starts moto_server")
	}
	t.Parallel()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	cmds := readmeBlock(t, filepath.Join(root, "README.md"), "local-aws")
	if len(cmds) < 2 {
		t.Fatalf("the block has %d commands: want make dev, then the upload and status commands", len(cmds))
	}
	bin := filepath.Join(t.TempDir(), "bin", "importctl")
	env := append(devEnv(t), "MAKEFLAGS=IMPORTCTL="+bin)
	sh := func(cmd string) *exec.Cmd {
		c := exec.Command("bash", "-c", cmd)
		c.Dir, c.Env = root, env
		return c
	}

	t.Logf("$ %s", cmds[0])
	dev := startProc(t, root, env, "bash", "-c", cmds[0])
	endpoint, port, moto := emulator(t, dev.line(t, "emulator: ", 5*time.Minute))
	printed := map[string]string{"upload": dev.line(t, "upload: ", 2*time.Minute), "status": dev.line(t, "status: ", time.Minute)}
	subst := func(c string) string {
		c = strings.ReplaceAll(c, "PORT", port)
		return regexp.MustCompile(`(^|\s)bin/importctl\b`).ReplaceAllString(c, "${1}"+bin)
	}
	var upload, status string
	for _, c := range cmds[1:] {
		c = subst(c)
		if strings.Contains(c, " s3 cp ") {
			upload = c
		}
		if strings.Contains(c, " status ") {
			status = c
		}
		t.Logf("$ %s", c)
		out, err := sh(c).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s\nimportctl dev:\n%s", c, err, out, dev.output())
		}
	}
	// What dev prints is what the README says.
	if upload == "" || status == "" {
		t.Fatalf("the block has no upload (s3 cp) or no status command: %q", cmds)
	}
	if got := strings.Fields(upload); !sameExceptFile(got, strings.Fields(printed["upload"])) {
		t.Errorf("README's upload command\n  %s\nis not the one dev prints\n  %s", upload, printed["upload"])
	}
	if status != printed["status"] {
		t.Errorf("README's status command\n  %s\nis not the one dev prints\n  %s", status, printed["status"])
	}
	if !strings.Contains(upload, endpoint) {
		t.Errorf("the upload command does not name the endpoint %s: %s", endpoint, upload)
	}

	// The status command, again until the batch has finished.
	var row map[string]string
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(time.Second) {
		out, err := sh(status).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", status, err, out)
		}
		row = batchRow(string(out), "/incoming/products-gbk.csv")
		if row != nil && row["STATUS"] != "RUNNING" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the batch has not finished after 5 minutes:\n%s\nimportctl dev:\n%s", out, dev.output())
		}
	}
	want := map[string]string{"STATUS": "COMPLETED_WITH_ERRORS", "ROWS": "1000", "IMPORTED": "950", "FAILED": "50", "SKIPPED": "0"}
	for k, v := range want {
		if row[k] != v {
			t.Errorf("status %s = %q, want %q (row %v)", k, row[k], v, row)
		}
	}

	// Ctrl-C: the terminal signals the make job's process group.
	syscall.Kill(-dev.cmd.Process.Pid, syscall.SIGINT)
	dev.exit(t, time.Minute)
	if !gone(moto, 10*time.Second) {
		t.Errorf("moto_server (pid %d) still runs after Ctrl-C of make dev", moto)
		syscall.Kill(moto, syscall.SIGKILL)
	}
	for deadline := time.Now().Add(10 * time.Second); len(groupRunning(dev.cmd.Process.Pid)) > 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("processes of make dev still run after Ctrl-C: %v", groupRunning(dev.cmd.Process.Pid))
			break
		}
	}
	if !strings.Contains(dev.output(), `"msg":"emulator stopped"`) {
		t.Errorf("importctl dev did not stop its emulator itself:\n%s", dev.output())
	}
}

// sameExceptFile: the commands are equal but for the file the README
// uploads where dev prints products.csv.
func sameExceptFile(readme, printed []string) bool {
	if len(readme) != len(printed) {
		return false
	}
	for i := range readme {
		if readme[i] != printed[i] && printed[i] != "products.csv" {
			return false
		}
	}
	return true
}

// batchRow finds the row of `importctl status`'s table whose FILE ends with
// suffix and returns its cells by column (the columns before CREATED, whose
// time holds a space); nil when there is none (yet).
func batchRow(table, suffix string) map[string]string {
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if !strings.HasPrefix(lines[0], "BATCH ") {
		return nil // no batch yet
	}
	head := strings.Fields(lines[0])
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) == 0 || !strings.HasSuffix(f[len(f)-1], suffix) {
			continue
		}
		row := map[string]string{}
		for i, h := range head {
			if h == "CREATED" || i >= len(f) {
				break
			}
			row[h] = f[i]
		}
		return row
	}
	return nil
}
