package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// proc is a command started in a process group of its own (as a shell
// starts a job), with its output (stdout and stderr) collected line by line.
type proc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	out    strings.Builder
	done   chan struct{}
	waited error
}

func startProc(t testing.TB, dir string, env []string, name string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(name, args...), done: make(chan struct{})}
	p.cmd.Dir, p.cmd.Env = dir, env
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	r, w := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = w, w
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
		io.Copy(io.Discard, r)
	}()
	go func() { p.waited = p.cmd.Wait(); w.Close(); close(p.done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	})
	return p
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// line waits for an output line starting with prefix and returns the rest
// of it; it fails the test if the process exits first or within passes.
func (p *proc) line(t testing.TB, prefix string, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		for l := range strings.SplitSeq(p.output(), "\n") {
			if rest, ok := strings.CutPrefix(l, prefix); ok {
				return rest
			}
		}
		select {
		case <-p.done:
			if l := p.lineNow(prefix); l != "" {
				return l
			}
			t.Fatalf("%v exited (%v) before printing %q:\n%s", p.cmd.Args, p.waited, prefix, p.output())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v printed no %q within %v:\n%s", p.cmd.Args, prefix, within, p.output())
		}
	}
}

func (p *proc) lineNow(prefix string) string {
	for l := range strings.SplitSeq(p.output(), "\n") {
		if rest, ok := strings.CutPrefix(l, prefix); ok {
			return rest
		}
	}
	return ""
}

// exit waits for the process to exit and returns its exit code (-1 when a
// signal ended it).
func (p *proc) exit(t testing.TB, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("%v did not exit within %v:\n%s", p.cmd.Args, within, p.output())
	}
	var ee *exec.ExitError
	if errors.As(p.waited, &ee) {
		return ee.ExitCode()
	}
	if p.waited != nil {
		t.Fatal(p.waited)
	}
	return 0
}

var emulatorLine = regexp.MustCompile(`^moto_server on (http://127\.0\.0\.1:(\d+)) \(pid (\d+);`)

// emulator parses dev's "emulator:" line: the endpoint, its port and the
// server's pid.
func emulator(t testing.TB, rest string) (endpoint, port string, pid int) {
	t.Helper()
	m := emulatorLine.FindStringSubmatch(rest)
	if m == nil {
		t.Fatalf("emulator line %q", rest)
	}
	pid, _ = strconv.Atoi(m[3])
	return m[1], m[2], pid
}

// running: pid names a live process (not a zombie).
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}

// groupRunning lists the live processes of process group pgid.
func groupRunning(pgid int) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// after "(comm)": state ppid pgrp ...
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) > 2 && f[0] != "Z" && f[2] == strconv.Itoa(pgid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// gone waits until pid no longer runs; false if it still does after within.
func gone(pid int, within time.Duration) bool {
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if !running(pid) {
			return true
		}
	}
	return !running(pid)
}

// devEnv is this process's environment without AWS settings or
// credentials, as on a machine that never saw an AWS account.
func devEnv(t testing.TB) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "MAKEFLAGS=") && !strings.HasPrefix(kv, "MAKELEVEL=") {
			env = append(env, kv)
		}
	}
	dir := t.TempDir()
	return append(env, "AWS_CONFIG_FILE="+filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED=true")
}

// TestDevStopsItsEmulator: `importctl dev` without --endpoint starts its own
// moto_server and, however it stops, leaves no moto_server behind: Ctrl-C
// (SIGINT to the job's process group) and SIGTERM end it cleanly (exit 0),
// an error after the start exits 2, kill -9 of dev takes the server with it;
// and when the server dies, dev stops with an error that says so.
func TestDevStopsItsEmulator(t *testing.T) {
	if testing.Short() {
		t.Skip("builds importctl and starts moto_server")
	}
	t.Parallel()
	bin := sharedImportctl(t)
	for _, c := range []struct {
		name     string
		args     []string
		stop     func(p *proc, moto int)
		wantExit int
		wantOut  string
	}{
		{"Ctrl-C", nil, func(p *proc, _ int) { syscall.Kill(-p.cmd.Process.Pid, syscall.SIGINT) }, 0, `"msg":"emulator stopped"`},
		{"SIGTERM", nil, func(p *proc, _ int) { syscall.Kill(p.cmd.Process.Pid, syscall.SIGTERM) }, 0, `"msg":"emulator stopped"`},
		{"kill -9", nil, func(p *proc, _ int) { syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL) }, -1, ""},
		{"an error after the start", []string{"--stack", strings.Repeat("x", 90)}, nil, 2, "create queue"},
		{"the emulator dies", nil, func(_ *proc, moto int) { syscall.Kill(moto, syscall.SIGKILL) }, 2, "the emulator (moto_server) exited"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := startProc(t, t.TempDir(), devEnv(t), bin, append([]string{"dev", "--log-level", "info"}, c.args...)...)
			_, _, moto := emulator(t, p.line(t, "emulator: ", 2*time.Minute))
			if c.stop != nil {
				p.line(t, "status: ", 2*time.Minute)
				c.stop(p, moto)
			}
			if code := p.exit(t, time.Minute); code != c.wantExit {
				t.Errorf("exit %d, want %d:\n%s", code, c.wantExit, p.output())
			}
			if !strings.Contains(p.output(), c.wantOut) {
				t.Errorf("output lacks %q:\n%s", c.wantOut, p.output())
			}
			if !gone(moto, 10*time.Second) {
				t.Errorf("moto_server (pid %d) still runs after importctl dev stopped", moto)
				syscall.Kill(moto, syscall.SIGKILL)
			}
		})
	}
}

// TestDevWithoutMoto: without moto_server on PATH, dev says to run make
// deps (or pass --endpoint) and exits 2.
func TestDevWithoutMoto(t *testing.T) {
	if testing.Short() {
		t.Skip("builds importctl")
	}
	t.Parallel()
	bin := sharedImportctl(t)
	cmd := exec.Command(bin, "dev")
	cmd.Env = append(devEnv(t), "PATH="+t.TempDir())
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("exit %v, want 2:\n%s", err, out)
	}
	want := "importctl: moto_server is not installed (`make deps` installs it: pip install 'moto[server]'); or pass --endpoint URL of a running emulator\n"
	if string(out) != want {
		t.Errorf("output %q\nwant   %q", out, want)
	}
}
