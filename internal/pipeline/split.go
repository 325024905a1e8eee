package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/object"
	"github.com/catalog-import/catalog-import/internal/profile"
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
	// Profile names the stored profile (Ports.Profiles) the source is
	// validated under; zero: Options.Profile.
	Profile ProfileChoice
}

// ProfileChoice is the profile an upload named, and how.
type ProfileChoice struct {
	Name string // "": Options.Profile
	// From says where the upload names it, for messages
	// ("x-amz-meta-profile", "its folder incoming/stock/").
	From string
	// Optional: a Name that names no stored profile means Options.Profile
	// (a folder under incoming/ that is not a profile's), where otherwise
	// the source is REJECTED naming it.
	Optional bool
}

// profileFor returns the profile the request runs under, and the
// rejection of a source that named a profile there is none of (or a
// stored profile that is not valid). Other errors (the store could not
// be read) are for the caller to retry.
func (p *Pipeline) profileFor(ctx context.Context, req SplitRequest) (*profile.Profile, error, error) {
	c := req.Profile
	if c.Name == "" {
		return p.o.Profile, nil, nil
	}
	var (
		got *profile.Profile
		err = fmt.Errorf("%w: no profile store", profile.ErrNotFound)
	)
	if p.p.Profiles != nil {
		got, err = p.p.Profiles.Get(ctx, c.Name)
	}
	var ie *failure.ImportError
	switch {
	case err == nil:
		p.log.Info("profile chosen", "uri", req.Info.URI, "profile", c.Name, "from", c.From, "rule_version", got.RuleVersion())
		return got, nil, nil
	case errors.Is(err, profile.ErrNotFound) && c.Optional:
		p.log.Info("no stored profile of that name: the default profile is used", "uri", req.Info.URI, "profile", c.Name, "from", c.From,
			"rule_version", p.o.Profile.RuleVersion())
		return p.o.Profile, nil, nil
	case errors.Is(err, profile.ErrNotFound):
		stack := p.o.StackName
		if stack == "" {
			stack = "STACK"
		}
		return p.o.Profile, failure.New(failure.SchemaMismatch, "", "profile %q not found: upload it with importctl profile push %s FILE --stack %s (the upload names it in %s)",
			c.Name, c.Name, stack, c.From), nil
	case errors.As(err, &ie):
		return nil, nil, err // the store could not be read
	default:
		return p.o.Profile, failure.New(failure.SchemaMismatch, "", "profile %q is not valid (the upload names it in %s): %s", c.Name, c.From,
			strings.NewReplacer(":\n", ": ", "\n", "; ").Replace(err.Error())), nil // one line in status
	}
}

// Split plans the source (shards cut at record boundaries; a workbook's
// sheets staged) and registers the batch with its shards, sending a
// manifest per unfinished shard. A batch that exists already is found, not
// created again (split.Register). Errors are not logged.
func (p *Pipeline) Split(ctx context.Context, req SplitRequest) (split.Plan, split.Outcome, error) {
	prof, rejected, err := p.profileFor(ctx, req)
	if err != nil {
		return split.Plan{}, split.Outcome{}, err
	}
	v, err := prof.Compile()
	if err != nil {
		return split.Plan{}, split.Outcome{}, err
	}
	opts := p.o.Split
	if req.BatchID != "" && p.p.Staging != nil {
		opts.Staging = &split.Staging{Stager: p.p.Staging, BatchID: req.BatchID}
	}
	var plan split.Plan
	if rejected != nil { // not read: no rules to read it under
		plan = split.Plan{Info: req.Info, Rejected: rejected}
	} else {
		sctx, end := p.span(ctx, "split")
		plan, err = split.PlanSource(sctx, p.p.Source, req.Info, v, opts)
		end(err)
	}
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
	out, err := split.Register(rctx, p.p.Store, p.p.Queue, split.Request{BatchID: id, Plan: plan, Profile: prof,
		TraceID: req.TraceID, Now: p.o.Now().UTC(), SameContent: req.SameContent && plan.Content != "", Order: req.Order})
	end(err)
	if err == nil && out.Created && out.Batch.Status.Finished() {
		p.publish(ctx, out.Batch) // REJECTED when registered: no shard runs
	}
	if err == nil && out.Sent == 0 {
		// A batch found fully checked and not decided (a crash after its
		// last check): decide it now.
		var done bool
		if done, err = p.decide(ctx, out.Batch, p.o.HandOnFinalization); done {
			out.Batch, err = p.p.Store.GetBatch(ctx, out.Batch.ID)
		}
	}
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
			return 0, err // the store names the batch
		}
	}
	shards, err := p.p.Store.ListShards(ctx, b.ID)
	if err != nil {
		return 0, err
	}
	if i := current; i != nil {
		b.Source = state.Source{URI: i.URI, Size: i.Size, ETag: i.ETag, Version: i.Version, ModTime: i.ModTime}
	}
	if b.Check != nil && b.Check.Done(b.Shards) {
		// Fully checked: decide (abort, or send the write phase).
		if _, err := p.decide(ctx, b, p.o.HandOnFinalization); err != nil {
			return 0, err
		}
		return len(split.Pending(b, shards, b.TraceID)), nil
	}
	ms := split.Pending(b, shards, b.TraceID)
	if err := p.p.Queue.Send(ctx, 0, ms...); err != nil {
		return 0, fmt.Errorf("send %d manifests of %s: %w", len(ms), b.ID, err)
	}
	return len(ms), nil
}
