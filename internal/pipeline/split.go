package pipeline

import (
	"context"
	"fmt"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/object"
	"github.com/catalog-import/catalog-import/internal/queue"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/state"
)

// SplitRequest is one source to plan and register as a batch. How the
// batch id is derived is the caller's: known before the source is read
// (BatchID), or from the plan (ID).
type SplitRequest struct {
	Info object.Info // the source, as Source.Stat returned it
	// BatchID names the batch when it is known before the source is read
	// (Lambda: bucket, key and version; embedded workbooks: the content
	// hash). The source's workbook sheets are then staged under it.
	BatchID string
	// ID derives the batch id from the plan when BatchID is empty (embedded
	// files: the content hash Options.Split.HashContent computed).
	ID func(split.Plan) string
	// Content, when set, is the hex SHA-256 the caller read the source
	// with: a plan that hashes otherwise fails SourceChanged, and the plan
	// keeps Content (also when it was rejected before it was read).
	Content string
	// SameContent: the batch id proves a stored batch of that id has the
	// source's exact content (split.Request.SameContent; only for a plan
	// that hashed the content).
	SameContent bool
	TraceID     string // the upload's trace, stored on the batch and manifests
	// Order is the batch's upload order (state.Batch.Order); 0 lets the
	// state store assign it (SQLite: its sequence).
	Order int64
}

// Split plans the source (shards cut at record boundaries; a workbook's
// sheets staged) and registers the batch with its shards, sending a
// manifest per unfinished shard. A batch that exists already is found, not
// created again (split.Register). Errors are not logged.
func (p *Pipeline) Split(ctx context.Context, req SplitRequest) (split.Plan, split.Outcome, error) {
	v, err := p.o.Profile.Compile()
	if err != nil {
		return split.Plan{}, split.Outcome{}, err
	}
	opts := p.o.Split
	if req.BatchID != "" && p.p.Staging != nil {
		opts.Staging = &split.Staging{Stager: p.p.Staging, BatchID: req.BatchID}
	}
	sctx, end := p.span(ctx, "split")
	plan, err := split.PlanSource(sctx, p.p.Source, req.Info, v, opts)
	end(err)
	if req.Content != "" {
		if err == nil && plan.Content != "" && plan.Content != req.Content {
			err = failure.New(failure.SourceChanged, "", "source %s changed while it was read", req.Info.URI)
		}
		plan.Content = req.Content
	}
	if err != nil {
		return plan, split.Outcome{}, err
	}
	id := req.BatchID
	if id == "" {
		id = req.ID(plan)
	}
	rctx, end := p.span(ctx, "register")
	out, err := split.Register(rctx, p.p.Store, p.p.Queue, split.Request{BatchID: id, Plan: plan, Profile: p.o.Profile,
		TraceID: req.TraceID, Now: p.o.Now().UTC(), SameContent: req.SameContent && plan.Content != "", Order: req.Order})
	end(err)
	return plan, out, err
}

// Resume sends again the manifests of a running batch's unfinished shards
// (a duplicate event, a retried split, a rerun), without reading the source
// again, and returns how many it sent. current, when set, is the source as
// it is now and the batch id proves it has the batch's content: the shards
// are read under its version tag (split.Request.SameContent), and a
// SUSPENDED batch is RUNNING again; without it a SUSPENDED batch is left
// as it is (a duplicate S3 event must not resume it).
func (p *Pipeline) Resume(ctx context.Context, b state.Batch, current *object.Info) (int, error) {
	if b.Status.Finished() || (b.Status == state.BatchSuspended && current == nil) {
		return 0, nil
	}
	if b.Status == state.BatchSuspended {
		// current proves the content is the registered one (the caller
		// derived the batch id from it): the restored source resumes.
		var err error
		if b, err = p.p.Store.ResumeBatch(ctx, b.ID, p.o.Now().UTC()); err != nil {
			return 0, fmt.Errorf("resume batch %s: %w", b.ID, err)
		}
	}
	shards, err := p.p.Store.ListShards(ctx, b.ID)
	if err != nil {
		return 0, fmt.Errorf("list shards of %s: %w", b.ID, err)
	}
	if i := current; i != nil {
		b.Source = state.Source{URI: i.URI, Size: i.Size, ETag: i.ETag, Version: i.Version, ModTime: i.ModTime}
	}
	var ms []queue.Manifest
	for _, s := range shards {
		if !s.Status.Finished() {
			ms = append(ms, split.Manifest(b, s, b.TraceID))
		}
	}
	if err := p.p.Queue.Send(ctx, 0, ms...); err != nil {
		return 0, fmt.Errorf("send %d manifests of %s: %w", len(ms), b.ID, err)
	}
	return len(ms), nil
}
