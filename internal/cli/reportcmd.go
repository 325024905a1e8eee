package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/catalog-import/catalog-import/internal/local/file"
	"github.com/catalog-import/catalog-import/internal/report"
	"github.com/catalog-import/catalog-import/internal/state"
)

func newReportCmd(env Env, g *global) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "report [flags] BATCH_ID",
		Short: "Write a batch's report page (self-contained HTML with charts) from the store, now",
		Long: `Render the batch report that finalization writes beside the error report
(reports/<batch>/report.html), from what the store holds now: for a batch that is
still running, or to get a local copy of a stack's batch (--stack). One pass over
the failure records, in pages. The page loads nothing: open it in any browser.`,
		Args: exactArgs(1, "BATCH_ID"),
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "file to write (default report-<BATCH_ID>.html; - for stdout)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		db, where, closeDB, err := g.openReader(ctx)
		if err != nil {
			return err
		}
		defer closeDB()
		b, err := findBatch(ctx, db, where, args[0])
		if err != nil {
			return err
		}
		shards, err := db.ListShards(ctx, b.ID)
		if err != nil {
			return err
		}
		agg, err := report.Collect(ctx, db, b.ID, state.FailureFilter{})
		if err != nil {
			return err
		}
		data := report.Data{Batch: b, Shards: shards, Failures: agg, Generated: time.Now()}
		if out == "-" {
			return report.Render(env.Stdout, data)
		}
		if out == "" {
			out = "report-" + b.ID + ".html"
		}
		if err := file.WriteFile(out, func(w io.Writer) error { return report.Render(w, data) }); err != nil {
			return err
		}
		fmt.Fprintf(env.Stderr, "wrote %s\n", out)
		return nil
	}
	return cmd
}
