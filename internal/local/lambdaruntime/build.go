package lambdaruntime

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// Recipe is the command of a function's `build-<Function>` Makefile target
// (SAM's BuildMethod: makefile): the variables it sets and the command line.
type Recipe struct {
	Env  []string // NAME=value assignments before the command
	Args []string // the command and its arguments, $(ARTIFACTS_DIR) substituted
}

// ReadRecipe returns the recipe of target in makefile, with
// $(ARTIFACTS_DIR) replaced by artifactsDir. Only what a one-line build
// command needs is understood: variable assignments, then a command whose
// words may be quoted; another make variable, a multi-line recipe or shell
// syntax (;, &&, |, $) is refused, so the build is never other than the
// Makefile's.
func ReadRecipe(makefile []byte, target, artifactsDir string) (Recipe, error) {
	var lines []string
	found := false
	sc := bufio.NewScanner(bytes.NewReader(makefile))
	for sc.Scan() {
		line := sc.Text()
		if !found {
			name, _, ok := strings.Cut(line, ":")
			found = ok && strings.TrimSpace(name) == target && !strings.HasPrefix(line, "\t") && !strings.Contains(name, "=")
			continue
		}
		if !strings.HasPrefix(line, "\t") {
			if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
				if len(lines) > 0 {
					break
				}
				continue
			}
			break
		}
		lines = append(lines, strings.TrimLeft(strings.TrimSpace(line), "@-"))
	}
	if !found {
		return Recipe{}, fmt.Errorf("no target %s in the Makefile", target)
	}
	if len(lines) != 1 {
		return Recipe{}, fmt.Errorf("target %s: %d recipe lines, want one build command", target, len(lines))
	}
	words, err := splitWords(strings.ReplaceAll(lines[0], "$(ARTIFACTS_DIR)", "\x00"))
	if err != nil {
		return Recipe{}, fmt.Errorf("target %s: %w", target, err)
	}
	for _, w := range words {
		if strings.Contains(w, "$") {
			// make would expand it even inside single quotes (a variable,
			// or $$ for the shell): not what this reader runs as written.
			return Recipe{}, fmt.Errorf("target %s: %q: unsupported make variable (only $(ARTIFACTS_DIR))", target, w)
		}
	}
	var r Recipe
	for _, w := range words {
		w = strings.ReplaceAll(w, "\x00", artifactsDir)
		if name, _, ok := strings.Cut(w, "="); ok && len(r.Args) == 0 && isName(name) {
			r.Env = append(r.Env, w)
			continue
		}
		r.Args = append(r.Args, w)
	}
	if len(r.Args) == 0 {
		return Recipe{}, fmt.Errorf("target %s: no command", target)
	}
	return r, nil
}

// splitWords splits a command line into words as sh would for the subset a
// build command uses: blanks separate words, single and double quotes group
// (no expansion inside either). Anything else sh would interpret is refused.
func splitWords(line string) ([]string, error) {
	var (
		words []string
		cur   strings.Builder
		in    bool // inside a word
		quote rune
	)
	for _, r := range line {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
				continue
			}
			if quote == '"' && (r == '$' || r == '`' || r == '\\') {
				return nil, fmt.Errorf("unsupported %q inside double quotes in %q", r, line)
			}
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, in = r, true
		case r == ' ' || r == '\t':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		case strings.ContainsRune("$`\\;&|<>(){}*?[]~#", r):
			return nil, fmt.Errorf("unsupported shell syntax %q in %q", r, line)
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote in %q", line)
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}

func isName(s string) bool {
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// ForThisMachine returns the recipe with GOOS and GOARCH set to this
// machine's (the Makefile builds for Lambda's linux/arm64).
func (r Recipe) ForThisMachine() Recipe {
	out := Recipe{Args: r.Args}
	for _, e := range r.Env {
		if !strings.HasPrefix(e, "GOOS=") && !strings.HasPrefix(e, "GOARCH=") {
			out.Env = append(out.Env, e)
		}
	}
	out.Env = append(out.Env, "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH)
	return out
}

// Build builds function's bootstrap as `sam build` does with BuildMethod
// makefile: it runs the recipe of the target build-<function> of the
// Makefile in codeDir with ARTIFACTS_DIR=outDir, for this machine's GOOS and
// GOARCH. It returns the bootstrap's path. The compiler's output goes to
// log. Go's build cache makes a rebuild of unchanged code a no-op.
func Build(ctx context.Context, codeDir, function, outDir string, log io.Writer) (string, error) {
	mk, err := os.ReadFile(filepath.Join(codeDir, "Makefile"))
	if err != nil {
		return "", fmt.Errorf("build %s: %w", function, err)
	}
	abs, err := filepath.Abs(outDir)
	if err != nil {
		return "", err
	}
	r, err := ReadRecipe(mk, "build-"+function, abs)
	if err != nil {
		return "", fmt.Errorf("build %s: %w", function, err)
	}
	r = r.ForThisMachine()
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", fmt.Errorf("build %s: %w", function, err)
	}
	cmd := exec.CommandContext(ctx, r.Args[0], r.Args[1:]...)
	cmd.Dir = codeDir
	cmd.Env = append(os.Environ(), r.Env...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build %s (%s %s in %s): %w", function, strings.Join(r.Env, " "), strings.Join(r.Args, " "), codeDir, err)
	}
	out := filepath.Join(abs, "bootstrap")
	if _, err := os.Stat(out); err != nil {
		return "", fmt.Errorf("build %s: the target wrote no bootstrap: %w", function, err)
	}
	return out, nil
}
