// Package handler is the Lambda side of the engine: the splitter (S3
// ObjectCreated), shard-worker (SQS, partial batch responses) and triage
// (the shard DLQ) handlers. They decode their events, continue the
// manifest's trace, and call internal/pipeline, which the embedded mode
// runs too; they map its outcomes to Lambda's retries and partial batch
// responses. The AWS-specific parts are the events and the adapters in
// Ports.
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

	"github.com/catalog-import/catalog-import/internal/aws/s3store"
	"github.com/catalog-import/catalog-import/internal/aws/sqsqueue"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/pipeline"
	"github.com/catalog-import/catalog-import/internal/profile"
	"github.com/catalog-import/catalog-import/internal/queue"
	"github.com/catalog-import/catalog-import/internal/shard"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/state"
	"github.com/catalog-import/catalog-import/internal/triage"
)

// Ports are the adapters the handlers run on (the pipeline's).
type Ports = pipeline.Ports

// Notifier sends an operator notification (pipeline.Notifier).
type Notifier = pipeline.Notifier

// Metrics is the metrics port of the functions (internal/aws/emf): the
// worker's, and triage's decisions (pipeline.Metrics).
type Metrics = pipeline.Metrics

// Options tune the engine inside the functions. Zero values take defaults.
type Options struct {
	Profile *profile.Profile // default: the built-in default profile
	Split   split.Options    // shard size
	// Pool is the goroutines parsing and validating one shard (default
	// GOMAXPROCS) and, in FromClients, the products sink's puts in flight
	// (dynamocatalog.Options.InFlight; default 16).
	Pool            int
	CheckpointEvery int // rows per checkpoint (default 1000)
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
	// Owner is the lease owner prefix (default "lambda"). New appends a
	// random id made once per Functions, that is once per Lambda sandbox:
	// two sandboxes never claim as the same owner, so a duplicate delivery
	// of a shard that another sandbox is working on gets Leased instead of
	// taking its live lease over (state.Store.Claim: a claim by the same
	// owner is the holder itself coming back).
	Owner string
	Log   *slog.Logger
	Now   func() time.Time
	// Tracer traces the functions (X-Ray in Lambda). Nil: no spans; trace
	// ids still travel with the manifests into the failure records.
	Tracer Tracer
	// Metrics receives the functions' metrics (EMF lines in Lambda). Nil:
	// none.
	Metrics Metrics
	// WriteRate caps the rows per second this sandbox's worker writes to
	// the products table (WRITE_RATE; 0: unlimited). The rate halves when
	// DynamoDB throttles and recovers slowly (shard.AdaptiveLimiter), so a
	// provisioned table's budget is MaximumConcurrency x WriteRate.
	WriteRate float64
	// Limiter is the worker's write-rate limiter; nil: one of WriteRate
	// (FromClients builds it, and has the products sink report throttling
	// to it).
	Limiter *shard.AdaptiveLimiter
}

// Functions holds the pipeline built once per container.
type Functions struct {
	p     *pipeline.Pipeline
	ports Ports // the pipeline's, the shard queue traced
	o     Options
	log   *slog.Logger // adds the invocation's aws_request_id to every line
	inv   *invocations // the invocations running
}

// New builds the handlers over ports.
func New(p Ports, o Options) *Functions {
	if o.CheckpointEvery <= 0 {
		o.CheckpointEvery = 1000
	}
	if o.Owner == "" {
		o.Owner = "lambda"
	}
	o.Owner += "-" + sandboxID()
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	inv := &invocations{}
	o.Log = slog.New(requestIDHandler{Handler: o.Log.Handler(), inv: inv})
	if o.Limiter == nil {
		o.Limiter = shard.NewAdaptiveLimiter(o.WriteRate, 0)
	}
	o.Limiter.WithLog(o.Log)
	f := &Functions{o: o, log: o.Log, inv: inv}
	if p.Queue != nil {
		p.Queue = tracedQueue{Queue: p.Queue, f: f}
	}
	f.ports = p
	var tracer shard.Tracer
	if o.Tracer != nil {
		tracer = o.Tracer
	}
	f.p = pipeline.New(p, pipeline.Options{Profile: o.Profile, Split: o.Split, Triage: o.Triage,
		StackName: o.StackName, Log: o.Log, Now: o.Now, Tracer: tracer, Metrics: o.Metrics,
		HandOnFinalization: true, // the splitter's role and timeout are not a finalization's (decision 24)
		Worker: shard.Options{Owner: o.Owner, LeaseTTL: o.LeaseTTL, CheckpointEvery: o.CheckpointEvery, Pool: o.Pool,
			MaxRecord: o.Split.MaxRecord, DeadlineMargin: o.DeadlineMargin, Limiter: o.Limiter,
			// The breaker makes a worker back off (Status Backoff: the message
			// is returned for later) instead of failing healthy rows.
			BreakerFailures: 5}})
	return f
}

// sandboxID is a random id for one Functions (one Lambda sandbox): 16 hex
// digits from crypto/rand.
func sandboxID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// Limiter is the worker's write-rate limiter (nil: unlimited).
func (f *Functions) Limiter() *shard.AdaptiveLimiter { return f.o.Limiter }

// Owner is the lease owner this Functions claims shards as: Options.Owner
// and the sandbox's random id.
func (f *Functions) Owner() string { return f.o.Owner }

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

// Cancel ends batch id for good: CANCELLED, with what was imported before
// the cancel (see pipeline.Pipeline.Cancel). It is `importctl cancel
// --stack`: workers stop at their next checkpoint and queued manifests are
// acknowledged as no-ops.
func (f *Functions) Cancel(ctx context.Context, id, message string) (state.Batch, error) {
	return f.p.Cancel(ctx, id, message)
}

// Splitter handles S3 ObjectCreated events: each upload under incoming/
// becomes one batch with its shards, and a manifest per shard on the queue,
// under the profile the upload picks (ProfileOf).
// An error makes Lambda retry the event; a retried or duplicated event
// finishes the same batch (no second batch, no duplicate shards).
func (f *Functions) Splitter(ctx context.Context, ev events.S3Event) error {
	defer f.inv.start(ctx)()
	var errs []error
	for _, r := range ev.Records {
		if err := f.split(ctx, r); err != nil {
			f.log.ErrorContext(ctx, "split failed", "bucket", r.S3.Bucket.Name, "key", r.S3.Object.Key, "error", err)
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
	if !strings.HasPrefix(key, s3store.IncomingPrefix) {
		f.log.InfoContext(ctx, "not under "+s3store.IncomingPrefix+", ignored", "bucket", bucket, "key", key)
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
	if b, err := f.ports.Store.GetBatch(ctx, id); err == nil {
		n, err := f.p.Resume(ctx, b, nil)
		log.InfoContext(ctx, "batch exists", "status", b.Status, "manifests_sent", n, "trace_id", b.TraceID)
		return err
	} else if !errors.Is(err, state.ErrNotFound) {
		return err // the store names the batch
	}

	log = log.With("trace_id", traceID)
	uri := s3store.URI(bucket, key)
	info, err := f.ports.Source.Stat(ctx, uri)
	if err != nil {
		return err // the source names the object
	}
	if o.VersionID != "" && info.Version != "" && info.Version != o.VersionID {
		// A newer upload replaced this one before it was split; its own
		// event imports it. Never import a version other than the event's.
		log.WarnContext(ctx, "object was replaced before the split; this upload is not imported", "event_version", o.VersionID, "current_version", info.Version)
		return nil
	}
	_, out, err := f.p.Split(ctx, pipeline.SplitRequest{Info: info, BatchID: id, TraceID: traceID, Order: uploadOrder(r, id),
		Profile: ProfileOf(key, info.Metadata)})
	if err != nil {
		return fmt.Errorf("split: %w", err) // err names the object or the batch
	}
	log.InfoContext(ctx, "batch registered", "status", out.Batch.Status, "rule_version", out.Batch.RuleVersion, "created", out.Created, "shards", out.Batch.Shards,
		"rows_total", out.Batch.Counts.Total, "manifests_sent", out.Sent, "message", out.Batch.Message)
	return nil
}

// ProfileMetadata is the user metadata key (x-amz-meta-profile) by which
// an upload names its profile.
const ProfileMetadata = "profile"

// ProfileOf says which profile the upload at key (with the object's user
// metadata meta) runs under. The metadata's profile, when set, wins, and a
// name that names no stored profile rejects the upload. Else the first
// folder under incoming/ (incoming/stock/feed.csv: "stock") names a
// profile when one of that name is stored, and otherwise the upload runs
// under the function's profile (the log says so). A file directly under
// incoming/, and incoming/retries/ (importctl retry-failures), name none.
func ProfileOf(key string, meta map[string]string) pipeline.ProfileChoice {
	if name := strings.TrimSpace(meta[ProfileMetadata]); name != "" {
		return pipeline.ProfileChoice{Name: name, From: "x-amz-meta-" + ProfileMetadata}
	}
	rest := strings.TrimPrefix(key, s3store.IncomingPrefix)
	folder, _, ok := strings.Cut(rest, "/")
	if !ok || folder == "" || folder == profile.ReservedName {
		return pipeline.ProfileChoice{}
	}
	return pipeline.ProfileChoice{Name: folder, From: "its folder " + s3store.IncomingPrefix + folder + "/", Optional: true}
}

// Worker handles a batch of shard manifests from the shard queue and
// reports the ones to deliver again (partial batch response). A duplicate
// delivery of a finished shard is a no-op; a shard stopped by the deadline
// is handed on as a continuation manifest.
func (f *Functions) Worker(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	defer f.inv.start(ctx)()
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
			if errors.Is(err, pipeline.ErrLeased) || errors.Is(err, pipeline.ErrBackoff) {
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

// work delivers one manifest; an error returns the message for later.
func (f *Functions) work(ctx context.Context, r events.SQSMessage, msg queue.Message) (err error) {
	m := msg.Manifest
	ctx, end := f.continueTrace(ctx, "shard-worker", m, r.Attributes[attrTraceHeader])
	defer func() {
		if err != nil && !errors.Is(err, pipeline.ErrLeased) {
			f.p.RecordFailure(ctx, msg, err)
		}
		if errors.Is(err, pipeline.ErrLeased) || errors.Is(err, pipeline.ErrBackoff) {
			end(nil) // returned for later: not a fault of this delivery
		} else {
			end(err)
		}
	}()
	out, err := f.p.Deliver(ctx, msg)
	if res := out.Result; res.Status != "" { // the worker got through, whatever came after
		f.log.InfoContext(ctx, "shard delivery", "batch_id", m.BatchID, "shard", m.Shard, "trace_id", m.TraceID,
			"status", res.Status, "rows_done", res.Counts.Done(), "rows_failed", res.Counts.Failed, "receive_count", msg.ReceiveCount)
	}
	if err != nil {
		return err
	}
	switch out.Settle {
	case pipeline.Retry:
		// The message comes back after the visibility timeout.
		return out.Err
	case pipeline.HandOn:
		if err := f.ports.Queue.Send(ctx, 0, m); err != nil {
			return fmt.Errorf("hand on shard %d of %s: %w", m.Shard, m.BatchID, err)
		}
	}
	return nil
}

// Triage handles messages that reached the shard DLQ: each is decided on
// and the decision applied by pipeline.Triage, in the manifest's trace. A
// message that stays in the DLQ (returned for later, or parked for
// redrive) is a batch item failure.
func (f *Functions) Triage(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	defer f.inv.start(ctx)()
	var resp events.SQSEventResponse
	for _, r := range ev.Records {
		if f.triage(ctx, r) {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
		}
	}
	return resp, nil
}

// triage decides on one message and applies the decision. It reports
// whether the message stays in the DLQ.
func (f *Functions) triage(ctx context.Context, r events.SQSMessage) bool {
	msg, merr := sqsqueue.FromEvent(r)
	ctx, end := f.continueTrace(ctx, "triage", msg.Manifest, r.Attributes[attrTraceHeader])
	defer end(nil)
	return f.p.Triage(ctx, pipeline.Dead{Message: msg, Body: r.Body, ManifestError: merr})
}
