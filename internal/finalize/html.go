package finalize

import (
	"context"
	"io"
	"time"

	"github.com/catalog-import/catalog-import/internal/report"
	"github.com/catalog-import/catalog-import/internal/state"
)

// writeHTML stores the batch report (report.Name) beside the error report:
// the batch as final makes it, its shards' progress, and agg, the failure
// records counted in the error report's pass (so the page's numbers are the
// batch's). It is written for every batch, with or without failures.
func writeHTML(ctx context.Context, d Deps, b state.Batch, final state.Final, agg *report.Aggregate, at time.Time) error {
	shards, err := d.Store.ListShards(ctx, b.ID)
	if err != nil {
		return err // the store names the batch
	}
	b.Status, b.Counts, b.ByReason, b.Message, b.Report = final.Status, final.Counts, final.ByReason, final.Message, final.Report
	b.FinishedAt, b.UpdatedAt = at.UTC(), at.UTC()
	data := report.Data{Batch: b, Shards: shards, Failures: agg, Generated: at}
	if final.Report != "" {
		data.ErrorsCSV = "errors.csv" // Put stores both under reports/<batch>/
	}
	_, err = d.Reports.Put(ctx, b.ID, report.Name, func(w io.Writer) error { return report.Render(w, data) })
	return err
}

// refreshHTML writes batch id's report page again from the store (after a
// child batch resolved some of its failures: a fix file, retry-failures),
// as `importctl report` does, with one pass over its failure records.
func refreshHTML(ctx context.Context, d Deps, id string, at time.Time) error {
	b, err := d.Store.GetBatch(ctx, id)
	if err != nil {
		return err
	}
	if !b.Status.Finished() {
		return nil // its own finalization writes it
	}
	shards, err := d.Store.ListShards(ctx, id)
	if err != nil {
		return err
	}
	agg, err := report.Collect(ctx, d.Store, id, state.FailureFilter{})
	if err != nil {
		return err
	}
	data := report.Data{Batch: b, Shards: shards, Failures: agg, Generated: at}
	if b.Report != "" {
		data.ErrorsCSV = "errors.csv"
	}
	_, err = d.Reports.Put(ctx, id, report.Name, func(w io.Writer) error { return report.Render(w, data) })
	return err
}
