package sqlite

import (
	"context"
	"database/sql"
	_ "embed"
	"errors"
	"fmt"
	"net/url"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/mattn/go-sqlite3" // registers "sqlite3" (a stub without cgo)
	_ "modernc.org/sqlite"          // registers "sqlite"

	"github.com/catalog-import/catalog-import/internal/catalog"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/state"
)

// Schema is the SQL that Open applies (idempotently) to a new or existing
// database: the batches, shards, failures and products tables.
//
//go:embed schema.sql
var Schema string

// SchemaVersion is the version of Schema, kept in PRAGMA user_version.
const SchemaVersion = 7

// addedColumns are the columns added to tables after their first release.
// Opening a database adds those it lacks (before Schema, whose indexes may
// use them), so a database of any earlier version keeps working.
var addedColumns = []struct{ table, column, decl string }{
	{"batches", "parent", "TEXT NOT NULL DEFAULT ''"},              // v2
	{"batches", "failures_resolved", "INTEGER NOT NULL DEFAULT 0"}, // v2
	{"failures", "resolved_by", "TEXT NOT NULL DEFAULT ''"},        // v2
	{"failures", "resolved_at", "TEXT"},                            // v2
	{"shards", "staged", "TEXT"},                                   // v2
	{"batches", "batch_order", "INTEGER NOT NULL DEFAULT 0"},       // v3 (existing batches get their rowid: creation order)
	{"batches", "rows_superseded", "INTEGER NOT NULL DEFAULT 0"},   // v3
	{"shards", "cp_rows_superseded", "INTEGER NOT NULL DEFAULT 0"}, // v3
	{"products", "stamps", "TEXT"},                                 // v3
	{"products", "holders", "TEXT"},                                // v3
	{"batches", "check_shards", "INTEGER"},                         // v4
	{"batches", "check_rows", "INTEGER NOT NULL DEFAULT 0"},        // v4
	{"batches", "check_failed", "INTEGER NOT NULL DEFAULT 0"},      // v4
	{"shards", "check_rows", "INTEGER"},                            // v4
	{"shards", "check_failed", "INTEGER NOT NULL DEFAULT 0"},       // v4
	{"shards", "blocks", "TEXT"},                                   // v5
	{"batches", "warnings", "TEXT"},                                // v6
}

// Driver names accepted in Options.Driver.
const (
	// DriverMattn is github.com/mattn/go-sqlite3 (cgo).
	DriverMattn = "sqlite3"
	// DriverModernc is modernc.org/sqlite (pure Go).
	DriverModernc = "sqlite"
)

// DefaultDriver is the driver of the zero Options: mattn's when built with
// cgo (faster by measurement), modernc's otherwise.
const DefaultDriver = defaultDriver

// Memory is the path of a private in-memory database (dry runs, tests).
const Memory = ":memory:"

// Options configure Open. The zero value is ready to use.
type Options struct {
	// Driver is DriverMattn or DriverModernc; "" means DefaultDriver.
	Driver string
	// BusyTimeout is how long a write waits for another process's write
	// transaction before failing with Throttled. Default 5s.
	BusyTimeout time.Duration
	// ReadConns is the size of the read pool of a file database. Default 4.
	ReadConns int
	// Now is the clock for the timestamps of calls that take no time
	// argument (UpdatedAt of checkpoints). Default time.Now.
	Now func() time.Time
	// ReadOnly opens a file database for reading only, when its schema is
	// this program's: nothing is written, a database on a read-only mount
	// or without write permission can be read, and no -shm file is made
	// with its read-only mode. Every write then fails. A database of an
	// older schema is opened writable (and upgraded) when it can be.
	ReadOnly bool
	// GroupRows > 0 lets Write and Checkpoint calls share one write
	// transaction (a file database only; see group.go): a Write leaves it
	// open, and the first Checkpoint after it holds GroupRows products, or
	// is GroupWait old, commits it. Any other write, and any read, commits
	// it first; so does Close. A crash loses the open group whole: its
	// checkpoints with its products. 0: every call commits (default).
	GroupRows int
	// GroupWait bounds how long a group stays open, also when no call
	// comes to commit it (default 100ms).
	GroupWait time.Duration
}

func (o *Options) setDefaults() {
	if o.Driver == "" {
		o.Driver = DefaultDriver
	}
	if o.BusyTimeout == 0 {
		o.BusyTimeout = 5 * time.Second
	}
	if o.ReadConns == 0 {
		o.ReadConns = 4
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.GroupWait <= 0 {
		o.GroupWait = 100 * time.Millisecond
	}
}

func (o Options) validate() error {
	var errs []error
	if o.Driver != DriverMattn && o.Driver != DriverModernc {
		errs = append(errs, fmt.Errorf("Options.Driver: %q is neither %q nor %q", o.Driver, DriverMattn, DriverModernc))
	}
	if o.BusyTimeout < 0 {
		errs = append(errs, fmt.Errorf("Options.BusyTimeout: %v is negative", o.BusyTimeout))
	}
	if o.ReadConns < 0 {
		errs = append(errs, fmt.Errorf("Options.ReadConns: %d is negative", o.ReadConns))
	}
	if o.GroupRows < 0 {
		errs = append(errs, fmt.Errorf("Options.GroupRows: %d is negative", o.GroupRows))
	}
	return errors.Join(errs...)
}

// DB is one SQLite database holding state and products. It implements
// state.Store, catalog.Sink and catalog.Reader and is safe for concurrent use.
type DB struct {
	opts     Options
	memory   bool
	path     string
	readOnly bool // opened with Options.ReadOnly: no write connection

	wdb *sql.DB // the writer's pool: exactly one connection
	rdb *sql.DB // the read pool (nil for :memory:)

	mu      sync.Mutex // serializes writes (and, in memory, every use of wc)
	wc      *sql.Conn  // the write connection
	stmts   map[string]*sql.Stmt
	commits int                      // write transactions committed, for the checkpointer
	args    []any                    // scratch for statement arguments, reused under mu
	tails   map[tailKey]progressTail // newest progress sample per shard, under mu (progress.go)
	group   group                    // the write transaction calls share, under mu (group.go)
	grouped atomic.Bool              // group.open, for reads that do not hold mu
	broken  atomic.Bool              // lost is set, for reads that do not hold mu
	lost    error                    // set when an open group could not be committed: every call fails
	raw     rawStmts                 // driver statements on the write connection, under mu (raw.go)
	fresh   freshPath                // when Write tries its fresh path, under mu (sink.go)

	cdb  *sql.DB       // the checkpointer's connection (nil for :memory:)
	ckpt chan struct{} // wakes the checkpointer
	stop chan struct{} // closed by Close
	done chan struct{} // closed when the checkpointer has returned
}

var (
	_ state.Store    = (*DB)(nil)
	_ catalog.Sink   = (*DB)(nil)
	_ catalog.Reader = (*DB)(nil)
)

// Open opens (creating if needed) the database at path, or a private
// in-memory database when path is ":memory:", and applies the schema.
func Open(path string, opts Options) (*DB, error) {
	opts.setDefaults()
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	if path == "" {
		return nil, fmt.Errorf("open: empty path")
	}
	if strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("open database %s: the path may not contain '?' or '#' nor be a file: URI", path)
	}
	if path == Memory {
		opts.GroupRows = 0 // one connection: nothing to share a transaction with
	}
	db := &DB{opts: opts, memory: path == Memory, path: path, stmts: map[string]*sql.Stmt{}, tails: map[tailKey]progressTail{}}
	ctx := context.Background()
	if !db.memory {
		// Before anything changes the file (the write connection sets WAL
		// mode): is it ours, and can it be written?
		immutable := immutableFile(path)
		insp, err := inspect(ctx, path, opts, immutable)
		if err != nil {
			return nil, fmt.Errorf("open database %s: %w", path, err)
		}
		switch {
		case insp.version > SchemaVersion:
			return nil, fmt.Errorf("open database %s: %w", path, newerSchema(insp.version))
		case opts.ReadOnly && !insp.empty && insp.version == SchemaVersion:
			return db.openReadOnly(ctx, immutable)
		case opts.ReadOnly && !insp.empty && !writable(path):
			return nil, fmt.Errorf("open database %s: it is read-only and has schema version %d, older than this program's %d: "+
				"run importctl once on it while it is writable to upgrade it", path, insp.version, SchemaVersion)
		}
		if err := checkWritable(path); err != nil {
			return nil, fmt.Errorf("open database %s: %w", path, err)
		}
	}
	var err error
	db.wdb, err = sql.Open(opts.Driver, dsn(path, opts, false))
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	db.wdb.SetMaxOpenConns(1)
	db.wdb.SetMaxIdleConns(1)
	db.wdb.SetConnMaxLifetime(0)
	db.wdb.SetConnMaxIdleTime(0)
	if db.wc, err = db.wdb.Conn(ctx); err != nil {
		db.wdb.Close()
		return nil, fmt.Errorf("open database %s: %w", path, mapErr(err))
	}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	if db.memory {
		return db, nil
	}
	// The writer never checkpoints: a checkpoint in the commit path stalls
	// the write for two fsyncs. The checkpointer does it beside the writer.
	for _, pragma := range []string{
		"PRAGMA wal_autocheckpoint = 0",
		fmt.Sprintf("PRAGMA journal_size_limit = %d", walSizeLimit),
		fmt.Sprintf("PRAGMA cache_size = %d", -cacheKiB),
		// Statement journals (a multi-row INSERT or a savepoint inside a
		// transaction keeps the pages it changes, to undo it alone) in
		// memory: in a temporary file they were one write per changed page,
		// a third of the writes of an import (decision 28).
		"PRAGMA temp_store = MEMORY",
	} {
		if _, err := db.wc.ExecContext(ctx, pragma); err != nil {
			db.Close()
			return nil, fmt.Errorf("open database %s: %s: %w", path, pragma, mapErr(err))
		}
	}
	if db.rdb, err = sql.Open(opts.Driver, dsn(path, opts, true)); err == nil {
		db.rdb.SetMaxOpenConns(opts.ReadConns)
		db.rdb.SetMaxIdleConns(opts.ReadConns)
		db.cdb, err = sql.Open(opts.Driver, dsn(path, opts, false))
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	db.cdb.SetMaxOpenConns(1)
	db.ckpt, db.stop, db.done = make(chan struct{}, 1), make(chan struct{}), make(chan struct{})
	go pprof.Do(context.Background(), pprof.Labels("stage", "wal-checkpoint"), func(context.Context) { db.checkpointer() })
	return db, nil
}

// openReadOnly opens db's file for reading only (Options.ReadOnly): a pool
// of read-only connections and no writer, nor checkpointer.
func (db *DB) openReadOnly(ctx context.Context, immutable bool) (*DB, error) {
	db.readOnly = true
	var err error
	if db.rdb, err = sql.Open(db.opts.Driver, readOnlyDSN(db.path, db.opts, immutable)); err != nil {
		return nil, fmt.Errorf("open database %s: %w", db.path, err)
	}
	db.rdb.SetMaxOpenConns(db.opts.ReadConns)
	db.rdb.SetMaxIdleConns(db.opts.ReadConns)
	var v int
	if err := db.rdb.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		db.Close()
		return nil, fmt.Errorf("open database %s: %w", db.path, mapErr(err))
	}
	return db, nil
}

// newerSchema is the error of a database written by a newer program.
func newerSchema(v int) error {
	return failure.New(failure.Internal, "", "database schema version %d is newer than this importctl's %d: a newer importctl upgraded it; "+
		"use that one on it (or another --db)", v, SchemaVersion)
}

// Checkpointing of the write-ahead log (file databases).
const (
	// checkpointEvery is how many commits wake the checkpointer.
	checkpointEvery = 64
	// checkpointTick is how often the checkpointer runs anyway.
	checkpointTick = time.Second
	// walFullFrames is the WAL length (frames of 4 KiB pages) past which the
	// checkpointer holds writes off for the end of its checkpoint, so that it
	// completes and the next write starts the log again.
	walFullFrames = 16384
	// walSizeLimit is the size a reset WAL file is truncated to.
	walSizeLimit = 64 << 20
	// cacheKiB is the page cache of the write connection. 16 MiB measured
	// the same CPU and wall time as 32 MiB on a 1M-row import, with peak
	// RSS 10-17 MB lower (decision 28).
	cacheKiB = 16 << 10
)

// checkpointer copies the WAL into the database beside the writer
// (PASSIVE checkpoints do not block writes). Under a steady stream of writes
// a passive checkpoint never catches up, so when the log is long it takes the
// write lock for the last frames: the checkpoint completes and the log is
// reused from its start.
func (db *DB) checkpointer() {
	defer close(db.done)
	every := checkpointTick
	if db.opts.GroupRows > 0 {
		every = min(every, db.opts.GroupWait/2)
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	ctx := context.Background()
	checkpoint := func() (frames int) {
		var busy, log, done int
		if err := db.cdb.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &log, &done); err != nil {
			return 0 // a later round retries; writes do not depend on it
		}
		return log
	}
	for {
		select {
		case <-db.stop:
			return
		case <-db.ckpt:
		case <-tick.C:
			db.expire()
		}
		if checkpoint() > walFullFrames {
			db.mu.Lock()
			checkpoint()
			db.mu.Unlock()
		}
	}
}

// committed counts a commit and wakes the checkpointer now and then. It is
// called with db.mu held.
func (db *DB) committed() {
	db.commits++
	if db.ckpt != nil && db.commits%checkpointEvery == 0 {
		select {
		case db.ckpt <- struct{}{}:
		default:
		}
	}
}

// dsn builds the data source name of path for the driver: the pragmas are
// the same (WAL, synchronous=NORMAL, busy_timeout, foreign keys off), their
// spelling is not.
func dsn(path string, o Options, readOnly bool) string {
	ms := strconv.FormatInt(o.BusyTimeout.Milliseconds(), 10)
	q := url.Values{}
	switch o.Driver {
	case DriverMattn:
		q.Set("_journal_mode", "WAL")
		q.Set("_synchronous", "NORMAL")
		q.Set("_busy_timeout", ms)
		q.Set("_foreign_keys", "0")
		// database/sql never shares a connection between goroutines, so
		// SQLite's per-connection mutex is pure cost (multi-thread mode).
		q.Set("_mutex", "no")
		if readOnly {
			q.Set("_query_only", "1")
		}
	default:
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(NORMAL)")
		q.Add("_pragma", "busy_timeout("+ms+")")
		q.Add("_pragma", "foreign_keys(0)")
		if readOnly {
			q.Add("_pragma", "query_only(1)")
		}
	}
	return path + "?" + q.Encode()
}

// upgradeProducts copies the products of schema 6 or older (renamed
// products_v6) into the v7 table: the provenance, stamps (NULL: "", every
// stamp 0) and holders columns become meta (meta.go).
const upgradeProducts = `INSERT INTO products (` + productCols + `)
	SELECT sku, name, category, brand, price, currency, stock, status, description, image_urls,
		json_array(batch_id, source_row, source_offset, source_length, COALESCE(stamps, ''),
			source_sheet, source_sheet_index, json(displaced), json(holders))
	FROM products_v6;
	DROP TABLE products_v6`

// migrate applies the schema and records its version.
func (db *DB) migrate(ctx context.Context) error {
	return db.write(ctx, "apply schema", func(tx *wtx) error {
		var v int
		if err := tx.c.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
			return err
		}
		if v > SchemaVersion {
			return newerSchema(v)
		}
		var rebuild int // a products table of schema 6 or older (no meta)
		if err := tx.c.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema s WHERE type = 'table' AND name = 'products'
			AND NOT EXISTS (SELECT 1 FROM pragma_table_info('products') WHERE name = 'meta')`).Scan(&rebuild); err != nil {
			return err
		}
		for _, c := range addedColumns {
			if c.table == "products" && rebuild == 0 {
				continue // v7: meta holds them
			}
			var have int // columns of that name (0 also when the table does not exist yet)
			if err := tx.c.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info(?) WHERE name = ?`, c.table, c.column).Scan(&have); err != nil {
				return err
			}
			var tables int
			if err := tx.c.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?`, c.table).Scan(&tables); err != nil {
				return err
			}
			if have == 0 && tables == 1 {
				if _, err := tx.c.ExecContext(ctx, fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", c.table, c.column, c.decl)); err != nil {
					return fmt.Errorf("upgrade database: add %s.%s: %w", c.table, c.column, err)
				}
				if c.table == "batches" && c.column == "batch_order" {
					// Batches of an older database are ordered as they were
					// created (rowid grows with every insert).
					if _, err := tx.c.ExecContext(ctx, `UPDATE batches SET batch_order = rowid`); err != nil {
						return fmt.Errorf("upgrade database: order the existing batches: %w", err)
					}
				}
			}
		}
		if rebuild == 1 {
			if _, err := tx.c.ExecContext(ctx, `DROP INDEX IF EXISTS products_by_source; ALTER TABLE products RENAME TO products_v6`); err != nil {
				return fmt.Errorf("upgrade database: products: %w", err)
			}
		}
		if _, err := tx.c.ExecContext(ctx, Schema); err != nil {
			return err
		}
		var id int
		if err := tx.c.QueryRowContext(ctx, "PRAGMA application_id").Scan(&id); err != nil {
			return err
		}
		if id != ApplicationID {
			if _, err := tx.c.ExecContext(ctx, fmt.Sprintf("PRAGMA application_id = %d", ApplicationID)); err != nil {
				return err
			}
		}
		if rebuild == 1 {
			if _, err := tx.c.ExecContext(ctx, upgradeProducts); err != nil {
				return fmt.Errorf("upgrade database: products: %w", err)
			}
		}
		if v < SchemaVersion {
			_, err := tx.c.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", SchemaVersion))
			return err
		}
		return nil
	})
}

// Close closes the database. Calls after Close fail.
func (db *DB) Close() error {
	if db.stop != nil {
		close(db.stop)
		<-db.done
		db.stop = nil
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	var errs []error
	if db.group.open && db.wc != nil {
		errs = append(errs, db.commitGroup(context.Background()))
	}
	if db.wc != nil {
		errs = append(errs, db.raw.close(db.wc))
	}
	for _, s := range db.stmts {
		errs = append(errs, s.Close())
	}
	db.stmts = map[string]*sql.Stmt{}
	if db.wc != nil {
		errs = append(errs, db.wc.Close())
		db.wc = nil
	}
	if db.wdb != nil {
		errs = append(errs, db.wdb.Close())
	}
	if db.rdb != nil {
		errs = append(errs, db.rdb.Close())
	}
	if db.cdb != nil {
		errs = append(errs, db.cdb.Close())
	}
	return errors.Join(errs...)
}

// Driver returns the name of the driver in use.
func (db *DB) Driver() string { return db.opts.Driver }

// wtx is a write transaction on the write connection.
//
// Its statements run with dctx, which is never done: both drivers watch a
// cancellable context with a goroutine per statement (an interrupt on
// cancel), which costs more than a short statement. Cancellation is checked
// before each statement instead, and a write transaction is short.
type wtx struct {
	db   *DB
	ctx  context.Context // the caller's
	dctx context.Context // what the driver sees: ctx without its cancellation
	c    *sql.Conn
	undo []func() // run (under mu) when the transaction does not commit
}

// stmt returns the statement for query, prepared once on the write connection.
func (tx *wtx) stmt(query string) (*sql.Stmt, error) {
	if s, ok := tx.db.stmts[query]; ok {
		return s, nil
	}
	s, err := tx.c.PrepareContext(tx.dctx, query)
	if err != nil {
		return nil, err
	}
	tx.db.stmts[query] = s
	return s, nil
}

// scratch returns the reusable argument buffer, empty, with room for n.
func (tx *wtx) scratch(n int) []any {
	if cap(tx.db.args) < n {
		tx.db.args = make([]any, 0, n)
	}
	return tx.db.args[:0]
}

// release drops the references a scratch buffer holds.
func (tx *wtx) release(args []any) {
	clear(args[:cap(args)])
}

func (tx *wtx) exec(query string, args ...any) (sql.Result, error) {
	if err := tx.ctx.Err(); err != nil {
		return nil, err
	}
	s, err := tx.stmt(query)
	if err != nil {
		return nil, err
	}
	return s.ExecContext(tx.dctx, args...)
}

func (tx *wtx) query(query string, args ...any) (*sql.Rows, error) {
	if err := tx.ctx.Err(); err != nil {
		return nil, err
	}
	s, err := tx.stmt(query)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(tx.dctx, args...)
}

func (tx *wtx) queryRow(query string, args ...any) *sql.Row {
	s, err := tx.stmt(query)
	if err == nil {
		err = tx.ctx.Err()
	}
	if err != nil {
		// A query that fails the same way gives a Row that reports err.
		return tx.c.QueryRowContext(tx.ctx, query, args...)
	}
	return s.QueryRowContext(tx.dctx, args...)
}

// write runs fn in a BEGIN IMMEDIATE transaction on the write connection and
// commits it if fn returns nil (and, with it, an open group: see group.go).
// op names the operation in errors.
func (db *DB) write(ctx context.Context, op string, fn func(tx *wtx) error) error {
	return db.run(ctx, op, commitCall, 0, fn)
}

// querier is what reads need: the read pool, or the write connection.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// read runs fn with a connection to read from: the read pool of a file, or
// the one connection of an in-memory database (then under the write mutex).
func (db *DB) read(ctx context.Context, op string, fn func(q querier) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	var q querier = db.rdb
	if db.grouped.Load() || db.broken.Load() {
		// Read what this process wrote: commit the open group first (or
		// fail, when a group was lost).
		if err := db.flush(); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
	}
	if db.memory {
		db.mu.Lock()
		defer db.mu.Unlock()
		if db.wc == nil {
			return fmt.Errorf("%s: %w", op, failure.New(failure.Internal, "", "database is closed"))
		}
		q = db.wc
	}
	if err := fn(q); err != nil {
		return wrapErr(ctx, op, err)
	}
	return nil
}

// wrapErr prefixes err with op and maps driver errors to reason codes: busy
// and locked databases are Throttled, anything else from the driver is
// Internal. State sentinels, ImportErrors and context errors keep their
// identity.
//
// Throttled (rather than ServiceUnavailable) because a busy database is
// contention, not an outage: the worker retries it within its retry budget
// and halves its sink rate, which is the right answer to a writer that is
// being held off.
func wrapErr(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		return fmt.Errorf("%s: %w (%v)", op, ctx.Err(), err)
	}
	return fmt.Errorf("%s: %w", op, mapErr(err))
}

// mapErr turns a driver error into an ImportError with a reason code; other
// errors are returned as they are.
func mapErr(err error) error {
	for _, sentinel := range []error{state.ErrNotFound, state.ErrLeased, state.ErrFenced,
		state.ErrShardFinished, state.ErrBatchFinished, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, sentinel) {
			return err
		}
	}
	if _, ok := failure.As(err); ok {
		return err
	}
	code, ok := mattnCode(err)
	if !ok {
		code, ok = moderncCode(err)
	}
	if (ok && (code&0xff == codeBusy || code&0xff == codeLocked)) || (!ok && busyText(err.Error())) {
		return failure.Wrap(failure.Throttled, "", err, "database is busy: "+err.Error())
	}
	return failure.Wrap(failure.Internal, "", err, "")
}

// busyText reports whether an error without a result code (one that lost
// its driver type on the way, e.g. flattened to text) says the database is
// busy or locked.
func busyText(msg string) bool {
	for _, s := range []string{"database is locked", "database table is locked", "database is busy", "SQLITE_BUSY", "SQLITE_LOCKED"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// SQLite primary result codes.
const (
	codeBusy   = 5
	codeLocked = 6
)

// QueryContext runs a query in the transaction with a cached statement.
func (tx *wtx) QueryContext(_ context.Context, query string, args ...any) (*sql.Rows, error) {
	return tx.query(query, args...)
}

// QueryRowContext runs a one-row query in the transaction with a cached statement.
func (tx *wtx) QueryRowContext(_ context.Context, query string, args ...any) *sql.Row {
	return tx.queryRow(query, args...)
}
