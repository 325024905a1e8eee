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
// object fails with SourceChanged), 8 (a worker near its deadline stops taking
// chunks, commits what it has and reports the shard unfinished) and 9 (the
// pool and the chunks in flight are bounded, and so are retries: see
// resilience.go for the retry budget, the rate limiter and the circuit
// breaker in front of the sink).
package shard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/catalog-import/catalog-import/internal/catalog"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/object"
	"github.com/catalog-import/catalog-import/internal/profile"
	"github.com/catalog-import/catalog-import/internal/queue"
	"github.com/catalog-import/catalog-import/internal/record"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/state"
)

// Store is the part of the state store a worker uses.
type Store interface {
	GetBatch(ctx context.Context, id string) (state.Batch, error)
	ListShards(ctx context.Context, batchID string) ([]state.Shard, error)
	Claim(ctx context.Context, batchID string, shard int, owner string, ttl time.Duration, now time.Time) (state.Lease, state.Shard, error)
	Checkpoint(ctx context.Context, lease state.Lease, cp state.Checkpoint, failures []failure.Record, until time.Time) (state.Counts, error)
	FinishShard(ctx context.Context, lease state.Lease, status state.ShardStatus, cp state.Checkpoint, message string) (state.Batch, error)
	PutFailures(ctx context.Context, records []failure.Record) error
}

// Options tunes a worker. Zero values take the defaults.
type Options struct {
	Owner           string        // lease owner name (default "worker")
	LeaseTTL        time.Duration // lease length, renewed at every checkpoint (default 2m)
	CheckpointEvery int           // rows per chunk and per checkpoint (default 100)
	Pool            int           // goroutines parsing and validating (default GOMAXPROCS)
	MaxRecord       int           // largest record read whole (default 1 MiB)
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
	// rounded up.
	SinkRate  float64
	SinkBurst int

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
	now   func() time.Time
	log   *slog.Logger
	opt   Options

	tracer  Tracer  // nil: no spans
	metrics Metrics // never nil (noMetrics)

	limiter *AdaptiveLimiter                             // nil: unlimited
	breaker *gobreaker.CircuitBreaker[[]catalog.Outcome] // nil: none

	mu         sync.Mutex
	validators map[string]*compiled // by rule version
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
		tracer: d.Tracer, metrics: d.Metrics, validators: map[string]*compiled{}}
	w.limiter = NewAdaptiveLimiter(w.opt.SinkRate, w.opt.SinkBurst)
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
	BatchFinished Status = "batch-finished" // the batch is finished (e.g. aborted)
)

// Result reports one Process call.
type Result struct {
	Status Status
	Counts state.Counts // the shard's counts at its last checkpoint
	Batch  state.Batch  // the batch after FinishShard (Status Done)
	// Last is true when this call finished the batch's last shard: the caller
	// finalizes the batch.
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
	if w.breaker != nil && w.breaker.State() == gobreaker.StateOpen {
		return Result{Status: Backoff}, nil // claim nothing: the sink is failing
	}
	started := time.Now()
	cctx, end := w.span(ctx, SpanClaim)
	lease, sh, err := w.store.Claim(cctx, m.BatchID, m.Shard, w.opt.Owner, w.opt.LeaseTTL, w.now())
	end(claimErr(err))
	switch {
	case errors.Is(err, state.ErrShardFinished):
		return Result{Status: AlreadyDone}, nil
	case errors.Is(err, state.ErrLeased):
		return Result{Status: Leased}, nil
	case errors.Is(err, state.ErrBatchFinished):
		return Result{Status: BatchFinished}, nil
	case err != nil:
		return Result{}, fmt.Errorf("claim shard %d of %s: %w", m.Shard, m.BatchID, err)
	}
	log := w.log.With("batch_id", m.BatchID, "shard", m.Shard)
	if m.TraceID != "" {
		log = log.With("trace_id", m.TraceID)
	}
	run := &run{w: w, m: m, lease: lease, shard: sh, cp: sh.Checkpoint, p: c.p, v: c.v, log: log, lastCP: started}
	res, err := run.process(ctx)
	res.Retries = run.retries
	w.metrics.Processed(ctx, m, res, err, time.Since(started))
	return res, err
}

// claimErr is the error a claim's span ends with: a shard that is leased or
// finished is an answer, not a failure.
func claimErr(err error) error {
	if errors.Is(err, state.ErrLeased) || errors.Is(err, state.ErrShardFinished) || errors.Is(err, state.ErrBatchFinished) {
		return nil
	}
	return err
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
		return nil, fmt.Errorf("get batch %s: %w", batchID, err)
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

// run is the state of one Process call.
type run struct {
	w     *Worker
	m     queue.Manifest
	lease state.Lease
	shard state.Shard
	cp    state.Checkpoint
	p     *profile.Profile
	v     *profile.Validator

	dialect record.Dialect
	header  *profile.Columns // csv/tsv: the header's mapping
	mapping map[string]string
	shards  []state.Shard // loaded lazily to place displaced rows
	retries int           // transient errors retried so far (budget: Options.RetryBudget)
	log     *slog.Logger  // with batch_id, shard and trace_id
	lastCP  time.Time     // when the previous checkpoint (or the claim) was durable

	// Deadline pacing (reader and committer goroutines): chunks read but not
	// yet committed, and how long committing one chunk has been taking.
	pending  atomic.Int64
	perChunk atomic.Int64 // nanoseconds, a moving average
}

// chunk is CheckpointEvery rows on their way through the pipeline.
type chunk struct {
	raws    []record.Raw
	buf     []byte
	end     int64 // offset of the next record after the chunk
	nextRow int64
	done    chan struct{}

	products []catalog.Product
	snaps    []snapshot // the raw text and cells of products[i]
	failures []failure.Record
}

type snapshot struct {
	text  string
	cells []string
}

func (r *run) process(ctx context.Context) (Result, error) {
	o := r.w.opt
	r.dialect = record.Dialect{Format: record.Format(r.m.Layout.Format), Encoding: record.Encoding(r.m.Layout.Encoding)}
	if d := []rune(r.m.Layout.Delimiter); len(d) == 1 {
		r.dialect.Delimiter = d[0]
	}
	if r.dialect.Format != record.JSONL {
		cols, err := r.v.Header(r.m.Layout.Header)
		if err != nil {
			return Result{}, err
		}
		r.header, r.mapping = cols, cols.Mapping()
	}
	if r.cp.NextOffset < r.m.Start {
		r.cp = state.Checkpoint{NextOffset: r.m.Start, NextRow: r.m.FirstRow}
	}
	fromStart := r.cp.NextOffset == r.m.Start
	info := object.Info{URI: r.m.Source.URI, Size: r.m.Source.Size, ETag: r.m.Source.ETag, Version: r.m.Source.Version}
	var body io.ReadCloser
	if r.cp.NextOffset < r.m.End {
		var err error
		if body, err = r.w.src.Open(ctx, info, r.cp.NextOffset, r.m.End); err != nil {
			return Result{}, fmt.Errorf("open shard %d of %s: %w", r.m.Shard, r.m.BatchID, err)
		}
		defer body.Close()
	}

	work := make(chan *chunk, o.Pool)
	ordered := make(chan *chunk, 2*o.Pool) // bounds the chunks in flight
	readErr := make(chan error, 1)
	sum := split.NewChecksum()
	stopped := false
	rctx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	from := r.cp // the reader's own copy: the committer moves r.cp
	go func() {  // reader: cut the range into chunks, in file order
		defer close(ordered)
		defer close(work)
		if body == nil {
			readErr <- nil
			return
		}
		readErr <- r.read(rctx, body, from, sum, work, ordered, &stopped)
	}()
	var wg sync.WaitGroup
	for range o.Pool { // pool: parse and validate chunks, any order
		wg.Go(func() {
			parser := record.NewParser(r.dialect, r.m.Layout.Header)
			for c := range work {
				r.validate(parser, c)
				close(c.done)
			}
		})
	}
	res, err := r.commitAll(ctx, ordered)
	stopReading()
	for range ordered { // drain after an early return so the reader can exit
	}
	wg.Wait()
	rerr := <-readErr
	if err == nil && res.Status == Backoff {
		// Hand the shard on, as after a deadline (best effort: the store
		// may be failing too, and then the lease simply runs out).
		_, _ = r.w.store.Checkpoint(ctx, r.lease, r.cp, nil, r.w.now())
	}
	if err != nil || res.Status != "" || res.Abort != "" {
		return res, err
	}
	if rerr != nil {
		return Result{Status: Partial, Counts: r.cp.Counts}, fmt.Errorf("read shard %d of %s: %w", r.m.Shard, r.m.BatchID, rerr)
	}
	if stopped {
		// Hand the shard on: end the lease now (same checkpoint, lease until
		// now), so that the continuation's worker can claim it at once
		// instead of waiting for this lease to run out.
		if _, err := r.w.store.Checkpoint(ctx, r.lease, r.cp, nil, r.w.now()); err != nil && !errors.Is(err, state.ErrFenced) {
			return Result{Status: Partial, Counts: r.cp.Counts}, fmt.Errorf("release shard %d of %s: %w", r.m.Shard, r.m.BatchID, err)
		}
		return Result{Status: Partial, Counts: r.cp.Counts}, nil
	}
	if fromStart && r.shard.Checksum != "" && sum.String() != r.shard.Checksum {
		return Result{}, failure.New(failure.SourceChanged, "", "shard %d of %s: content checksum %s, split saw %s: the source changed after the split", r.m.Shard, r.m.BatchID, sum, r.shard.Checksum)
	}
	if r.cp.Counts.Done() != r.m.Rows {
		// The split and this read disagree on the rows of the range: never
		// finish such a shard silently.
		return Result{}, failure.New(failure.SourceChanged, "", "shard %d of %s: read %d rows, split counted %d", r.m.Shard, r.m.BatchID, r.cp.Counts.Done(), r.m.Rows)
	}
	fctx, end := r.w.span(ctx, SpanFinish)
	b, err := r.w.store.FinishShard(fctx, r.lease, state.ShardDone, r.cp, "")
	end(err)
	if errors.Is(err, state.ErrFenced) {
		return Result{Status: Fenced, Counts: r.cp.Counts}, nil
	}
	if err != nil {
		return Result{}, fmt.Errorf("finish shard %d of %s: %w", r.m.Shard, r.m.BatchID, err)
	}
	return Result{Status: Done, Counts: r.cp.Counts, Batch: b, Last: b.ShardsDone == b.Shards}, nil
}

// read scans records and sends chunks to the pool (work) and, in the same
// order, to the committer (ordered). It stops early, setting *stopped, when
// the context's deadline is closer than the margin.
func (r *run) read(ctx context.Context, body io.Reader, from state.Checkpoint, sum *split.Checksum, work, ordered chan<- *chunk, stopped *bool) error {
	o := r.w.opt
	sc := record.NewScanner(body, r.dialect, from.NextOffset, from.NextRow, o.MaxRecord)
	sent := from.NextOffset
	newChunk := func() *chunk {
		return &chunk{raws: make([]record.Raw, 0, o.CheckpointEvery), done: make(chan struct{})}
	}
	c := newChunk()
	send := func() bool {
		c.end, c.nextRow = sc.Offset(), sc.Row()
		select {
		case ordered <- c:
		case <-ctx.Done():
			return false
		}
		r.pending.Add(1)
		work <- c
		sent = c.end
		c = newChunk()
		return true
	}
	for sc.Next() {
		raw := sc.Raw()
		if raw.Blank {
			continue
		}
		sum.Add(raw.Bytes)
		start := len(c.buf)
		c.buf = append(c.buf, raw.Bytes...)
		raw.Bytes = c.buf[start:len(c.buf):len(c.buf)]
		c.raws = append(c.raws, raw)
		if len(c.raws) == o.CheckpointEvery {
			// Record slices point into c.buf, which may have moved while
			// growing: re-point them before handing the chunk over.
			c.fixup()
			if !send() {
				return ctx.Err()
			}
			if r.nearDeadline(ctx) {
				*stopped = true
				return nil
			}
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	c.fixup()
	if len(c.raws) > 0 || sc.Offset() > sent { // trailing blank lines move the checkpoint too
		send()
	}
	return ctx.Err()
}

// fixup re-points each record's bytes into the chunk's final buffer.
func (c *chunk) fixup() {
	off := 0
	for i := range c.raws {
		n := len(c.raws[i].Bytes)
		c.raws[i].Bytes = c.buf[off : off+n : off+n]
		off += n
	}
}

// nearDeadline reports whether the reader must stop taking chunks: the time
// left no longer covers the margin plus committing the chunks already read
// (at the pace commits have been going), so that what is read can still be
// made durable before the invocation ends.
func (r *run) nearDeadline(ctx context.Context) bool {
	d, ok := ctx.Deadline()
	if !ok {
		return false
	}
	backlog := time.Duration(r.pending.Load() * r.perChunk.Load())
	return time.Until(d) < r.w.opt.DeadlineMargin+backlog
}

// groupLimit is how many chunks one commit may take: maxGroup, fewer when
// the deadline is close, so that a commit ends before the margin.
func (r *run) groupLimit(ctx context.Context) int {
	d, ok := ctx.Deadline()
	per := time.Duration(r.perChunk.Load())
	if !ok || per <= 0 {
		return maxGroup
	}
	n := int((time.Until(d) - r.w.opt.DeadlineMargin) / per)
	return max(1, min(maxGroup, n))
}

// paced records that committing n chunks took d.
func (r *run) paced(n int, d time.Duration) {
	r.pending.Add(-int64(n))
	per := int64(d) / int64(n)
	if old := r.perChunk.Load(); old > 0 {
		per = (3*old + per) / 4
	}
	r.perChunk.Store(per)
}

// validate parses and validates every record of c (pool goroutine).
func (r *run) validate(parser *record.Parser, c *chunk) {
	c.products = make([]catalog.Product, 0, len(c.raws))
	c.snaps = make([]snapshot, 0, len(c.raws))
	for _, raw := range c.raws {
		row := parser.Parse(raw)
		err := row.Err
		var p catalog.Product
		if err == nil {
			cols := r.header
			if cols == nil {
				cols = r.v.Names(row.Names)
			}
			p, err = r.v.Validate(cols, row.Values)
		}
		if err != nil {
			c.failures = append(c.failures, r.failureRecord(row, err))
			continue
		}
		p.BatchID = r.m.BatchID
		p.Source = catalog.Position{SheetIndex: r.m.SheetIndex, Sheet: r.m.Sheet, Row: row.Num}
		p.Offset, p.Length = row.Offset, row.Length
		c.products = append(c.products, p)
		c.snaps = append(c.snaps, snapshot{text: row.Text, cells: row.Cells})
	}
}

func (r *run) failureRecord(row record.Row, err error) failure.Record {
	rec := failure.Record{
		BatchID: r.m.BatchID, Sheet: r.m.Sheet, Row: row.Num,
		RawLine: row.Text, Cells: row.Cells, FieldMapping: r.mapping,
		RuleVersion: r.m.RuleVersion, RetryCount: r.m.RetryCount,
		FailureAt: r.w.now().UTC(), TraceID: r.m.TraceID, Shard: r.m.Shard,
	}
	if rec.FieldMapping == nil && row.Names != nil {
		rec.FieldMapping = r.v.Names(row.Names).Mapping()
	}
	rec.FromError(err)
	return rec
}

// commitAll commits chunks in file order. A non-empty Status in the result
// means the shard stopped for a reason that is not an error.
//
// Group commit: when the chunks after the one in hand are already validated
// (the store is the bottleneck), they are committed together, up to
// maxGroup chunks, with one checkpoint at the end of the last. That does not
// widen the rework bound after a crash: those chunks were in flight anyway.
func (r *run) commitAll(ctx context.Context, ordered <-chan *chunk) (Result, error) {
	var next *chunk // taken from ordered but not yet validated
	for {
		c := next
		next = nil
		if c == nil {
			var ok bool
			if c, ok = <-ordered; !ok {
				return Result{}, nil
			}
		}
		select {
		case <-c.done:
		case <-ctx.Done():
			return Result{}, ctx.Err()
		}
		group := []*chunk{c}
		limit := r.groupLimit(ctx)
	more:
		for len(group) < limit {
			select {
			case n, ok := <-ordered:
				if !ok {
					break more
				}
				select {
				case <-n.done:
					group = append(group, n)
				default:
					next = n
					break more
				}
			default:
				break more
			}
		}
		start := time.Now()
		res, err := r.commit(ctx, merge(group))
		r.paced(len(group), time.Since(start))
		if err != nil || res.Status != "" || res.Abort != "" {
			return res, err
		}
	}
}

// maxGroup is the most chunks committed in one step.
const maxGroup = 8

// merge joins consecutive validated chunks into one.
func merge(cs []*chunk) *chunk {
	if len(cs) == 1 {
		return cs[0]
	}
	m := &chunk{end: cs[len(cs)-1].end, nextRow: cs[len(cs)-1].nextRow}
	for _, c := range cs {
		m.raws = append(m.raws, c.raws...)
		m.products = append(m.products, c.products...)
		m.snaps = append(m.snaps, c.snaps...)
		m.failures = append(m.failures, c.failures...)
	}
	return m
}

// commit makes one chunk durable: products, then failure records and the
// checkpoint together (fenced by the lease's epoch).
func (r *run) commit(ctx context.Context, c *chunk) (Result, error) {
	fails := c.failures
	imported := int64(0)
	if len(c.products) > 0 {
		outs, err := r.write(ctx, c.products)
		if failure.ReasonOf(err) == failure.CircuitOpen {
			return Result{Status: Backoff, Counts: r.cp.Counts}, nil
		}
		if err != nil {
			return Result{}, fmt.Errorf("write products of shard %d rows %d-%d: %w", r.m.Shard, c.raws[0].Row, c.nextRow-1, err)
		}
		var displaced []failure.Record
		for i, out := range outs {
			p := c.products[i]
			switch out.Result {
			case catalog.Written:
				imported++
			case catalog.Duplicate:
				fails = append(fails, r.businessFailure(p, c.snaps[i], failure.New(failure.DuplicateSKU, "sku",
					"SKU %q is already imported from %s of this file (the lowest row wins)", p.SKU, out.Holder)))
			case catalog.Exists:
				fails = append(fails, r.businessFailure(p, c.snaps[i], failure.New(failure.SKUExists, "sku",
					"SKU %q already exists in the catalog and the profile is create-only", p.SKU)))
			}
			for _, d := range out.Displaced {
				rec, err := r.displacedFailure(ctx, p, d)
				if err != nil {
					return Result{}, err
				}
				displaced = append(displaced, rec)
			}
		}
		if len(displaced) > 0 {
			if err := r.retry(ctx, "put failures", func() error { return r.w.store.PutFailures(ctx, displaced) }); err != nil {
				return Result{}, fmt.Errorf("record displaced duplicates: %w", err)
			}
		}
	}
	cp := state.Checkpoint{NextOffset: c.end, NextRow: c.nextRow, Counts: r.cp.Counts.Add(state.Counts{
		Total: int64(len(c.raws)), Imported: imported, Failed: int64(len(c.raws)) - imported,
	})}
	var batch state.Counts
	cpctx, end := r.w.span(ctx, SpanCheckpoint)
	err := r.retry(cpctx, "checkpoint", func() error {
		var err error
		batch, err = r.w.store.Checkpoint(cpctx, r.lease, cp, fails, r.w.now().Add(r.w.opt.LeaseTTL))
		return err
	})
	end(err)
	switch {
	case errors.Is(err, state.ErrFenced):
		return Result{Status: Fenced, Counts: r.cp.Counts}, nil
	case errors.Is(err, state.ErrBatchFinished):
		return Result{Status: BatchFinished, Counts: r.cp.Counts}, nil
	case err != nil:
		return Result{}, fmt.Errorf("checkpoint shard %d at row %d: %w", r.m.Shard, c.nextRow, err)
	}
	r.cp = cp
	r.checkpointed(ctx, imported, int64(len(c.raws))-imported, fails, c.nextRow)
	if ratio := r.p.MaxErrorRatio(); ratio > 0 && batch.Done() >= minSample && float64(batch.Failed) > ratio*float64(batch.Done()) {
		return Result{Counts: cp.Counts, Abort: fmt.Sprintf("%d of %d rows failed (%.1f%%), over the profile's max_error_ratio %.1f%%",
			batch.Failed, batch.Done(), 100*float64(batch.Failed)/float64(batch.Done()), 100*ratio)}, nil
	}
	return Result{}, nil
}

// checkpointed reports a durable checkpoint: metrics, and one log line for
// its failures.
func (r *run) checkpointed(ctx context.Context, imported, failed int64, fails []failure.Record, nextRow int64) {
	now := time.Now()
	counts := byReason(fails)
	r.w.metrics.Checkpointed(ctx, Checkpointed{BatchID: r.m.BatchID, Shard: r.m.Shard, TraceID: r.m.TraceID,
		Imported: imported, Failed: failed, ByReason: counts, Lag: now.Sub(r.lastCP), NextRow: nextRow})
	r.lastCP = now
	r.logFailures(ctx, fails, counts, nextRow)
}

// minSample is how many rows must have an outcome before max_error_ratio is
// applied, so that one bad row at the start does not abort a batch.
const minSample = 100

func (r *run) businessFailure(p catalog.Product, s snapshot, err error) failure.Record {
	rec := failure.Record{
		BatchID: r.m.BatchID, Sheet: r.m.Sheet, Row: p.Source.Row,
		RawLine: s.text, Cells: s.cells, FieldMapping: r.mapping,
		RuleVersion: r.m.RuleVersion, RetryCount: r.m.RetryCount,
		FailureAt: r.w.now().UTC(), TraceID: r.m.TraceID, Shard: r.m.Shard,
	}
	rec.FromError(err)
	return rec
}

// displacedFailure builds the DuplicateSKU record of a row that p displaced
// (a later row of this batch that another shard had written first). The row's
// bytes are read back from the source, so the record is as complete as any.
func (r *run) displacedFailure(ctx context.Context, p catalog.Product, d catalog.Product) (failure.Record, error) {
	rec := failure.Record{
		BatchID: r.m.BatchID, Sheet: d.Source.Sheet, Row: d.Source.Row, FieldMapping: r.mapping,
		RuleVersion: r.m.RuleVersion, RetryCount: r.m.RetryCount,
		FailureAt: r.w.now().UTC(), TraceID: r.m.TraceID, Shard: -1,
	}
	if rec.Sheet == "" {
		rec.Sheet = failure.NoSheet
	}
	rec.FromError(failure.New(failure.DuplicateSKU, "sku", "SKU %q is also on %s of this file (the lowest row wins)", d.SKU, p.Source))
	if r.shards == nil {
		s, err := r.w.store.ListShards(ctx, r.m.BatchID)
		if err != nil {
			return rec, fmt.Errorf("list shards of %s: %w", r.m.BatchID, err)
		}
		r.shards = s
	}
	src, layout, dialect := r.m.Source, r.m.Layout, r.dialect
	for _, s := range r.shards {
		if s.SheetIndex == d.Source.SheetIndex && s.FirstRow <= d.Source.Row {
			rec.Shard = s.Index
			if s.Staged != nil { // a workbook: the row is in its own shard's staged chunk
				src, layout = split.StagedSource(s)
				dialect = record.Dialect{Format: record.Format(layout.Format), Encoding: record.Encoding(layout.Encoding), Delimiter: ','}
			}
		}
	}
	info := object.Info{URI: src.URI, Size: src.Size, ETag: src.ETag, Version: src.Version}
	body, err := r.w.src.Open(ctx, info, d.Offset, d.Offset+d.Length)
	if err != nil {
		return rec, fmt.Errorf("read displaced %s: %w", d.Source, err)
	}
	defer body.Close()
	sc := record.NewScanner(body, dialect, d.Offset, d.Source.Row, r.w.opt.MaxRecord)
	if sc.Next() {
		row := record.NewParser(dialect, layout.Header).Parse(sc.Raw())
		rec.RawLine, rec.Cells = row.Text, row.Cells
	}
	if err := sc.Err(); err != nil {
		return rec, fmt.Errorf("read displaced %s: %w", d.Source, err)
	}
	return rec, nil
}
