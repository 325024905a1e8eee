package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/catalog-import/catalog-import/internal/aws/dynamostate"
	"github.com/catalog-import/catalog-import/internal/embedded"
	"github.com/catalog-import/catalog-import/internal/local/sqlite"
	"github.com/catalog-import/catalog-import/internal/record"
	"github.com/catalog-import/catalog-import/internal/report"
	"github.com/catalog-import/catalog-import/internal/state"
	"github.com/catalog-import/catalog-import/internal/triage"
)

// newStatusCmd is `importctl status`.
func newStatusCmd(env Env, g *global) *cobra.Command {
	var asJSON, watching bool
	var limit int
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "status [BATCH_ID]",
		Short: "List recent batches, or show one batch with its shards; --watch follows running batches live",
		Long: `List recent batches, or show one batch with its shards and triage log.

--watch follows the running batches (or BATCH_ID) until they finish or Ctrl-C:
rows done of total, rows/s, ETA and failed rows by layer, refreshed every
--interval. On a terminal it redraws one bar per batch; otherwise it prints one
line per batch per refresh, then each batch's final counts. With a BATCH_ID it
exits as 'run' does for the batch's final status (0, 1 or 2).`,
		Args: cobra.MaximumNArgs(1),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "JSON output")
	cmd.Flags().IntVar(&limit, "limit", 20, "batches to list")
	cmd.Flags().BoolVarP(&watching, "watch", "w", false, "follow running batches live until they finish")
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "refresh interval of --watch")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		db, where, closeDB, err := g.openReader(ctx)
		if err != nil {
			return err
		}
		defer closeDB()
		switch {
		case watching:
			return runWatch(ctx, env, db, where, args, limit, interval, asJSON)
		case len(args) == 0:
			return listBatches(ctx, env.Stdout, db, limit, asJSON)
		}
		return showBatch(ctx, env.Stdout, db, where, args[0], asJSON)
	}
	return cmd
}

// listBatches prints the newest limit batches of db, one line (or JSON
// object) each.
func listBatches(ctx context.Context, w io.Writer, db reader, limit int, asJSON bool) error {
	bs, err := db.ListBatches(ctx, limit)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(w, bs)
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "BATCH\tORDER\tSTATUS\tROWS\tIMPORTED\tSUPERSEDED\tFAILED\tSKIPPED\tCREATED\tFILE")
	for _, b := range bs {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", b.ID, b.Order, b.Status, b.Counts.Total, b.Counts.Imported,
			b.Counts.Superseded, b.Counts.Failed, b.Counts.Skipped, b.CreatedAt.Local().Format(time.DateTime), b.Source.URI)
	}
	return tw.Flush()
}

// StatusJSON is `importctl status --json BATCH_ID`: the batch, its shards,
// the ranges of rows triage skipped and its triage log. `status --json` without a batch prints a list of
// batches, each with the batch's keys only. Its keys are a stable format
// (docs/status-json.md; TestStatusJSONKeys pins them).
type StatusJSON struct {
	state.Batch
	ShardList []state.Shard `json:"shard_list"`
	// SkippedRows are the ranges of rows triage skipped with their shard
	// (counted in rows_skipped), [] when none.
	SkippedRows []report.Skip  `json:"skipped_rows"`
	TriageLog   []triage.Entry `json:"triage_log"`
}

// showBatch prints batch id of db (opened at where): its summary, its
// shards and its triage log, or all of them as one JSON object.
func showBatch(ctx context.Context, w io.Writer, db reader, where, id string, asJSON bool) error {
	b, err := findBatch(ctx, db, where, id)
	if err != nil {
		return err
	}
	shards, err := db.ListShards(ctx, b.ID)
	if err != nil {
		return err
	}
	entries, err := triageEntries(ctx, db, b.ID)
	if err != nil {
		return err
	}
	skips := report.Skips(shards)
	if skips == nil {
		skips = []report.Skip{}
	}
	if asJSON {
		return writeJSON(w, StatusJSON{b, shards, skips, entries})
	}
	printSummary(w, b.Source.URI, embedded.Summary{Batch: b}, false, 0)
	tw := newTable(w)
	printShards(tw, b, shards)
	printSkips(tw, skips)
	printTriageLog(tw, entries)
	return tw.Flush()
}

// printSkips prints the ranges of rows triage skipped, if any.
func printSkips(tw io.Writer, skips []report.Skip) {
	if len(skips) == 0 {
		return
	}
	fmt.Fprintln(tw, "\nSKIPPED ROWS\tSHARD\tROWS\tWHY")
	for _, k := range skips {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", k.Range(), k.Shard, k.Rows, oneLine(k.Why, 120))
	}
}

// printShards prints the table of the batch's shards (with their sheet for
// a workbook).
func printShards(tw io.Writer, b state.Batch, shards []state.Shard) {
	sheets := b.Layout.Format == string(record.XLSX)
	if sheets { // a workbook: the byte ranges are those of each shard's staged chunk
		fmt.Fprintln(tw, "\nSHARD\tSHEET\tSTATUS\tROWS\tFIRST ROW\tBYTES\tDONE\tIMPORTED\tSUPERSEDED\tFAILED\tSKIPPED\tATTEMPTS\tEPOCH")
	} else {
		fmt.Fprintln(tw, "\nSHARD\tSTATUS\tROWS\tFIRST ROW\tBYTES\tDONE\tIMPORTED\tSUPERSEDED\tFAILED\tSKIPPED\tATTEMPTS\tEPOCH")
	}
	for _, s := range shards {
		c := s.Checkpoint.Counts
		fmt.Fprintf(tw, "%d\t", s.Index)
		if sheets {
			fmt.Fprintf(tw, "%s\t", s.Sheet)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d-%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", s.Status, s.Rows, s.FirstRow, s.Start, s.End,
			c.Done(), c.Imported, c.Superseded, c.Failed, c.Skipped, s.Attempts, s.Epoch)
	}
}

// printTriageLog prints the batch's triage log, if it has one.
func printTriageLog(tw io.Writer, entries []triage.Entry) {
	if len(entries) == 0 {
		return
	}
	fmt.Fprintln(tw, "\nTRIAGE LOG\tSHARD\tKIND\tACTION\tREASON\tRECEIVES\tRETRIES\tMESSAGE")
	for _, e := range entries {
		action := string(e.Action)
		if e.Action == triage.Retry {
			action += " in " + e.Delay.String()
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%d\t%d\t%s\n", e.At.Local().Format(time.DateTime), e.Shard, e.Kind,
			dash(action), dash(string(e.Reason)), e.ReceiveCount, e.RetryCount, oneLine(e.Message, 120))
	}
}

// triageEntries returns the batch's triage log (oldest first) from the
// store r was opened on.
func triageEntries(ctx context.Context, r reader, batchID string) ([]triage.Entry, error) {
	var l triage.Log
	switch r := r.(type) {
	case *sqlite.DB:
		l = r.TriageLog()
	case *dynamostate.Store:
		l = r.TriageLog()
	default:
		return nil, nil
	}
	es, err := l.List(ctx, batchID)
	if es == nil {
		es = []triage.Entry{}
	}
	return es, err
}
