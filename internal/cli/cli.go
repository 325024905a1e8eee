// Package cli is importctl, the operator's command line: run, validate and
// preview files on the embedded engine, and read batches, shards and failures.
// cmd/importctl only calls Main; everything that can be tested is here.
//
// Exit codes are part of the contract: 0 every row imported, 1 completed with
// row failures, 2 rejected, aborted, failed, or a usage error.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/catalog-import/catalog-import/internal/aws/awsclient"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/state"
)

// Exit codes.
const (
	ExitOK       = 0 // every row imported
	ExitRowFails = 1 // completed, some rows failed
	ExitFailed   = 2 // rejected, aborted, cancelled, failed, or a usage error
	// ExitSuspended: the batch is SUSPENDED (its source changed since the
	// import started): run the restored file again to resume it, or
	// cancel it.
	ExitSuspended = 3
)

// Env is what the commands touch outside themselves. main builds it from the
// process; tests build their own.
type Env struct {
	Stdout, Stderr io.Writer
	Stdin          io.Reader
	// StderrTerminal: show progress bars on Stderr.
	StderrTerminal bool
	// StdoutTerminal: status --watch redraws bars on Stdout instead of
	// printing lines.
	StdoutTerminal bool
}

// ProcessEnv returns the Env of this process.
func ProcessEnv() Env {
	return Env{Stdout: os.Stdout, Stderr: os.Stderr, Stdin: os.Stdin, StderrTerminal: term.IsTerminal(int(os.Stderr.Fd())),
		StdoutTerminal: term.IsTerminal(int(os.Stdout.Fd()))}
}

// exitError carries an exit code out of a command, and the batch the
// failure is about when there is one (for the --json error object).
type exitError struct {
	code  int
	err   error
	batch string
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

// Main runs importctl with args (without the program name) and returns the
// process exit code. Errors are printed once, here: on stderr, and, when
// the command was asked for --json and printed nothing on stdout, as one
// ErrorJSON object on stdout, so that a script can parse every outcome.
func Main(ctx context.Context, env Env, args []string) int {
	out := &countingWriter{w: env.Stdout}
	env.Stdout = out
	root := newRoot(env)
	root.SetArgs(args)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	code, batch := ExitFailed, ""
	var ee *exitError
	if errors.As(err, &ee) {
		code, batch, err = ee.code, ee.batch, ee.err
	}
	if err == nil {
		return code // the command has said everything (a batch's own status)
	}
	fmt.Fprintln(env.Stderr, "importctl:", err)
	if out.n == 0 && wantsJSON(root, args) {
		_ = writeJSON(out, errorJSON(err, code, batch))
	}
	return code
}

// ErrorJSON is what a command run with --json prints on stdout when it
// fails before it could print its own output (a usage error, a database in
// use or full, a file that changed while it was read): one object, so that
// every outcome parses. Its keys are a contract, as RunJSON's.
type ErrorJSON struct {
	// Status is always "ERROR": no batch status applies (a batch that
	// ends REJECTED, FAILED or SUSPENDED is a RunJSON with that status).
	Status string `json:"status"`
	// Error is the message importctl prints on stderr.
	Error string `json:"error"`
	// Reason is the error's reason code when it has one (SourceChanged,
	// AccessDenied, Throttled, Internal, ...), as in failure records.
	Reason failure.Reason `json:"reason,omitempty"`
	// ExitCode is the process's exit code (2 for every error; see run --help).
	ExitCode int `json:"exit_code"`
	// BatchID is the batch the error stopped, when it had one already.
	BatchID string `json:"batch_id,omitempty"`
}

// ErrorStatus is ErrorJSON.Status.
const ErrorStatus = "ERROR"

func errorJSON(err error, code int, batch string) ErrorJSON {
	e := ErrorJSON{Status: ErrorStatus, Error: err.Error(), ExitCode: code, BatchID: batch}
	if ie, ok := failure.As(err); ok {
		e.Reason = ie.Reason
	}
	return e
}

// wantsJSON reports whether args ask the command they name for --json. A
// command line whose flags did not parse is read word by word: a script
// that asked for JSON gets it even for its own mistakes.
func wantsJSON(root *cobra.Command, args []string) bool {
	cmd, _, err := root.Find(args)
	if err != nil || cmd.Flags().Lookup("json") == nil {
		return false
	}
	if f := cmd.Flags().Lookup("json"); f.Changed {
		return f.Value.String() == "true"
	}
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "--json" || a == "--json=true" || a == "--json=1" {
			return true
		}
	}
	return false
}

// countingWriter counts what a command wrote.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// global flags shared by every command.
type global struct {
	db      string
	verbose bool
	// AWS: --stack selects a stack's DynamoDB tables instead of --db;
	// --endpoint points at an emulator (moto) or another API endpoint.
	stack, endpoint, region string
	oneAtATime              sync.Mutex // every request to --endpoint (see awsSettings)
}

// awsSettings are the AWS client settings of the flags. On an --endpoint
// (moto) requests go one at a time: moto does not apply conditional writes
// atomically under concurrent requests.
func (g *global) awsSettings() awsclient.Settings {
	s := awsclient.Settings{Region: g.region, Endpoint: g.endpoint}
	if g.endpoint != "" {
		s.OneAtATime = &g.oneAtATime
	}
	return s
}

func (g *global) logger(env Env) *slog.Logger {
	if !g.verbose {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewJSONHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func newRoot(env Env) *cobra.Command {
	g := &global{}
	root := &cobra.Command{
		Use:   "importctl",
		Short: "Bounded, traceable, resumable product imports",
		Long: `importctl imports product files (CSV, TSV, JSON Lines, XLSX workbooks; UTF-8,
GBK/GB18030, UTF-16) into a catalog, validating every row and keeping every failed
row as a structured, re-importable record. Locally it runs the whole engine in one
process over one SQLite file (--db). With --stack it reads a stack on AWS (or, with
--endpoint, on an emulator), and 'importctl dev' runs the Lambda handlers locally.
Each command's --help lists the flags it takes.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.db, "db", "importctl.db", "SQLite database file (state and products)")
	root.PersistentFlags().BoolVarP(&g.verbose, "verbose", "v", false, "JSON logs on stderr")
	root.PersistentFlags().StringVar(&g.stack, "stack", "", "read a deployed stack (its DynamoDB tables) instead of --db")
	root.PersistentFlags().StringVar(&g.endpoint, "endpoint", "", "AWS API endpoint, e.g. moto at http://127.0.0.1:5000 (default: AWS)")
	root.PersistentFlags().StringVar(&g.region, "region", "", "AWS region (default: AWS_REGION or the profile's)")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &exitError{code: ExitFailed, err: fmt.Errorf("%w\nsee '%s --help'", err, c.CommandPath())}
	})
	root.AddCommand(newRunCmd(env, g, false), newRunCmd(env, g, true), newPreviewCmd(env),
		newStatusCmd(env, g), newFailuresCmd(env, g), newProfileCmd(env, g), newDevCmd(env, g), newRedriveCmd(env, g),
		newRetryCmd(env, g), newReportCmd(env, g), newCancelCmd(env, g), newScaleCmd(env, g))
	root.AddCommand(newInvokeCmd(env, g))
	scopeGlobalFlags(root)
	return root
}

// globalUse names the global flags each command uses. The others are left
// out of its help and refused on its command line (`run --stack prod` would
// otherwise import locally without a word). A command not named here (dev,
// help) takes them all.
func globalUse() map[string][]string {
	return map[string][]string{
		"run":            {"db", "verbose"},
		"validate":       {"verbose"}, // a dry run: an in-memory database
		"preview":        {},
		"status":         {"db", "stack", "endpoint", "region"},
		"failures":       {"db", "stack", "endpoint", "region"},
		"report":         {"db", "stack", "endpoint", "region"},
		"retry-failures": {"db", "stack", "endpoint", "region", "verbose"},
		"cancel":         {"db", "stack", "endpoint", "region", "verbose"},
		"redrive":        {"stack", "endpoint", "region", "verbose"},
		"scale":          {"stack", "endpoint", "region"},
		"invoke":         {"stack", "endpoint", "region"},
		"profile":        {},
		"profile push":   {"stack", "endpoint", "region"},
		// dev declares its own --endpoint and --stack (its defaults differ).
	}
}

// scopeGlobalFlags applies globalUse to root's commands: each one's help
// shows the global flags it uses, and a global flag it does not use is a
// usage error. The help of a global flag lists the commands that use it.
func scopeGlobalFlags(root *cobra.Command) {
	use := globalUse()
	uses := func(c *cobra.Command) ([]string, bool) {
		names, ok := use[strings.TrimPrefix(c.CommandPath(), root.Name()+" ")]
		return names, ok
	}
	users := map[string][]string{}
	for _, c := range append(root.Commands(), subcommands(root)...) {
		if names, ok := uses(c); ok {
			for _, n := range names {
				users[n] = append(users[n], strings.TrimPrefix(c.CommandPath(), root.Name()+" "))
			}
		}
	}
	help := root.HelpFunc()
	root.SetHelpFunc(func(c *cobra.Command, args []string) {
		if c == root { // the global flags, each with the commands that use it
			root.PersistentFlags().VisitAll(func(f *pflag.Flag) {
				if len(users[f.Name]) > 0 {
					f.Usage += " [" + strings.Join(users[f.Name], ", ") + "]"
				}
			})
		} else if names, ok := uses(c); ok {
			root.PersistentFlags().VisitAll(func(f *pflag.Flag) { f.Hidden = !slices.Contains(names, f.Name) })
		}
		help(c, args)
	})
	root.PersistentPreRunE = func(c *cobra.Command, _ []string) error {
		names, ok := uses(c)
		if !ok {
			return nil
		}
		var err error
		root.PersistentFlags().VisitAll(func(f *pflag.Flag) {
			if err == nil && c.Flags().Changed(f.Name) && !slices.Contains(names, f.Name) {
				err = usage("%s does not use --%s (it is for %s)\nsee '%s --help'", c.CommandPath(), f.Name,
					strings.Join(users[f.Name], ", "), c.CommandPath())
			}
		})
		return err
	}
}

// subcommands are the commands under root's commands (profile push).
func subcommands(root *cobra.Command) []*cobra.Command {
	var out []*cobra.Command
	for _, c := range root.Commands() {
		out = append(out, c.Commands()...)
	}
	return out
}

// usage wraps a usage problem so it exits 2.
func usage(format string, args ...any) error {
	return &exitError{code: ExitFailed, err: fmt.Errorf(format, args...)}
}

// ExitFor maps a batch status to the exit code importctl gives for it.
func ExitFor(s state.BatchStatus) int {
	switch s {
	case state.BatchCompleted:
		return ExitOK
	case state.BatchCompletedWithErrors:
		return ExitRowFails
	case state.BatchSuspended:
		return ExitSuspended
	}
	return ExitFailed
}
