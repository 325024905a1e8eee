// Package state is the state store port: batches, shards, leases with fencing
// tokens, checkpoints, counters and failure records. It keeps invariant 1 (one
// upload, one batch: CreateBatch is idempotent), invariant 2 (one shard, one
// owner: Claim and the epoch checked by every shard write), invariant 3
// (checkpoints only move forward) and invariant 4 (failure records keyed by
// batch, sheet and row). Adapters: internal/local/sqlite, internal/aws/dynamostate;
// statetest is the contract suite every adapter passes.
package state

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/catalog-import/catalog-import/internal/failure"
)

// BatchStatus is the life-cycle state of a batch.
type BatchStatus string

// Batch statuses. RUNNING and SUSPENDED are the unfinished ones; only a
// RUNNING batch is worked on.
const (
	BatchRunning             BatchStatus = "RUNNING"
	BatchCompleted           BatchStatus = "COMPLETED"
	BatchCompletedWithErrors BatchStatus = "COMPLETED_WITH_ERRORS"
	BatchRejected            BatchStatus = "REJECTED"
	BatchAborted             BatchStatus = "ABORTED"
	BatchFailed              BatchStatus = "FAILED"
	// BatchSuspended: the source changed after the split (reason
	// SourceChanged); no worker writes for the batch. It is not finished:
	// the source restored to its registered content resumes it (RUNNING
	// again, Store.ResumeBatch), and a cancel ends it (CANCELLED).
	BatchSuspended BatchStatus = "SUSPENDED"
	// BatchCancelled: `importctl cancel` ended the batch; rows not reached
	// count as skipped, as for ABORTED.
	BatchCancelled BatchStatus = "CANCELLED"
)

// Finished reports whether no more work will be done on a batch in status s.
// A SUSPENDED batch is not finished (it may resume) and not running either.
func (s BatchStatus) Finished() bool { return s != BatchRunning && s != BatchSuspended && s != "" }

// Stopped reports whether no work is done on a batch in status s until a
// person acts: it is finished, or SUSPENDED (`status --watch` stops
// watching it).
func (s BatchStatus) Stopped() bool { return s.Finished() || s == BatchSuspended }

// WriteErr is the error a shard write (Claim, Checkpoint, FinishShard)
// gets in a batch of status s: nil while it is RUNNING, ErrBatchSuspended
// while it is SUSPENDED, ErrBatchFinished (naming s) once it is finished.
// Every adapter checks it in the same atomic step as the write.
func (s BatchStatus) WriteErr() error {
	switch s {
	case BatchRunning, "":
		return nil
	case BatchSuspended:
		return ErrBatchSuspended
	}
	return fmt.Errorf("%w (%s)", ErrBatchFinished, s)
}

// ShardStatus is the life-cycle state of a shard.
type ShardStatus string

// Shard statuses. PENDING and RUNNING shards still have rows to process.
const (
	ShardPending   ShardStatus = "PENDING"
	ShardRunning   ShardStatus = "RUNNING"
	ShardDone      ShardStatus = "DONE"
	ShardSkipped   ShardStatus = "SKIPPED"
	ShardEscalated ShardStatus = "ESCALATED"
)

// Finished reports whether the shard needs no more processing.
func (s ShardStatus) Finished() bool {
	return s == ShardDone || s == ShardSkipped
}

// Source identifies the exact object a batch imports.
type Source struct {
	URI     string    `json:"uri"`     // file path or s3://bucket/key
	Size    int64     `json:"size"`    // bytes
	ETag    string    `json:"etag"`    // content version seen at split time
	Version string    `json:"version"` // S3 version id, when versioned
	ModTime time.Time `json:"mod_time"`
}

// Layout says how to read the source: format, encoding and header.
type Layout struct {
	Format    string   `json:"format"`    // csv, tsv, jsonl, xlsx
	Encoding  string   `json:"encoding"`  // utf-8, gb18030, utf-16le, utf-16be
	Delimiter string   `json:"delimiter"` // one character for csv/tsv
	Header    []string `json:"header"`    // decoded header cells (csv/tsv; xlsx: the header every sheet has, nil when they differ)
	DataStart int64    `json:"data_start"`
}

// Counts are row counters. For a batch or shard that is finished,
// Total == Imported + Superseded + Failed + Skipped (invariant 6).
type Counts struct {
	Total    int64 `json:"rows_total"`
	Imported int64 `json:"rows_imported"`
	// Superseded counts rows that changed nothing because every field they
	// would change already holds a value of a newer upload (or a newer
	// delete covers the product): not a failure.
	Superseded int64 `json:"rows_superseded"`
	Failed     int64 `json:"rows_failed"`
	Skipped    int64 `json:"rows_skipped"`
}

// Add returns c + d, field by field.
func (c Counts) Add(d Counts) Counts {
	return Counts{Total: c.Total + d.Total, Imported: c.Imported + d.Imported, Superseded: c.Superseded + d.Superseded,
		Failed: c.Failed + d.Failed, Skipped: c.Skipped + d.Skipped}
}

// Sub returns c - d, field by field.
func (c Counts) Sub(d Counts) Counts {
	return Counts{Total: c.Total - d.Total, Imported: c.Imported - d.Imported, Superseded: c.Superseded - d.Superseded,
		Failed: c.Failed - d.Failed, Skipped: c.Skipped - d.Skipped}
}

// Covers reports whether no counter of c is below d's (a checkpoint with
// counts c may follow one with counts d).
func (c Counts) Covers(d Counts) bool {
	return c.Total >= d.Total && c.Imported >= d.Imported && c.Superseded >= d.Superseded &&
		c.Failed >= d.Failed && c.Skipped >= d.Skipped
}

// Done is the number of rows with an outcome: imported, superseded, failed
// or skipped.
func (c Counts) Done() int64 { return c.Imported + c.Superseded + c.Failed + c.Skipped }

// Batch is one import of one source object under one profile.
type Batch struct {
	ID     string      `json:"batch_id"`
	Status BatchStatus `json:"status"`
	// Order is the batch's upload order, assigned once when the batch is
	// first registered (see Store.CreateBatch and OrderAt): larger is newer.
	// The catalog stamps every field a batch writes with it, so the catalog
	// equals the batches applied one after another in this order.
	Order       int64  `json:"order"`
	Source      Source `json:"source"`
	Layout      Layout `json:"layout"`
	Profile     []byte `json:"-"`            // canonical profile (YAML) the batch runs under
	RuleVersion string `json:"rule_version"` // hash of Profile
	Shards      int    `json:"shards"`       // number of shards
	ShardsDone  int    `json:"shards_done"`  // shards finished (done or skipped)
	Counts      Counts `json:"counts"`       // progress while running (the sum of the shards' checkpoints); reconciled when finished
	// ByReason counts failure records per reason; set when the batch finishes.
	ByReason map[failure.Reason]int64 `json:"failures_by_reason,omitempty"`
	Message  string                   `json:"message,omitempty"`
	Report   string                   `json:"report,omitempty"` // where the error report was written
	TraceID  string                   `json:"trace_id,omitempty"`
	// Parent is the batch whose failed rows this batch re-imports (a fix
	// file or `importctl retry-failures`), "" for an ordinary import.
	Parent string `json:"parent,omitempty"`
	// Resolved counts this batch's failure records that a later batch
	// imported (ResolveFailures).
	Resolved int64 `json:"failures_resolved,omitempty"`
	// Check is the batch's check phase (decision 20): set when the batch
	// was registered under a profile with max_error_ratio, nil otherwise
	// (such a batch has no check phase and writes from its first manifest).
	Check *BatchCheck `json:"check,omitempty"`
	// Warnings are what the split noticed about the file that a person
	// should know although no row failed for it (a workbook's hidden sheets
	// left out, cells in columns without a header ignored, numbers that
	// lost digits in Excel): one sentence each, at most MaxWarnings, set
	// when the batch is created and never changed.
	Warnings   []string  `json:"warnings,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
}

// MaxWarnings bounds Batch.Warnings (and MaxWarningBytes each one), so a
// batch stays a small item in any store (DynamoDB reads the batch item at
// every checkpoint): the splitter sums up per sheet and column, and
// says how many more there were in the last one.
const (
	MaxWarnings     = 10
	MaxWarningBytes = 300
)

// Check is one shard's outcome in the check phase: how many of its rows
// were checked and how many of them failed a check (each with its failure
// record).
type Check struct {
	Rows   int64 `json:"rows"`
	Failed int64 `json:"failed"`
}

// BatchCheck is a batch's check phase so far: how many shards have a
// recorded Check, and the sums of their outcomes.
type BatchCheck struct {
	Shards int   `json:"shards"` // shards checked
	Rows   int64 `json:"rows"`   // rows checked
	Failed int64 `json:"failed"` // rows that failed a check
}

// Done reports whether every one of the batch's shards is checked.
func (c BatchCheck) Done(shards int) bool { return c.Shards >= shards }

// Exceeds reports whether the failed rows are over ratio of the checked
// rows (the profile's max_error_ratio; ratio 0 means no budget).
func (c BatchCheck) Exceeds(ratio float64) bool {
	return ratio > 0 && float64(c.Failed) > ratio*float64(c.Rows)
}

// Checkpoint is the durable resume point of a shard: every row before
// (NextOffset, NextRow) has its product write and failure record durable.
type Checkpoint struct {
	NextOffset int64  `json:"next_offset"` // byte offset in the object of the next record
	NextRow    int64  `json:"next_row"`    // row number of the next record
	Counts     Counts `json:"counts"`      // rows of this shard before the checkpoint
}

// Shard is a contiguous byte range of the source, cut at record boundaries.
type Shard struct {
	BatchID    string      `json:"batch_id"`
	Index      int         `json:"shard"`
	Sheet      string      `json:"sheet"`       // "-" for files without sheets
	SheetIndex int         `json:"sheet_index"` // order of the sheet in the workbook
	Start      int64       `json:"byte_start"`  // first byte (inclusive)
	End        int64       `json:"byte_end"`    // last byte (exclusive)
	FirstRow   int64       `json:"first_row"`   // row number of the first record
	Rows       int64       `json:"rows"`        // data rows in the range (blank lines excluded)
	Checksum   string      `json:"checksum"`    // checksum of the range's bytes
	Status     ShardStatus `json:"status"`
	Checkpoint Checkpoint  `json:"checkpoint"`
	Owner      string      `json:"owner,omitempty"`
	Epoch      int64       `json:"epoch"` // fencing token: bumped by every successful Claim
	LeaseUntil time.Time   `json:"lease_until,omitzero"`
	Attempts   int         `json:"attempts"` // successful claims so far
	Message    string      `json:"message,omitempty"`
	UpdatedAt  time.Time   `json:"updated_at"`
	// Progress is the shard's history, oldest first, at most MaxSamples:
	// Checkpoint and FinishShard append a Sample whenever they move the
	// checkpoint forward (see progress.go). ListShards returns it; other
	// calls may leave it out, and CreateBatch starts it empty.
	Progress []Sample `json:"progress,omitempty"`
	// Blocks, when set, are the checksums of the shard's rows in blocks of
	// Blocks.Rows rows, recorded by the splitter: a worker verifies each
	// block before it commits it, so no byte of an edited source is
	// written (invariant 7). nil: not recorded (the source is pinned by
	// its store, e.g. an S3 version).
	Blocks *Blocks `json:"blocks,omitempty"`
	// Staged is set when the source cannot be range-read (XLSX): the
	// shard's rows are in a staged object and Start, End and the
	// checkpoint's offsets are offsets in that object.
	Staged *Staged `json:"staged,omitempty"`
	// Check is the shard's check-phase outcome, nil until RecordCheck
	// records it (and always nil in a batch without a check phase).
	Check *Check `json:"check,omitempty"`
}

// Staged is the object holding a shard's rows when the source cannot be
// range-read: the splitter writes each sheet of a workbook as UTF-8 CSV
// chunks under staging/<batch>/ (a local folder beside the database, or the
// import bucket) and removes them when the batch finishes. A staged object
// starts with the sheet's header line; a data line's row number is the one
// the sheet shows (blank lines stand for the sheet's empty rows), so
// positions stay (sheet, row).
type Staged struct {
	URI    string   `json:"uri"`    // file path or s3://bucket/staging/<batch>/<name>
	Size   int64    `json:"size"`   // bytes
	ETag   string   `json:"etag"`   // version written by the splitter
	Header []string `json:"header"` // the sheet's header cells (the object's first line)
}

// Blocks are the checksums of a shard's data rows, Rows rows a block (the
// last block may hold fewer): block i covers the shard's data rows
// [i*Rows, (i+1)*Rows), blank lines excluded, with the checksum
// split.Checksum computes. Sums is the blocks' CRC-32C values, 8 hex digits
// each, concatenated, so a shard of 256 blocks stores 2 KiB.
type Blocks struct {
	Rows int64  `json:"rows"`
	Sums string `json:"sums"`
}

// Len returns the number of blocks.
func (b *Blocks) Len() int { return len(b.Sums) / 8 }

// Sum returns the checksum of block i as 8 hex digits; ok is false when
// there is no block i.
func (b *Blocks) Sum(i int64) (sum string, ok bool) {
	if i < 0 || i >= int64(b.Len()) {
		return "", false
	}
	return b.Sums[i*8 : i*8+8], true
}

// Final is the outcome finalization gives a batch.
type Final struct {
	Status   BatchStatus
	Counts   Counts                   // reconciled against the stored records
	ByReason map[failure.Reason]int64 // failure records per reason
	Message  string
	Report   string // where the error report is
}

// Lease is the right to move one shard forward. Every shard write carries it;
// the store refuses writes whose Epoch is not the shard's current epoch.
type Lease struct {
	BatchID string    `json:"batch_id"`
	Shard   int       `json:"shard"`
	Owner   string    `json:"owner"`
	Epoch   int64     `json:"epoch"`
	Until   time.Time `json:"until"`
}

// Errors that steer control flow. Adapters return them (wrapped or not);
// callers test with errors.Is.
var (
	// ErrNotFound: no such batch or shard.
	ErrNotFound = errors.New("not found")
	// ErrLeased: another owner holds a live lease on the shard.
	ErrLeased = errors.New("shard is leased by another worker")
	// ErrShardFinished: the shard is done or skipped; nothing to claim.
	ErrShardFinished = errors.New("shard already finished")
	// ErrFenced: the lease's epoch is stale; a newer owner took the shard.
	ErrFenced = errors.New("lease lost: a newer owner holds the shard")
	// ErrBatchFinished: the batch is finished (completed, aborted, ...).
	ErrBatchFinished = errors.New("batch already finished")
	// ErrBatchSuspended: the batch is SUSPENDED (its source changed); no
	// shard write is taken until it resumes. Workers stop as for
	// ErrBatchFinished.
	ErrBatchSuspended = errors.New("batch suspended: its source changed since the split")
)

// OrderAt is the upload order of batch id uploaded at t, as the AWS
// splitter computes it from the S3 event time: t in Unix milliseconds times
// 1,000,000, plus the first 8 bytes of SHA-256(id) (big endian) modulo
// 1,000,000, so two uploads in the same millisecond are ordered
// deterministically by batch id. It is positive for any time after 1970 and
// fits an int64 until the year 2262.
func OrderAt(t time.Time, id string) int64 {
	sum := sha256.Sum256([]byte(id))
	tie := int64(binary.BigEndian.Uint64(sum[:8]) % 1_000_000)
	return max(t.UnixMilli(), 0)*1_000_000 + tie
}

// PrepareBatch checks a batch and its shards before CreateBatch stores
// them and fills what the caller may leave out: status RUNNING, shards
// PENDING and of b's id, times (now), Shards and ShardsDone. Every adapter
// calls it, so they accept and store the same thing. A bad argument is an
// Internal ImportError naming the field.
func PrepareBatch(b Batch, shards []Shard, now time.Time) (Batch, []Shard, error) {
	invalid := func(field, format string, args ...any) error {
		return failure.New(failure.Internal, field, "invalid argument: "+format, args...)
	}
	if b.ID == "" {
		return b, nil, invalid("batch_id", "create batch: empty batch id")
	}
	if b.Order < 0 {
		return b, nil, invalid("order", "create batch %s: negative order %d", b.ID, b.Order)
	}
	if b.Status == "" {
		b.Status = BatchRunning
	}
	if b.CreatedAt.IsZero() {
		b.CreatedAt = now
	}
	if b.UpdatedAt.IsZero() {
		b.UpdatedAt = b.CreatedAt
	}
	b.Shards, b.ShardsDone = len(shards), 0
	if b.Check != nil {
		b.Check = &BatchCheck{} // no shard is checked yet
	}
	out := make([]Shard, len(shards))
	seen := make(map[int]bool, len(shards))
	for i, s := range shards {
		if s.BatchID == "" {
			s.BatchID = b.ID
		}
		if s.BatchID != b.ID {
			return b, nil, invalid("batch_id", "create batch %s: shard %d belongs to batch %q", b.ID, s.Index, s.BatchID)
		}
		if s.Index < 0 || seen[s.Index] {
			return b, nil, invalid("shard", "create batch %s: shard index %d negative or given twice", b.ID, s.Index)
		}
		seen[s.Index] = true
		if s.Status == "" {
			s.Status = ShardPending
		}
		if s.Status.Finished() {
			b.ShardsDone++
		}
		if s.UpdatedAt.IsZero() {
			s.UpdatedAt = b.CreatedAt
		}
		s.Progress = nil // history starts with the first checkpoint
		s.Check = nil    // checked by RecordCheck only
		out[i] = s
	}
	return b, out, nil
}

// FailureFilter selects failure records. Zero values select everything.
type FailureFilter struct {
	Reasons []failure.Reason
	Layers  []failure.Layer
	Shard   *int
	// Unresolved selects only records no later batch resolved.
	Unresolved bool
	// After is the key to continue after (exclusive), for paging.
	AfterSheet string
	AfterRow   int64
	Limit      int // 0 means no limit
}

// Selects reports whether f's reasons, layers, shard and Unresolved select
// r (paging and Limit are the listing's).
func (f FailureFilter) Selects(r failure.Record) bool {
	return (len(f.Reasons) == 0 || slices.Contains(f.Reasons, r.Reason)) &&
		(len(f.Layers) == 0 || slices.Contains(f.Layers, r.Layer)) &&
		(f.Shard == nil || *f.Shard == r.Shard) &&
		(!f.Unresolved || r.ResolvedBy == "")
}

// Store keeps the durable state of imports. Implementations must be safe for
// concurrent use by many workers (and, for shared stores, many processes).
type Store interface {
	// CreateBatch stores b and its shards if no batch with b.ID exists, and
	// returns the stored batch with created=true. If it exists already it
	// returns the stored one with created=false and changes nothing, so a
	// retried or duplicated split never makes a second batch (invariant 1).
	// A batch may be created with no shards (e.g. REJECTED).
	//
	// Upload order: a non-zero b.Order is kept as given (the AWS splitter
	// passes OrderAt of the upload's event time). When b.Order is 0 the
	// store assigns it in the creating step: a store with a sequence
	// (SQLite) the next one, larger than every stored order (1, 2, 3...);
	// a store without a cheap global sequence (DynamoDB) OrderAt(b.CreatedAt,
	// b.ID). Either way the order is assigned once: the idempotent second
	// call returns the stored batch with its first order.
	CreateBatch(ctx context.Context, b Batch, shards []Shard) (stored Batch, created bool, err error)
	// GetBatch returns the batch or ErrNotFound.
	GetBatch(ctx context.Context, id string) (Batch, error)
	// ListBatches returns the most recently created batches first.
	ListBatches(ctx context.Context, limit int) ([]Batch, error)
	// ListShards returns the batch's shards by index.
	ListShards(ctx context.Context, batchID string) ([]Shard, error)

	// Claim takes the shard for owner until now+ttl and bumps its epoch. It
	// fails with ErrLeased while another owner's lease is live, with
	// ErrShardFinished when the shard is finished, with ErrBatchFinished
	// when the batch is, and with ErrBatchSuspended when it is SUSPENDED.
	// The returned shard carries the checkpoint to resume from.
	//
	// A claim by the owner that holds the live lease succeeds (and fences
	// that older lease): the store takes it for the holder itself coming
	// back after its own crash or error. So an owner names one sequential
	// holder, never a fleet: each Lambda sandbox (single-threaded) and each
	// importctl run claims under its own random owner id, and a worker runs
	// at most one Process call per shard at a time. Two deliveries of one
	// manifest to two holders then give one lease and one ErrLeased.
	Claim(ctx context.Context, batchID string, shard int, owner string, ttl time.Duration, now time.Time) (Lease, Shard, error)
	// Checkpoint makes failures durable, then moves the shard's checkpoint to
	// cp and extends the lease to until — only if lease.Epoch is current
	// (ErrFenced otherwise) and cp is not behind the stored checkpoint.
	// From then on the batch's Imported, Superseded, Failed and Skipped
	// counts (GetBatch, ListBatches) include cp.Counts instead of the
	// previous checkpoint's, exactly once (its Total is the split's row
	// count and does not move): a store may add the delta to batch
	// counters in the same atomic step (SQLite) or sum its shards'
	// checkpoints when the batch is read (DynamoDB, decision 30), so a
	// checkpoint never has to write an item all shards share. Failure
	// records are upserted by key. A checkpoint behind the stored one
	// changes nothing (not an error); a finished batch fails with
	// ErrBatchFinished and a SUSPENDED one with ErrBatchSuspended, so
	// workers of an aborted, cancelled or suspended batch stop at their
	// next checkpoint.
	Checkpoint(ctx context.Context, lease Lease, cp Checkpoint, failures []failure.Record, until time.Time) error
	// FinishShard sets a shard that lease still owns to status (DONE, SKIPPED or
	// ESCALATED) with a final checkpoint and message, and counts it in the
	// batch's ShardsDone when it is DONE or SKIPPED. It returns the batch after
	// the update (its status, ShardsDone and Check; its Counts may leave out
	// other shards' progress, as a store that sums them when read only does
	// so in GetBatch and ListBatches); the caller whose update made
	// ShardsDone == Shards finalizes. A final checkpoint ahead of the stored
	// one appends a progress sample, as Checkpoint does.
	FinishShard(ctx context.Context, lease Lease, status ShardStatus, cp Checkpoint, message string) (Batch, error)
	// RecordCheck records the check-phase outcome c of the lease's shard
	// (decision 20): it upserts failures, sets the shard's Check, ends the
	// lease and adds the outcome to the batch's Check (one more shard
	// checked) in one atomic step, fenced like Checkpoint (ErrFenced), on a
	// RUNNING batch (ErrBatchFinished) that has a check phase (Internal
	// ImportError otherwise). A shard that is checked already keeps its
	// first outcome: the call only ends the lease. It returns the batch
	// after the update; the caller whose update made Check.Shards == Shards
	// decides the batch (abort, or send the write-phase manifests).
	RecordCheck(ctx context.Context, lease Lease, c Check, failures []failure.Record) (Batch, error)
	// ReleaseLeases ends every live lease of the batch's unfinished shards
	// without bumping epochs (used by a single-process runner that knows the
	// previous holders are dead).
	ReleaseLeases(ctx context.Context, batchID string) error

	// FinishBatch sets a RUNNING or SUSPENDED batch's final outcome. It
	// fails with ErrBatchFinished if the batch is already finished with
	// another status (finishing twice the same way is a no-op).
	FinishBatch(ctx context.Context, id string, f Final, now time.Time) (Batch, error)
	// SuspendBatch sets a RUNNING batch SUSPENDED with message (why, and
	// what a person can do). A SUSPENDED batch is returned unchanged; a
	// finished one fails with ErrBatchFinished. From then on Claim,
	// Checkpoint and FinishShard fail with ErrBatchSuspended.
	SuspendBatch(ctx context.Context, id, message string, now time.Time) (Batch, error)
	// ResumeBatch sets a SUSPENDED batch RUNNING again and clears its
	// message. A RUNNING batch is returned unchanged; a finished one fails
	// with ErrBatchFinished.
	ResumeBatch(ctx context.Context, id string, now time.Time) (Batch, error)

	// Failures returns failure records in (sheet, row) order.
	Failures(ctx context.Context, batchID string, f FailureFilter) ([]failure.Record, error)
	// CountFailures counts the batch's failure records per shard index.
	CountFailures(ctx context.Context, batchID string) (map[int]int64, error)
	// PutFailures upserts failure records outside any lease (a displaced
	// duplicate recorded by another shard's worker; the record's Shard names
	// the shard the row belongs to).
	PutFailures(ctx context.Context, records []failure.Record) error
	// ResolveFailures marks the batch's failure records at keys as resolved
	// by batch `by` at `at`, and adds the number it marked to the batch's
	// Resolved counter in the same atomic step. Keys with no record, or
	// whose record is already resolved, are left alone, so a repeated call
	// changes nothing. It returns how many records it marked.
	ResolveFailures(ctx context.Context, batchID string, keys []failure.Key, by string, at time.Time) (int, error)
}
