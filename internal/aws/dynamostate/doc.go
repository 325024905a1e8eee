// Package dynamostate is the DynamoDB adapter of the state store port
// (state.Store): batches, shards, leases with fencing tokens, checkpoints,
// counters and failure records in one table. It passes the same contract
// suite as the SQLite store (internal/state/statetest) and makes the same
// decisions where the port leaves room (see internal/local/sqlite).
//
// It keeps:
//   - invariant 1: a batch item is written only with attribute_not_exists(pk);
//   - invariant 2: Claim is one conditional UpdateItem that bumps the epoch,
//     and every later shard write is conditioned on that epoch and owner;
//   - invariant 3: a checkpoint is written only if the stored one is still
//     the one the call read (so it never moves back, even when a write is
//     replayed), in the same transaction as the failure records that fit;
//     the batch's counts are the sum of its shards' checkpoints, so each
//     checkpoint's counts count exactly once (decision 30);
//   - invariant 4: failure records are keyed by (batch, sheet, row), so a
//     replay overwrites them.
//
// # Table
//
// One table (TableInput; the SAM template declares the same): key pk (S,
// HASH) and sk (S, RANGE), on-demand billing, index gsi1 (gsi1pk, gsi1sk,
// projection KEYS_ONLY), time to live on expires_at (TTLInput).
//
//	batch    pk=BATCH#<id>  sk=#BATCH                                 expires_at=<finished_at + BatchTTL>, once finished
//	         gsi1pk=BATCHES gsi1sk=<created_at, UTC, RFC 3339 with 9 fraction digits>#<id>
//	shard    pk=BATCH#<id>  sk=SHARD#<index, 6 digits>               expires_at=<finished + BatchTTL>, once DONE or SKIPPED
//	                                                                 (or its batch finished)
//	failure  pk=BATCH#<id>#F<part, 2 digits>                            expires_at=<failure time + FailureTTL>
//	         sk=FAIL#<escaped sheet>#<row, 12 digits>
//	         (batches registered before decision 30: pk=BATCH#<id>)
//	triage   pk=BATCH#<id>  sk=TRIAGE#<at, UTC, RFC 3339 with 9 fraction digits>#<shard, 6 digits>#<16 random hex digits>
//	                                                                 expires_at=<at + BatchTTL>
//
// A batch item written since decision 30 has item_layout = 2: its
// checkpoints write only their shard items (the batch item's rows_*
// counters hold what CreateBatch was given until FinishBatch stores the
// final counts), and its failure records are spread over 16 partition keys,
// part = FNV-1a(sheet, NUL, row in decimal) mod 16, so a record's key
// follows from (batch, sheet, row) alone. A batch item without it was
// registered before: its records are under BATCH#<id>, and a worker still
// writes them there.
//
// Attributes carry the names of the SQLite columns (status, rows_imported,
// cp_next_row, epoch, lease_until, ...). Numbers are N; times are UTC text
// in RFC 3339 with nine fraction digits (fixed width, so lease_until compares
// as text in conditions); a zero time, an empty string and an empty list or
// map are left out. The layout, a record's cells and its field mapping are
// JSON text, the profile is B, failures by reason is a map of N, a batch's
// warnings a list of S (at most state.MaxWarnings of state.MaxWarningBytes:
// every checkpoint reads the batch item, one read unit while it stays under
// 4 KB). A batch item also holds
// created_by, a random token of the CreateBatch call that wrote it.
//
// A batch item's batch_order is its upload order (state.Batch.Order). There
// is no cheap global sequence in DynamoDB, so CreateBatch keeps the order the
// caller gives (the splitter's state.OrderAt of the S3 event time and the
// batch id) and, given 0, stores state.OrderAt(created_at, id). Counters
// rows_superseded and cp_rows_superseded are absent from items written
// before they existed and read as 0 (checkpoint conditions accept a missing
// cp_rows_superseded for 0).
//
// The sheet in a failure key is escaped so that keys sort as (sheet
// bytewise, row): every byte up to '$' is written '$' and two hex digits
// ("Sheet 2" is "Sheet$202"). With the sheet written literally, "Sheet 2"
// would sort before "Sheet" (' ' < '#'). Shard indexes above 999,999 and rows
// outside 0..999,999,999,999 are refused, since the keys would stop sorting
// as the numbers. A failure item over 350 KB keeps its raw line and cells
// gzip-compressed (raw_gz); if even that is over, the raw line is cut at a
// UTF-8 boundary, the cells are dropped and raw_truncated holds the original
// length (rows may be up to 1 MiB; DynamoDB items up to 400 KB).
//
// Triage log entries (TriageLog, the triage.Log adapter) live beside the
// batch's other items; their fixed-width time makes a Query on the TRIAGE#
// prefix list them oldest first, and the random suffix keeps two entries of
// one shard at one time apart. They carry no gsi1 keys; they expire
// BatchTTL after their time (entries of triage.UnknownBatch too, which no
// batch's end would reach).
//
// Expiry (decision 24): a batch is kept BatchTTL (default 90 days) after it
// finished. FinishShard sets a DONE or SKIPPED shard's expires_at in its
// transaction (no extra request); FinishBatch sets the batch's and, when
// the batch stopped before every shard finished (ABORTED, CANCELLED, an
// ESCALATED shard), the remaining shards' (a Query and an UpdateItem per
// such shard). A batch that runs longer than BatchTTL after one of its
// shards finished loses that shard's item: finalization then names the
// missing shards and the batch is FAILED (never silently short).
//
// # Requests per operation
//
//	CreateBatch   GetItem + Query (shards of a crashed attempt) + one TransactWriteItems
//	              per 99 shards (PutItem when there are none); a duplicate: one GetItem
//	GetBatch      GetItem (+ Query of its shards while it is unfinished)
//	ListShards    GetItem + Query
//	ListBatches   Query on gsi1 (keys) + BatchGetItem per 100 batches (+ Query per unfinished batch)
//	Failures, CountFailures  GetItem (the layout) + Query per partition (17: 16 and the
//	              batch's own; 1 for a batch registered before decision 30), concurrently
//	Claim         GetItem (batch status) + UpdateItem
//	Checkpoint    BatchGetItem (shard and batch) + UpdateItem (the shard) without failure
//	              records, else TransactWriteItems (the shard and up to 99 records); more
//	              records: BatchWriteItem per 25, before it
//	FinishShard   BatchGetItem + TransactWriteItems (shard and batch: shards_done)
//	FinishBatch   UpdateItem (+ Query and UpdateItem per unfinished shard when stopped early)
//	PutFailures   GetItem per batch named (the layout) + BatchWriteItem per 25
//	ResolveFailures  GetItem + TransactWriteItems per 99 keys
//	ReleaseLeases GetItem + Query + UpdateItem per leased shard
//
// A shard of 1,000 rows checkpointed every 100 rows therefore costs 12 write
// requests (claim, 10 checkpoints, finish) as long as no checkpoint has more
// than 99 failed rows; TestRequestsPerOperation pins these numbers. Reads
// are consistent, except ListBatches (a global index is eventually
// consistent: a batch created a moment ago may be missing from it).
//
// Costs to know: each transactional write costs two write units per KB of
// the item, a plain UpdateItem one. No checkpoint writes the batch item
// (decision 30: before, every checkpoint of every shard updated it in its
// transaction, 6 units, and concurrent checkpoints of one batch cancelled
// each other with TransactionConflict); it reads it (status and layout,
// one read unit). Reading an unfinished batch's counts costs a Query of
// its shard items, paid for their whole size (about 1-3 KB a shard, 4 KB
// with block checksums): about 0.5-1 read unit a shard, so a status of a
// 2,000-shard batch costs about 1,000-2,000 read units ($0.0001-0.0003).
// gsi1 projects only the keys, which no write but CreateBatch sets.
//
// # CreateBatch and crashes
//
// The batch item is the commit point and is written last. Shards are written
// in transactions of up to 99, each with a ConditionCheck that the batch item
// does not exist; the last transaction writes the remaining shards and the
// batch item (attribute_not_exists(pk)). So:
//   - a splitter that crashes between transactions leaves shard items but no
//     batch; every operation starts from the batch item (GetBatch,
//     ListShards, Claim: ErrNotFound), so nobody sees them;
//   - its retry finds no batch, queries the shard items left behind, and
//     rewrites all of its shards (a plain Put: the stale ones are overwritten)
//     and deletes those it does not have, in the same guarded transactions,
//     then writes the batch item: the batch ends with exactly the retry's
//     shards, even if the split came out differently;
//   - once the batch item exists no guarded transaction can succeed, so a
//     slow duplicate never overwrites a shard a worker has claimed; it
//     reads the batch and returns it with created=false;
//   - a transaction that was applied but whose response was lost is sent
//     again by the SDK: AWS answers from its client request token, moto runs
//     it again and its condition fails; the call then reads the batch and
//     reports created=true only if created_by is its own token.
//
// # Checkpoints, fencing and counters
//
// Checkpoint and FinishShard read the shard and the batch (one consistent
// BatchGetItem), decide in the order SQLite does (ErrNotFound, ErrFenced,
// ErrShardFinished, ErrBatchFinished, ErrBatchSuspended; a checkpoint
// behind the stored one changes nothing but extends the lease), then
// write. A checkpoint writes only its shard item (decision 30), conditioned
// on epoch, owner, not finished and the checkpoint read: one UpdateItem, or
// with failure records one TransactWriteItems of the shard and the records.
// FinishShard writes a transaction of the shard and the batch
// (shards_done, conditioned on RUNNING and on the shards_done read). A
// refused condition (ALL_OLD returns the item) says why: a newer epoch is
// ErrFenced, a finished shard ErrShardFinished, a finished batch
// ErrBatchFinished; a checkpoint that moved meanwhile (a replay of this
// very call) or a transaction conflict reads again and retries, with
// backoff, at most Options.MaxAttempts times.
//
// The batch's counts are not written by checkpoints: GetBatch, ListBatches,
// SuspendBatch, ResumeBatch and a repeated CreateBatch give an unfinished
// batch's outcomes as the sum of its shards' checkpoint counts (one Query
// of the shard items, which share the batch's partition; Total stays the
// split's row count, UpdatedAt is the latest shard's), and FinishBatch
// stores the final, reconciled counts on the batch item, which a finished
// batch returns. A checkpoint's counts therefore count exactly once, and
// a fenced checkpoint moves none. The batch's status is read, not
// conditioned, by a checkpoint: one that read RUNNING just before a
// FinishBatch or SuspendBatch still moves its shard (whose products were
// written before it anyway); the worker stops at its next checkpoint, and
// a finished batch's counts are the stored ones.
//
// The failure records ride in the checkpoint's transaction (up to 99 of
// them and 2 MB), so they are durable exactly when the checkpoint is, and a
// fenced zombie writes none. Records beyond that are written before the
// transaction with BatchWriteItem, after the lease was seen current: a
// zombie displaced between that read and the write can leave records for
// rows after the checkpoint, which the new owner's replay overwrites (same
// keys).
//
// A checkpoint that moves forward also sets the shard's progress history
// (attribute progress, state.Shard.Progress): the list read, plus the new
// sample, thinned to state.MaxSamples. Setting the whole list rather than
// list_append is safe because the update is conditioned on the checkpoint
// read, so two updates can never both build on the same list; it also lets
// the cap be applied in the same write. A full history adds about 2.5 KB to
// the shard item, which each checkpoint's transactional write pays for.
//
// FinishShard also conditions the batch update on the ShardsDone it read
// (contention only among shards finishing at the same moment: the loser
// reads again), so the batch it returns has exactly the ShardsDone its update
// made and only one caller sees ShardsDone == Shards. Its counts are the
// batch item's, not the shards' sum (read GetBatch for those).
//
// # Failure records over 16 partitions
//
// A batch's failure records are spread over 16 partition keys (decision 30),
// so that 5M records of a 100M-row file take 16 x 1,000 write units a
// second instead of one key's 1,000. Failures runs one Query per partition
// (the first pages concurrently, later pages as a merge reaches them, so at
// most a page per partition is held) and merges them by sort key, which
// is (sheet, row) order; CountFailures does the same projecting the key and
// the shard. Both also query the batch's own partition, where a worker of
// the code before decision 30 may have written records of a new batch
// during a deploy; a record found in both layouts is taken once (the one of
// the batch's own layout, which ResolveFailures marks).
//
// Every transaction's conditions make a replay harmless, so the SDK's client
// request token is a convenience, not a requirement.
//
// # Errors
//
// The state errors (state.ErrNotFound, ErrLeased, ErrFenced,
// ErrShardFinished, ErrBatchFinished) are returned wrapped: test them with
// errors.Is. Other SDK errors are an ImportError classified by awserr
// (Throttled, ServiceUnavailable, AccessDenied, ...); writes that keep losing
// races or coming back unprocessed for MaxAttempts attempts are Throttled.
// Invalid arguments are an Internal ImportError naming the field.
package dynamostate
