package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/catalog-import/catalog-import/internal/aws/handler"
	"github.com/catalog-import/catalog-import/internal/embedded"
	"github.com/catalog-import/catalog-import/internal/pipeline"
	"github.com/catalog-import/catalog-import/internal/state"
)

// newCancelCmd is `importctl cancel`.
func newCancelCmd(env Env, g *global) *cobra.Command {
	var (
		asJSON  bool
		message string
	)
	cmd := &cobra.Command{
		Use:   "cancel [--db FILE | --stack NAME [--endpoint URL]] BATCH_ID",
		Short: "End a running or suspended batch for good (CANCELLED)",
		Long: `cancel ends a RUNNING or SUSPENDED batch: its status becomes CANCELLED, its
workers stop at their next checkpoint, and manifests still queued for it are
dropped as no-ops. Its counts keep what was imported before the cancel; rows not
reached count as skipped (as for ABORTED), and the reports are written.

A finished batch (COMPLETED, ABORTED, CANCELLED, ...) is not changed: cancel
refuses it and exits 2.

Locally it works while another 'importctl run' imports the batch from the same
--db: cancel does not need the run's lock, it only writes the batch's status
through the database (SQLite in WAL mode lets it in between the run's writes),
and that run then stops and reports CANCELLED.

  importctl cancel b-3f9a1c
  importctl cancel --stack prod --message "wrong file" b-01J9ZQ6V3K`,
		Args: exactArgs(1, "BATCH_ID"),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the cancelled batch as the JSON summary of run")
	cmd.Flags().StringVar(&message, "message", "", "why (stored as the batch's message)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx, id := cmd.Context(), args[0]
		var (
			b     state.Batch
			err   error
			where string
		)
		if g.stack == "" {
			where = g.db
			db, oerr := openExisting(g.db)
			if oerr != nil {
				return oerr
			}
			db.Close()
			b, err = embedded.Cancel(ctx, embedded.Config{DB: g.db, Log: g.logger(env)}, id, message)
		} else {
			where = "stack " + g.stack
			res, clients, rerr := g.resources(ctx)
			if rerr != nil {
				return rerr
			}
			f := handler.FromClients(clients, handler.Config{Bucket: res.Bucket, StateTable: res.StateTable,
				ProductsTable: res.ProductsTable, ShardQueueURL: res.ShardQueueURL, DLQURL: res.DLQURL,
				Options: handler.Options{Log: g.logger(env)}})
			b, err = f.Cancel(ctx, id, message)
		}
		switch {
		case errors.Is(err, state.ErrNotFound):
			return usage("no batch %s in %s", id, where)
		case errors.Is(err, pipeline.ErrNotCancellable):
			return &exitError{code: ExitFailed, err: fmt.Errorf("cancel %s: batch is %s, finished already: nothing to cancel", id, b.Status)}
		case err != nil:
			return &exitError{code: ExitFailed, err: err}
		}
		sum := embedded.Summary{Batch: b}
		if asJSON {
			return writeJSON(env.Stdout, summaryJSON(sum, false, 0))
		}
		printSummary(env.Stdout, b.Source.URI, sum, false, 0)
		return nil
	}
	return cmd
}
