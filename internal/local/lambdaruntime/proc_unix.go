//go:build unix

package lambdaruntime

import (
	"os/exec"
	"syscall"
)

// setProcessGroup starts the bootstrap in a process group of its own, so
// that stopping it stops whatever it started.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// killProcessGroup kills the bootstrap's process group (Lambda stops an
// execution environment without notice when it has no extensions).
func killProcessGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
