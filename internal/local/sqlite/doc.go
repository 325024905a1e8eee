// Package sqlite is the embedded adapter of the state store (state.Store) and
// of the product sink (catalog.Sink, catalog.Reader): one SQLite file holds
// batches, shards, leases, checkpoints, counters, failure records and the
// products. `importctl run` uses it for the whole pipeline in one process;
// ":memory:" serves dry runs (`importctl validate`).
//
// It keeps, for the embedded world:
//   - invariant 1: CreateBatch inserts a batch only if its id is new;
//   - invariant 2: Claim bumps the shard's epoch (the fencing token) and every
//     shard write checks it inside the same transaction;
//   - invariant 3: a checkpoint never moves backwards, and its failure records
//     and counters are written in the same transaction as the checkpoint;
//   - invariant 4: failure records are keyed by (batch, sheet, row) and
//     products by SKU, so replays overwrite instead of duplicating;
//   - invariant 5: Write decides every product with catalog.Decide against
//     its SKU's state (values, field stamps and holders) and writes in one
//     write transaction, so the lowest position of a SKU in a batch always
//     wins and each field holds its newest batch's value (decision 17). The
//     state is read in one query (the lookup path), or, for every mode but
//     update, assumed empty and checked by the insert itself (the fresh
//     path: INSERT ... ON CONFLICT DO NOTHING, every row must go in, else
//     it is undone and the lookup path runs); Prepare does the fresh path's
//     deciding and encoding ahead, off the writer (WritePrepared, decision
//     28).
//
// # Opening a file
//
// Before anything changes the file (the write connection switches it to WAL
// mode), Open reads its header on a read-only connection that sets no
// pragma: a file that is not SQLite, or another program's database (its
// PRAGMA application_id is not ApplicationID, "CIMP", which Open sets in
// every database it creates or upgrades; or, in a database written before
// that, no batches table of ours), is refused with ErrNotOurs and left as it
// was. A writable open also checks that the file and the -wal and -shm files
// beside it can be written: a read of the database while its file was
// read-only made those with its read-only mode, and every write would then
// fail "attempt to write a readonly database"; such a file of this process's
// owner gets the database's mode back, another is named in the error.
// Options.ReadOnly (the reading commands) opens a database of the current
// schema without a writer, with mode=ro, and immutable=1 when the file may
// not be written and has no WAL (a read-only mount): nothing is written and
// no -shm is made.
//
// # Schema
//
// The schema is schema.sql (embedded, applied idempotently by Open; version in
// PRAGMA user_version):
//
//   - batches(batch_id PK, status, source_uri, source_size, source_etag,
//     source_version, source_mod_time, layout JSON, profile BLOB, rule_version,
//     shards, shards_done, rows_total, rows_imported, rows_failed,
//     rows_skipped, by_reason JSON, message, report, trace_id, created_at,
//     updated_at, finished_at, parent, failures_resolved, batch_order,
//     rows_superseded, warnings JSON (v6)), index on created_at. batch_order is the upload order
//     (state.Batch.Order): CreateBatch of a batch with order 0 assigns
//     MAX(batch_order) + 1 in its write transaction, a sequence 1, 2, 3...
//     (an upgraded database numbers its existing batches by rowid);
//   - shards(batch_id, shard, sheet, sheet_index, byte_start, byte_end,
//     first_row, rows, checksum, status, cp_next_offset, cp_next_row,
//     cp_rows_total, cp_rows_imported, cp_rows_failed, cp_rows_skipped, owner,
//     epoch, lease_until, attempts, message, updated_at, staged,
//     cp_rows_superseded, blocks (JSON state.Blocks, v4);
//     PK(batch_id, shard)), WITHOUT ROWID;
//   - failures(batch_id, sheet, row, layer, reason, field, message, raw_line,
//     cells JSON, field_mapping JSON, rule_version, retry_count, failure_at,
//     trace_id, shard; PK(batch_id, sheet, row)), index on (batch_id, shard);
//   - products(sku PK, name, category, brand, price TEXT "12.50", currency,
//     stock, status, description, image_urls JSON, meta JSON): meta (v7)
//     holds the provenance (batch, row, byte range, sheet), the stamps
//     (catalog.EncodeStamps, or the order alone for a product one batch
//     created whole), the displaced rows and the holders (meta.go); the view
//     products_view shows them as columns. No secondary index (v7 drops
//     products_by_source: CountBatch scans). A database of schema 6 or
//     older has its products rebuilt into meta when opened. A deleted
//     product stays as a tombstone row;
//   - shard_progress(batch_id, shard, seq, at, rows_done, rows_failed,
//     failed_syntax, failed_semantic, failed_business, failed_infrastructure;
//     PK(batch_id, shard, seq)), WITHOUT ROWID: each shard's progress history
//     (state.Shard.Progress), one row per sample, thinned to
//     state.MaxSamples; added like triage_log below (CREATE TABLE IF NOT
//     EXISTS, no version bump). A checkpoint appends with one INSERT: the
//     newest sample of each shard this process checkpoints is cached for the
//     lease's epoch;
//   - triage_log(id INTEGER PK, batch_id, shard, at, kind, layer, reason,
//     message, action, delay_ns, receive_count, retry_count, message_id),
//     index on (batch_id, at, id): the triage log ((*DB).TriageLog). Added
//     with CREATE TABLE IF NOT EXISTS and without a version bump, so a
//     database of an earlier build gains it when opened, and earlier builds
//     still open (and ignore it in) a database that has it.
//
// Times are UTC text in RFC 3339 with nine fraction digits (fixed width, so
// they sort as text); NULL is the zero time. Lists and maps are JSON text.
//
// # Connections and transactions
//
// All writes of a process go through one dedicated connection, serialized by
// a mutex, and every read-decide-write runs in BEGIN IMMEDIATE, so that two
// processes sharing a file cannot interleave them either (the second waits
// up to Options.BusyTimeout, then gets a Throttled error). Reads of a file
// use a separate pool of connections (WAL lets them run beside the writer);
// an in-memory database has only the one connection.
//
// With Options.GroupRows (importctl run: 1), Write and Checkpoint calls
// share one transaction, each call in a savepoint, committed by the
// Checkpoint that finds it full (group.go): a checkpoint is committed with
// the products and failure records it covers, and a crash loses them
// together. Any other write and any read commit the open group first, so
// the process reads what it wrote; the checkpointer commits a group left
// open for GroupWait. Statement journals are kept in memory (temp_store).
//
// The writer does not checkpoint the WAL (wal_autocheckpoint=0): a
// checkpoint inside a commit stalls that write for two fsyncs. A background
// goroutine with its own connection runs PASSIVE checkpoints every 64
// commits (and every second), and holds writes off only to finish one when
// the log passes 16384 frames (~64 MiB), so the log is reused and stays
// bounded. Durability is WAL with synchronous=NORMAL either way: a commit
// survives a crash of the process; an OS crash or power loss may lose the
// last commits, never corrupt the file.
//
// # Drivers
//
// The adapter is written against database/sql and runs on both
// github.com/mattn/go-sqlite3 ("sqlite3", cgo) and modernc.org/sqlite
// ("sqlite", pure Go); the tests run the contract suites on both. Product
// inserts run on the driver's own statements (database/sql's Conn.Raw,
// raw.go), as queries: mattn's driver binds a query's arguments and steps
// it in one cgo call. The default is mattn's when the binary is built with
// cgo and modernc's otherwise. By measurement on the 2-core build machine
// before schema 7 (BenchmarkSinkWrite,
// BenchmarkCheckpoint; file database, 100-product Write calls): mattn
// 116-134k rows/s for new SKUs and 127-150k with 5% duplicates, modernc
// 119-130k and 94-98k; checkpoints 7.5-10.6k/s against 6.3-6.4k/s.
//
// # Errors
//
// SQLITE_BUSY and SQLITE_LOCKED become a *failure.ImportError with reason
// Throttled (transient); other driver errors become Internal. The state
// errors (state.ErrNotFound, ErrLeased, ErrFenced, ErrShardFinished,
// ErrBatchFinished) are returned wrapped: test them with errors.Is.
//
// # Decisions where the ports leave room
//
// The contract suites (statetest, catalogtest) pin the ones callers rely on
// (their tests marked "(decision)"), so that every adapter makes them too.
//
// state.Store:
//   - CreateBatch stores Shards = len(shards) and ShardsDone = the number of
//     given shards that are already finished, whatever b says; an empty
//     Status is RUNNING, an empty shard Status PENDING, a zero CreatedAt is
//     now; UpdatedAt defaults to CreatedAt.
//   - ListShards of an unknown batch is ErrNotFound; ListBatches with
//     limit <= 0 lists every batch.
//   - A lease is current when both its Epoch and its Owner are the shard's:
//     anything else is ErrFenced. Lease expiry alone does not fence (Checkpoint
//     has no clock argument): only a newer Claim does.
//   - Claim by the owner that already holds the live lease succeeds and bumps
//     the epoch (fencing its older self). Claim checks, in order: unknown
//     batch or shard (ErrNotFound), finished batch (ErrBatchFinished),
//     finished shard (ErrShardFinished), live lease of another owner
//     (ErrLeased). An ESCALATED shard can be claimed (redrive).
//   - Checkpoint and FinishShard check, in order: ErrNotFound, ErrFenced,
//     ErrShardFinished, ErrBatchFinished (a batch aborted by another worker
//     stops the others at their next checkpoint).
//   - A checkpoint is behind the stored one when NextRow, NextOffset or any
//     of its counts is lower. Checkpoint with a checkpoint behind is not an
//     error: the failures are still upserted and the lease extended, but the
//     checkpoint and the counters stay (a late retry of an applied call is
//     harmless). The same holds for FinishShard's final checkpoint.
//   - FinishShard also adds its final checkpoint's delta to the batch's
//     counters, and ends the lease (LeaseUntil zero). Finishing an already
//     finished shard with the same status returns the batch unchanged; with
//     another status it is ErrShardFinished.
//   - FinishBatch stores the outcome it is given (state.Final, failures by
//     reason included); status must be a finished one. A zero now means the
//     clock.
//   - Failure records with one key twice in a call: the last wins. Failures
//     orders sheets bytewise, then rows numerically; paging applies when
//     AfterSheet or AfterRow is set; Limit <= 0 is no limit. Failures and
//     CountFailures of an unknown batch are empty, not ErrNotFound.
//   - Times are kept to the nanosecond and returned in UTC; nil and empty
//     lists, maps and profiles are the same.
//   - Invalid arguments (empty owner, ttl <= 0, a status the call cannot
//     set) are an Internal ImportError naming the field.
//
// catalog.Sink and catalog.Reader:
//   - A Write call is one transaction: it stores all of its changes or none.
//   - An empty mode is Upsert; a mode that is not catalog.WriteMode.Valid is
//     an Internal ImportError.
//   - A product stored before stamps (schema 2; stamps NULL) has every stamp
//     0 and exists: any ordered write changes its present fields.
//   - Products of the same batch with the same SheetIndex and Row are the same
//     position (a replay), whatever their Sheet name says.
//   - An empty ImageURLs list is stored as NULL and read back as nil.
//   - Write may be given products of several batches in one call; each is
//     decided against the SKU's state at that point of the slice.
package sqlite
