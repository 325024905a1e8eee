// Package finalize closes a batch once its last shard is finished: it
// reconciles the counts against the durable records (each shard's
// checkpointed row outcomes and the failure records kept, per shard and in
// sum), writes the error report and the batch report (report.html,
// internal/report), and sets the final status.
//
// A workbook's staged chunks (see internal/split) are removed here, once
// the batch is finished.
//
// It keeps invariant 6: a batch completes only when, for every shard and in
// sum, rows_total = imported + superseded + failed + skipped, counted from
// what is stored (the outcomes each checkpoint recorded, the failure
// records), not from in-memory counters; otherwise the batch is FAILED and
// the message names each difference. Products are never counted by
// provenance: a later upload may own any product a batch wrote, and that
// must not fail the batch.
//
// Rows skipped with their shard (triage's skip) are never hidden: a batch
// that completes with skipped rows is COMPLETED_WITH_ERRORS, its message
// says how many and where, and errors.csv and report.html list each
// skipped range (report.Skips, reason failure.ShardSkipped; decision 24).
package finalize

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/report"
	"github.com/catalog-import/catalog-import/internal/state"
)

// Store is the part of the state store finalization reads and writes.
type Store interface {
	GetBatch(ctx context.Context, id string) (state.Batch, error)
	ListShards(ctx context.Context, batchID string) ([]state.Shard, error)
	CountFailures(ctx context.Context, batchID string) (map[int]int64, error)
	Failures(ctx context.Context, batchID string, f state.FailureFilter) ([]failure.Record, error)
	FinishBatch(ctx context.Context, id string, f state.Final, now time.Time) (state.Batch, error)
}

// Reports stores a batch's error report and returns where it is. Put
// refuses, before calling write, a batch id or name that ReportName refuses:
// a report stays inside its batch's folder.
type Reports interface {
	Put(ctx context.Context, batchID, name string, write func(io.Writer) error) (location string, err error)
}

// ReportName checks a report's batch id and name before a Reports adapter
// stores it at <batch>/<name>: both must be non-empty, neither "." nor
// "..", and free of slashes, backslashes and NUL bytes, so that no report
// lands outside its batch's folder (a local directory or a bucket prefix).
// Every adapter calls it.
func ReportName(batchID, name string) error {
	for _, part := range []string{batchID, name} {
		if part == "" || part == "." || part == ".." || strings.ContainsAny(part, "/\\\x00") {
			return failure.New(failure.Internal, "report", "invalid argument: report %q of batch %q: want non-empty names without slashes, backslashes or NUL, other than . and ..", name, batchID)
		}
	}
	return nil
}

// Lineage marks the failures of a batch's parent that the batch's rows
// resolved (lineage.Resolver).
type Lineage interface {
	Resolve(ctx context.Context, child state.Batch) (int, error)
}

// Staging removes what the splitter staged for a batch (split.Stager).
type Staging interface {
	Unstage(ctx context.Context, batchID string) error
}

// Deps are finalization's ports.
type Deps struct {
	Store   Store
	Reports Reports
	// Lineage, when set, resolves the parent's failures of a batch that
	// re-imports failed rows (Batch.Parent), before the batch is finished.
	Lineage Lineage
	// Staging, when set, has the staged chunks of a workbook batch removed
	// once the batch is finished. A removal that fails is logged (Log) and
	// does not fail finalization: the batch is finished either way.
	Staging Staging
	Log     *slog.Logger
	Now     func() time.Time
}

// pageSize is how many failure records are read per page for the report.
const pageSize = 5000

// Finalize reconciles batch id, sets its final status and returns the
// finished batch. abort, when not
// empty, finishes the batch as ABORTED with that message (rows never reached
// count as skipped). Finalizing a finished batch again returns it unchanged.
func Finalize(ctx context.Context, d Deps, id, abort string) (state.Batch, error) {
	if abort != "" {
		return Stop(ctx, d, id, state.BatchAborted, abort)
	}
	return Stop(ctx, d, id, "", "")
}

// Stop finishes batch id before its shards are done, as status (ABORTED or
// CANCELLED) with message: counts are reconciled as for ABORTED (rows not
// reached count as skipped), and the reports are written. An empty status
// is Finalize of a batch whose shards are done.
func Stop(ctx context.Context, d Deps, id string, stop state.BatchStatus, message string) (state.Batch, error) {
	abort := ""
	if stop != "" {
		if !stop.Finished() {
			return state.Batch{}, failure.New(failure.Internal, "status", "stop batch %s: %s is not a final status", id, stop)
		}
		abort = message
		if abort == "" {
			abort = string(stop)
		}
	}
	b, err := d.Store.GetBatch(ctx, id)
	if err != nil {
		return state.Batch{}, err // the store names the batch
	}
	total, shards, diffs, err := reconcile(ctx, d, b, abort)
	if err != nil {
		return state.Batch{}, err
	}
	skips := report.Skips(shards)

	agg := &report.Aggregate{} // the failure records, counted in the error report's pass
	csv := ""
	if (total.Failed > 0 || len(skips) > 0) && d.Reports != nil {
		csv, err = d.Reports.Put(ctx, id, "errors.csv", func(w io.Writer) error {
			return writeReport(ctx, d.Store, b, skips, w, agg)
		})
		if err != nil {
			return state.Batch{}, fmt.Errorf("write error report of %s: %w", id, err)
		}
	} else if total.Failed > 0 {
		if err := writeReport(ctx, d.Store, b, nil, io.Discard, agg); err != nil {
			return state.Batch{}, err
		}
	}
	byReason := agg.ByReason
	if byReason == nil {
		byReason = map[failure.Reason]int64{}
	}

	status, msg := state.BatchCompleted, ""
	switch {
	case stop != "":
		status, msg = stop, abort
	case len(diffs) > 0:
		status, msg = state.BatchFailed, "reconciliation failed: "+strings.Join(diffs, "; ")
	case total.Skipped > 0:
		// Rows triage skipped are not imported: never plain COMPLETED.
		status, msg = state.BatchCompletedWithErrors, skippedMessage(total.Skipped, skips)
	case total.Failed > 0:
		status = state.BatchCompletedWithErrors
	}
	if b.Parent != "" && d.Lineage != nil && !b.Status.Finished() && stop == "" && status != state.BatchFailed {
		// Before FinishBatch: finalizing again after a crash repeats it,
		// and resolving is idempotent.
		if _, err := d.Lineage.Resolve(ctx, b); err != nil {
			return state.Batch{}, fmt.Errorf("resolve the failures of %s that %s imported: %w", b.Parent, id, err)
		}
	}
	now := time.Now
	if d.Now != nil {
		now = d.Now
	}
	final, at := state.Final{Status: status, Counts: total, ByReason: byReason, Message: msg, Report: csv}, now()
	if d.Reports != nil {
		if err := writeHTML(ctx, d, b, final, agg, at); err != nil {
			return state.Batch{}, fmt.Errorf("write batch report of %s: %w", id, err)
		}
	}
	fb, err := d.Store.FinishBatch(ctx, id, final, at)
	if err != nil {
		return state.Batch{}, err
	}
	if b.Parent != "" && d.Lineage != nil && d.Reports != nil && stop == "" && status != state.BatchFailed {
		// The parent's page was written when it finished: show what this
		// batch resolved there too. A failure leaves the page as it was.
		if err := refreshHTML(ctx, d, b.Parent, now()); err != nil && d.Log != nil {
			d.Log.Warn("the parent's report page was not updated", "batch_id", id, "parent", b.Parent, "error", err)
		}
	}
	if d.Staging != nil && b.Layout.Format == "xlsx" {
		if err := d.Staging.Unstage(ctx, id); err != nil && d.Log != nil {
			d.Log.Warn("staged chunks not removed", "batch_id", id, "error", err)
		}
	}
	return fb, nil
}

// reconcile counts every shard's outcomes from the stored records and names
// each shard whose outcomes do not add up to its rows.
//
// A shard's imported and superseded rows are those its checkpoints
// recorded; its failed rows are its failure records. The two differ by the
// rows a shard imported that a lower row of the same SKU, written later by
// another shard, displaced: their DuplicateSKU records are added outside the
// shard's checkpoints, so they move from imported to failed. A failure
// record missing, or a checkpoint short of the shard's rows, is a
// difference.
//
// A batch whose shard records are fewer than its shards (items that
// expired, decision 24) is a difference too: their rows cannot be counted.
func reconcile(ctx context.Context, d Deps, b state.Batch, abort string) (state.Counts, []state.Shard, []string, error) {
	id := b.ID
	shards, err := d.Store.ListShards(ctx, id)
	if err != nil {
		return state.Counts{}, nil, nil, err
	}
	perShard, err := d.Store.CountFailures(ctx, id)
	if err != nil {
		return state.Counts{}, nil, nil, err
	}
	var total state.Counts
	var diffs []string
	if len(shards) != b.Shards {
		diffs = append(diffs, fmt.Sprintf("%d shards registered but %d stored", b.Shards, len(shards)))
	}
	for _, s := range shards {
		cp := s.Checkpoint.Counts
		c := state.Counts{Total: s.Rows, Imported: cp.Imported, Superseded: cp.Superseded, Failed: perShard[s.Index], Skipped: cp.Skipped}
		if displaced := c.Failed - cp.Failed; displaced > 0 {
			moved := min(displaced, c.Imported)
			c.Imported -= moved
			c.Superseded -= min(displaced-moved, c.Superseded)
		}
		if s.Status == state.ShardSkipped || abort != "" {
			c.Skipped = max(0, c.Total-c.Imported-c.Superseded-c.Failed)
		}
		if c.Done() != c.Total {
			diffs = append(diffs, fmt.Sprintf("shard %d: %d rows but %d imported + %d superseded + %d failed + %d skipped (%+d)",
				s.Index, c.Total, c.Imported, c.Superseded, c.Failed, c.Skipped, c.Done()-c.Total))
		}
		total = total.Add(c)
	}
	if len(shards) == 0 {
		total.Total = b.Counts.Total
	}

	return total, shards, diffs, nil
}

// skippedMessage is the final message of a batch that completed with rows
// skipped: how many, and where (the first few ranges).
func skippedMessage(n int64, skips []report.Skip) string {
	const shown = 3
	var parts []string
	for i, k := range skips {
		if i == shown {
			parts = append(parts, fmt.Sprintf("and %d more shards", len(skips)-shown))
			break
		}
		parts = append(parts, fmt.Sprintf("shard %d %s: %s", k.Shard, k.Range(), k.Why))
	}
	msg := fmt.Sprintf("%d rows skipped, not imported", n)
	if len(parts) > 0 {
		msg += " (" + strings.Join(parts, "; ") + ")"
	}
	return msg + "; the error report lists each skipped range (ShardSkipped)"
}

// writeReport pages through the failure records in (sheet, row) order,
// adding each to agg, and writes a ShardSkipped line for each of skips in
// its place in that order (it is not added to agg: its rows are skipped,
// not failed).
func writeReport(ctx context.Context, st Store, b state.Batch, skips []report.Skip, w io.Writer, agg *report.Aggregate) error {
	var header []string
	if b.Layout.Format != "jsonl" {
		header = b.Layout.Header
	}
	rw, err := failure.NewReportWriter(w, header, b.Layout.Format == "xlsx")
	if err != nil {
		return err
	}
	skips = slices.Clone(skips)
	slices.SortStableFunc(skips, func(a, b report.Skip) int {
		return cmp.Or(strings.Compare(a.Sheet, b.Sheet), cmp.Compare(a.First, b.First))
	})
	// skipsBefore writes the skips that sort before (sheet, row); all of
	// them when last.
	skipsBefore := func(sheet string, row int64, last bool) error {
		for len(skips) > 0 && (last || cmp.Or(strings.Compare(skips[0].Sheet, sheet), cmp.Compare(skips[0].First, row)) <= 0) {
			if err := rw.Write(skips[0].Record(b.ID)); err != nil {
				return err
			}
			skips = skips[1:]
		}
		return nil
	}
	f := state.FailureFilter{Limit: pageSize}
	for {
		recs, err := st.Failures(ctx, b.ID, f)
		if err != nil {
			return err // "list failures of <batch>: ..."
		}
		for _, r := range recs {
			if err := skipsBefore(r.Sheet, r.Row, false); err != nil {
				return err
			}
			agg.Add(r)
			if err := rw.Write(r); err != nil {
				return err
			}
		}
		if len(recs) < pageSize {
			if err := skipsBefore("", 0, true); err != nil {
				return err
			}
			return rw.Flush()
		}
		last := recs[len(recs)-1]
		f.AfterSheet, f.AfterRow = last.Sheet, last.Row
	}
}
