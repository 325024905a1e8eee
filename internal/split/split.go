// Package split plans an import: it reads the source once, streaming, detects
// the format and encoding, checks the header against the profile, and cuts
// the file into shards at record boundaries (byte ranges of the original
// object, so workers can range-read them): by row and byte targets, or, when
// the profile declares a row weight, at equal cumulative weight. It then
// registers the batch and its shards idempotently and sends one manifest per
// unfinished shard. A workbook (XLSX), which cannot be range-read, is read
// once and each sheet staged as CSV chunks that its shards point at (xlsx.go).
//
// It keeps invariant 1 (one upload, one batch: the batch is created with a
// conditional write, and a retried split finds it and only re-sends
// manifests) and invariant 9 for memory: planning holds one record at a time,
// whatever the file's size.
package split

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/lineage"
	"github.com/catalog-import/catalog-import/internal/object"
	"github.com/catalog-import/catalog-import/internal/profile"
	"github.com/catalog-import/catalog-import/internal/queue"
	"github.com/catalog-import/catalog-import/internal/record"
	"github.com/catalog-import/catalog-import/internal/state"
	"github.com/catalog-import/catalog-import/internal/xlsx"
)

// Options sets the shard size. A shard is cut at the first record boundary
// after either target is reached. When the profile declares a weight, the
// targets only set the number of shards (as many as they would cut) and the
// cuts fall at equal cumulative weight instead (see Weights).
type Options struct {
	ShardRows  int64 // target rows per shard (default 50,000)
	ShardBytes int64 // target bytes per shard (default 16 MiB, the ranged-GET sweet spot)
	MaxRecord  int   // largest record read whole (default 1 MiB); larger ones fail RowTooLarge
	// BlockRows, when positive, has every shard record the checksums of its
	// rows in blocks (state.Shard.Blocks) of max(BlockRows,
	// ShardRows/MaxBlocks) rows, which the worker verifies before it commits
	// a block (invariant 7 for sources no store pins, local files). Pass
	// the worker's checkpoint interval, so checkpoints fall on block
	// boundaries. 0: no blocks.
	BlockRows int64
	// HashContent computes the SHA-256 of the whole object while planning
	// (the embedded runner derives the batch id from it).
	HashContent bool
	// Workbooks (XLSX) cannot be range-read: Staging receives each sheet
	// as normalized chunks that the shards point at (see xlsx.go). Without
	// it a workbook is an error. Workbook bounds what reading one may cost,
	// MaxWorkbook is the largest workbook file (default 512 MiB).
	Staging     *Staging
	Workbook    xlsx.Limits
	MaxWorkbook int64
	// MaxText, when positive, is the largest CSV, TSV or JSON Lines file
	// planned: a larger one is REJECTED (RowTooLarge) before its rows are
	// read, its message naming the size, the limit and what to do. The
	// splitter sets it (MAX_UPLOAD_BYTES) so that a scan always ends within
	// its timeout; embedded runs have none unless asked (--max-file-bytes).
	MaxText int64

	limits record.Limits // set by PlanSource: ScanLimits of the profile
}

// Defaults returns o with zero fields set to their defaults.
func (o Options) Defaults() Options {
	if o.ShardRows <= 0 {
		o.ShardRows = 50_000
	}
	if o.ShardBytes <= 0 {
		o.ShardBytes = 16 << 20
	}
	if o.MaxRecord <= 0 {
		o.MaxRecord = 1 << 20
	}
	return o
}

// ScanLimits returns the record limits a file is read under with profile p:
// maxRecord and the profile's quote limits (record.Limits; zero fields are
// the defaults). The splitter and the shard worker both read through it, so
// they apply the same unbalanced-quote rule and find the same records.
func ScanLimits(p *profile.Profile, maxRecord int) record.Limits {
	l := record.Limits{MaxRecord: maxRecord}
	if p != nil {
		l.MaxQuotedLines, l.MaxQuotedBytes = p.QuoteLimits()
	}
	return l.Defaults()
}

// Plan is the result of reading a source once.
type Plan struct {
	Info     object.Info
	Dialect  record.Dialect
	Layout   state.Layout
	Shards   []state.Shard // BatchID unset; Index from 0
	Rows     int64         // data rows (blank lines excluded)
	Content  string        // hex SHA-256 of the object, when Options.HashContent
	Parent   string        // the batch a fix file's rows failed in (package lineage), "" otherwise
	Rejected error         // a file-level problem (*failure.ImportError): no shard may run
	Weights  *Weights      // the profile declares a weight: how the shards were balanced
	// Warnings are what the split noticed that no row fails for (a
	// workbook's hidden sheets, ignored cells, numbers Excel cut): the
	// batch's Warnings.
	Warnings []string
}

// MaxBlocks bounds the block checksums of a shard cut by size (ShardRows):
// blocks are at least ShardRows/MaxBlocks rows long, so a shard row stores at
// most about 8*MaxBlocks bytes of them however large the file.
const MaxBlocks = 256

// blockRows is the block length of the plan's shards; 0: no blocks.
func (o Options) blockRows() int64 {
	if o.BlockRows <= 0 {
		return 0
	}
	return max(o.BlockRows, (o.ShardRows+MaxBlocks-1)/MaxBlocks)
}

// Checksum returns the shard checksum of a run of records: CRC-32C over each
// record's bytes followed by a newline. Workers that read a shard from its
// start compute the same value to detect a source that changed.
type Checksum struct {
	crc uint32
	n   int64 // bytes summed
}

// castagnoli is the CRC-32C table (crc32.Update takes its SSE 4.2 path
// for exactly this table).
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// NewChecksum returns an empty checksum.
func NewChecksum() *Checksum { return &Checksum{} }

// Add adds one record.
func (c *Checksum) Add(rec []byte) {
	c.crc = crc32.Update(crc32.Update(c.crc, castagnoli, rec), castagnoli, newline)
	c.n += int64(len(rec)) + 1
}

// Append adds the records summed in b, as if each had been added to c:
// a shard's checksum is its blocks' checksums combined, so that each
// record is summed once (decision 28).
func (c *Checksum) Append(b *Checksum) {
	c.crc = crc32cCombine(c.crc, b.crc, b.n)
	c.n += b.n
}

// Hex returns the checksum as 8 hex digits (a block's entry in
// state.Blocks.Sums).
func (c *Checksum) Hex() string { return fmt.Sprintf("%08x", c.crc) }

// String returns the checksum as "crc32c:xxxxxxxx".
func (c *Checksum) String() string { return fmt.Sprintf("crc32c:%08x", c.crc) }

var newline = []byte{'\n'}

// CRC-32C of a concatenation from the CRCs of its parts (zlib's
// crc32_combine, for the reflected polynomial of CRC-32C): the first CRC is
// multiplied by x^(8 len2) modulo the polynomial and added to the second.
const castagnoliReversed = 0x82f63b78

// crc32cX2n holds x^(2^k) mod P for k = 0..31.
var crc32cX2n = func() (t [32]uint32) {
	p := uint32(1) << 30 // x^1
	for k := range t {
		t[k] = p
		p = crc32cMult(p, p)
	}
	return t
}()

// crc32cMult returns a*b modulo P (bit-reflected polynomials).
func crc32cMult(a, b uint32) uint32 {
	var p uint32
	for m := uint32(1) << 31; m != 0; m >>= 1 {
		if a&m != 0 {
			p ^= b
		}
		if b&1 != 0 {
			b = b>>1 ^ castagnoliReversed
		} else {
			b >>= 1
		}
	}
	return p
}

// crc32cCombine returns the CRC-32C of A followed by B, given crc1 of A,
// crc2 of B and B's length.
func crc32cCombine(crc1, crc2 uint32, len2 int64) uint32 {
	// p = x^(8 len2): x^(len2 2^3), from the bits of len2.
	p := uint32(1) << 31 // x^0
	for k := 3; len2 != 0; len2, k = len2>>1, k+1 {
		if len2&1 != 0 {
			p = crc32cMult(crc32cX2n[k&31], p)
		}
	}
	return crc32cMult(p, crc1) ^ crc2
}

// PlanSource reads the object once (two ranged reads: the first SniffSize
// bytes for detection and the header, then the data stream) and plans shards.
// File-level problems (empty, binary, header missing required columns) are
// returned in Plan.Rejected with a nil error; the error is for I/O failures.
func PlanSource(ctx context.Context, src object.Source, info object.Info, v *profile.Validator, opts Options) (Plan, error) {
	opts = opts.Defaults()
	opts.limits = ScanLimits(v.Profile(), opts.MaxRecord)
	p := Plan{Info: info}
	prefix, err := readPrefix(ctx, src, info)
	if err != nil {
		return p, err
	}
	d, err := record.Detect(info.URI, prefix)
	if err != nil {
		p.Rejected = err
		return p, nil
	}
	p.Dialect = d
	if d.Format == record.XLSX {
		return planWorkbook(ctx, src, info, v, opts, p)
	}
	p.Layout = state.Layout{Format: string(d.Format), Encoding: string(d.Encoding), Delimiter: string(d.Delimiter)}
	if opts.MaxText > 0 && info.Size > opts.MaxText {
		p.Rejected = TooLarge(info.Size, opts.MaxText)
		return p, nil
	}

	header, dataStart, firstRow, err := record.Header(bytes.NewReader(prefix), d, min(opts.MaxRecord, len(prefix)))
	if err != nil {
		p.Rejected = err
		return p, nil
	}
	header = lineage.UnmarkHeader(header) // a fix file's header names, as its source had them
	var cols *profile.Columns
	if d.Format != record.JSONL {
		if len(header) == 0 {
			p.Rejected = failure.New(failure.SchemaMismatch, "", "file has no header row")
			return p, nil
		}
		if cols, err = v.Header(header); err != nil {
			p.Rejected = err
			return p, nil
		}
	}
	p.Layout.Header, p.Layout.DataStart = header, dataStart
	if dataStart < int64(len(prefix)) {
		p.Parent = lineage.Parent(p.Layout, prefix[dataStart:], int64(len(prefix)) == info.Size, firstRow, opts.MaxRecord)
	}

	boundary := bySize(opts)
	var cuts []int64
	var weighedRows int64
	if v.Profile().Weighted() {
		if cuts, weighedRows, err = p.planWeights(ctx, src, info, v, cols, dataStart, firstRow, opts); err != nil {
			return p, err
		}
		boundary = atOffsets(cuts)
	}

	var sum *asyncHash
	if opts.HashContent {
		sum = newAsyncHash(sha256.New())
		defer sum.Close()
		sum.Write(prefix[:min(int64(len(prefix)), dataStart)])
	}
	rc, err := src.Open(ctx, info, dataStart, -1)
	if err != nil {
		return p, err // the source names the file
	}
	defer rc.Close()
	var r io.Reader = rc
	if sum != nil {
		r = io.TeeReader(rc, sum)
	}
	if err := p.cut(ctx, r, d, dataStart, firstRow, opts, boundary); err != nil {
		return p, err // a read error, named by the source
	}
	if p.Weights != nil {
		if err := p.checkCuts(cuts, weighedRows); err != nil {
			return p, fmt.Errorf("split %s: %w", info.URI, err)
		}
	}
	if sum != nil {
		p.Content = hex.EncodeToString(sum.Sum())
	}
	return p, nil
}

// asyncHash hashes what is written to it on another goroutine, so that
// hashing a file costs the scan that reads it one copy of the bytes
// instead of the hash (SHA-256 is about half of the split's time; measured
// in decision 28). Sum waits for the bytes written so far.
type asyncHash struct {
	h     hash.Hash
	bufs  chan []byte // to the hashing goroutine
	free  chan []byte // back from it
	done  chan struct{}
	close sync.Once
}

// asyncBuffers bounds the bytes in flight: asyncBuffers x asyncBufSize.
const (
	asyncBuffers = 4
	asyncBufSize = 256 << 10
)

func newAsyncHash(h hash.Hash) *asyncHash {
	a := &asyncHash{h: h, bufs: make(chan []byte, asyncBuffers), free: make(chan []byte, asyncBuffers), done: make(chan struct{})}
	for range asyncBuffers {
		a.free <- make([]byte, 0, asyncBufSize)
	}
	go func() {
		defer close(a.done)
		for b := range a.bufs {
			a.h.Write(b)
			a.free <- b[:0]
		}
	}()
	return a
}

// Write copies p for the hashing goroutine. It never fails.
func (a *asyncHash) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		b := <-a.free
		k := min(len(p), cap(b))
		a.bufs <- append(b, p[:k]...)
		p = p[k:]
	}
	return n, nil
}

// Sum waits for everything written and returns the hash.
func (a *asyncHash) Sum() []byte {
	a.Close()
	<-a.done
	return a.h.Sum(nil)
}

// Close ends the hashing goroutine (after what was written).
func (a *asyncHash) Close() { a.close.Do(func() { close(a.bufs) }) }

// bySize is the cut rule without weights: close a shard at the first record
// boundary after either size target is reached.
func bySize(opts Options) func(*state.Shard, record.Raw) bool {
	return func(cur *state.Shard, raw record.Raw) bool {
		return cur.Rows >= opts.ShardRows || raw.End-cur.Start >= opts.ShardBytes
	}
}

// cut scans records and closes a shard after every record for which
// boundary (given the shard so far, that record included) says so.
func (p *Plan) cut(ctx context.Context, r io.Reader, d record.Dialect, offset, row int64, opts Options, boundary func(*state.Shard, record.Raw) bool) error {
	sc := record.NewScannerLimits(r, d, offset, row, opts.limits)
	cur := state.Shard{Sheet: failure.NoSheet, Start: offset, FirstRow: row, Status: state.ShardPending}
	sum := NewChecksum()
	every := opts.blockRows()
	var block *Checksum
	var sums strings.Builder
	if every > 0 {
		block = NewChecksum()
	}
	flush := func(end, nextRow int64) {
		if cur.Rows == 0 {
			return
		}
		cur.Index, cur.End = len(p.Shards), end
		if block != nil {
			if cur.Rows%every != 0 {
				sums.WriteString(block.Hex())
				sum.Append(block)
			}
			cur.Blocks = &state.Blocks{Rows: every, Sums: sums.String()}
			block = NewChecksum()
			sums.Reset()
		}
		cur.Checksum = sum.String()
		cur.Checkpoint = state.Checkpoint{NextOffset: cur.Start, NextRow: cur.FirstRow}
		p.Shards = append(p.Shards, cur)
		p.Rows += cur.Rows
		cur = state.Shard{Sheet: failure.NoSheet, Start: end, FirstRow: nextRow, Status: state.ShardPending}
		sum = NewChecksum()
	}
	for n := 0; sc.Next(); n++ {
		if n&4095 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		raw := sc.Raw()
		if raw.Blank {
			if cur.Rows == 0 { // leading blank lines belong to no shard
				cur.Start, cur.FirstRow = raw.End, raw.Row+1
			}
			continue
		}
		cur.Rows++
		if block == nil {
			sum.Add(raw.Bytes)
		} else {
			block.Add(raw.Bytes)
			if cur.Rows%every == 0 {
				sums.WriteString(block.Hex())
				sum.Append(block)
				block = NewChecksum()
			}
		}
		if boundary(&cur, raw) {
			flush(raw.End, raw.Row+1)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	flush(sc.Offset(), sc.Row())
	return nil
}

func readPrefix(ctx context.Context, src object.Source, info object.Info) ([]byte, error) {
	n := min(info.Size, record.SniffSize)
	rc, err := src.Open(ctx, info, 0, n)
	if err != nil {
		return nil, err // the source names the file
	}
	defer rc.Close()
	buf := make([]byte, n)
	if _, err := io.ReadFull(rc, buf); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, err
	}
	return buf, nil
}

// Registry is the part of the state store the splitter uses.
type Registry interface {
	CreateBatch(ctx context.Context, b state.Batch, shards []state.Shard) (state.Batch, bool, error)
	ListShards(ctx context.Context, batchID string) ([]state.Shard, error)
	ResumeBatch(ctx context.Context, id string, now time.Time) (state.Batch, error)
}

// Request is one split: a planned source becomes a batch with shards.
type Request struct {
	BatchID string
	Plan    Plan
	Profile *profile.Profile
	TraceID string
	Now     time.Time
	// Order is the batch's upload order (state.Batch.Order): the AWS
	// splitter passes state.OrderAt of the S3 event time; 0 lets the store
	// assign it (the embedded database's sequence). A batch that exists
	// already keeps its order.
	Order int64
	// SameContent says the caller's batch id proves that a stored batch with
	// this id has the planned object's exact content (the embedded runner
	// derives the id from a content hash). Then a resumed batch is read
	// under the object's current version tag, so a file that was only
	// touched resumes instead of failing SourceChanged, and a SUSPENDED
	// batch (its source changed, then was restored) is RUNNING again.
	// Otherwise manifests keep the version the batch was split from
	// (invariant 7), and a SUSPENDED batch is left as it is.
	SameContent bool
}

// Outcome says what Register did.
type Outcome struct {
	Batch   state.Batch
	Created bool // false: the batch existed (a duplicate event, a retried split or a rerun)
	Sent    int  // manifests sent
}

// Register creates the batch and its shards (or finds them) and sends a
// manifest for every shard that is not finished. A rejected plan creates a
// REJECTED batch with no shards, so the rejection is visible in status.
func Register(ctx context.Context, reg Registry, q queue.Queue, req Request) (Outcome, error) {
	p := req.Plan
	b := state.Batch{
		ID: req.BatchID, Status: state.BatchRunning, Order: req.Order,
		Source:  state.Source{URI: p.Info.URI, Size: p.Info.Size, ETag: p.Info.ETag, Version: p.Info.Version, ModTime: p.Info.ModTime},
		Layout:  p.Layout,
		Profile: req.Profile.Canonical(), RuleVersion: req.Profile.RuleVersion(),
		Shards: len(p.Shards), Counts: state.Counts{Total: p.Rows},
		TraceID: req.TraceID, Parent: p.Parent, Warnings: p.Warnings, CreatedAt: req.Now, UpdatedAt: req.Now,
	}
	if req.Profile.MaxErrorRatio() > 0 {
		b.Check = &state.BatchCheck{} // decision 20: check every row before the first write
	}
	shards := make([]state.Shard, len(p.Shards))
	for i, s := range p.Shards {
		s.BatchID, s.UpdatedAt = req.BatchID, req.Now
		shards[i] = s
	}
	if p.Rejected != nil {
		b.Status, b.Message, b.FinishedAt, b.Shards, shards = state.BatchRejected, p.Rejected.Error(), req.Now, 0, nil
	} else if len(shards) == 0 {
		b.Status, b.Message, b.FinishedAt = state.BatchCompleted, "the file has a header but no data rows", req.Now
	}
	stored, created, err := reg.CreateBatch(ctx, b, shards)
	if err != nil {
		return Outcome{}, err // the store names the batch
	}
	out := Outcome{Batch: stored, Created: created}
	if stored.Status.Finished() || (stored.Status == state.BatchSuspended && !req.SameContent) {
		return out, nil
	}
	if stored.Status == state.BatchSuspended {
		if stored, err = reg.ResumeBatch(ctx, stored.ID, req.Now); err != nil {
			return out, err
		}
		out.Batch = stored
	}
	if !created { // resume: only what is left
		if shards, err = reg.ListShards(ctx, stored.ID); err != nil {
			return out, err
		}
	}
	if req.SameContent {
		stored.Source = b.Source
	}
	ms := Pending(stored, shards, req.TraceID)
	if err := q.Send(ctx, 0, ms...); err != nil {
		return out, fmt.Errorf("send %d manifests of %s: %w", len(ms), stored.ID, err)
	}
	out.Sent = len(ms)
	return out, nil
}

// Pending returns the manifests batch b still needs for its shards: one
// per unfinished shard. In a batch with a check phase (decision 20) that is
// not fully checked, only the unchecked shards, in the check phase; once
// every shard is checked, the write phase's unless the check exceeded the
// profile's max_error_ratio (none: the batch is to be aborted).
func Pending(b state.Batch, shards []state.Shard, traceID string) []queue.Manifest {
	checking := b.Check != nil && !b.Check.Done(b.Shards)
	if b.Check != nil && !checking && b.Check.Exceeds(MaxErrorRatio(b)) {
		return nil
	}
	var ms []queue.Manifest
	for _, s := range shards {
		if !s.Status.Finished() && (!checking || s.Check == nil) {
			ms = append(ms, Manifest(b, s, traceID))
		}
	}
	return ms
}

// MaxErrorRatio is the max_error_ratio of the profile batch b runs under
// (0 when none, or when the stored profile does not load: the worker
// refuses such a batch anyway).
func MaxErrorRatio(b state.Batch) float64 {
	p, err := profile.Parse(b.Profile)
	if err != nil {
		return 0
	}
	return p.MaxErrorRatio()
}

// Manifest builds the queue manifest of one shard. A staged shard (a sheet
// of a workbook) is read from its staged object, as CSV under its sheet's
// header. In a batch with a check phase the manifest's phase is the
// shard's: PhaseCheck until its check is recorded, PhaseWrite after.
func Manifest(b state.Batch, s state.Shard, traceID string) queue.Manifest {
	src, layout := b.Source, b.Layout
	if s.Staged != nil {
		src, layout = StagedSource(s)
	}
	phase := ""
	switch {
	case b.Check != nil && s.Check == nil:
		phase = queue.PhaseCheck
	case b.Check != nil:
		phase = queue.PhaseWrite
	}
	return queue.Manifest{
		Version: queue.ManifestVersion, BatchID: b.ID, Order: b.Order, Shard: s.Index,
		Source: src, Layout: layout, RuleVersion: b.RuleVersion,
		Sheet: s.Sheet, SheetIndex: s.SheetIndex,
		Start: s.Start, End: s.End, FirstRow: s.FirstRow, Rows: s.Rows, TraceID: traceID,
		Phase: phase,
	}
}

// TooLarge is the rejection of a text file of size bytes over the limit
// max (Options.MaxText).
func TooLarge(size, max int64) error {
	return failure.New(failure.RowTooLarge, "", "file rejected: it is %s (%d bytes), over the limit of %s (%d bytes) for a CSV, TSV or JSON Lines file: "+
		"split it into smaller files and upload each, or raise the limit (the stack's MaxUploadBytes parameter; importctl run --max-file-bytes)",
		byteSize(size), size, byteSize(max), max)
}

// byteSize writes n bytes in binary units, one decimal ("10.0 GiB").
func byteSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n)/unit, 0
	for ; v >= unit && i < 4; i++ {
		v /= unit
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTP"[i])
}
