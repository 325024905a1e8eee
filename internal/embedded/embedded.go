// Package embedded runs the whole import pipeline in one process: the same
// splitter, shard workers and finalization as on AWS, over the embedded
// adapters (a local file, an in-process queue, one SQLite file for state and
// products). It is what `importctl run` and `importctl validate` call.
//
// Invariant 1 here: the batch id is derived from the file's content and the
// profile's rule version, so running the same file again resumes (or reports)
// the same batch. A lock on the database file itself (flock; it follows
// the file through symlinks and hard links) keeps a second process off the
// same database while a run is going, which is what lets a new run
// release the leases of a killed one at once instead of waiting them out.
package embedded

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"time"

	"github.com/catalog-import/catalog-import/internal/catalog"
	"github.com/catalog-import/catalog-import/internal/local/file"
	"github.com/catalog-import/catalog-import/internal/local/memqueue"
	"github.com/catalog-import/catalog-import/internal/local/sqlite"
	"github.com/catalog-import/catalog-import/internal/object"
	"github.com/catalog-import/catalog-import/internal/pipeline"
	"github.com/catalog-import/catalog-import/internal/profile"
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
	// WriteRate caps the rows written per second (0: unlimited); the rate
	// halves when the sink throttles and recovers slowly.
	WriteRate float64
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

// defaultEvery is the worker's default checkpoint interval (rows), which
// the block checksums follow when Config.Every is 0.
const defaultEvery = 100

// groupRows is sqlite.Options.GroupRows of a run: each Checkpoint commits
// the products written before it in its own transaction (one commit per
// checkpoint instead of two). Longer groups (10,000 rows) measured 2-3%
// less CPU but hold the write lock for most of the run, and `importctl
// cancel` from another process then timed out on a busy database
// (decision 28).
const groupRows = 1

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
	db, err := sqlite.Open(cfg.DB, sqlite.Options{GroupRows: groupRows})
	if err != nil {
		return Summary{}, err // it names the database
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
		return Summary{}, err // it names the file
	}
	var sink catalog.Sink = db
	if cfg.DB == sqlite.Memory {
		sink = dryRunSink{db}
	}
	if cfg.wrapSink != nil {
		sink = cfg.wrapSink(sink)
	}
	q, err := memqueue.New(memqueue.Options{VisibilityTimeout: time.Minute})
	if err != nil {
		return Summary{}, err
	}
	opts := cfg.Split
	opts.HashContent = true
	// Block checksums every checkpoint interval: a file edited in place
	// during the run is caught before any edited byte is committed.
	opts.BlockRows = int64(cfg.Every)
	if opts.BlockRows <= 0 {
		opts.BlockRows = defaultEvery
	}
	pl := pipeline.New(pipeline.Ports{Source: src, Store: db, Sink: sink, Queue: q,
		Reports: file.Reports{Dir: cfg.ReportDir}, Staging: file.Staging{Dir: cfg.StagingDir}},
		pipeline.Options{Profile: cfg.Profile, Split: opts, Log: cfg.Log,
			Worker: shard.Options{Owner: runOwner(), CheckpointEvery: cfg.Every, Pool: cfg.Pool, MaxRecord: cfg.Split.MaxRecord,
				SinkRate: cfg.WriteRate, BreakerFailures: 5, BreakerTimeout: cfg.breakerTimeout}})
	if _, err := cfg.Profile.Compile(); err != nil {
		return Summary{}, err
	}
	var (
		plan split.Plan
		reg  split.Outcome
	)
	pprof.Do(ctx, pprof.Labels("stage", "split"), func(ctx context.Context) { // a CPU profile's stage (docs/performance.md)
		if isWorkbook(path) {
			plan, reg, err = splitWorkbook(ctx, cfg, pl, db, src, info)
			return
		}
		plan, reg, err = pl.Split(ctx, pipeline.SplitRequest{Info: info, SameContent: true, ID: func(plan split.Plan) string {
			if plan.Content == "" { // rejected before the data was read: hash what identifies it
				return BatchID(fmt.Sprintf("%s|%d|%s", info.URI, info.Size, info.ETag), cfg.Profile.RuleVersion())
			}
			content := plan.Content
			if cfg.Salt != "" {
				content += "\n" + cfg.Salt
			}
			return BatchID(content, cfg.Profile.RuleVersion())
		}})
	})
	if err != nil {
		return Summary{}, err
	}
	id := reg.Batch.ID
	sum := Summary{Batch: reg.Batch, Resumed: !reg.Created && !reg.Batch.Status.Finished(), Existing: !reg.Created && reg.Batch.Status.Finished()}
	cfg.Log.Info("batch registered", "batch_id", id, "shards", reg.Batch.Shards, "rows_total", reg.Batch.Counts.Total, "created", reg.Created, "sent", reg.Sent)
	if w := plan.Weights; w != nil && reg.Created && len(w.Shards) > 0 {
		cfg.Log.Info("shards weighted", "batch_id", id, "expression", w.Expression, "weight_total", w.Total,
			"shard_weight_min", slices.Min(w.Shards), "shard_weight_max", slices.Max(w.Shards), "rows_default_weight", w.Fallback)
	}
	if !reg.Batch.Status.Finished() {
		if err := db.ReleaseLeases(ctx, id); err != nil {
			return sum, err // "release leases of <batch>: ..."
		}
		if err := work(ctx, cfg, pl, db, q, id); err != nil {
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

// splitWorkbook splits a workbook. Its sheets are staged under the batch's
// id, so the id (content hash and rule version) comes first; a batch that
// exists already (a rerun) is resumed or reported as it is, without reading
// the workbook or staging it again.
func splitWorkbook(ctx context.Context, cfg Config, pl *pipeline.Pipeline, db *sqlite.DB, src *file.Source, info object.Info) (split.Plan, split.Outcome, error) {
	rc, err := src.Open(ctx, info, 0, -1)
	if err != nil {
		return split.Plan{}, split.Outcome{}, err // the source names the file
	}
	sum := sha256.New()
	_, err = io.Copy(sum, rc)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return split.Plan{}, split.Outcome{}, err
	}
	content := hex.EncodeToString(sum.Sum(nil))
	id := BatchID(content, cfg.Profile.RuleVersion())
	if b, err := db.GetBatch(ctx, id); err == nil {
		n, err := pl.Resume(ctx, b, &info)
		return split.Plan{Info: info, Content: content}, split.Outcome{Batch: b, Sent: n}, err
	} else if !errors.Is(err, state.ErrNotFound) {
		return split.Plan{}, split.Outcome{}, err
	}
	return pl.Split(ctx, pipeline.SplitRequest{Info: info, BatchID: id, Content: content, SameContent: true})
}

// dryRunSink is the sink of a dry run (an in-memory database, whose catalog
// is empty): an update row of a SKU it has not seen counts as imported, not
// UnknownSKU, since whether the real catalog has it cannot be known (as
// SKUExists cannot be found in a dry run).
type dryRunSink struct{ catalog.Sink }

// Write writes to the in-memory catalog and counts Unknown outcomes as
// Written.
func (s dryRunSink) Write(ctx context.Context, mode catalog.WriteMode, ps []catalog.Product) ([]catalog.Outcome, error) {
	outs, err := s.Sink.Write(ctx, mode, ps)
	for i := range outs {
		if outs[i].Result == catalog.Unknown {
			outs[i].Result = catalog.Written
		}
	}
	return outs, err
}

// runOwner is the lease owner of one run: importctl-<host>-<pid>-<random>.
// The pid alone repeats (pid 1 in every container, reused pids, two hosts
// on one shared database file), and a claim by the same owner takes a live
// lease over (it is the holder itself coming back), so the owner carries a
// random part made once per run.
func runOwner() string {
	host, _ := os.Hostname()
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return fmt.Sprintf("importctl-%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}
