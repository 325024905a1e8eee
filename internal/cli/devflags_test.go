package cli

import (
	"strings"
	"testing"
)

// TestDevWaitFlags: --visibility-timeout shorter than the worker timeout (AWS
// refuses such an event source) or not in whole seconds, and a --retry-delay
// that is not positive, are usage errors named before anything is provisioned.
func TestDevWaitFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ flags, want string }{
		{"--worker-timeout 3s --visibility-timeout 2s", "--visibility-timeout 2s: want whole seconds, at least --worker-timeout 3s"},
		{"--worker-timeout 3s --visibility-timeout 4500ms", "--visibility-timeout 4.5s: want whole seconds"},
		{"--retry-delay 0s", "--retry-delay 0s: want a positive duration"},
	} {
		args := append([]string{"dev", "--endpoint", "http://127.0.0.1:1", "--stack", "s"}, strings.Fields(tc.flags)...)
		if code, _, stderr := importctl(t, args...); code != ExitFailed || !strings.Contains(stderr, tc.want) {
			t.Errorf("importctl %v: exit %d, stderr %q; want exit %d and %q", args, code, stderr, ExitFailed, tc.want)
		}
	}
}
