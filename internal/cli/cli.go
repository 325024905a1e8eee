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
	"sync"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/catalog-import/catalog-import/internal/aws/awsclient"
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

// exitError carries an exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

// Main runs importctl with args (without the program name) and returns the
// process exit code. Errors are printed once, here.
func Main(ctx context.Context, env Env, args []string) int {
	root := newRoot(env)
	root.SetArgs(args)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	err := root.ExecuteContext(ctx)
	var ee *exitError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ee):
		if ee.err != nil {
			fmt.Fprintln(env.Stderr, "importctl:", ee.err)
		}
		return ee.code
	default:
		fmt.Fprintln(env.Stderr, "importctl:", err)
		return ExitFailed
	}
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
		Long: `importctl imports product files (CSV, TSV, JSON Lines; UTF-8, GBK/GB18030, UTF-16)
into a catalog, validating every row and keeping every failed row as a structured,
re-importable record. Locally it runs the whole engine in one process over one
SQLite file (--db). With --stack it reads a stack on AWS (or, with --endpoint,
on an emulator), and 'importctl dev' runs the Lambda handlers locally.`,
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
	return root
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
