// Package handler is the Lambda side of the engine: the splitter (S3
// ObjectCreated), shard-worker (SQS, partial batch responses) and triage
// (the shard DLQ) handlers. They gather their inputs from the event and call
// the same engine packages the embedded mode runs (split, shard, finalize);
// the only AWS-specific parts are the events and the adapters in Ports.
//
// functions/<name>/main.go builds Config from the environment, the ports
// once per container (New), and hands one method to lambda.Start.
// importctl dev and the tests call the same methods with the same events.
package handler

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/smithy-go/middleware"

	"github.com/catalog-import/catalog-import/internal/aws/s3store"
	"github.com/catalog-import/catalog-import/internal/aws/sqsqueue"
	"github.com/catalog-import/catalog-import/internal/catalog"
	"github.com/catalog-import/catalog-import/internal/failure"
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

// IncomingPrefix is where uploads that start an import land in the bucket.
const IncomingPrefix = "incoming/"

// attrTraceHeader is the SQS message system attribute of the X-Ray trace
// header (Lambda passes it in the record's attributes).
const attrTraceHeader = "AWSTraceHeader"

// Ports are the adapters the handlers run on.
type Ports struct {
	Source object.Source
	Store  state.Store
	Sink   interface {
		catalog.Sink
		catalog.Reader
	}
	Queue   queue.Queue      // the shard queue
	DLQ     queue.Queue      // the shard queue's dead-letter queue (triage parks messages there)
	Reports finalize.Reports // error reports (reports/<batch>/ in the bucket)
	// Staging holds the sheets of workbooks as the splitter stages them
	// (staging/<batch>/ in the bucket); finalization removes them. Nil: a
	// workbook cannot be split.
	Staging split.Stager
	// Log is the triage log: workers append their failed deliveries, triage
	// its decisions. Nil: nothing is recorded, and triage escalates every
	// shard it cannot decide on without a last error.
	Log triage.Log
	// Notify tells operators about an escalation (SNS). Nil: escalations are
	// only logged.
	Notify Notifier
}

// Notifier sends an operator notification (an SNS message: subject up to
// 100 characters, one line).
type Notifier func(ctx context.Context, subject, message string) error

// Options tune the engine inside the functions. Zero values take defaults.
type Options struct {
	Profile         *profile.Profile // default: the built-in default profile
	Split           split.Options    // shard size
	Pool            int              // goroutines per shard (default GOMAXPROCS)
	CheckpointEvery int              // rows per checkpoint (default 1000)
	// LeaseTTL is how long a claim lasts without a checkpoint. It should be
	// the worker's timeout: a lease outlives no invocation, so a redelivery
	// (after the queue's visibility timeout, 6x the timeout) can claim.
	LeaseTTL time.Duration
	// DeadlineMargin: how long before the invocation's deadline a worker stops
	// taking rows and hands the rest of the shard on (default 10s; keep it
	// well under the worker timeout).
	DeadlineMargin time.Duration
	// Triage is the retry budget and backoff of the triage function
	// (zero fields take triage's defaults).
	Triage triage.Policy
	// StackName names the stack in the command lines of escalation
	// notifications (importctl failures --stack NAME BATCH).
	StackName string
	Owner     string // lease owner prefix (default "lambda")
	Log       *slog.Logger
	Now       func() time.Time
	// Tracer traces the functions (X-Ray in Lambda). Nil: no spans; trace
	// ids still travel with the manifests into the failure records.
	Tracer Tracer
	// Metrics receives the functions' metrics (EMF lines in Lambda). Nil:
	// none.
	Metrics Metrics
}

// Tracer is the tracing the functions need (internal/aws/xraytrace): the
// engine's spans, a segment per shard delivery continuing the manifest's
// trace, the header to hand on with manifests, and the SDK clients'
// instrumentation. Implementations must not fail or print when there is no
// trace.
type Tracer interface {
	shard.Tracer
	// Continue begins the segment of one delivery in the trace traceHeader
	// names (a subsegment of the invocation when it names none), with
	// searchable annotations.
	Continue(ctx context.Context, name, traceHeader string, annotations map[string]any) (context.Context, func(error))
	// Header returns the trace header of ctx's current span ("" when none).
	Header(ctx context.Context) string
	// Instrument adds tracing to the clients built with these API options.
	Instrument(apiOptions *[]func(*middleware.Stack) error)
}

// Metrics is the metrics port of the functions (internal/aws/emf): the
// worker's, and triage's decisions.
type Metrics interface {
	shard.Metrics
	TriageDecided(ctx context.Context, batchID string, shard int, d triage.Decision)
}

// lambdaTraceKey is the context key under which aws-lambda-go puts the
// invocation's X-Ray trace header (a plain string key, its choice).
const lambdaTraceKey = "x-amzn-trace-id"

// span starts a span with the tracer, if any.
func (f *Functions) span(ctx context.Context, name string) (context.Context, func(error)) {
	if f.o.Tracer == nil {
		return ctx, func(error) {}
	}
	return f.o.Tracer.Start(ctx, name)
}

// traceHeader is the trace header to hand on from ctx: the current span's,
// else the invocation's (Lambda passes one even when tracing is off).
func (f *Functions) traceHeader(ctx context.Context) string {
	if f.o.Tracer != nil {
		if h := f.o.Tracer.Header(ctx); h != "" {
			return h
		}
	}
	h, _ := ctx.Value(lambdaTraceKey).(string)
	return h
}

// continueTrace begins the segment of one delivery of m (name: the
// function's role) in m's trace; delivered is the AWSTraceHeader the
// delivery carried.
func (f *Functions) continueTrace(ctx context.Context, name string, m queue.Manifest, delivered string) (context.Context, func(error)) {
	if f.o.Tracer == nil {
		return ctx, func(error) {}
	}
	return f.o.Tracer.Continue(ctx, name, sqsqueue.TraceHeader(m.TraceID, delivered),
		map[string]any{"batch_id": m.BatchID, "shard": m.Shard})
}

// sendCtx returns ctx carrying the trace header that manifests sent from it
// hand on.
func (f *Functions) sendCtx(ctx context.Context) context.Context {
	return sqsqueue.WithTraceHeader(ctx, f.traceHeader(ctx))
}

// NewTraceID returns a new X-Ray trace id (1-<epoch seconds, 8 hex>-<96
// random bits, 24 hex>): the splitter's when its invocation carries none
// (importctl dev, tests), so failure records and log lines of one upload
// still share an id.
func NewTraceID(now time.Time) string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return fmt.Sprintf("1-%08x-%s", uint32(now.Unix()), hex.EncodeToString(b[:]))
}

// Functions holds the ports and the engine built once per container.
type Functions struct {
	p      Ports
	o      Options
	worker *shard.Worker
	log    *slog.Logger
}

// New builds the handlers over ports.
func New(p Ports, o Options) *Functions {
	if o.Profile == nil {
		o.Profile = profile.Default()
	}
	if o.CheckpointEvery <= 0 {
		o.CheckpointEvery = 1000
	}
	if o.Owner == "" {
		o.Owner = "lambda"
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	var tracer shard.Tracer
	if o.Tracer != nil {
		tracer = o.Tracer
	}
	var metrics shard.Metrics
	if o.Metrics != nil {
		metrics = o.Metrics
	}
	w := shard.New(shard.Deps{Source: p.Source, Store: p.Store, Sink: p.Sink, Log: o.Log, Now: o.Now, Tracer: tracer, Metrics: metrics},
		shard.Options{Owner: o.Owner, LeaseTTL: o.LeaseTTL, CheckpointEvery: o.CheckpointEvery, Pool: o.Pool,
			MaxRecord: o.Split.MaxRecord, DeadlineMargin: o.DeadlineMargin,
			// The breaker makes a worker back off (Status Backoff: the message
			// is returned for later) instead of failing healthy rows.
			BreakerFailures: 5})
	return &Functions{p: p, o: o, worker: w, log: o.Log}
}

// BatchID derives the batch of one upload from its bucket, key and version
// (or, on an unversioned bucket, the event's sequencer; failing both, the
// ETag): duplicate S3 events of one upload name one batch (invariant 1).
func BatchID(bucket, key, version, sequencer, etag string) string {
	tag := "v:" + version
	switch {
	case version != "":
	case sequencer != "":
		tag = "s:" + sequencer
	default:
		tag = "e:" + strings.Trim(etag, `"`)
	}
	h := sha256.Sum256([]byte(bucket + "\n" + key + "\n" + tag))
	return "b-" + hex.EncodeToString(h[:10])
}

// Splitter handles S3 ObjectCreated events: each upload under incoming/
// becomes one batch with its shards, and a manifest per shard on the queue.
// An error makes Lambda retry the event; a retried or duplicated event
// finishes the same batch (no second batch, no duplicate shards).
func (f *Functions) Splitter(ctx context.Context, ev events.S3Event) error {
	var errs []error
	for _, r := range ev.Records {
		if err := f.split(ctx, r); err != nil {
			f.log.Error("split failed", "bucket", r.S3.Bucket.Name, "key", r.S3.Object.Key, "error", err)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// uploadOrder is the upload order of the event's object (state.OrderAt of
// the S3 event time, ties broken by batch id), or 0 when the event has no
// time (the state store then uses the registration time).
func uploadOrder(r events.S3EventRecord, id string) int64 {
	if r.EventTime.IsZero() {
		return 0
	}
	return state.OrderAt(r.EventTime, id)
}

func (f *Functions) split(ctx context.Context, r events.S3EventRecord) error {
	if !strings.HasPrefix(r.EventName, "ObjectCreated") && !strings.HasPrefix(r.EventName, "s3:ObjectCreated") {
		return nil
	}
	key, err := url.QueryUnescape(r.S3.Object.Key) // event keys are URL-encoded, spaces as '+'
	if err != nil {
		return fmt.Errorf("object key %q: %w", r.S3.Object.Key, err)
	}
	bucket := r.S3.Bucket.Name
	if !strings.HasPrefix(key, IncomingPrefix) {
		f.log.Info("not under "+IncomingPrefix+", ignored", "bucket", bucket, "key", key)
		return nil
	}
	o := r.S3.Object
	id := BatchID(bucket, key, o.VersionID, o.Sequencer, o.ETag)
	// The upload's trace: the invocation's (S3 -> Lambda), else a new one.
	traceID := sqsqueue.TraceID(f.traceHeader(ctx))
	if !sqsqueue.ValidTraceID(traceID) {
		traceID = NewTraceID(f.o.Now())
	}
	log := f.log.With("batch_id", id, "bucket", bucket, "key", key)

	// A duplicate or retried event: the batch exists. Send the manifests of
	// its unfinished shards again (a split that crashed after registering
	// sent none), without reading the object again.
	if b, err := f.p.Store.GetBatch(ctx, id); err == nil {
		n, err := f.resend(ctx, b)
		log.Info("batch exists", "status", b.Status, "manifests_sent", n, "trace_id", b.TraceID)
		return err
	} else if !errors.Is(err, state.ErrNotFound) {
		return fmt.Errorf("get batch %s: %w", id, err)
	}

	log = log.With("trace_id", traceID)
	uri := s3store.URI(bucket, key)
	info, err := f.p.Source.Stat(ctx, uri)
	if err != nil {
		return fmt.Errorf("head %s: %w", uri, err)
	}
	if o.VersionID != "" && info.Version != "" && info.Version != o.VersionID {
		// A newer upload replaced this one before it was split; its own
		// event imports it. Never import a version other than the event's.
		log.Warn("object was replaced before the split; this upload is not imported", "event_version", o.VersionID, "current_version", info.Version)
		return nil
	}
	v, err := f.o.Profile.Compile()
	if err != nil {
		return err
	}
	opts := f.o.Split
	if f.p.Staging != nil {
		opts.Staging = &split.Staging{Stager: f.p.Staging, BatchID: id}
	}
	sctx, end := f.span(ctx, "split")
	plan, err := split.PlanSource(sctx, f.p.Source, info, v, opts)
	end(err)
	if err != nil {
		return fmt.Errorf("split %s: %w", uri, err)
	}
	rctx, end := f.span(ctx, "register")
	out, err := split.Register(f.sendCtx(rctx), f.p.Store, f.p.Queue, split.Request{BatchID: id, Plan: plan, Profile: f.o.Profile,
		TraceID: traceID, Now: f.o.Now().UTC(), Order: uploadOrder(r, id)})
	end(err)
	if err != nil {
		return err
	}
	log.Info("batch registered", "status", out.Batch.Status, "created", out.Created, "shards", out.Batch.Shards,
		"rows_total", out.Batch.Counts.Total, "manifests_sent", out.Sent, "message", out.Batch.Message)
	return nil
}

// resend sends the manifests of a running batch's unfinished shards.
func (f *Functions) resend(ctx context.Context, b state.Batch) (int, error) {
	if b.Status.Finished() {
		return 0, nil
	}
	shards, err := f.p.Store.ListShards(ctx, b.ID)
	if err != nil {
		return 0, fmt.Errorf("list shards of %s: %w", b.ID, err)
	}
	var ms []queue.Manifest
	for _, s := range shards {
		if !s.Status.Finished() {
			ms = append(ms, split.Manifest(b, s, b.TraceID))
		}
	}
	if err := f.p.Queue.Send(f.sendCtx(ctx), 0, ms...); err != nil {
		return 0, fmt.Errorf("send %d manifests of %s: %w", len(ms), b.ID, err)
	}
	return len(ms), nil
}

// errLeased returns a delivery whose shard another live worker holds: the
// message comes back after the visibility timeout, when that worker has
// finished (the delivery is then a no-op) or died (its lease has expired).
var errLeased = errors.New("shard is leased by a live worker; delivery returned for later")

// errBackoff returns a delivery whose worker backed off because the product
// store keeps failing (the circuit breaker is open).
// It is a CircuitOpen ImportError, so the triage log records that reason.
var errBackoff error = failure.New(failure.CircuitOpen, "", "the product store keeps failing (circuit open); delivery returned for later")

// Worker handles a batch of shard manifests from the shard queue and
// reports the ones to deliver again (partial batch response). A duplicate
// delivery of a finished shard is a no-op; a shard stopped by the deadline
// is handed on as a continuation manifest.
func (f *Functions) Worker(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	var resp events.SQSEventResponse
	for _, r := range ev.Records {
		msg, err := sqsqueue.FromEvent(r)
		if err != nil {
			err = fmt.Errorf("unreadable manifest: %w", err)
		} else {
			err = f.work(ctx, r, msg)
		}
		if err != nil {
			level := slog.LevelError
			if errors.Is(err, errLeased) || errors.Is(err, errBackoff) {
				level = slog.LevelInfo
			}
			m := msg.Manifest
			f.log.Log(ctx, level, "shard delivery not done", "message_id", r.MessageId, "batch_id", m.BatchID, "shard", m.Shard,
				"trace_id", m.TraceID, "error", err, "reason", failure.ReasonOf(err))
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
		}
	}
	return resp, nil
}

func (f *Functions) work(ctx context.Context, r events.SQSMessage, msg queue.Message) (err error) {
	m := msg.Manifest
	ctx, end := f.continueTrace(ctx, "shard-worker", m, r.Attributes[attrTraceHeader])
	defer func() {
		if err != nil && !errors.Is(err, errLeased) {
			f.recordError(ctx, msg, err)
		}
		if errors.Is(err, errLeased) || errors.Is(err, errBackoff) {
			end(nil) // returned for later: not a fault of this delivery
		} else {
			end(err)
		}
	}()
	log := f.log.With("batch_id", m.BatchID, "shard", m.Shard, "trace_id", m.TraceID)
	res, err := f.worker.Process(ctx, m)
	if err != nil {
		return fmt.Errorf("shard %d of %s: %w", m.Shard, m.BatchID, err)
	}
	log.Info("shard delivery", "status", res.Status, "rows_done", res.Counts.Done(), "rows_failed", res.Counts.Failed, "receive_count", msg.ReceiveCount)
	switch {
	case res.Abort != "":
		return f.finalize(ctx, m.BatchID, res.Abort)
	case res.Status == shard.Leased:
		return errLeased
	case res.Status == shard.Backoff:
		// The sink keeps failing: nothing was turned into failures; the
		// message comes back after the visibility timeout.
		return errBackoff
	case res.Status == shard.Partial:
		if err := f.p.Queue.Send(f.sendCtx(ctx), 0, m); err != nil {
			return fmt.Errorf("hand on shard %d of %s: %w", m.Shard, m.BatchID, err)
		}
	case res.Status == shard.Done && res.Last:
		return f.finalize(ctx, m.BatchID, "")
	case res.Status == shard.AlreadyDone:
		// A redelivery after a crash between the last FinishShard and
		// finalization: the batch has every shard done but is still running.
		b, err := f.p.Store.GetBatch(ctx, m.BatchID)
		if err != nil {
			return fmt.Errorf("get batch %s: %w", m.BatchID, err)
		}
		if !b.Status.Finished() && b.ShardsDone == b.Shards {
			return f.finalize(ctx, m.BatchID, "")
		}
	}
	return nil
}

func (f *Functions) finalize(ctx context.Context, id, abort string) error {
	fin := finalize.Deps{Store: f.p.Store, Reports: f.p.Reports, Staging: f.p.Staging, Log: f.log, Now: f.o.Now,
		Lineage: lineage.Resolver{Source: f.p.Source, Store: f.p.Store, MaxRecord: f.o.Split.MaxRecord, Now: f.o.Now}}
	b, err := finalize.Finalize(ctx, fin, id, abort)
	if err != nil {
		return fmt.Errorf("finalize %s: %w", id, err)
	}
	f.log.Info("batch finished", "batch_id", id, "trace_id", b.TraceID, "status", b.Status, "rows_total", b.Counts.Total,
		"rows_imported", b.Counts.Imported, "rows_superseded", b.Counts.Superseded, "rows_failed", b.Counts.Failed, "rows_skipped", b.Counts.Skipped,
		"report", b.Report, "message", b.Message)
	return nil
}

func (f *Functions) shard(ctx context.Context, batchID string, index int) (state.Shard, error) {
	shards, err := f.p.Store.ListShards(ctx, batchID)
	if err != nil {
		return state.Shard{}, err
	}
	for _, s := range shards {
		if s.Index == index {
			return s, nil
		}
	}
	return state.Shard{}, state.ErrNotFound
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		s = s[:max] + "..."
	}
	return s
}
