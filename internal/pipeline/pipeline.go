// Package pipeline is the import orchestrated once, over ports, for both
// worlds: the embedded run (internal/embedded, local adapters) and the
// Lambda functions (internal/aws/handler, AWS adapters). It splits a
// source into a registered batch (Split, Resume), delivers one shard
// manifest and says what to do with the message (Deliver), applies triage
// decisions to dead-lettered messages (Triage), and finalizes a batch, in
// one place (Finalize), whenever a shard's end leaves none unfinished —
// always in a delivery of the shard queue, never in triage (decision 24).
//
// The callers keep what differs between the worlds: how the batch id is
// derived, how messages are received and settled (an in-process queue, or
// Lambda's partial batch responses), locks, tracing continuation and event
// decoding.
package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/catalog-import/catalog-import/internal/catalog"
	"github.com/catalog-import/catalog-import/internal/finalize"
	"github.com/catalog-import/catalog-import/internal/lineage"
	"github.com/catalog-import/catalog-import/internal/object"
	"github.com/catalog-import/catalog-import/internal/profile"
	"github.com/catalog-import/catalog-import/internal/queue"
	"github.com/catalog-import/catalog-import/internal/shard"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/state"
	"github.com/catalog-import/catalog-import/internal/triage"
)

// Ports are the adapters the pipeline runs on.
type Ports struct {
	Source object.Source
	Store  state.Store
	// Sink receives the shards' products.
	Sink    catalog.Sink
	Queue   queue.Queue      // the shard queue
	DLQ     queue.Queue      // the shard queue's dead-letter queue (triage parks messages there); nil: none
	Reports finalize.Reports // error reports (reports/<batch>/)
	// Staging holds the sheets of workbooks as the splitter stages them
	// (staging/<batch>/); finalization removes them. Nil: a workbook
	// cannot be split unless the split names its own stager.
	Staging split.Stager
	// TriageLog is the triage log: workers append their failed deliveries,
	// triage its decisions. Nil: nothing is recorded, and triage escalates
	// every shard it cannot decide on without a last error.
	TriageLog triage.Log
	// Notify tells operators about an escalation (SNS). Nil: escalations are
	// only logged.
	Notify Notifier
	// Profiles holds the named profiles an upload may pick
	// (SplitRequest.Profile; AWS: the bucket's profiles/<name>.yaml). Nil:
	// every source runs under Options.Profile, and one that names a
	// profile is rejected.
	Profiles Profiles
	// Events hears that a batch finished (EventBridge on AWS). Nil: nothing
	// is published (embedded: `importctl run --json` prints the summary).
	Events Publisher
}

// Profiles is a store of named profiles.
type Profiles interface {
	// Get returns the profile stored as name, parsed and compiled. A name
	// that names no profile (including one that profile.CheckName refuses)
	// is an error matching profile.ErrNotFound; a stored profile that does
	// not parse or compile is an error naming its problems.
	Get(ctx context.Context, name string) (*profile.Profile, error)
}

// Notifier sends an operator notification (an SNS message: subject up to
// 100 characters, one line).
type Notifier func(ctx context.Context, subject, message string) error

// Metrics is the metrics port of the pipeline: the worker's, and triage's
// decisions.
type Metrics interface {
	shard.Metrics
	TriageDecided(ctx context.Context, batchID string, shard int, d triage.Decision)
}

// Options tune the pipeline. Zero values take defaults.
type Options struct {
	Profile *profile.Profile // default: the built-in default profile
	Split   split.Options    // shard size, content hashing
	Worker  shard.Options    // the shard worker's options, as shard.New takes them
	// Triage is the retry budget and backoff of triage (zero fields take
	// triage's defaults).
	Triage triage.Policy
	// StackName names the stack in the command lines of escalation
	// notifications (importctl failures --stack NAME BATCH).
	StackName string
	Log       *slog.Logger // default: discard
	Now       func() time.Time
	// Tracer traces the split, the register and the worker. Nil: no spans.
	Tracer shard.Tracer
	// Metrics receives the worker's metrics and triage's decisions. Nil:
	// none.
	Metrics Metrics
	// HandOnFinalization makes Split and Resume hand a batch they would
	// finalize (a fully checked batch over its error budget, found after a
	// crash) to a shard worker instead: on AWS the splitter's role and
	// time are not a finalization's (decision 24). Embedded finalizes
	// where it is.
	HandOnFinalization bool
}

// Pipeline is the engine over one set of ports. It is safe for concurrent
// use.
type Pipeline struct {
	p      Ports
	o      Options
	worker *shard.Worker
	log    *slog.Logger
	finMu  sync.Mutex // one finalization at a time
}

// New builds the pipeline over ports.
func New(p Ports, o Options) *Pipeline {
	if o.Profile == nil {
		o.Profile = profile.Default()
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	var metrics shard.Metrics
	if o.Metrics != nil {
		metrics = o.Metrics
	}
	w := shard.New(shard.Deps{Source: p.Source, Store: p.Store, Sink: p.Sink, Log: o.Log, Now: o.Now, Tracer: o.Tracer, Metrics: metrics}, o.Worker)
	return &Pipeline{p: p, o: o, worker: w, log: o.Log}
}

// span starts a span with the tracer, if any.
func (p *Pipeline) span(ctx context.Context, name string) (context.Context, func(error)) {
	if p.o.Tracer == nil {
		return ctx, func(error) {}
	}
	return p.o.Tracer.Start(ctx, name)
}

// Finalize reconciles batch id and finishes it (ABORTED with abort as its
// message when abort is not empty), writes its error report, and logs the
// finished batch. It is the pipeline's one finalization: Deliver calls it
// after a batch's last shard, on abort, and for a redelivery that finds
// every shard done but the batch running (which is how a shard worker
// finalizes a batch whose last shard triage ended: triage hands it on,
// decision 24). Finalizing a finished batch returns it unchanged.
func (p *Pipeline) Finalize(ctx context.Context, id, abort string) (state.Batch, error) {
	p.finMu.Lock()
	defer p.finMu.Unlock()
	fin := finalize.Deps{Store: p.p.Store, Reports: p.p.Reports, Staging: p.p.Staging, Log: p.log, Now: p.o.Now,
		Lineage: lineage.Resolver{Source: p.p.Source, Store: p.p.Store, MaxRecord: p.o.Split.MaxRecord, Now: p.o.Now}}
	b, err := finalize.Finalize(ctx, fin, id, abort)
	if err != nil {
		return b, fmt.Errorf("finalize: %w", err) // err names the batch
	}
	p.log.Info("batch finished", "batch_id", id, "trace_id", b.TraceID, "status", b.Status, "rows_total", b.Counts.Total,
		"rows_imported", b.Counts.Imported, "rows_superseded", b.Counts.Superseded, "rows_failed", b.Counts.Failed, "rows_skipped", b.Counts.Skipped,
		"report", b.Report, "message", b.Message)
	p.publish(ctx, b)
	return b, nil
}

// stop finishes batch id early as status (ABORTED, CANCELLED) with message,
// through the one finalization.
func (p *Pipeline) stop(ctx context.Context, id string, status state.BatchStatus, message string) (state.Batch, error) {
	p.finMu.Lock()
	defer p.finMu.Unlock()
	fin := finalize.Deps{Store: p.p.Store, Reports: p.p.Reports, Staging: p.p.Staging, Log: p.log, Now: p.o.Now}
	b, err := finalize.Stop(ctx, fin, id, status, message)
	if err != nil {
		return b, fmt.Errorf("finalize %s as %s: %w", id, status, err)
	}
	p.log.Info("batch finished", "batch_id", id, "trace_id", b.TraceID, "status", b.Status, "rows_total", b.Counts.Total,
		"rows_imported", b.Counts.Imported, "rows_superseded", b.Counts.Superseded, "rows_failed", b.Counts.Failed, "rows_skipped", b.Counts.Skipped,
		"report", b.Report, "message", b.Message)
	p.publish(ctx, b)
	return b, nil
}

// finishIfDone finalizes batch b when every shard of it is finished but it
// is still running (a crash between the last shard and finalization, or a
// shard ended by triage). It reports whether it finalized.
func (p *Pipeline) finishIfDone(ctx context.Context, b state.Batch) (bool, error) {
	if b.ID == "" || b.Status.Finished() || b.Shards == 0 || b.ShardsDone != b.Shards {
		return false, nil
	}
	_, err := p.Finalize(ctx, b.ID, "")
	return err == nil, err
}
