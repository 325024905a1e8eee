// Package shard processes one shard of a batch: it claims the shard (lease +
// fencing token), streams its byte range from the last checkpoint, parses and
// validates rows in a bounded goroutine pool, writes products, records every
// failed row, and checkpoints in order after each chunk.
//
// Invariants kept here: 2 (a shard is processed only under a live lease, and
// every checkpoint carries the lease's epoch), 3 (a checkpoint is written only
// after the chunk's products and failure records are durable, and chunks are
// committed in file order, so a checkpoint always covers a contiguous prefix),
// 4 (products and failure records are keyed, so replaying a chunk after a
// crash changes nothing), 7 (the source is read with its ETag; a changed
// object fails with SourceChanged; a shard with block checksums verifies
// each block before its chunk is committed, see read.go), 8 (a worker near its deadline stops taking
// chunks, commits what it has and reports the shard unfinished) and 9 (the
// pool and the chunks in flight are bounded, and so are retries: see
// resilience.go for the retry budget, the rate limiter and the circuit
// breaker in front of the sink).
package shard

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/catalog-import/catalog-import/internal/catalog"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/object"
	"github.com/catalog-import/catalog-import/internal/profile"
	"github.com/catalog-import/catalog-import/internal/queue"
	"github.com/catalog-import/catalog-import/internal/state"
)

// Store is the part of the state store a worker uses.
type Store interface {
	GetBatch(ctx context.Context, id string) (state.Batch, error)
	ListShards(ctx context.Context, batchID string) ([]state.Shard, error)
	Claim(ctx context.Context, batchID string, shard int, owner string, ttl time.Duration, now time.Time) (state.Lease, state.Shard, error)
	Checkpoint(ctx context.Context, lease state.Lease, cp state.Checkpoint, failures []failure.Record, until time.Time) error
	FinishShard(ctx context.Context, lease state.Lease, status state.ShardStatus, cp state.Checkpoint, message string) (state.Batch, error)
	PutFailures(ctx context.Context, records []failure.Record) error
	RecordCheck(ctx context.Context, lease state.Lease, c state.Check, failures []failure.Record) (state.Batch, error)
}

// Preparer is a sink that can do part of a Write ahead, off the single
// writer's path (decision 28): the worker calls Prepare in its validation
// pool for each chunk's products, and writes a group of chunks with
// WritePrepared, which must store and answer exactly as Write(ctx, mode,
// products) would. The embedded SQLite sink is one.
type Preparer interface {
	// Prepare returns the sink's work on products that does not depend on
	// what the catalog holds (nil: none). It is called concurrently.
	Prepare(mode catalog.WriteMode, products []catalog.Product) any
	// WritePrepared is Write given parts, Prepare's results for
	// consecutive runs of products, in order.
	WritePrepared(ctx context.Context, mode catalog.WriteMode, products []catalog.Product, parts []any) ([]catalog.Outcome, error)
}

// Options tunes a worker. Zero values take the defaults.
type Options struct {
	Owner    string        // lease owner name (default "worker")
	LeaseTTL time.Duration // lease length, renewed at every checkpoint (default 2m)
	// LeaseMargin: a worker writes products and failure records only while
	// its lease has at least this long to run by its clock; closer to the
	// lease's end it first renews the lease (a checkpoint that moves nothing),
	// and stops (Fenced) if a newer owner holds the shard. It should exceed
	// the longest sink write plus the clock skew between workers (default
	// LeaseTTL/4).
	LeaseMargin     time.Duration
	CheckpointEvery int // rows per chunk and per checkpoint (default 100)
	Pool            int // goroutines parsing and validating (default GOMAXPROCS)
	MaxRecord       int // largest record read whole (default 1 MiB)
	// DeadlineMargin: when ctx has a deadline closer than this, the worker
	// stops taking new chunks and reports the shard unfinished (default 10s).
	DeadlineMargin time.Duration

	// Retries of infrastructure-transient errors from the sink and the store
	// (see resilience.go).
	RetryBudget int           // retries per Process call (default 20; negative: none)
	BaseDelay   time.Duration // backoff ceiling of the first retry (default 50ms)
	MaxDelay    time.Duration // largest backoff ceiling (default 5s)

	// Rate limit in front of the sink, in rows per second (0: unlimited),
	// shared by the worker's Process calls; SinkBurst defaults to SinkRate
	// rounded up. Limiter, when set, is used instead (one limiter that the
	// sink also tells about throttling; SinkRate and SinkBurst are then
	// ignored).
	SinkRate  float64
	SinkBurst int
	Limiter   *AdaptiveLimiter

	// Circuit breaker around sink writes: it opens after BreakerFailures
	// consecutive transient failures and lets a trial write through after
	// BreakerTimeout (default 30s). BreakerFailures 0 means no breaker: only
	// a caller that handles Status Backoff should turn it on (5 is a good
	// value).
	BreakerFailures int
	BreakerTimeout  time.Duration
}

func (o Options) withDefaults() Options {
	if o.Owner == "" {
		o.Owner = "worker"
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 2 * time.Minute
	}
	if o.LeaseMargin <= 0 || o.LeaseMargin >= o.LeaseTTL {
		o.LeaseMargin = o.LeaseTTL / 4
	}
	if o.CheckpointEvery <= 0 {
		o.CheckpointEvery = 100
	}
	if o.Pool <= 0 {
		o.Pool = runtime.GOMAXPROCS(0)
	}
	if o.MaxRecord <= 0 {
		o.MaxRecord = 1 << 20
	}
	if o.DeadlineMargin <= 0 {
		o.DeadlineMargin = 10 * time.Second
	}
	switch {
	case o.RetryBudget == 0:
		o.RetryBudget = 20
	case o.RetryBudget < 0:
		o.RetryBudget = 0
	}
	if o.BaseDelay <= 0 {
		o.BaseDelay = 50 * time.Millisecond
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = 5 * time.Second
	}
	if o.BreakerFailures < 0 {
		o.BreakerFailures = 0
	}
	if o.BreakerTimeout <= 0 {
		o.BreakerTimeout = 30 * time.Second
	}
	return o
}

// Worker processes shard manifests. It is safe for concurrent use: run
// several Process calls at once to work on several shards.
type Worker struct {
	src   object.Source
	store Store
	sink  catalog.Sink
	prep  Preparer // sink, when it is one (nil otherwise)
	now   func() time.Time
	log   *slog.Logger
	opt   Options

	tracer  Tracer  // nil: no spans
	metrics Metrics // never nil (noMetrics)

	limiter *AdaptiveLimiter                             // nil: unlimited
	breaker *gobreaker.CircuitBreaker[[]catalog.Outcome] // nil: none

	mu         sync.Mutex
	validators map[string]*compiled   // by rule version
	active     map[activeKey]struct{} // shards a Process call of this worker holds
	// passed holds the batches whose check phase this worker saw passed,
	// with their upload order (a passed check never changes): their
	// write manifests need no GetBatch, which on DynamoDB also sums the
	// batch's shards (decision 30). At most maxPassed entries.
	passed map[string]int64
}

// maxPassed bounds Worker.passed (it starts over when full).
const maxPassed = 256

// activeKey names a shard a Process call is working on.
type activeKey struct {
	batch string
	shard int
}

type compiled struct {
	p *profile.Profile
	v *profile.Validator
}

// Deps are a worker's ports.
type Deps struct {
	Source object.Source
	Store  Store
	Sink   catalog.Sink
	Now    func() time.Time // default time.Now
	Log    *slog.Logger     // default: discard
	// Tracer and Metrics observe the worker (see observe.go); nil: none.
	Tracer  Tracer
	Metrics Metrics
}

// New returns a worker.
func New(d Deps, o Options) *Worker {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Metrics == nil {
		d.Metrics = noMetrics{}
	}
	w := &Worker{src: d.Source, store: d.Store, sink: d.Sink, now: d.Now, log: d.Log, opt: o.withDefaults(),
		tracer: d.Tracer, metrics: d.Metrics, validators: map[string]*compiled{}, active: map[activeKey]struct{}{}, passed: map[string]int64{}}
	w.prep, _ = d.Sink.(Preparer)
	w.limiter = w.opt.Limiter
	if w.limiter == nil {
		w.limiter = NewAdaptiveLimiter(w.opt.SinkRate, w.opt.SinkBurst).WithLog(d.Log)
	}
	w.breaker = newBreaker(w.opt, w)
	return w
}

// Limiter returns the worker's sink rate limiter (nil when unlimited).
func (w *Worker) Limiter() *AdaptiveLimiter { return w.limiter }

// Status is how a Process call ended.
type Status string

// Process outcomes. Only Done, Partial and Backoff may have done work; the
// others are no-ops that the caller acknowledges (the message was a duplicate
// or is moot).
const (
	Done    Status = "done"    // the shard is finished
	Partial Status = "partial" // stopped early (deadline); re-deliver to continue
	// Backoff: infrastructure is failing (the sink's circuit breaker is
	// open); deliver this shard again later. No row was turned into a failure
	// for it and the checkpoint covers what is durable.
	Backoff       Status = "backoff"
	AlreadyDone   Status = "already-done"   // the shard was finished before
	Leased        Status = "leased"         // another live worker owns it
	Fenced        Status = "fenced"         // lost the lease while working; the new owner continues
	BatchFinished Status = "batch-finished" // the batch is finished (e.g. aborted, cancelled) or SUSPENDED: no shard write is taken
	// Checked: the check phase's outcome of the shard is recorded
	// (Result.Batch is the batch after it; Last: every shard is checked and
	// the caller decides the batch).
	Checked Status = "checked"
	// AlreadyChecked: the shard's check was recorded before (a
	// redelivery); Result.Batch and Last as for Checked.
	AlreadyChecked Status = "already-checked"
)

// Result reports one Process call.
type Result struct {
	Status Status
	Counts state.Counts // the shard's counts at its last checkpoint
	Batch  state.Batch  // the batch after FinishShard (Status Done)
	// Last is true when this call finished the batch's last shard: the caller
	// finalizes the batch. For Checked and AlreadyChecked: every shard of
	// the batch is checked, and the caller decides (abort or write).
	Last bool
	// Abort is set when the batch crossed the profile's max_error_ratio: the
	// caller finalizes the batch as ABORTED with this message.
	Abort string
	// Retries is how many transient errors this call retried in-process.
	Retries int
}

// Process works on one shard until it is finished, the deadline nears, the
// sink's circuit breaker opens (Status Backoff), or an error stops it. Errors
// are *failure.ImportError (wrapped); the message should then be retried, and
// the next attempt resumes from the checkpoint. Transient errors are retried
// in-process first, within Options.RetryBudget; when it is spent the error
// carries the last transient reason.
func (w *Worker) Process(ctx context.Context, m queue.Manifest) (Result, error) {
	if m.Version != queue.ManifestVersion {
		return Result{}, failure.New(failure.SchemaMismatch, "", "manifest version %d, this worker reads %d", m.Version, queue.ManifestVersion)
	}
	c, err := w.validator(ctx, m.BatchID, m.RuleVersion)
	if err != nil {
		if errors.Is(err, state.ErrBatchFinished) {
			return Result{Status: BatchFinished}, nil
		}
		return Result{}, err
	}
	checked := false
	switch m.Phase {
	case queue.PhaseCheck:
		return w.check(ctx, m, c)
	case queue.PhaseWrite:
		// Decision 20: write only after every shard passed the check.
		pass, err := w.checkPassed(ctx, m, c)
		switch {
		case err != nil:
			return Result{}, err
		case pass.finished:
			return Result{Status: BatchFinished}, nil
		case pass.abort != "":
			return Result{Abort: pass.abort}, nil
		}
		checked = true
		if m.Order == 0 {
			m.Order = pass.order
		}
	}
	if m.Order == 0 {
		// A manifest sent before batches had an upload order: the batch's.
		b, err := w.store.GetBatch(ctx, m.BatchID)
		if err != nil {
			return Result{}, err // the store names the batch
		}
		m.Order = b.Order
	}
	if w.breaker != nil && w.breaker.State() == gobreaker.StateOpen {
		return Result{Status: Backoff}, nil // claim nothing: the sink is failing
	}
	// One owner, one Process call per shard at a time: a claim by the same
	// owner takes its live lease over (the holder coming back after its own
	// crash), so a second call of this worker for a shard it is working on
	// (a duplicate manifest delivered to another goroutine) is Leased here.
	if !w.enter(m.BatchID, m.Shard) {
		return Result{Status: Leased}, nil
	}
	defer w.leave(m.BatchID, m.Shard)
	started := time.Now()
	cctx, end := w.span(ctx, SpanClaim)
	lease, sh, err := w.store.Claim(cctx, m.BatchID, m.Shard, w.opt.Owner, w.opt.LeaseTTL, w.now())
	end(claimErr(err))
	switch {
	case errors.Is(err, state.ErrShardFinished):
		return Result{Status: AlreadyDone}, nil
	case errors.Is(err, state.ErrLeased):
		return Result{Status: Leased}, nil
	case errors.Is(err, state.ErrBatchFinished), errors.Is(err, state.ErrBatchSuspended):
		return Result{Status: BatchFinished}, nil
	case err != nil:
		return Result{}, err // the store names the shard
	}
	log := w.log.With("batch_id", m.BatchID, "shard", m.Shard)
	if m.TraceID != "" {
		log = log.With("trace_id", m.TraceID)
	}
	run := &run{w: w, m: m, lease: lease, until: lease.Until, shard: sh, cp: sh.Checkpoint, p: c.p, v: c.v, log: log, lastCP: started, checked: checked}
	res, err := run.process(ctx)
	res.Retries = run.retries
	w.metrics.Processed(ctx, m, res, err, time.Since(started))
	return res, err
}

// enter marks shard of batch as worked on by a Process call of w; it
// reports false when another call holds it.
func (w *Worker) enter(batch string, shard int) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	k := activeKey{batch, shard}
	if _, busy := w.active[k]; busy {
		return false
	}
	w.active[k] = struct{}{}
	return true
}

// leave ends what enter began.
func (w *Worker) leave(batch string, shard int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.active, activeKey{batch, shard})
}

// claimErr is the error a claim's span ends with: a shard that is leased or
// finished is an answer, not a failure.
func claimErr(err error) error {
	if errors.Is(err, state.ErrLeased) || errors.Is(err, state.ErrShardFinished) || errors.Is(err, state.ErrBatchFinished) ||
		errors.Is(err, state.ErrBatchSuspended) {
		return nil
	}
	return err
}

// passedCheck is what a write manifest learns of its batch's check phase.
type passedCheck struct {
	order    int64  // the batch's upload order
	finished bool   // the batch is finished: nothing to write
	abort    string // the batch is over its budget: abort it
}

// checkPassed tells whether write manifest m's batch passed its check
// phase, with its upload order. A passed check is remembered
// (Worker.passed: a passed check never changes), so the worker reads the
// batch once per batch, not once per write manifest; a batch finished
// since is then found by Claim.
func (w *Worker) checkPassed(ctx context.Context, m queue.Manifest, c *compiled) (passedCheck, error) {
	w.mu.Lock()
	order, ok := w.passed[m.BatchID]
	w.mu.Unlock()
	if ok {
		return passedCheck{order: order}, nil
	}
	b, err := w.store.GetBatch(ctx, m.BatchID)
	if err != nil {
		return passedCheck{}, err // the store names the batch
	}
	if b.Status.Finished() {
		return passedCheck{finished: true}, nil
	}
	if b.Check == nil || !b.Check.Done(b.Shards) {
		return passedCheck{}, failure.New(failure.Internal, "", "shard %d of %s: a write manifest before every shard was checked", m.Shard, m.BatchID)
	}
	if msg := CheckAbort(b, c.p.MaxErrorRatio()); msg != "" {
		return passedCheck{abort: msg}, nil
	}
	w.mu.Lock()
	if len(w.passed) >= maxPassed {
		clear(w.passed)
	}
	w.passed[m.BatchID] = b.Order
	w.mu.Unlock()
	return passedCheck{order: b.Order}, nil
}

// validator returns the compiled profile the batch runs under.
func (w *Worker) validator(ctx context.Context, batchID, ruleVersion string) (*compiled, error) {
	w.mu.Lock()
	c := w.validators[ruleVersion]
	w.mu.Unlock()
	if c != nil {
		return c, nil
	}
	b, err := w.store.GetBatch(ctx, batchID)
	if err != nil {
		return nil, err // the store names the batch
	}
	if b.Status.Finished() {
		return nil, state.ErrBatchFinished
	}
	p, err := profile.Parse(b.Profile)
	if err != nil {
		return nil, failure.Wrap(failure.Internal, "", err, "batch "+batchID+" stores a profile that does not load: "+err.Error())
	}
	if p.RuleVersion() != ruleVersion {
		return nil, failure.New(failure.Internal, "", "batch %s runs rule version %s, the manifest says %s", batchID, p.RuleVersion(), ruleVersion)
	}
	v, err := p.Compile()
	if err != nil {
		return nil, failure.Wrap(failure.Internal, "", err, "")
	}
	c = &compiled{p: p, v: v}
	w.mu.Lock()
	w.validators[ruleVersion] = c
	w.mu.Unlock()
	return c, nil
}
