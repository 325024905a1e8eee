package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/catalog-import/catalog-import/internal/embedded"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/report"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/state"
)

// runFlags are the flags of run and validate.
type runFlags struct {
	profile    string
	json       bool
	quiet      bool
	shards     int
	pool       int
	every      int
	shardRows  int64
	shardBytes int64
	maxRecord  int
	writeRate  float64
	maxFile    int64
	cpuProfile string
}

func newRunCmd(env Env, g *global, dry bool) *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "run [flags] FILE",
		Short: "Import a product file into the --db database",
		Long: `Import a product file. Running it again on the same file content and profile
resumes an unfinished batch, or reports the finished one without importing again.
Exit codes: 0 every row imported, 1 completed with row failures, 2 rejected,
aborted, cancelled, failed, or a usage error, 3 suspended (the file changed while
it was imported: nothing of the change was written; run the restored file again to
resume, run the new content as a new batch, or 'importctl cancel BATCH').`,
		Args: exactArgs(1, "FILE"),
	}
	if dry {
		cmd.Use, cmd.Short = "validate [flags] FILE", "Check a file without writing anything (a dry run of run)"
		cmd.Long = `Run every check of 'run' on an in-memory database: the same summary and exit
codes, and nothing is written (no database, no report). SKUExists and UnknownSKU
(write_mode update) cannot be found in a dry run, since they need the catalog: an
update row counts as imported.`
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.profile, "profile", "p", "", "profile YAML (default: the built-in default profile; see 'importctl profile')")
	fl.BoolVar(&f.json, "json", false, `print the summary as one JSON object (an error as {"status":"ERROR","error":...})`)
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "no progress bar")
	fl.IntVar(&f.shards, "shards", 2, "shards processed at once")
	fl.IntVar(&f.pool, "pool", 0, "parse/validate goroutines per shard (default: number of CPUs)")
	fl.IntVar(&f.every, "checkpoint-every", 100, "rows per checkpoint")
	fl.Int64Var(&f.shardRows, "shard-rows", 50_000, "target rows per shard")
	fl.Int64Var(&f.shardBytes, "shard-bytes", 16<<20, "target bytes per shard")
	fl.IntVar(&f.maxRecord, "max-row-bytes", 1<<20, "largest row accepted (larger rows fail RowTooLarge)")
	fl.Int64Var(&f.maxFile, "max-file-bytes", 0, "reject a CSV, TSV or JSON Lines file larger than this many bytes (0: no limit)")
	fl.Float64Var(&f.writeRate, "write-rate", 0, "most rows written per second (0: unlimited); halves when the catalog throttles")
	fl.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file (`make bench` reads it)")
	_ = fl.MarkHidden("cpuprofile")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		p, err := loadProfile(f.profile)
		if err != nil {
			return err
		}
		if f.writeRate < 0 {
			return usage("--write-rate %v: want rows per second, 0 or more (0: unlimited)", f.writeRate)
		}
		cfg := embedded.Config{
			DB: g.db, Profile: p, Shards: f.shards, Pool: f.pool, Every: f.every, WriteRate: f.writeRate,
			Split: split.Options{ShardRows: f.shardRows, ShardBytes: f.shardBytes, MaxRecord: f.maxRecord, MaxText: f.maxFile},
			Log:   g.logger(env),
		}
		if dry {
			cfg.DB = ":memory:"
		}
		view := &progressView{w: env.Stderr, throttle: 100 * time.Millisecond, now: time.Now}
		if env.StderrTerminal && !f.quiet {
			cfg.Progress = view.update
		}
		if f.cpuProfile != "" {
			stop, err := startCPUProfile(f.cpuProfile)
			if err != nil {
				return err
			}
			defer stop()
		}
		start := time.Now()
		sum, err := embedded.Run(cmd.Context(), cfg, args[0])
		view.finish()
		if err != nil {
			return &exitError{code: ExitFailed, err: err, batch: sum.Batch.ID}
		}
		page := ""
		if p := filepath.Join(filepath.Dir(cfg.DB), "reports", sum.Batch.ID, report.Name); !dry {
			if _, err := os.Stat(p); err == nil {
				page = p // the batch report finalization wrote (embedded's default report dir)
			}
		}
		if f.json {
			s := summaryJSON(sum, dry, time.Since(start))
			s.HTMLReport = page
			if err := writeJSON(env.Stdout, s); err != nil {
				return err
			}
		} else {
			printSummary(env.Stdout, args[0], sum, dry, time.Since(start))
			if page != "" {
				fmt.Fprintf(env.Stdout, "page      %s (charts and sample failures: open in a browser)\n", page)
			}
		}
		if code := ExitFor(sum.Batch.Status); code != ExitOK {
			return &exitError{code: code}
		}
		return nil
	}
	return cmd
}

// RunJSON is the --json summary of run and validate: its keys are a
// contract (the system tests in internal/e2e read it).
type RunJSON struct {
	BatchID          string                   `json:"batch_id"`
	Status           state.BatchStatus        `json:"status"`
	Order            int64                    `json:"order"` // upload order: larger is newer
	RowsTotal        int64                    `json:"rows_total"`
	RowsImported     int64                    `json:"rows_imported"`
	RowsSuperseded   int64                    `json:"rows_superseded"`
	RowsFailed       int64                    `json:"rows_failed"`
	RowsSkipped      int64                    `json:"rows_skipped"`
	FailuresByReason map[failure.Reason]int64 `json:"failures_by_reason"`
	Resumed          bool                     `json:"resumed"`
	AlreadyFinished  bool                     `json:"already_finished"`
	DryRun           bool                     `json:"dry_run,omitempty"`
	Report           string                   `json:"report"`
	HTMLReport       string                   `json:"html_report,omitempty"` // the batch report beside the error report
	Message          string                   `json:"message,omitempty"`
	RuleVersion      string                   `json:"rule_version"`
	Parent           string                   `json:"parent,omitempty"`
	// Check is the check phase of a batch with max_error_ratio (decision
	// 20): shards and rows checked, rows that failed the checks.
	Check *state.BatchCheck `json:"check,omitempty"`
	// Warnings are what the split noticed that no row failed for (a
	// workbook's hidden sheets left out, cells without a header ignored,
	// numbers Excel cut).
	Warnings  []string `json:"warnings,omitempty"`
	ElapsedMS int64    `json:"elapsed_ms"`
}

func summaryJSON(s embedded.Summary, dry bool, elapsed time.Duration) RunJSON {
	b := s.Batch
	by := b.ByReason
	if by == nil {
		by = map[failure.Reason]int64{}
	}
	return RunJSON{
		BatchID: b.ID, Status: b.Status, Order: b.Order, RowsTotal: b.Counts.Total, RowsImported: b.Counts.Imported,
		RowsSuperseded: b.Counts.Superseded, RowsFailed: b.Counts.Failed, RowsSkipped: b.Counts.Skipped, FailuresByReason: by,
		Resumed: s.Resumed, AlreadyFinished: s.Existing, DryRun: dry, Report: b.Report, Message: b.Message,
		RuleVersion: b.RuleVersion, Parent: b.Parent, Check: b.Check, Warnings: b.Warnings, ElapsedMS: elapsed.Milliseconds(),
	}
}

// supersededText is "N superseded, " when rows were superseded (newer
// uploads held every field they would change), else "".
func supersededText(c state.Counts) string {
	if c.Superseded == 0 {
		return ""
	}
	return num(c.Superseded) + " superseded, "
}

func printSummary(w io.Writer, path string, s embedded.Summary, dry bool, elapsed time.Duration) {
	b := s.Batch
	note := ""
	switch {
	case dry:
		note = " (dry run: nothing was written)"
	case s.Existing:
		note = " (already imported: nothing done; see 'importctl status " + b.ID + "')"
	case s.Resumed:
		note = " (resumed an interrupted run)"
	}
	fmt.Fprintf(w, "batch     %s%s\n", b.ID, note)
	fmt.Fprintf(w, "file      %s (%s, %s, %d shards, rules %s)\n", path, b.Layout.Format, b.Layout.Encoding, b.Shards, b.RuleVersion)
	fmt.Fprintf(w, "status    %s\n", b.Status)
	if b.Message != "" {
		fmt.Fprintf(w, "message   %s\n", b.Message)
	}
	for _, warning := range b.Warnings {
		fmt.Fprintf(w, "warning   %s\n", warning)
	}
	if k := b.Check; k != nil {
		fmt.Fprintf(w, "checked   %s rows in %d of %d shards before writing, %s failed the checks\n", num(k.Rows), k.Shards, b.Shards, num(k.Failed))
	}
	c := b.Counts
	fmt.Fprintf(w, "rows      %s total, %s imported, %s%s failed, %s skipped\n", num(c.Total), num(c.Imported), supersededText(c), num(c.Failed), num(c.Skipped))
	if len(b.ByReason) > 0 {
		reasons := slices.SortedFunc(maps.Keys(b.ByReason), func(a, b failure.Reason) int {
			return strings.Compare(string(a), string(b))
		})
		parts := make([]string, len(reasons))
		for i, r := range reasons {
			parts[i] = fmt.Sprintf("%s %s (%s)", r, num(b.ByReason[r]), r.Layer())
		}
		fmt.Fprintf(w, "failures  %s\n", strings.Join(parts, ", "))
	}
	if b.Report != "" {
		fmt.Fprintf(w, "report    %s\n", b.Report)
	}
	if b.Parent != "" {
		fmt.Fprintf(w, "parent    %s (this batch re-imports its failed rows)\n", b.Parent)
	}
	if b.Resolved > 0 {
		fmt.Fprintf(w, "resolved  %s of %s failed rows imported since by later batches ('importctl failures --unresolved %s' lists the rest)\n",
			num(b.Resolved), num(c.Failed), b.ID)
	}
	if !s.Existing && elapsed > 0 {
		fmt.Fprintf(w, "elapsed   %s (%s rows/s)\n", elapsed.Round(time.Millisecond), num(int64(float64(c.Done())/elapsed.Seconds())))
	}
}

// num formats n with thousands separators.
func num(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + num(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// exactArgs is cobra.ExactArgs with a usage exit code and a named argument.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usage("%s takes %s (got %d arguments)\nusage: %s", cmd.Name(), names, len(args), cmd.UseLine())
		}
		return nil
	}
}

// startCPUProfile profiles the process's CPU into path until the returned
// function is called.
func startCPUProfile(path string) (func(), error) {
	out, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(out); err != nil {
		out.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		out.Close()
	}, nil
}
