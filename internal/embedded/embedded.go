// Package embedded runs the whole import pipeline in one process: the same
// splitter, shard workers and finalization as on AWS, over the embedded
// adapters (a local file, an in-process queue, one SQLite file for state and
// products). It is what `importctl run` and `importctl validate` call.
//
// Invariant 1 here: the batch id is derived from the file's content and the
// profile's rule version, so running the same file again resumes (or reports)
// the same batch. A lock file next to the database keeps a second process
// off the same database while a run is going, which is what lets a new run
// release the leases of a killed one at once instead of waiting them out.
package embedded

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/catalog-import/catalog-import/internal/catalog"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/finalize"
	"github.com/catalog-import/catalog-import/internal/lineage"
	"github.com/catalog-import/catalog-import/internal/local/file"
	"github.com/catalog-import/catalog-import/internal/local/memqueue"
	"github.com/catalog-import/catalog-import/internal/local/sqlite"
	"github.com/catalog-import/catalog-import/internal/object"
	"github.com/catalog-import/catalog-import/internal/profile"
	"github.com/catalog-import/catalog-import/internal/queue"
	"github.com/catalog-import/catalog-import/internal/record"
	"github.com/catalog-import/catalog-import/internal/shard"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/state"
)

// Config is one embedded run. Build it in main; zero values take defaults.
type Config struct {
	DB        string           // SQLite file; ":memory:" for a dry run (default ./importctl.db)
	Profile   *profile.Profile // default: the built-in default profile
	Shards    int              // shards processed at once (default 2)
	Pool      int              // parse/validate goroutines per shard (default GOMAXPROCS)
	Every     int              // rows per checkpoint (default 100)
	Split     split.Options    // shard size
	ReportDir string           // where error reports go (default: reports/ beside the DB; none for :memory:)
	Attempts  int              // deliveries of one shard before the run gives up (default 5)
	// StagingDir holds the staged sheets of workbooks, staging/<batch>/
	// (default: staging/ beside the DB; a temporary folder for :memory:).
	StagingDir string
	// Progress, when set, is called about every Tick with the batch's counters.
	Progress func(state.Counts)
	Tick     time.Duration
	Log      *slog.Logger
	// Salt, when set, is mixed into the batch id, so that the same content
	// under the same rules makes a new batch (each `importctl
	// retry-failures` is its own attempt; the same Salt resumes it).
	Salt string

	// Tests: wrap the product sink (fault injection) and shorten the
	// circuit breaker's open period (default breakerTimeout).
	wrapSink       func(catalog.Sink) catalog.Sink
	breakerTimeout time.Duration
}

// breakerTimeout is how long the worker's circuit breaker stays open in an
// embedded run: the sink is a local SQLite file, whose busy spells are short.
const breakerTimeout = time.Second

// backoffDeliveries x Config.Attempts is how many deliveries a shard may end
// in Backoff before the run gives up on the sink: an outage is tolerated
// longer than failed attempts are, since nothing is wrong with the shard.
const backoffDeliveries = 4

func (c Config) withDefaults() Config {
	if c.DB == "" {
		c.DB = "importctl.db"
	}
	if c.Profile == nil {
		c.Profile = profile.Default()
	}
	if c.Shards <= 0 {
		c.Shards = 2
	}
	if c.Attempts <= 0 {
		c.Attempts = 5
	}
	if c.Tick <= 0 {
		c.Tick = 200 * time.Millisecond
	}
	if c.ReportDir == "" && c.DB != ":memory:" {
		c.ReportDir = filepath.Join(filepath.Dir(c.DB), "reports")
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.breakerTimeout <= 0 {
		c.breakerTimeout = breakerTimeout
	}
	return c
}

// Summary is what a run reports.
type Summary struct {
	Batch    state.Batch // counts and failures by reason as finalization stored them
	Resumed  bool        // an unfinished batch of this file was continued
	Existing bool        // the batch was already finished: nothing was imported
}

// BatchID derives the embedded batch id from the file's content hash and the
// profile's rule version.
func BatchID(contentSHA256, ruleVersion string) string {
	h := sha256.Sum256([]byte(contentSHA256 + "\n" + ruleVersion))
	return "b-" + hex.EncodeToString(h[:10])
}

// Run imports path. The error is for problems that stopped the run (I/O,
// a database that cannot be opened, retries exhausted); a rejected or
// partly failed file is a Summary with that status and a nil error.
func Run(ctx context.Context, cfg Config, path string) (Summary, error) {
	cfg = cfg.withDefaults()
	unlock, err := lock(cfg.DB)
	if err != nil {
		return Summary{}, err
	}
	defer unlock()
	db, err := sqlite.Open(cfg.DB, sqlite.Options{})
	if err != nil {
		return Summary{}, fmt.Errorf("open database %s: %w", cfg.DB, err)
	}
	defer db.Close()
	if cfg.StagingDir == "" {
		if cfg.DB != ":memory:" {
			cfg.StagingDir = filepath.Join(filepath.Dir(cfg.DB), "staging")
		} else {
			dir, err := os.MkdirTemp("", "importctl-staging-*")
			if err != nil {
				return Summary{}, fmt.Errorf("staging folder: %w", err)
			}
			defer os.RemoveAll(dir)
			cfg.StagingDir = dir
		}
	}
	return run(ctx, cfg, db, path)
}

func run(ctx context.Context, cfg Config, db *sqlite.DB, path string) (Summary, error) {
	src := &file.Source{}
	info, err := src.Stat(ctx, path)
	if err != nil {
		return Summary{}, fmt.Errorf("read %s: %w", path, err)
	}
	v, err := cfg.Profile.Compile()
	if err != nil {
		return Summary{}, err
	}
	opts := cfg.Split
	opts.HashContent = true
	var plan split.Plan
	var id string
	if isWorkbook(path) {
		plan, id, err = planWorkbook(ctx, cfg, db, src, info, v, opts)
	} else {
		plan, err = split.PlanSource(ctx, src, info, v, opts)
		content := plan.Content
		if cfg.Salt != "" && content != "" {
			content += "\n" + cfg.Salt
		}
		id = BatchID(content, cfg.Profile.RuleVersion())
	}
	if err != nil {
		return Summary{}, err
	}
	if plan.Content == "" { // rejected before the data was read: hash what identifies it
		id = BatchID(fmt.Sprintf("%s|%d|%s", info.URI, info.Size, info.ETag), cfg.Profile.RuleVersion())
	}
	q, err := memqueue.New(memqueue.Options{VisibilityTimeout: time.Minute})
	if err != nil {
		return Summary{}, err
	}
	reg, err := split.Register(ctx, db, q, split.Request{BatchID: id, Plan: plan, Profile: cfg.Profile, Now: time.Now().UTC(), SameContent: plan.Content != ""})
	if err != nil {
		return Summary{}, err
	}
	sum := Summary{Batch: reg.Batch, Resumed: !reg.Created && !reg.Batch.Status.Finished(), Existing: !reg.Created && reg.Batch.Status.Finished()}
	cfg.Log.Info("batch registered", "batch_id", id, "shards", reg.Batch.Shards, "rows_total", reg.Batch.Counts.Total, "created", reg.Created, "sent", reg.Sent)
	if w := plan.Weights; w != nil && reg.Created && len(w.Shards) > 0 {
		cfg.Log.Info("shards weighted", "batch_id", id, "expression", w.Expression, "weight_total", w.Total,
			"shard_weight_min", slices.Min(w.Shards), "shard_weight_max", slices.Max(w.Shards), "rows_default_weight", w.Fallback)
	}
	if !reg.Batch.Status.Finished() {
		if err := db.ReleaseLeases(ctx, id); err != nil {
			return sum, fmt.Errorf("release leases of %s: %w", id, err)
		}
		if err := work(ctx, cfg, db, q, src, id); err != nil {
			return sum, err
		}
	}
	b, err := db.GetBatch(ctx, id)
	if err != nil {
		return sum, err
	}
	sum.Batch = b
	return sum, nil
}

// isWorkbook reports whether the file at path is an XLSX workbook.
func isWorkbook(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 8)
	n, _ := io.ReadFull(f, head)
	d, err := record.Detect(path, head[:n])
	return err == nil && d.Format == record.XLSX
}

// planWorkbook plans a workbook. Its sheets are staged under the batch's
// id, so the id (content hash and rule version) comes first; a batch that
// exists already (a rerun) is resumed or reported as it is, without reading
// the workbook or staging it again.
func planWorkbook(ctx context.Context, cfg Config, db *sqlite.DB, src *file.Source, info object.Info, v *profile.Validator, opts split.Options) (split.Plan, string, error) {
	rc, err := src.Open(ctx, info, 0, -1)
	if err != nil {
		return split.Plan{}, "", fmt.Errorf("read %s: %w", info.URI, err)
	}
	sum := sha256.New()
	_, err = io.Copy(sum, rc)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return split.Plan{}, "", fmt.Errorf("read %s: %w", info.URI, err)
	}
	content := hex.EncodeToString(sum.Sum(nil))
	id := BatchID(content, cfg.Profile.RuleVersion())
	if _, err := db.GetBatch(ctx, id); err == nil {
		return split.Plan{Info: info, Content: content}, id, nil
	} else if !errors.Is(err, state.ErrNotFound) {
		return split.Plan{}, "", err
	}
	opts.Staging = &split.Staging{Stager: file.Staging{Dir: cfg.StagingDir}, BatchID: id}
	plan, err := split.PlanSource(ctx, src, info, v, opts)
	if err == nil && plan.Content != "" && plan.Content != content {
		err = failure.New(failure.SourceChanged, "", "source %s changed while it was read", info.URI)
	}
	plan.Content = content // also for a workbook rejected before it was copied: the id stays the content's
	return plan, id, err
}

// work runs shard workers until the queue is empty and the batch finalized.
func work(ctx context.Context, cfg Config, db *sqlite.DB, q *memqueue.Queue, src *file.Source, id string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var sink catalog.Sink = db
	if cfg.DB == sqlite.Memory {
		sink = dryRunSink{db}
	}
	if cfg.wrapSink != nil {
		sink = cfg.wrapSink(sink)
	}
	w := shard.New(shard.Deps{Source: src, Store: db, Sink: sink, Log: cfg.Log},
		shard.Options{Owner: fmt.Sprintf("importctl-%d", os.Getpid()), CheckpointEvery: cfg.Every, Pool: cfg.Pool, MaxRecord: cfg.Split.MaxRecord,
			BreakerFailures: 5, BreakerTimeout: cfg.breakerTimeout})
	fin := finalize.Deps{Store: db, Reports: dirReports(cfg.ReportDir), Staging: file.Staging{Dir: cfg.StagingDir}, Log: cfg.Log,
		Lineage: lineage.Resolver{Source: src, Store: db, MaxRecord: cfg.Split.MaxRecord}}

	if cfg.Progress != nil {
		stop := progress(ctx, cfg, db, id)
		defer stop()
	}
	var (
		mu       sync.Mutex
		firstErr error
		finished bool
	)
	finish := func(abort string) error {
		mu.Lock()
		defer mu.Unlock()
		if finished {
			return nil
		}
		if _, err := finalize.Finalize(ctx, fin, id, abort); err != nil {
			return err
		}
		finished = true
		cancel() // nothing left to do for the other workers
		return nil
	}
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		cancel()
	}
	var wg sync.WaitGroup
	for range cfg.Shards {
		wg.Go(func() {
			for ctx.Err() == nil {
				msgs, err := q.Receive(ctx, 1, 50*time.Millisecond)
				if err != nil {
					if ctx.Err() == nil {
						fail(err)
					}
					return
				}
				if len(msgs) == 0 {
					if q.Len() == 0 && q.InFlight() == 0 {
						return
					}
					continue
				}
				if err := handle(ctx, cfg, w, q, msgs[0], finish); err != nil {
					fail(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if err := context.Cause(ctx); err != nil && !finished && !errors.Is(err, context.Canceled) {
		return err
	}
	// A run killed after the last shard finished but before finalization
	// leaves every shard done and the batch RUNNING: finish it now.
	b, err := db.GetBatch(context.WithoutCancel(ctx), id)
	if err != nil {
		return err
	}
	if !b.Status.Finished() && b.ShardsDone == b.Shards {
		ctx = context.WithoutCancel(ctx)
		_, err = finalize.Finalize(ctx, fin, id, "")
		return err
	}
	if !b.Status.Finished() && ctx.Err() == nil {
		return fmt.Errorf("batch %s: %d of %d shards finished and no work is left", id, b.ShardsDone, b.Shards)
	}
	return nil
}

// handle processes one delivery and settles the message. A shard that stops
// with Backoff (the sink's circuit breaker is open) goes back to the queue
// with a delay past the breaker's open period, growing with its deliveries;
// the run gives up on it (CircuitOpen) after backoffDeliveries x
// Config.Attempts deliveries.
func handle(ctx context.Context, cfg Config, w *shard.Worker, q *memqueue.Queue, m queue.Message, finish func(string) error) error {
	start := time.Now()
	res, err := w.Process(ctx, m.Manifest)
	if err == nil && res.Status != shard.Leased && res.Status != shard.AlreadyDone {
		cfg.Log.Info("shard processed", "batch_id", m.Manifest.BatchID, "shard", m.Manifest.Shard, "status", string(res.Status),
			"rows", res.Counts.Done(), "duration_ms", float64(time.Since(start).Microseconds())/1000)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		if m.ReceiveCount >= cfg.Attempts || !failure.ReasonOf(err).Transient() {
			return fmt.Errorf("shard %d: %w", m.Manifest.Shard, err)
		}
		cfg.Log.Warn("shard attempt failed, retrying", "batch_id", m.Manifest.BatchID, "shard", m.Manifest.Shard, "attempt", m.ReceiveCount, "error", err)
		return q.Retry(ctx, m, time.Duration(m.ReceiveCount)*100*time.Millisecond)
	}
	switch {
	case res.Abort != "":
		if err := finish(res.Abort); err != nil {
			return err
		}
	case res.Status == shard.Partial:
		return q.Retry(ctx, m, 0)
	case res.Status == shard.Backoff:
		if m.ReceiveCount >= backoffDeliveries*cfg.Attempts {
			return fmt.Errorf("shard %d: %w", m.Manifest.Shard, failure.New(failure.CircuitOpen, "",
				"the product sink kept failing: circuit breaker still open after %d deliveries", m.ReceiveCount))
		}
		delay := cfg.breakerTimeout + shard.Delay(m.ReceiveCount-1, cfg.breakerTimeout, 30*time.Second)
		cfg.Log.Warn("sink failing, shard delayed", "batch_id", m.Manifest.BatchID, "shard", m.Manifest.Shard, "attempt", m.ReceiveCount, "delay", delay.String())
		return q.Retry(ctx, m, delay)
	case res.Last:
		if err := finish(""); err != nil {
			return err
		}
	}
	if err := q.Ack(ctx, m); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// progress polls the batch's counters until stopped.
func progress(ctx context.Context, cfg Config, db *sqlite.DB, id string) func() {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(cfg.Tick)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if b, err := db.GetBatch(ctx, id); err == nil {
					cfg.Progress(b.Counts)
				}
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// dirReports writes reports to dir/<batch>/<name>, like reports/<batch>/ on S3.
type dirReports string

// Put writes the report and returns its path.
func (d dirReports) Put(_ context.Context, batchID, name string, write func(io.Writer) error) (string, error) {
	if d == "" {
		return "", write(io.Discard)
	}
	dir := filepath.Join(string(d), batchID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, name)
	tmp, err := os.CreateTemp(dir, name+".*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	return path, os.Rename(tmp.Name(), path)
}

// lock takes an exclusive lock next to the database so that one process at a
// time runs imports on it. In-memory databases need none.
func lock(db string) (func(), error) {
	if db == ":memory:" {
		return func() {}, nil
	}
	f, err := os.OpenFile(db+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", db, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("database %s is in use by another importctl run (%s.lock is held)", db, db)
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

// dryRunSink is the sink of a dry run (an in-memory database, whose catalog
// is empty): an update row of a SKU it has not seen counts as imported, not
// UnknownSKU, since whether the real catalog has it cannot be known (as
// SKUExists cannot be found in a dry run).
type dryRunSink struct{ catalog.Sink }

func (s dryRunSink) Write(ctx context.Context, mode catalog.WriteMode, ps []catalog.Product) ([]catalog.Outcome, error) {
	outs, err := s.Sink.Write(ctx, mode, ps)
	for i := range outs {
		if outs[i].Result == catalog.Unknown {
			outs[i].Result = catalog.Written
		}
	}
	return outs, err
}
