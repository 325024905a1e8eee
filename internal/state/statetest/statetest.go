// Package statetest is the contract suite of the state store port
// (state.Store): every adapter (internal/local/sqlite, internal/aws/dynamostate)
// calls Run from its tests and must pass all of it. It checks the promises of
// the port's doc comments, which keep invariants 1 (one upload, one batch),
// 2 (one shard, one owner, fenced zombies), 3 (monotonic checkpoints,
// counters moved exactly once) and 4 (failure records keyed by batch, sheet
// and row).
//
// Where the port's comments leave room, the suite pins one reading so that
// every adapter behaves the same; each such test says "(decision)" in its
// comment. Time passes only through the now arguments: nothing sleeps.
package statetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/state"
)

// Run runs the contract of state.Store. newStore is called once per subtest
// (subtests run in parallel) and must return a store that no other subtest
// uses; the store is the subtest's to use until it ends (register cleanup
// with t.Cleanup). Times are compared to the millisecond, and every time a
// store returns must be UTC.
func Run(t *testing.T, newStore func(t *testing.T) state.Store) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t))
		})
	}
}

var tests = []struct {
	name string
	fn   func(t *testing.T, s state.Store)
}{
	{"CreateBatch/StoresBatchAndShards", testCreateBatch},
	{"CreateBatch/IdempotentSecondCallChangesNothing", testCreateBatchIdempotent},
	{"CreateBatch/ConcurrentCallsCreateOnce", testCreateBatchConcurrent},
	{"CreateBatch/WithoutShards", testCreateBatchWithoutShards},
	{"CreateBatch/RoundTripsEveryField", testCreateBatchRoundTrip},
	{"CreateBatch/RefusesBadShardsAndStoresNothing", testCreateBatchRefuses},
	{"CreateBatch/StagedShardsOfAWorkbook", testCreateBatchStaged},
	{"CreateBatch/KeepsWarnings", testCreateBatchWarnings},
	{"CreateBatch/AssignsOrderOnceWhenZero", testCreateBatchOrder},
	{"GetBatch/NotFound", testGetBatchNotFound},
	{"ListBatches/NewestFirst", testListBatches},
	{"ListShards/ByIndex", testListShardsByIndex},
	{"ListShards/NotFound", testListShardsNotFound},
	{"Claim/BumpsEpochAndTakesLease", testClaim},
	{"Claim/ReturnsCheckpointToResumeFrom", testClaimResumes},
	{"Claim/LiveLeaseOfAnotherOwnerIsLeased", testClaimLeased},
	{"Claim/SameOwnerClaimsAgainWithNewEpoch", testClaimSameOwner},
	{"Claim/AfterExpiryNewOwnerFencesZombie", testClaimAfterExpiry("worker-b")},
	{"Claim/AfterExpirySameOwnerFencesZombie", testClaimAfterExpiry("worker-a")},
	{"Claim/FinishedShard", testClaimFinishedShard},
	{"Claim/FinishedBatch", testClaimFinishedBatch},
	{"Claim/EscalatedShardCanBeClaimed", testClaimEscalated},
	{"Claim/NotFound", testClaimNotFound},
	{"Claim/ConcurrentOwnersOneWins", testClaimConcurrent},
	{"Checkpoint/AddsDeltaExactlyOnce", testCheckpointDelta},
	{"Checkpoint/ConcurrentShardsSumExactly", testCheckpointConcurrent},
	{"Checkpoint/NeverMovesBackwards", testCheckpointBackwards},
	{"Checkpoint/ExtendsLease", testCheckpointExtendsLease},
	{"Checkpoint/UpsertsFailuresByKey", testCheckpointFailures},
	{"Checkpoint/FinishedShardOrBatch", testCheckpointFinished},
	{"Checkpoint/AppendsProgressSamples", testProgressSamples},
	{"Checkpoint/CountsSupersededRows", testCheckpointSuperseded},
	{"Checkpoint/ProgressStaysBounded", testProgressBounded},
	{"FinishShard/CountsShardsDoneOnce", testFinishShard},
	{"FinishShard/EscalatedIsNotCounted", testFinishShardEscalated},
	{"FinishShard/Fenced", testFinishShardFenced("worker-b")},
	{"FinishShard/FencedBySameOwnersReclaim", testFinishShardFenced("worker-a")},
	{"RecordCheck/CountsEachShardOnce", testRecordCheck},
	{"RecordCheck/FencedAndWithoutCheckPhase", testRecordCheckRefuses},
	{"FinishBatch/SetsFinalStateOnce", testFinishBatch},
	{"CreateBatch/RoundTripsBlockChecksums", testCreateBatchBlocks},
	{"SuspendBatch/NoShardWritesUntilResumed", testSuspendBatch},
	{"SuspendBatch/TransitionsByStatus", testSuspendTransitions},
	{"FinishBatch/CancelsRunningOrSuspended", testCancelBatch},
	{"Failures/FilterAndOrder", testFailuresFilter},
	{"Failures/Paging", testFailuresPaging},
	{"CountFailures/PerShard", testCountFailures},
	{"PutFailures/UpsertsOutsideLease", testPutFailures},
	{"FailureRecord/RoundTripsEveryField", testFailureRoundTrip},
	{"ReleaseLeases/NewOwnerClaimsAtOnce", testReleaseLeases},
	{"ResolveFailures/MarksEachRecordOnceAndCounts", testResolveFailures},
}

// opts compares what a store returns with what was given: times to the
// millisecond, nil and empty slices and maps alike.
var opts = cmp.Options{cmpopts.EquateEmpty(), cmpopts.EquateApproxTime(time.Millisecond)}

// t0 is the suite's "now"; claims pass times derived from it.
var t0 = time.Date(2031, 3, 14, 15, 9, 26, 535897932, time.UTC)

var seq atomic.Int64

// newID returns an id no other subtest (or run) uses.
func newID(prefix string) string {
	return fmt.Sprintf("%s-%x-%d", prefix, time.Now().UnixNano()&0xffffffffff, seq.Add(1))
}

func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: unexpected error: %v", what, err)
	}
}

func wantErr(t *testing.T, err, want error, what string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error = %v, want errors.Is(err, %q)", what, err, want)
	}
}

func diff(t *testing.T, what string, want, got any, more ...cmp.Option) {
	t.Helper()
	if d := cmp.Diff(want, got, append(cmp.Options{opts}, more...)); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", what, d)
	}
}

func utc(t *testing.T, what string, tm time.Time) {
	t.Helper()
	if !tm.IsZero() && tm.Location() != time.UTC {
		t.Errorf("%s = %v: location %v, want UTC", what, tm, tm.Location())
	}
}

// fixture returns a RUNNING batch with n shards of 10 rows each.
func fixture(n int, created time.Time) (state.Batch, []state.Shard) {
	id := newID("batch")
	b := state.Batch{
		ID:     id,
		Status: state.BatchRunning,
		Order:  state.OrderAt(created, id), // non-zero: kept as given
		Source: state.Source{URI: "s3://incoming-bucket/incoming/" + id + ".csv", Size: int64(n)*1000 + 42,
			ETag: `"9b2cf535f27731c974343645a3985328"`, Version: "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY", ModTime: created.Add(-time.Hour)},
		Layout:      state.Layout{Format: "csv", Encoding: "gb18030", Delimiter: ",", Header: []string{"商品编码", "名称", "价格"}, DataStart: 42},
		Profile:     []byte("name: default\nrules: {}\n"),
		RuleVersion: "rv-5f2a",
		Shards:      n,
		TraceID:     "1-5759e988-bd862e3fe1be46a994272793",
		Parent:      "b-parent-" + id,
		CreatedAt:   created,
		UpdatedAt:   created,
	}
	shards := make([]state.Shard, n)
	for i := range shards {
		start := int64(i)*1000 + 42
		first := int64(2 + 10*i)
		shards[i] = state.Shard{
			BatchID: id, Index: i, Sheet: failure.NoSheet, Start: start, End: start + 1000, FirstRow: first, Rows: 10,
			Checksum: fmt.Sprintf("crc32c:%08x", i), Status: state.ShardPending,
			Checkpoint: state.Checkpoint{NextOffset: start, NextRow: first},
			UpdatedAt:  created,
		}
	}
	b.Counts = state.Counts{Total: int64(10 * n)} // the split's row count
	return b, shards
}

// progress is what a batch's counters should say after checkpoints that add
// up to c: the outcomes move, the split's Total does not.
func progress(b state.Batch, c state.Counts) state.Counts {
	c.Total = b.Counts.Total
	return c
}

// create stores a fresh fixture and returns it as given.
func create(t *testing.T, s state.Store, n int) (state.Batch, []state.Shard) {
	t.Helper()
	b, shards := fixture(n, t0)
	_, created, err := s.CreateBatch(t.Context(), b, shards)
	must(t, err, "CreateBatch")
	if !created {
		t.Fatalf("CreateBatch(%s) created = false for a new id", b.ID)
	}
	return b, shards
}

func getBatch(t *testing.T, s state.Store, id string) state.Batch {
	t.Helper()
	b, err := s.GetBatch(t.Context(), id)
	must(t, err, "GetBatch")
	return b
}

func getShard(t *testing.T, s state.Store, batchID string, index int) state.Shard {
	t.Helper()
	shards, err := s.ListShards(t.Context(), batchID)
	must(t, err, "ListShards")
	for _, sh := range shards {
		if sh.Index == index {
			return sh
		}
	}
	t.Fatalf("ListShards(%s) has no shard %d", batchID, index)
	return state.Shard{}
}

func claim(t *testing.T, s state.Store, batchID string, shard int, owner string, ttl time.Duration, now time.Time) (state.Lease, state.Shard) {
	t.Helper()
	l, sh, err := s.Claim(t.Context(), batchID, shard, owner, ttl, now)
	must(t, err, fmt.Sprintf("Claim(%s, %d, %s)", batchID, shard, owner))
	return l, sh
}

// rec returns a failure record of row in shard.
func rec(batchID, sheet string, row int64, reason failure.Reason, shard int) failure.Record {
	return failure.Record{
		BatchID: batchID, Sheet: sheet, Row: row, Layer: reason.Layer(), Reason: reason, Field: "price",
		Message: fmt.Sprintf("row %d: %s", row, reason), RawLine: fmt.Sprintf("SKU-%d,名称,abc", row),
		Cells: []string{fmt.Sprintf("SKU-%d", row), "名称", "abc"}, FieldMapping: map[string]string{"商品编码": "sku", "价格": "price"},
		RuleVersion: "rv-5f2a", FailureAt: t0.Add(time.Duration(row) * time.Millisecond), TraceID: "1-5759e988-bd862e3fe1be46a994272793",
		Shard: shard,
	}
}

func cpAt(sh state.Shard, done int64, c state.Counts) state.Checkpoint {
	return state.Checkpoint{NextOffset: sh.Start + 100*done, NextRow: sh.FirstRow + done, Counts: c}
}

func testCreateBatch(t *testing.T, s state.Store) {
	b, shards := fixture(3, t0)
	got, created, err := s.CreateBatch(t.Context(), b, shards)
	must(t, err, "CreateBatch")
	if !created {
		t.Errorf("CreateBatch created = false for a new id")
	}
	want := b
	want.Shards, want.ShardsDone = 3, 0
	diff(t, "CreateBatch stored batch", want, got)
	utc(t, "CreatedAt", got.CreatedAt)
	diff(t, "GetBatch", want, getBatch(t, s, b.ID))
	ls, err := s.ListShards(t.Context(), b.ID)
	must(t, err, "ListShards")
	diff(t, "ListShards", shards, ls)
}

func testCreateBatchIdempotent(t *testing.T, s state.Store) {
	b, shards := create(t, s, 3)
	first := getBatch(t, s, b.ID)

	// A duplicated split: same id, different everything else.
	b2, shards2 := fixture(5, t0.Add(time.Hour))
	b2.ID, b2.Status, b2.Message, b2.Counts = b.ID, state.BatchFailed, "second", state.Counts{Total: 99}
	for i := range shards2 {
		shards2[i].BatchID, shards2[i].Rows = b.ID, 77
	}
	got, created, err := s.CreateBatch(t.Context(), b2, shards2)
	must(t, err, "second CreateBatch")
	if created {
		t.Errorf("second CreateBatch created = true, want false")
	}
	diff(t, "second CreateBatch returned batch", first, got)
	diff(t, "GetBatch after second CreateBatch", first, getBatch(t, s, b.ID))
	ls, err := s.ListShards(t.Context(), b.ID)
	must(t, err, "ListShards")
	diff(t, "ListShards after second CreateBatch (not duplicated nor changed)", shards, ls)
}

// testCreateBatchOrder: a batch registered with order 0 gets one from the
// store (SQLite: the next number of its sequence; DynamoDB: state.OrderAt
// of its creation time), later batches get larger ones, and the order is
// assigned once: the idempotent second call keeps the first.
func testCreateBatchOrder(t *testing.T, s state.Store) {
	ctx := t.Context()
	b1, sh1 := fixture(1, t0)
	b1.Order = 0
	got1, created, err := s.CreateBatch(ctx, b1, sh1)
	must(t, err, "CreateBatch 1")
	if !created || got1.Order <= 0 {
		t.Fatalf("CreateBatch with order 0: created %v, order %d; want a positive order", created, got1.Order)
	}
	b2, sh2 := fixture(1, t0.Add(time.Second))
	b2.Order = 0
	got2, _, err := s.CreateBatch(ctx, b2, sh2)
	must(t, err, "CreateBatch 2")
	if got2.Order <= got1.Order {
		t.Errorf("a later batch got order %d, not above the earlier one's %d", got2.Order, got1.Order)
	}
	for _, again := range []int64{0, got1.Order + 1000} {
		b1.Order = again
		got, created, err := s.CreateBatch(ctx, b1, sh1)
		must(t, err, "CreateBatch again")
		if created || got.Order != got1.Order {
			t.Errorf("second CreateBatch with order %d: created %v, order %d; want false, the first order %d", again, created, got.Order, got1.Order)
		}
	}
	if g := getBatch(t, s, b1.ID).Order; g != got1.Order {
		t.Errorf("GetBatch order %d, want %d", g, got1.Order)
	}
	b3, sh3 := fixture(1, t0)
	b3.Order = -1
	if _, _, err := s.CreateBatch(ctx, b3, sh3); err == nil {
		t.Errorf("CreateBatch with a negative order succeeded")
	}
}

func testCreateBatchConcurrent(t *testing.T, s state.Store) {
	b, shards := fixture(2, t0)
	var (
		wg      sync.WaitGroup
		created atomic.Int64
	)
	for range 8 {
		wg.Go(func() {
			_, c, err := s.CreateBatch(t.Context(), b, shards)
			if err != nil {
				t.Errorf("concurrent CreateBatch: %v", err)
			}
			if c {
				created.Add(1)
			}
		})
	}
	wg.Wait()
	if n := created.Load(); n != 1 {
		t.Errorf("8 concurrent CreateBatch calls created %d batches, want 1", n)
	}
	ls, err := s.ListShards(t.Context(), b.ID)
	must(t, err, "ListShards")
	diff(t, "ListShards", shards, ls)
}

func testCreateBatchWithoutShards(t *testing.T, s state.Store) {
	b, _ := fixture(0, t0)
	b.Status, b.Message, b.FinishedAt = state.BatchRejected, "SchemaMismatch: missing columns: price", t0
	got, created, err := s.CreateBatch(t.Context(), b, nil)
	must(t, err, "CreateBatch")
	if !created {
		t.Errorf("created = false")
	}
	diff(t, "stored batch", b, got)
	ls, err := s.ListShards(t.Context(), b.ID)
	must(t, err, "ListShards")
	if len(ls) != 0 {
		t.Errorf("ListShards of a batch without shards = %d shards", len(ls))
	}
}

func testCreateBatchRefuses(t *testing.T, s state.Store) {
	cases := []struct {
		name   string
		mangle func(b *state.Batch, shards []state.Shard)
	}{
		{"empty batch id", func(b *state.Batch, _ []state.Shard) { b.ID = "" }},
		{"shard of another batch", func(_ *state.Batch, sh []state.Shard) { sh[1].BatchID = "other" }},
		{"shard index twice", func(_ *state.Batch, sh []state.Shard) { sh[1].Index = sh[0].Index }},
		{"negative shard index", func(_ *state.Batch, sh []state.Shard) { sh[0].Index = -1 }},
	}
	for _, c := range cases {
		b, shards := fixture(2, t0)
		c.mangle(&b, shards)
		if _, _, err := s.CreateBatch(t.Context(), b, shards); err == nil {
			t.Errorf("%s: CreateBatch succeeded", c.name)
			continue
		}
		if b.ID == "" {
			continue
		}
		if _, err := s.GetBatch(t.Context(), b.ID); !errors.Is(err, state.ErrNotFound) {
			t.Errorf("%s: GetBatch after a refused CreateBatch: %v, want not found", c.name, err)
		}
	}
}

func testCreateBatchRoundTrip(t *testing.T, s state.Store) {
	local := time.FixedZone("CST", 8*3600)
	b, shards := fixture(2, t0.In(local))
	b.Status = state.BatchRejected
	b.Profile = []byte{0, 1, 2, 0xff, 0xfe, '\n', 'y', 'a', 'm', 'l'}
	b.Counts = state.Counts{Total: 20, Imported: 11, Failed: 5, Skipped: 4}
	b.ByReason = map[failure.Reason]int64{failure.DuplicateSKU: 3, failure.MissingField: 2}
	b.Message, b.Report = "消息 with \"quotes\"\nand lines", "s3://reports-bucket/reports/x/errors.csv"
	b.FinishedAt = t0.Add(time.Minute)
	shards[1] = state.Shard{
		BatchID: b.ID, Index: 1, Sheet: "价格表 2", SheetIndex: 3, Start: 1 << 40, End: 1<<40 + 12345, FirstRow: 1_000_001,
		Rows: 12345, Checksum: "sha256:abc", Status: state.ShardEscalated,
		Checkpoint: state.Checkpoint{NextOffset: 1<<40 + 99, NextRow: 1_000_010, Counts: state.Counts{Total: 9, Imported: 5, Failed: 3, Skipped: 1}},
		Owner:      "worker-7f", Epoch: 3, LeaseUntil: t0.Add(5 * time.Minute), Attempts: 2, Message: "AccessDenied: s3 GetObject",
		UpdatedAt: t0.Add(2 * time.Minute),
	}
	got, _, err := s.CreateBatch(t.Context(), b, shards)
	must(t, err, "CreateBatch")
	want := b
	want.ShardsDone = 0
	diff(t, "stored batch", want, got)
	gb := getBatch(t, s, b.ID)
	diff(t, "GetBatch", want, gb)
	for name, tm := range map[string]time.Time{"CreatedAt": gb.CreatedAt, "UpdatedAt": gb.UpdatedAt, "FinishedAt": gb.FinishedAt, "Source.ModTime": gb.Source.ModTime} {
		utc(t, name, tm)
	}
	ls, err := s.ListShards(t.Context(), b.ID)
	must(t, err, "ListShards")
	diff(t, "ListShards", shards, ls)
}

// testCreateBatchStaged: the shards of a workbook name their staged
// objects (one sheet per chunk, each with its own header); the stores keep
// them through ListShards, Claim and a checkpoint, and a shard without one
// stays without.
func testCreateBatchStaged(t *testing.T, s state.Store) {
	b, shards := fixture(3, t0)
	b.Layout = state.Layout{Format: "xlsx"}
	for i := range shards[:2] {
		sh := &shards[i]
		sh.Sheet, sh.SheetIndex = []string{"商品", "Sheet 2"}[i], i+1
		sh.Start, sh.End = 25, 1025
		sh.Checkpoint.NextOffset = 25
		sh.Staged = &state.Staged{
			URI:  fmt.Sprintf("s3://import-bucket/staging/%s/%04d-%05d.csv", b.ID, sh.SheetIndex, 0),
			Size: 1025, ETag: fmt.Sprintf(`"etag-%d"`, i), Header: [][]string{{"商品编码", "名称", "价格"}, {"SKU", "Name", "Price", ""}}[i],
		}
	}
	_, _, err := s.CreateBatch(t.Context(), b, shards)
	must(t, err, "CreateBatch")
	ls, err := s.ListShards(t.Context(), b.ID)
	must(t, err, "ListShards")
	diff(t, "ListShards", shards, ls)
	_, claimed := claim(t, s, b.ID, 1, "w", time.Minute, t0)
	diff(t, "claimed shard's staged object", shards[1].Staged, claimed.Staged)
	lease, _ := claim(t, s, b.ID, 0, "w", time.Minute, t0)
	err = s.Checkpoint(t.Context(), lease, state.Checkpoint{NextOffset: 500, NextRow: 7, Counts: state.Counts{Total: 5, Imported: 5}}, nil, t0.Add(time.Minute))
	must(t, err, "Checkpoint")
	diff(t, "staged object after a checkpoint", shards[0].Staged, getShard(t, s, b.ID, 0).Staged)
	if got := getShard(t, s, b.ID, 2).Staged; got != nil {
		t.Errorf("shard 2 without a staged object reads back %+v", got)
	}
}

// testCreateBatchWarnings: a batch's warnings (what the split noticed, set
// once) read back in order through GetBatch and ListBatches, stay through a
// checkpoint and FinishBatch, and a batch without any reads back nil.
func testCreateBatchWarnings(t *testing.T, s state.Store) {
	b, shards := fixture(1, t0)
	b.Layout = state.Layout{Format: "xlsx", Encoding: "utf-8"}
	b.Warnings = []string{
		`sheet "lists" is hidden and was not imported`,
		`sheet "商品", column H (no header): 3 cells ignored, the first at row 5 ("备注 "x"")`,
		strings.Repeat("长", state.MaxWarningBytes/3),
	}
	_, _, err := s.CreateBatch(t.Context(), b, shards)
	must(t, err, "CreateBatch")
	diff(t, "GetBatch warnings", b.Warnings, getBatch(t, s, b.ID).Warnings)
	all, err := s.ListBatches(t.Context(), 0)
	must(t, err, "ListBatches")
	i := slices.IndexFunc(all, func(x state.Batch) bool { return x.ID == b.ID })
	if i < 0 {
		t.Fatalf("ListBatches lacks %s", b.ID)
	}
	diff(t, "ListBatches warnings", b.Warnings, all[i].Warnings)
	lease, _ := claim(t, s, b.ID, 0, "w", time.Minute, t0)
	err = s.Checkpoint(t.Context(), lease, state.Checkpoint{NextOffset: shards[0].Start + 10, NextRow: 3, Counts: state.Counts{Total: 1, Imported: 1}}, nil, t0.Add(time.Second))
	must(t, err, "Checkpoint")
	fin, err := s.FinishBatch(t.Context(), b.ID, state.Final{Status: state.BatchCompleted, Counts: state.Counts{Total: 10, Imported: 10}}, t0.Add(time.Minute))
	must(t, err, "FinishBatch")
	diff(t, "warnings of the finished batch", b.Warnings, fin.Warnings)
	diff(t, "GetBatch warnings after FinishBatch", b.Warnings, getBatch(t, s, b.ID).Warnings)

	plain, _ := create(t, s, 1)
	if w := getBatch(t, s, plain.ID).Warnings; w != nil {
		t.Errorf("a batch without warnings reads back %q, want nil", w)
	}
}

func testGetBatchNotFound(t *testing.T, s state.Store) {
	_, err := s.GetBatch(t.Context(), newID("missing"))
	wantErr(t, err, state.ErrNotFound, "GetBatch of an unknown id")
}

func testListBatches(t *testing.T, s state.Store) {
	var ids []string // by creation time
	for range 4 {
		b, _ := fixture(1, t0)
		ids = append(ids, b.ID)
	}
	for _, i := range []int{2, 0, 3, 1} { // stored out of order
		b, shards := fixture(1, t0.Add(time.Duration(i)*time.Second))
		b.ID = ids[i]
		for j := range shards {
			shards[j].BatchID = b.ID
		}
		_, _, err := s.CreateBatch(t.Context(), b, shards)
		must(t, err, "CreateBatch")
	}
	all, err := s.ListBatches(t.Context(), 0)
	must(t, err, "ListBatches(0)")
	var got []string
	for _, b := range all {
		got = append(got, b.ID)
	}
	want := []string{ids[3], ids[2], ids[1], ids[0]}
	diff(t, "ListBatches(0) ids, newest first", want, got)
	two, err := s.ListBatches(t.Context(), 2)
	must(t, err, "ListBatches(2)")
	got = got[:0]
	for _, b := range two {
		got = append(got, b.ID)
	}
	diff(t, "ListBatches(2) ids", want[:2], got)
	if len(all) > 0 {
		diff(t, "ListBatches entry", getBatch(t, s, all[0].ID), all[0])
	}
}

func testListShardsByIndex(t *testing.T, s state.Store) {
	b, shards := fixture(5, t0)
	rev := slices.Clone(shards)
	slices.Reverse(rev)
	_, _, err := s.CreateBatch(t.Context(), b, rev)
	must(t, err, "CreateBatch")
	ls, err := s.ListShards(t.Context(), b.ID)
	must(t, err, "ListShards")
	diff(t, "ListShards (by index)", shards, ls)
}

// testListShardsNotFound (decision): the shards of an unknown batch are
// ErrNotFound, not an empty list.
func testListShardsNotFound(t *testing.T, s state.Store) {
	_, err := s.ListShards(t.Context(), newID("missing"))
	wantErr(t, err, state.ErrNotFound, "ListShards of an unknown batch")
}

func testClaim(t *testing.T, s state.Store) {
	b, shards := create(t, s, 2)
	l, sh, err := s.Claim(t.Context(), b.ID, 1, "worker-a", time.Minute, t0)
	must(t, err, "Claim")
	if l.Epoch <= shards[1].Epoch {
		t.Errorf("lease epoch %d, want more than the shard's %d", l.Epoch, shards[1].Epoch)
	}
	diff(t, "lease", state.Lease{BatchID: b.ID, Shard: 1, Owner: "worker-a", Epoch: l.Epoch, Until: t0.Add(time.Minute)}, l)
	utc(t, "Lease.Until", l.Until)
	want := shards[1]
	want.Status, want.Owner, want.Epoch, want.LeaseUntil, want.Attempts = state.ShardRunning, "worker-a", l.Epoch, t0.Add(time.Minute), 1
	diff(t, "claimed shard", want, sh, cmpopts.IgnoreFields(state.Shard{}, "UpdatedAt"))
	diff(t, "stored shard", want, getShard(t, s, b.ID, 1), cmpopts.IgnoreFields(state.Shard{}, "UpdatedAt"))
	if got := getShard(t, s, b.ID, 0); got.Epoch != shards[0].Epoch || got.Owner != "" {
		t.Errorf("claiming shard 1 changed shard 0: %+v", got)
	}
}

func testClaimResumes(t *testing.T, s state.Store) {
	b, shards := create(t, s, 1)
	la, _ := claim(t, s, b.ID, 0, "worker-a", time.Minute, t0)
	cp := cpAt(shards[0], 4, state.Counts{Total: 4, Imported: 3, Failed: 1})
	err := s.Checkpoint(t.Context(), la, cp, nil, t0.Add(time.Minute))
	must(t, err, "Checkpoint")
	lb, sh := claim(t, s, b.ID, 0, "worker-b", time.Minute, t0.Add(2*time.Minute))
	if lb.Epoch <= la.Epoch {
		t.Errorf("second claim epoch %d, want more than %d", lb.Epoch, la.Epoch)
	}
	diff(t, "checkpoint returned by Claim", cp, sh.Checkpoint)
	if sh.Attempts != 2 {
		t.Errorf("Attempts = %d after two claims, want 2", sh.Attempts)
	}
}

func testClaimLeased(t *testing.T, s state.Store) {
	b, shards := create(t, s, 1)
	la, _ := claim(t, s, b.ID, 0, "worker-a", time.Minute, t0)
	before := getShard(t, s, b.ID, 0)
	_, _, err := s.Claim(t.Context(), b.ID, 0, "worker-b", time.Minute, t0.Add(59*time.Second))
	wantErr(t, err, state.ErrLeased, "Claim while another owner's lease is live")
	diff(t, "shard after a refused claim", before, getShard(t, s, b.ID, 0))
	// The holder is not disturbed.
	err = s.Checkpoint(t.Context(), la, cpAt(shards[0], 1, state.Counts{Total: 1, Imported: 1}), nil, t0.Add(time.Minute))
	must(t, err, "holder's Checkpoint after a refused claim")
}

// testClaimSameOwner (decision): only another owner's live lease refuses a
// claim; the same owner claiming again gets a new epoch, fencing its older
// lease.
func testClaimSameOwner(t *testing.T, s state.Store) {
	b, shards := create(t, s, 1)
	l1, _ := claim(t, s, b.ID, 0, "worker-a", time.Minute, t0)
	l2, _ := claim(t, s, b.ID, 0, "worker-a", time.Minute, t0.Add(10*time.Second))
	if l2.Epoch <= l1.Epoch {
		t.Errorf("re-claim epoch %d, want more than %d", l2.Epoch, l1.Epoch)
	}
	err := s.Checkpoint(t.Context(), l1, cpAt(shards[0], 1, state.Counts{Total: 1, Imported: 1}), nil, t0.Add(time.Minute))
	wantErr(t, err, state.ErrFenced, "Checkpoint with the older lease")
}

// testClaimAfterExpiry: once worker-a's lease ran out and `owner` claimed
// the shard, worker-a's old lease writes nothing. With owner worker-a (the
// same owner coming back, e.g. a restarted process keeping its name) only
// the epoch tells the old lease from the new one.
func testClaimAfterExpiry(owner string) func(t *testing.T, s state.Store) {
	return func(t *testing.T, s state.Store) { claimAfterExpiry(t, s, owner) }
}

func claimAfterExpiry(t *testing.T, s state.Store, owner string) {
	b, shards := create(t, s, 1)
	ctx := t.Context()
	la, _ := claim(t, s, b.ID, 0, "worker-a", time.Minute, t0)
	cp1 := cpAt(shards[0], 5, state.Counts{Total: 5, Imported: 4, Failed: 1})
	err := s.Checkpoint(ctx, la, cp1, []failure.Record{rec(b.ID, "-", 3, failure.MissingField, 0)}, t0.Add(time.Minute))
	must(t, err, "Checkpoint")

	lb, _ := claim(t, s, b.ID, 0, owner, time.Minute, t0.Add(time.Minute+time.Second))
	if lb.Epoch <= la.Epoch {
		t.Fatalf("new owner's epoch %d, want more than the zombie's %d", lb.Epoch, la.Epoch)
	}
	shardBefore, batchBefore := getShard(t, s, b.ID, 0), getBatch(t, s, b.ID)

	cp2 := cpAt(shards[0], 9, state.Counts{Total: 9, Imported: 7, Failed: 2})
	err = s.Checkpoint(ctx, la, cp2, []failure.Record{rec(b.ID, "-", 8, failure.InvalidNumber, 0)}, t0.Add(time.Hour))
	wantErr(t, err, state.ErrFenced, "zombie's Checkpoint")
	_, err = s.FinishShard(ctx, la, state.ShardDone, cp2, "zombie done")
	wantErr(t, err, state.ErrFenced, "zombie's FinishShard")

	diff(t, "shard after the zombie's writes", shardBefore, getShard(t, s, b.ID, 0))
	diff(t, "batch after the zombie's writes", batchBefore, getBatch(t, s, b.ID))
	recs, err := s.Failures(ctx, b.ID, state.FailureFilter{})
	must(t, err, "Failures")
	if len(recs) != 1 || recs[0].Row != 3 {
		t.Errorf("failure records after the zombie's checkpoint = %v, want only row 3", recs)
	}
	// The new owner moves on from the checkpoint it was given.
	err = s.Checkpoint(ctx, lb, cp2, nil, t0.Add(time.Hour))
	must(t, err, "new owner's Checkpoint")
}

func testClaimFinishedShard(t *testing.T, s state.Store) {
	for _, status := range []state.ShardStatus{state.ShardDone, state.ShardSkipped} {
		b, shards := create(t, s, 2)
		l, _ := claim(t, s, b.ID, 0, "worker-a", time.Minute, t0)
		_, err := s.FinishShard(t.Context(), l, status, cpAt(shards[0], 10, state.Counts{Total: 10, Imported: 10}), "")
		must(t, err, "FinishShard")
		_, _, err = s.Claim(t.Context(), b.ID, 0, "worker-b", time.Minute, t0.Add(time.Hour))
		wantErr(t, err, state.ErrShardFinished, fmt.Sprintf("Claim of a %s shard", status))
		_, _, err = s.Claim(t.Context(), b.ID, 0, "worker-a", time.Minute, t0.Add(time.Hour))
		wantErr(t, err, state.ErrShardFinished, fmt.Sprintf("Claim of a %s shard by its last owner", status))
	}
}

func testClaimFinishedBatch(t *testing.T, s state.Store) {
	b, _ := create(t, s, 2)
	_, err := s.FinishBatch(t.Context(), b.ID, state.Final{Status: state.BatchAborted, Counts: state.Counts{Total: 20, Skipped: 20}, Message: "max_error_ratio exceeded"}, t0)
	must(t, err, "FinishBatch")
	_, _, err = s.Claim(t.Context(), b.ID, 1, "worker-a", time.Minute, t0)
	wantErr(t, err, state.ErrBatchFinished, "Claim in a finished batch")
}

func testClaimEscalated(t *testing.T, s state.Store) {
	b, shards := create(t, s, 1)
	la, _ := claim(t, s, b.ID, 0, "worker-a", time.Minute, t0)
	_, err := s.FinishShard(t.Context(), la, state.ShardEscalated, cpAt(shards[0], 2, state.Counts{Total: 2, Imported: 2}), "AccessDenied")
	must(t, err, "FinishShard ESCALATED")
	lb, sh := claim(t, s, b.ID, 0, "redrive", time.Minute, t0.Add(time.Second))
	if lb.Epoch <= la.Epoch || sh.Status != state.ShardRunning {
		t.Errorf("redrive claim: epoch %d (was %d), status %s", lb.Epoch, la.Epoch, sh.Status)
	}
}

func testClaimNotFound(t *testing.T, s state.Store) {
	b, _ := create(t, s, 1)
	_, _, err := s.Claim(t.Context(), newID("missing"), 0, "worker-a", time.Minute, t0)
	wantErr(t, err, state.ErrNotFound, "Claim in an unknown batch")
	_, _, err = s.Claim(t.Context(), b.ID, 7, "worker-a", time.Minute, t0)
	wantErr(t, err, state.ErrNotFound, "Claim of an unknown shard")
}

func testClaimConcurrent(t *testing.T, s state.Store) {
	b, _ := create(t, s, 1)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		won    []state.Lease
		leased int
	)
	for i := range 8 {
		wg.Go(func() {
			l, _, err := s.Claim(t.Context(), b.ID, 0, fmt.Sprintf("worker-%d", i), time.Minute, t0)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won = append(won, l)
			case errors.Is(err, state.ErrLeased):
				leased++
			default:
				t.Errorf("concurrent Claim: error = %v, want nil or ErrLeased", err)
			}
		})
	}
	wg.Wait()
	if len(won) != 1 || leased != 7 {
		t.Fatalf("8 concurrent claims: %d won, %d ErrLeased; want 1 and 7", len(won), leased)
	}
	sh := getShard(t, s, b.ID, 0)
	if sh.Owner != won[0].Owner || sh.Epoch != won[0].Epoch || sh.Attempts != 1 {
		t.Errorf("stored shard owner %q epoch %d attempts %d; winner %q epoch %d", sh.Owner, sh.Epoch, sh.Attempts, won[0].Owner, won[0].Epoch)
	}
}

func testCheckpointDelta(t *testing.T, s state.Store) {
	b, shards := create(t, s, 2)
	ctx := t.Context()
	l, _ := claim(t, s, b.ID, 0, "worker-a", time.Minute, t0)
	cp1 := cpAt(shards[0], 4, state.Counts{Total: 4, Imported: 3, Failed: 1})
	err := s.Checkpoint(ctx, l, cp1, nil, t0.Add(time.Minute))
	must(t, err, "Checkpoint 1")
	got := getBatch(t, s, b.ID).Counts
	diff(t, "counters after checkpoint 1", progress(b, cp1.Counts), got)
	err = s.Checkpoint(ctx, l, cp1, nil, t0.Add(time.Minute))
	must(t, err, "Checkpoint 1 retried")
	got = getBatch(t, s, b.ID).Counts
	diff(t, "counters after checkpoint 1 retried (no double count)", progress(b, cp1.Counts), got)
	cp2 := cpAt(shards[0], 10, state.Counts{Total: 10, Imported: 6, Failed: 3, Skipped: 1})
	err = s.Checkpoint(ctx, l, cp2, nil, t0.Add(time.Minute))
	must(t, err, "Checkpoint 2")
	got = getBatch(t, s, b.ID).Counts
	diff(t, "counters after checkpoint 2", progress(b, cp2.Counts), got)
	diff(t, "batch counters", progress(b, cp2.Counts), getBatch(t, s, b.ID).Counts)
	diff(t, "shard checkpoint", cp2, getShard(t, s, b.ID, 0).Checkpoint)

	l1, _ := claim(t, s, b.ID, 1, "worker-b", time.Minute, t0)
	cp3 := cpAt(shards[1], 2, state.Counts{Total: 2, Imported: 2})
	err = s.Checkpoint(ctx, l1, cp3, nil, t0.Add(time.Minute))
	must(t, err, "Checkpoint of shard 1")
	got = getBatch(t, s, b.ID).Counts
	diff(t, "counters of two shards", progress(b, cp2.Counts.Add(cp3.Counts)), got)
}

// testCheckpointSuperseded: superseded rows are an outcome like the others:
// carried by checkpoints and final checkpoints, added to the batch's
// counters once, part of Done, and a checkpoint behind in superseded alone
// does not move.
func testCheckpointSuperseded(t *testing.T, s state.Store) {
	b, shards := create(t, s, 1)
	ctx := t.Context()
	l, _ := claim(t, s, b.ID, 0, "worker-a", time.Minute, t0)
	cp1 := cpAt(shards[0], 4, state.Counts{Total: 4, Imported: 1, Superseded: 2, Failed: 1})
	err := s.Checkpoint(ctx, l, cp1, nil, t0.Add(time.Minute))
	must(t, err, "Checkpoint 1")
	got := getBatch(t, s, b.ID).Counts
	diff(t, "counters after checkpoint 1", progress(b, cp1.Counts), got)
	if got.Done() != 4 {
		t.Errorf("Done() = %d, want 4 (superseded rows have an outcome)", got.Done())
	}
	err = s.Checkpoint(ctx, l, cp1, nil, t0.Add(time.Minute))
	must(t, err, "Checkpoint 1 retried")
	got = getBatch(t, s, b.ID).Counts
	diff(t, "counters after checkpoint 1 retried (no double count)", progress(b, cp1.Counts), got)
	diff(t, "shard checkpoint", cp1, getShard(t, s, b.ID, 0).Checkpoint)
	lower := cp1
	lower.Counts.Superseded = 1
	err = s.Checkpoint(ctx, l, lower, nil, t0.Add(time.Minute))
	must(t, err, "Checkpoint behind in superseded")
	diff(t, "shard checkpoint after one behind in superseded", cp1, getShard(t, s, b.ID, 0).Checkpoint)

	final := cpAt(shards[0], 10, state.Counts{Total: 10, Imported: 3, Superseded: 5, Failed: 2})
	bt, err := s.FinishShard(ctx, l, state.ShardDone, final, "")
	must(t, err, "FinishShard")
	if bt.ShardsDone != 1 {
		t.Errorf("FinishShard returned ShardsDone %d, want 1", bt.ShardsDone)
	}
	diff(t, "finished shard's checkpoint", final, getShard(t, s, b.ID, 0).Checkpoint)
	diff(t, "GetBatch counters", progress(b, final.Counts), getBatch(t, s, b.ID).Counts)
}

func testCheckpointConcurrent(t *testing.T, s state.Store) {
	const n, steps = 4, 15
	b, shards := create(t, s, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			l, _, err := s.Claim(t.Context(), b.ID, i, fmt.Sprintf("worker-%d", i), time.Minute, t0)
			if err != nil {
				t.Errorf("Claim %d: %v", i, err)
				return
			}
			for k := int64(1); k <= steps; k++ {
				cp := cpAt(shards[i], k, state.Counts{Total: k, Imported: k - k/3, Failed: k / 3})
				rs := []failure.Record{rec(b.ID, "-", int64(i)*1000+k, failure.InvalidValue, i)}
				if err := s.Checkpoint(t.Context(), l, cp, rs, t0.Add(time.Minute)); err != nil {
					t.Errorf("Checkpoint %d/%d: %v", i, k, err)
					return
				}
			}
		})
	}
	wg.Wait()
	want := progress(b, state.Counts{Imported: n * (steps - steps/3), Failed: n * (steps / 3)})
	diff(t, "batch counters after concurrent checkpoints", want, getBatch(t, s, b.ID).Counts)
	counts, err := s.CountFailures(t.Context(), b.ID)
	must(t, err, "CountFailures")
	for i := range n {
		if counts[i] != steps {
			t.Errorf("shard %d: %d failure records, want %d", i, counts[i], steps)
		}
	}
}

// testCheckpointBackwards (decision): a checkpoint behind the stored one is
// not an error but changes neither the checkpoint nor the counters (a late
// retry of an applied call is harmless); its failure records are still kept.
func testCheckpointBackwards(t *testing.T, s state.Store) {
	b, shards := create(t, s, 1)
	ctx := t.Context()
	l, _ := claim(t, s, b.ID, 0, "worker-a", time.Minute, t0)
	ahead := cpAt(shards[0], 8, state.Counts{Total: 8, Imported: 8})
	err := s.Checkpoint(ctx, l, ahead, nil, t0.Add(time.Minute))
	must(t, err, "Checkpoint ahead")
	older := cpAt(shards[0], 3, state.Counts{Total: 3, Imported: 3})
	err = s.Checkpoint(ctx, l, older, []failure.Record{rec(b.ID, "-", 2, failure.MissingField, 0)}, t0.Add(time.Minute))
	must(t, err, "Checkpoint behind")
	diff(t, "stored checkpoint", ahead, getShard(t, s, b.ID, 0).Checkpoint)
	diff(t, "batch counters", progress(b, ahead.Counts), getBatch(t, s, b.ID).Counts)
	recs, err := s.Failures(ctx, b.ID, state.FailureFilter{})
	must(t, err, "Failures")
	if len(recs) != 1 {
		t.Errorf("failure records of a checkpoint behind: %d, want 1 (records are idempotent)", len(recs))
	}
	// Nor does a final checkpoint behind move it back.
	bt, err := s.FinishShard(ctx, l, state.ShardDone, older, "")
	must(t, err, "FinishShard behind")
	diff(t, "batch counters after FinishShard behind", progress(b, ahead.Counts), getBatch(t, s, b.ID).Counts)
	if bt.ShardsDone != 1 {
		t.Errorf("FinishShard behind returned ShardsDone %d, want 1", bt.ShardsDone)
	}
	diff(t, "stored checkpoint after FinishShard behind", ahead, getShard(t, s, b.ID, 0).Checkpoint)
}

func testCheckpointExtendsLease(t *testing.T, s state.Store) {
	b, shards := create(t, s, 1)
	l, _ := claim(t, s, b.ID, 0, "worker-a", time.Minute, t0)
	err := s.Checkpoint(t.Context(), l, cpAt(shards[0], 1, state.Counts{Total: 1, Imported: 1}), nil, t0.Add(10*time.Minute))
	must(t, err, "Checkpoint")
	diff(t, "lease after checkpoint", t0.Add(10*time.Minute), getShard(t, s, b.ID, 0).LeaseUntil)
	_, _, err = s.Claim(t.Context(), b.ID, 0, "worker-b", time.Minute, t0.Add(5*time.Minute))
	wantErr(t, err, state.ErrLeased, "Claim within the extended lease")
	claim(t, s, b.ID, 0, "worker-b", time.Minute, t0.Add(11*time.Minute))
}

func testCheckpointFailures(t *testing.T, s state.Store) {
	b, shards := create(t, s, 1)
	ctx := t.Context()
	l, _ := claim(t, s, b.ID, 0, "worker-a", time.Minute, t0)
	r5, r7 := rec(b.ID, "-", 5, failure.MissingField, 0), rec(b.ID, "-", 7, failure.DuplicateSKU, 0)
	cp := cpAt(shards[0], 8, state.Counts{Total: 8, Imported: 6, Failed: 2})
	err := s.Checkpoint(ctx, l, cp, []failure.Record{r5, r7}, t0.Add(time.Minute))
	must(t, err, "Checkpoint")
	// A replay of the range after a crash: same keys, newer content.
	r5b := r5
	r5b.Message, r5b.RetryCount, r5b.FailureAt = "replayed", 1, t0.Add(time.Hour)
	err = s.Checkpoint(ctx, l, cp, []failure.Record{r5b, r7}, t0.Add(time.Minute))
	must(t, err, "Checkpoint replayed")
	recs, err := s.Failures(ctx, b.ID, state.FailureFilter{})
	must(t, err, "Failures")
	diff(t, "failure records after a replay", []failure.Record{r5b, r7}, recs)
	// The same key twice in one call keeps the last.
	r7b := r7
	r7b.Message = "last of two"
	err = s.Checkpoint(ctx, l, cp, []failure.Record{r7, r7b}, t0.Add(time.Minute))
	must(t, err, "Checkpoint with one key twice")
	recs, err = s.Failures(ctx, b.ID, state.FailureFilter{})
	must(t, err, "Failures")
	diff(t, "failure records after one key twice", []failure.Record{r5b, r7b}, recs)
	diff(t, "batch counters", progress(b, cp.Counts), getBatch(t, s, b.ID).Counts)
}

// testCheckpointFinished (decision): Checkpoint on a finished shard is
// ErrShardFinished, and in a finished batch ErrBatchFinished (workers of an
// aborted batch stop at their next checkpoint).
func testCheckpointFinished(t *testing.T, s state.Store) {
	b, shards := create(t, s, 2)
	ctx := t.Context()
	l0, _ := claim(t, s, b.ID, 0, "worker-a", time.Minute, t0)
	l1, _ := claim(t, s, b.ID, 1, "worker-b", time.Minute, t0)
	cp := cpAt(shards[0], 10, state.Counts{Total: 10, Imported: 10})
	_, err := s.FinishShard(ctx, l0, state.ShardDone, cp, "")
	must(t, err, "FinishShard")
	err = s.Checkpoint(ctx, l0, cp, nil, t0.Add(time.Minute))
	wantErr(t, err, state.ErrShardFinished, "Checkpoint of a finished shard")

	_, err = s.FinishBatch(ctx, b.ID, state.Final{Status: state.BatchAborted, Counts: state.Counts{Total: 20, Imported: 10, Skipped: 10}, Message: "aborted"}, t0)
	must(t, err, "FinishBatch")
	before := getBatch(t, s, b.ID)
	err = s.Checkpoint(ctx, l1, cpAt(shards[1], 3, state.Counts{Total: 3, Imported: 3}), nil, t0.Add(time.Minute))
	wantErr(t, err, state.ErrBatchFinished, "Checkpoint in a finished batch")
	diff(t, "finished batch after a refused checkpoint", before, getBatch(t, s, b.ID))
}

func testFinishShard(t *testing.T, s state.Store) {
	b, shards := create(t, s, 2)
	ctx := t.Context()
	l0, _ := claim(t, s, b.ID, 0, "worker-a", time.Minute, t0)
	l1, _ := claim(t, s, b.ID, 1, "worker-b", time.Minute, t0)
	half := cpAt(shards[0], 5, state.Counts{Total: 5, Imported: 5})
	err := s.Checkpoint(ctx, l0, half, nil, t0.Add(time.Minute))
	must(t, err, "Checkpoint")

	final0 := cpAt(shards[0], 10, state.Counts{Total: 10, Imported: 9, Failed: 1})
	got, err := s.FinishShard(ctx, l0, state.ShardDone, final0, "done")
	must(t, err, "FinishShard 0")
	if got.ID != b.ID || got.ShardsDone != 1 || got.Shards != 2 {
		t.Errorf("FinishShard 0 returned ShardsDone %d of %d (batch %q), want 1 of 2", got.ShardsDone, got.Shards, got.ID)
	}
	diff(t, "counters after FinishShard (final checkpoint's delta added)", progress(b, final0.Counts), getBatch(t, s, b.ID).Counts)
	got, err = s.FinishShard(ctx, l0, state.ShardDone, final0, "done")
	must(t, err, "FinishShard 0 again")
	if got.ShardsDone != 1 {
		t.Errorf("FinishShard twice: ShardsDone = %d, want 1", got.ShardsDone)
	}
	diff(t, "counters after FinishShard twice", progress(b, final0.Counts), getBatch(t, s, b.ID).Counts)
	_, err = s.FinishShard(ctx, l0, state.ShardSkipped, final0, "")
	wantErr(t, err, state.ErrShardFinished, "FinishShard of a DONE shard as SKIPPED")

	sh := getShard(t, s, b.ID, 0)
	if sh.Status != state.ShardDone || sh.Message != "done" {
		t.Errorf("finished shard: status %s message %q", sh.Status, sh.Message)
	}
	diff(t, "finished shard's checkpoint", final0, sh.Checkpoint)

	final1 := cpAt(shards[1], 10, state.Counts{Total: 10, Skipped: 10})
	got, err = s.FinishShard(ctx, l1, state.ShardSkipped, final1, "SourceChanged")
	must(t, err, "FinishShard 1")
	if got.ShardsDone != got.Shards {
		t.Errorf("after the last shard: ShardsDone %d, Shards %d; want equal", got.ShardsDone, got.Shards)
	}
	gb := getBatch(t, s, b.ID)
	diff(t, "counters after both shards", progress(b, final0.Counts.Add(final1.Counts)), gb.Counts)
	if gb.ShardsDone != got.ShardsDone || gb.Status != got.Status {
		t.Errorf("GetBatch after both shards: %d shards done, %s; FinishShard returned %d, %s", gb.ShardsDone, gb.Status, got.ShardsDone, got.Status)
	}
}

func testFinishShardEscalated(t *testing.T, s state.Store) {
	b, shards := create(t, s, 1)
	ctx := t.Context()
	la, _ := claim(t, s, b.ID, 0, "worker-a", time.Hour, t0)
	got, err := s.FinishShard(ctx, la, state.ShardEscalated, cpAt(shards[0], 3, state.Counts{Total: 3, Imported: 3}), "AccessDenied")
	must(t, err, "FinishShard ESCALATED")
	if got.ShardsDone != 0 {
		t.Errorf("ESCALATED counted in ShardsDone: %d", got.ShardsDone)
	}
	if sh := getShard(t, s, b.ID, 0); sh.Status != state.ShardEscalated || sh.Message != "AccessDenied" {
		t.Errorf("escalated shard: status %s message %q", sh.Status, sh.Message)
	}
	// The escalation ended the lease: a redrive claims at once.
	lb, _ := claim(t, s, b.ID, 0, "redrive", time.Minute, t0.Add(time.Second))
	got, err = s.FinishShard(ctx, lb, state.ShardDone, cpAt(shards[0], 10, state.Counts{Total: 10, Imported: 10}), "")
	must(t, err, "FinishShard DONE after redrive")
	if got.ShardsDone != 1 {
		t.Errorf("ShardsDone = %d after the redriven shard is done, want 1", got.ShardsDone)
	}
	diff(t, "counters", progress(b, state.Counts{Imported: 10}), getBatch(t, s, b.ID).Counts)
}

// testFinishShardFenced: FinishShard with worker-a's lease after `owner`
// claimed the shard again is ErrFenced and changes neither the shard nor
// the batch (owner worker-a: only the epoch tells the leases apart).
func testFinishShardFenced(owner string) func(t *testing.T, s state.Store) {
	return func(t *testing.T, s state.Store) { finishShardFenced(t, s, owner) }
}

func finishShardFenced(t *testing.T, s state.Store, owner string) {
	b, shards := create(t, s, 1)
	la, _ := claim(t, s, b.ID, 0, "worker-a", time.Minute, t0)
	claim(t, s, b.ID, 0, owner, time.Minute, t0.Add(2*time.Minute))
	shardBefore := getShard(t, s, b.ID, 0)
	_, err := s.FinishShard(t.Context(), la, state.ShardDone, cpAt(shards[0], 10, state.Counts{Total: 10, Imported: 10}), "")
	wantErr(t, err, state.ErrFenced, "FinishShard with a stale lease")
	if got := getBatch(t, s, b.ID); got.ShardsDone != 0 || got.Counts != b.Counts {
		t.Errorf("fenced FinishShard changed the batch: %+v", got)
	}
	diff(t, "shard after the fenced FinishShard", shardBefore, getShard(t, s, b.ID, 0))
	_, err = s.FinishShard(t.Context(), state.Lease{BatchID: b.ID, Shard: 0}, state.ShardDone, state.Checkpoint{}, "")
	wantErr(t, err, state.ErrFenced, "FinishShard with the zero lease")
}

func testFinishBatch(t *testing.T, s state.Store) {
	b, _ := create(t, s, 2)
	ctx := t.Context()
	err := s.PutFailures(ctx, []failure.Record{
		rec(b.ID, "-", 3, failure.DuplicateSKU, 0), rec(b.ID, "-", 4, failure.DuplicateSKU, 0),
		rec(b.ID, "-", 15, failure.MissingField, 1),
	})
	must(t, err, "PutFailures")
	counts := state.Counts{Total: 20, Imported: 15, Superseded: 2, Failed: 3}
	t1 := t0.Add(time.Hour)
	byReason := map[failure.Reason]int64{failure.DuplicateSKU: 2, failure.MissingField: 1}
	got, err := s.FinishBatch(ctx, b.ID, state.Final{Status: state.BatchCompletedWithErrors, Counts: counts, ByReason: byReason,
		Message: "3 rows failed", Report: "reports/x/errors.csv"}, t1)
	must(t, err, "FinishBatch")
	want := b
	want.Status, want.Counts, want.Message, want.Report, want.FinishedAt = state.BatchCompletedWithErrors, counts, "3 rows failed", "reports/x/errors.csv", t1
	want.ByReason = byReason
	diff(t, "finished batch", want, got, cmpopts.IgnoreFields(state.Batch{}, "UpdatedAt"))
	utc(t, "FinishedAt", got.FinishedAt)
	diff(t, "GetBatch", got, getBatch(t, s, b.ID))

	again, err := s.FinishBatch(ctx, b.ID, state.Final{Status: state.BatchCompletedWithErrors, Message: "other", Report: "other"}, t1.Add(time.Hour))
	must(t, err, "FinishBatch again the same way")
	diff(t, "batch after finishing it twice the same way (no-op)", got, again)
	diff(t, "GetBatch after a no-op finish", got, getBatch(t, s, b.ID))
	_, err = s.FinishBatch(ctx, b.ID, state.Final{Status: state.BatchFailed, Counts: counts}, t1)
	wantErr(t, err, state.ErrBatchFinished, "FinishBatch with another status")
	_, err = s.FinishBatch(ctx, newID("missing"), state.Final{Status: state.BatchCompleted, Counts: counts}, t1)
	wantErr(t, err, state.ErrNotFound, "FinishBatch of an unknown batch")
}

// failureSet stores records over two sheets, two shards and several reasons
// (not in key order) and returns them in (sheet, row) order.
func failureSet(t *testing.T, s state.Store, batchID string) []failure.Record {
	t.Helper()
	var rs []failure.Record
	reasons := []failure.Reason{failure.MissingField, failure.DuplicateSKU, failure.InvalidNumber, failure.MalformedRow, failure.SKUExists}
	for i, row := range []int64{100, 2, 10, 9, 11, 3, 1000, 20} {
		rs = append(rs, rec(batchID, "Sheet B", row, reasons[i%len(reasons)], i%2))
		rs = append(rs, rec(batchID, "Sheet A", row+1, reasons[(i+2)%len(reasons)], (i+1)%2))
	}
	must(t, s.PutFailures(t.Context(), rs), "PutFailures")
	slices.SortFunc(rs, failure.Compare)
	return rs
}

func testFailuresFilter(t *testing.T, s state.Store) {
	b, _ := create(t, s, 2)
	all := failureSet(t, s, b.ID)
	other, _ := create(t, s, 1)
	must(t, s.PutFailures(t.Context(), []failure.Record{rec(other.ID, "-", 2, failure.MissingField, 0)}), "PutFailures other batch")
	one := 1
	cases := []struct {
		name string
		f    state.FailureFilter
		keep func(failure.Record) bool
	}{
		{"everything", state.FailureFilter{}, func(failure.Record) bool { return true }},
		{"reasons", state.FailureFilter{Reasons: []failure.Reason{failure.DuplicateSKU, failure.InvalidNumber}},
			func(r failure.Record) bool {
				return r.Reason == failure.DuplicateSKU || r.Reason == failure.InvalidNumber
			}},
		{"layers", state.FailureFilter{Layers: []failure.Layer{failure.LayerBusiness}},
			func(r failure.Record) bool { return r.Layer == failure.LayerBusiness }},
		{"shard", state.FailureFilter{Shard: &one}, func(r failure.Record) bool { return r.Shard == 1 }},
		{"shard and layer", state.FailureFilter{Shard: &one, Layers: []failure.Layer{failure.LayerSemantic, failure.LayerSyntax}},
			func(r failure.Record) bool { return r.Shard == 1 && r.Layer != failure.LayerBusiness }},
		{"no match", state.FailureFilter{Reasons: []failure.Reason{failure.Throttled}}, func(failure.Record) bool { return false }},
	}
	for _, tc := range cases {
		got, err := s.Failures(t.Context(), b.ID, tc.f)
		must(t, err, "Failures "+tc.name)
		diff(t, "Failures "+tc.name, slices.DeleteFunc(slices.Clone(all), func(r failure.Record) bool { return !tc.keep(r) }), got)
	}
	got, err := s.Failures(t.Context(), newID("missing"), state.FailureFilter{})
	must(t, err, "Failures of an unknown batch")
	if len(got) != 0 {
		t.Errorf("Failures of an unknown batch = %d records", len(got))
	}
}

func testFailuresPaging(t *testing.T, s state.Store) {
	b, _ := create(t, s, 2)
	all := failureSet(t, s, b.ID)
	for _, tc := range []struct {
		name  string
		f     state.FailureFilter
		limit int
	}{{"all by 3", state.FailureFilter{}, 3}, {"all by 1", state.FailureFilter{}, 1}, {"business by 2", state.FailureFilter{Layers: []failure.Layer{failure.LayerBusiness}}, 2}} {
		want, err := s.Failures(t.Context(), b.ID, tc.f)
		must(t, err, "Failures")
		var got []failure.Record
		f := tc.f
		f.Limit = tc.limit
		for pages := 0; ; pages++ {
			if pages > len(all)+1 {
				t.Fatalf("%s: paging does not end", tc.name)
			}
			page, err := s.Failures(t.Context(), b.ID, f)
			must(t, err, "Failures page")
			if len(page) > tc.limit {
				t.Fatalf("%s: page of %d records, limit %d", tc.name, len(page), tc.limit)
			}
			if len(page) == 0 {
				break
			}
			got = append(got, page...)
			f.AfterSheet, f.AfterRow = page[len(page)-1].Sheet, page[len(page)-1].Row
		}
		diff(t, "pages of "+tc.name, want, got)
	}
	// After a key in the middle.
	got, err := s.Failures(t.Context(), b.ID, state.FailureFilter{AfterSheet: all[4].Sheet, AfterRow: all[4].Row, Limit: 3})
	must(t, err, "Failures after a key")
	diff(t, "Failures after a key", all[5:8], got)
}

func testCountFailures(t *testing.T, s state.Store) {
	b, _ := create(t, s, 2)
	all := failureSet(t, s, b.ID)
	want := map[int]int64{}
	for _, r := range all {
		want[r.Shard]++
	}
	got, err := s.CountFailures(t.Context(), b.ID)
	must(t, err, "CountFailures")
	diff(t, "CountFailures", want, got)
	got, err = s.CountFailures(t.Context(), newID("missing"))
	must(t, err, "CountFailures of an unknown batch")
	if len(got) != 0 {
		t.Errorf("CountFailures of an unknown batch = %v", got)
	}
}

func testPutFailures(t *testing.T, s state.Store) {
	b, _ := create(t, s, 2)
	ctx := t.Context()
	claim(t, s, b.ID, 1, "worker-b", time.Hour, t0)
	before := getBatch(t, s, b.ID)
	// Shard 0's worker records a row of shard 1 that it displaced.
	r := rec(b.ID, "-", 15, failure.DuplicateSKU, 1)
	must(t, s.PutFailures(ctx, []failure.Record{r}), "PutFailures")
	must(t, s.PutFailures(ctx, []failure.Record{r}), "PutFailures replayed")
	must(t, s.PutFailures(ctx, nil), "PutFailures of nothing")
	got, err := s.Failures(ctx, b.ID, state.FailureFilter{})
	must(t, err, "Failures")
	diff(t, "records after PutFailures twice", []failure.Record{r}, got)
	counts, err := s.CountFailures(ctx, b.ID)
	must(t, err, "CountFailures")
	diff(t, "CountFailures", map[int]int64{1: 1}, counts)
	diff(t, "batch after PutFailures (counters untouched)", before, getBatch(t, s, b.ID))
}

func testFailureRoundTrip(t *testing.T, s state.Store) {
	b, _ := create(t, s, 1)
	r := failure.Record{
		BatchID: b.ID, Sheet: "价格表 (2)", Row: 1_000_000_007, Layer: failure.LayerSyntax, Reason: failure.MalformedRow,
		Field: "描述", Message: "unbalanced quote: \"…\"", RawLine: "SKU-1,\"无线鼠标\nsecond line, \"\"quoted\"\"\r\n\t=cmd|' /C calc'!A0",
		Cells:        []string{"SKU-1", "", "=1+2", "🖱 mouse", "line\nbreak"},
		FieldMapping: map[string]string{"商品编码": "sku", "名称": "name", "": "ignored", "Price (CNY)": "price"},
		RuleVersion:  "sha256:5f2a9c", RetryCount: 3,
		FailureAt: time.Date(2031, 3, 14, 23, 9, 26, 535897932, time.FixedZone("CST", 8*3600)),
		TraceID:   "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1", Shard: 0,
	}
	minimal := failure.Record{BatchID: b.ID, Sheet: "-", Row: 2, Layer: failure.LayerBusiness, Reason: failure.SKUExists}
	must(t, s.PutFailures(t.Context(), []failure.Record{r, minimal}), "PutFailures")
	got, err := s.Failures(t.Context(), b.ID, state.FailureFilter{})
	must(t, err, "Failures")
	diff(t, "failure records", []failure.Record{minimal, r}, got)
	for _, g := range got {
		utc(t, "FailureAt", g.FailureAt)
	}
}

func testReleaseLeases(t *testing.T, s state.Store) {
	b, shards := create(t, s, 3)
	ctx := t.Context()
	la0, _ := claim(t, s, b.ID, 0, "dead-worker", time.Hour, t0)
	claim(t, s, b.ID, 1, "dead-worker", time.Hour, t0)
	l2, _ := claim(t, s, b.ID, 2, "dead-worker", time.Hour, t0)
	_, err := s.FinishShard(ctx, l2, state.ShardDone, cpAt(shards[2], 10, state.Counts{Total: 10, Imported: 10}), "")
	must(t, err, "FinishShard")
	must(t, s.ReleaseLeases(ctx, b.ID), "ReleaseLeases")
	if sh := getShard(t, s, b.ID, 0); sh.Epoch != la0.Epoch {
		t.Errorf("ReleaseLeases changed the epoch: %d, was %d", sh.Epoch, la0.Epoch)
	}
	for i := range 2 {
		l, _ := claim(t, s, b.ID, i, "new-worker", time.Minute, t0.Add(time.Second))
		if i == 0 && l.Epoch <= la0.Epoch {
			t.Errorf("claim after release: epoch %d, want more than %d", l.Epoch, la0.Epoch)
		}
	}
	err = s.Checkpoint(ctx, la0, cpAt(shards[0], 1, state.Counts{Total: 1, Imported: 1}), nil, t0.Add(time.Hour))
	wantErr(t, err, state.ErrFenced, "Checkpoint of the released holder after a new claim")
	_, _, err = s.Claim(ctx, b.ID, 2, "new-worker", time.Minute, t0.Add(time.Second))
	wantErr(t, err, state.ErrShardFinished, "Claim of a DONE shard after ReleaseLeases")
	err = s.ReleaseLeases(ctx, newID("missing"))
	wantErr(t, err, state.ErrNotFound, "ReleaseLeases of an unknown batch")
}

func testResolveFailures(t *testing.T, s state.Store) {
	b, _ := create(t, s, 2)
	ctx := t.Context()
	var recs []failure.Record
	for row := int64(2); row < 152; row++ { // more than one transaction's worth
		recs = append(recs, rec(b.ID, "-", row, failure.InvalidNumber, int(row%2)))
	}
	other := rec(b.ID, "价格表", 4, failure.MissingField, 0)
	recs = append(recs, other)
	must(t, s.PutFailures(ctx, recs), "PutFailures")

	keys := []failure.Key{{Sheet: "-", Row: 3}, {Sheet: "-", Row: 5}, {Sheet: "-", Row: 999}, {Sheet: "-", Row: 3}}
	n, err := s.ResolveFailures(ctx, b.ID, keys, "b-child-1", t0.Add(time.Hour))
	must(t, err, "ResolveFailures")
	if n != 2 {
		t.Errorf("ResolveFailures(rows 3, 5, 999 (none), 3 again) = %d, want 2", n)
	}
	if got := getBatch(t, s, b.ID).Resolved; got != 2 {
		t.Errorf("batch Resolved = %d, want 2", got)
	}
	// A later call: row 3 stays resolved by the first child; the rest of
	// sheet "-" (148 rows, two transactions on DynamoDB) is marked.
	keys = keys[:0]
	for row := int64(2); row < 152; row++ {
		keys = append(keys, failure.Key{Sheet: "-", Row: row})
	}
	n, err = s.ResolveFailures(ctx, b.ID, keys, "b-child-2", t0.Add(2*time.Hour))
	must(t, err, "ResolveFailures again")
	if n != 148 {
		t.Errorf("second ResolveFailures = %d, want 148", n)
	}
	n, err = s.ResolveFailures(ctx, b.ID, keys, "b-child-3", t0.Add(3*time.Hour))
	must(t, err, "ResolveFailures replayed")
	if n != 0 {
		t.Errorf("replayed ResolveFailures = %d, want 0", n)
	}
	if got := getBatch(t, s, b.ID).Resolved; got != 150 {
		t.Errorf("batch Resolved = %d, want 150", got)
	}
	open, err := s.Failures(ctx, b.ID, state.FailureFilter{Unresolved: true})
	must(t, err, "Failures(Unresolved)")
	diff(t, "unresolved records", []failure.Record{other}, open)
	all, err := s.Failures(ctx, b.ID, state.FailureFilter{})
	must(t, err, "Failures")
	by := map[int64]string{}
	for _, r := range all {
		if r.Sheet == "-" {
			by[r.Row] = r.ResolvedBy
			utc(t, "ResolvedAt", r.ResolvedAt)
		}
	}
	if by[3] != "b-child-1" || by[5] != "b-child-1" || by[2] != "b-child-2" || by[151] != "b-child-2" || len(by) != 150 {
		t.Errorf("resolved_by of rows 2, 3, 5, 151 = %q %q %q %q (of %d rows), want b-child-2 b-child-1 b-child-1 b-child-2 (150)",
			by[2], by[3], by[5], by[151], len(by))
	}
	for _, r := range all {
		if r.Sheet == "-" && r.Row == 3 && !r.ResolvedAt.Equal(t0.Add(time.Hour)) {
			t.Errorf("row 3 ResolvedAt = %v, want %v", r.ResolvedAt, t0.Add(time.Hour))
		}
	}
	_, err = s.ResolveFailures(ctx, newID("missing"), keys[:1], "b-child", t0)
	wantErr(t, err, state.ErrNotFound, "ResolveFailures of an unknown batch")
}

// testProgressSamples: every checkpoint that moves forward, and a final
// checkpoint ahead of the stored one, appends a sample of the shard's
// counters with its failed rows by layer; a repeated checkpoint appends
// nothing and counts its records once.
func testProgressSamples(t *testing.T, s state.Store) {
	b, shards := create(t, s, 2)
	ctx := t.Context()
	l, _ := claim(t, s, b.ID, 0, "worker-a", time.Minute, t0)
	cp1 := cpAt(shards[0], 4, state.Counts{Total: 4, Imported: 2, Failed: 2})
	f1 := []failure.Record{rec(b.ID, failure.NoSheet, 3, failure.InvalidNumber, 0), rec(b.ID, failure.NoSheet, 4, failure.MalformedRow, 0)}
	err := s.Checkpoint(ctx, l, cp1, f1, t0.Add(time.Minute))
	must(t, err, "Checkpoint 1")
	err = s.Checkpoint(ctx, l, cp1, f1, t0.Add(time.Minute))
	must(t, err, "Checkpoint 1 repeated")
	cp2 := cpAt(shards[0], 7, state.Counts{Total: 7, Imported: 4, Failed: 3})
	err = s.Checkpoint(ctx, l, cp2, []failure.Record{rec(b.ID, failure.NoSheet, 8, failure.DuplicateSKU, 0)}, t0.Add(time.Minute))
	must(t, err, "Checkpoint 2")
	final := cpAt(shards[0], 10, state.Counts{Total: 10, Imported: 4, Failed: 3, Skipped: 3})
	_, err = s.FinishShard(ctx, l, state.ShardSkipped, final, "skipped")
	must(t, err, "FinishShard")

	ls, err := s.ListShards(ctx, b.ID)
	must(t, err, "ListShards")
	got := ls[0].Progress
	want := []state.Sample{
		{Done: 4, Failed: 2, ByLayer: state.LayerCounts{Syntax: 1, Semantic: 1}},
		{Done: 7, Failed: 3, ByLayer: state.LayerCounts{Syntax: 1, Semantic: 1, Business: 1}},
		{Done: 10, Failed: 3, ByLayer: state.LayerCounts{Syntax: 1, Semantic: 1, Business: 1}},
	}
	diff(t, "shard 0 progress (times aside)", want, got, cmpopts.IgnoreFields(state.Sample{}, "At"))
	for i, smp := range got {
		utc(t, fmt.Sprintf("Progress[%d].At", i), smp.At)
		if smp.At.IsZero() || (i > 0 && smp.At.Before(got[i-1].At)) {
			t.Errorf("Progress[%d].At = %v: zero or before the sample before it", i, smp.At)
		}
	}
	if len(ls[1].Progress) != 0 {
		t.Errorf("shard 1 was never checkpointed but has progress %+v", ls[1].Progress)
	}
}

// testProgressBounded: a shard checkpointed more than MaxSamples times
// keeps at most MaxSamples samples, from its first to its latest.
func testProgressBounded(t *testing.T, s state.Store) {
	b, shards := create(t, s, 1)
	ctx := t.Context()
	l, _ := claim(t, s, b.ID, 0, "worker-a", time.Minute, t0)
	const n = state.MaxSamples + 25
	for i := int64(1); i <= n; i++ {
		err := s.Checkpoint(ctx, l, cpAt(shards[0], i, state.Counts{Total: i, Imported: i}), nil, t0.Add(time.Minute))
		must(t, err, fmt.Sprintf("Checkpoint %d", i))
	}
	got := getShard(t, s, b.ID, 0).Progress
	if len(got) > state.MaxSamples || len(got) < state.MaxSamples/2 {
		t.Fatalf("%d checkpoints left %d samples, want between %d and %d", n, len(got), state.MaxSamples/2, state.MaxSamples)
	}
	if got[0].Done != 1 || got[len(got)-1].Done != n {
		t.Errorf("samples run from %d to %d rows, want 1 to %d", got[0].Done, got[len(got)-1].Done, n)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Done <= got[i-1].Done {
			t.Fatalf("samples out of order at %d: %d then %d rows", i, got[i-1].Done, got[i].Done)
		}
	}
}

// createChecked stores a fresh fixture of n shards with a check phase.
func createChecked(t *testing.T, s state.Store, n int) (state.Batch, []state.Shard) {
	t.Helper()
	b, shards := fixture(n, t0)
	b.Check = &state.BatchCheck{}
	stored, created, err := s.CreateBatch(t.Context(), b, shards)
	must(t, err, "CreateBatch")
	if !created || stored.Check == nil || *stored.Check != (state.BatchCheck{}) {
		t.Fatalf("CreateBatch with a check phase: created %v, check %+v; want created with a zero check", created, stored.Check)
	}
	return b, shards
}

// testRecordCheck: each shard's check outcome is recorded once (a replay
// and a later claim's RecordCheck change nothing but end the lease), with
// its failure records, and the batch's check sums the shards'; the shard
// can be claimed again at once for the write phase.
func testRecordCheck(t *testing.T, s state.Store) {
	b, _ := createChecked(t, s, 2)
	ctx := t.Context()
	l0, sh := claim(t, s, b.ID, 0, "checker-a", time.Minute, t0)
	if sh.Check != nil {
		t.Fatalf("claimed shard has check %+v before RecordCheck", sh.Check)
	}
	fails := []failure.Record{rec(b.ID, failure.NoSheet, 3, failure.InvalidNumber, 0), rec(b.ID, failure.NoSheet, 7, failure.DuplicateSKU, 0)}
	got, err := s.RecordCheck(ctx, l0, state.Check{Rows: 10, Failed: 2}, fails)
	must(t, err, "RecordCheck 0")
	diff(t, "batch check after shard 0", &state.BatchCheck{Shards: 1, Rows: 10, Failed: 2}, got.Check)
	got, err = s.RecordCheck(ctx, l0, state.Check{Rows: 10, Failed: 2}, fails)
	must(t, err, "RecordCheck 0 replayed")
	diff(t, "batch check after a replay", &state.BatchCheck{Shards: 1, Rows: 10, Failed: 2}, got.Check)
	if got.ShardsDone != 0 || got.Counts != b.Counts {
		t.Errorf("RecordCheck moved the write counters: %d shards done, %+v", got.ShardsDone, got.Counts)
	}
	// The lease ended: another owner claims at once; a second check of the
	// shard keeps the first outcome.
	l0b, sh := claim(t, s, b.ID, 0, "checker-b", time.Minute, t0.Add(time.Second))
	diff(t, "claimed shard's check", &state.Check{Rows: 10, Failed: 2}, sh.Check)
	got, err = s.RecordCheck(ctx, l0b, state.Check{Rows: 10, Failed: 9}, nil)
	must(t, err, "RecordCheck 0 by a second owner")
	diff(t, "batch check after a second owner", &state.BatchCheck{Shards: 1, Rows: 10, Failed: 2}, got.Check)

	l1, _ := claim(t, s, b.ID, 1, "checker-a", time.Minute, t0)
	got, err = s.RecordCheck(ctx, l1, state.Check{Rows: 10}, nil)
	must(t, err, "RecordCheck 1")
	diff(t, "batch check after both shards", &state.BatchCheck{Shards: 2, Rows: 20, Failed: 2}, got.Check)
	if !got.Check.Done(got.Shards) || got.Check.Exceeds(0.1) || !got.Check.Exceeds(0.05) {
		t.Errorf("check %+v of %d shards: Done/Exceeds wrong", got.Check, got.Shards)
	}
	diff(t, "GetBatch after both shards", got, getBatch(t, s, b.ID))
	recs, err := s.Failures(ctx, b.ID, state.FailureFilter{})
	must(t, err, "Failures")
	diff(t, "failure records of the check", fails, recs)
	if sh := getShard(t, s, b.ID, 1); sh.Status.Finished() || sh.Check == nil || *sh.Check != (state.Check{Rows: 10}) {
		t.Errorf("checked shard 1: status %s check %+v", sh.Status, sh.Check)
	}
	claim(t, s, b.ID, 1, "writer", time.Minute, t0.Add(time.Second)) // the write phase claims at once
}

// testRecordCheckRefuses: a stale lease is fenced, a batch without a check
// phase or finished refuses, and nothing changes.
func testRecordCheckRefuses(t *testing.T, s state.Store) {
	ctx := t.Context()
	b, _ := createChecked(t, s, 1)
	la, _ := claim(t, s, b.ID, 0, "checker-a", time.Minute, t0)
	claim(t, s, b.ID, 0, "checker-b", time.Minute, t0.Add(2*time.Minute))
	_, err := s.RecordCheck(ctx, la, state.Check{Rows: 10, Failed: 1}, []failure.Record{rec(b.ID, failure.NoSheet, 3, failure.InvalidNumber, 0)})
	wantErr(t, err, state.ErrFenced, "RecordCheck with a stale lease")
	if got := getBatch(t, s, b.ID); got.Check == nil || *got.Check != (state.BatchCheck{}) {
		t.Errorf("fenced RecordCheck changed the batch's check: %+v", got.Check)
	}

	plain, _ := create(t, s, 1)
	lp, _ := claim(t, s, plain.ID, 0, "checker-a", time.Minute, t0)
	if _, err := s.RecordCheck(ctx, lp, state.Check{Rows: 10}, nil); failure.ReasonOf(err) != failure.Internal {
		t.Errorf("RecordCheck on a batch without a check phase: %v, want an Internal ImportError", err)
	}

	done, _ := createChecked(t, s, 1)
	ld, _ := claim(t, s, done.ID, 0, "checker-a", time.Minute, t0)
	_, err = s.FinishBatch(ctx, done.ID, state.Final{Status: state.BatchAborted, Counts: state.Counts{Total: 10, Skipped: 10}, Message: "aborted"}, t0)
	must(t, err, "FinishBatch")
	_, err = s.RecordCheck(ctx, ld, state.Check{Rows: 10}, nil)
	wantErr(t, err, state.ErrBatchFinished, "RecordCheck on a finished batch")
}

// testCreateBatchBlocks: a shard's block checksums (state.Blocks) come back
// from ListShards and Claim as stored; a shard without them has nil.
func testCreateBatchBlocks(t *testing.T, s state.Store) {
	b, shards := fixture(2, t0)
	blocks := &state.Blocks{Rows: 4, Sums: "0a1b2c3d" + "ffffffff" + "00000001"}
	shards[0].Blocks = blocks
	_, _, err := s.CreateBatch(t.Context(), b, shards)
	must(t, err, "CreateBatch")
	diff(t, "blocks of shard 0", blocks, getShard(t, s, b.ID, 0).Blocks)
	if got := getShard(t, s, b.ID, 1).Blocks; got != nil {
		t.Errorf("blocks of shard 1 = %+v, want nil", got)
	}
	_, sh := claim(t, s, b.ID, 0, "worker-a", time.Minute, t0)
	diff(t, "blocks of the claimed shard", blocks, sh.Blocks)
	if sum, ok := sh.Blocks.Sum(2); !ok || sum != "00000001" || sh.Blocks.Len() != 3 {
		t.Errorf("Blocks.Sum(2) = %q %v, Len %d; want 00000001 true, 3", sum, ok, sh.Blocks.Len())
	}
	if _, ok := sh.Blocks.Sum(3); ok {
		t.Errorf("Blocks.Sum(3) found a block past the last")
	}
}

// testSuspendBatch (decision): a SUSPENDED batch takes no shard write:
// Claim, Checkpoint and FinishShard fail with ErrBatchSuspended and change
// nothing; it is not finished; resumed (RUNNING again), the checkpoint
// taken before the suspension is where a new claim resumes.
func testSuspendBatch(t *testing.T, s state.Store) {
	b, shards := create(t, s, 2)
	ctx := t.Context()
	l0, _ := claim(t, s, b.ID, 0, "worker-a", time.Minute, t0)
	cp := cpAt(shards[0], 4, state.Counts{Total: 4, Imported: 4})
	err := s.Checkpoint(ctx, l0, cp, nil, t0.Add(time.Minute))
	must(t, err, "Checkpoint")
	msg := "products.csv changed since this import started"
	got, err := s.SuspendBatch(ctx, b.ID, msg, t0.Add(time.Second))
	must(t, err, "SuspendBatch")
	if got.Status != state.BatchSuspended || got.Message != msg || got.Status.Finished() {
		t.Fatalf("suspended batch: status %s (finished %v), message %q", got.Status, got.Status.Finished(), got.Message)
	}
	before := getBatch(t, s, b.ID)
	err = s.Checkpoint(ctx, l0, cpAt(shards[0], 8, state.Counts{Total: 8, Imported: 8}), nil, t0.Add(time.Minute))
	wantErr(t, err, state.ErrBatchSuspended, "Checkpoint in a suspended batch")
	_, err = s.FinishShard(ctx, l0, state.ShardDone, cpAt(shards[0], 10, state.Counts{Total: 10, Imported: 10}), "")
	wantErr(t, err, state.ErrBatchSuspended, "FinishShard in a suspended batch")
	_, _, err = s.Claim(ctx, b.ID, 1, "worker-b", time.Minute, t0)
	wantErr(t, err, state.ErrBatchSuspended, "Claim in a suspended batch")
	diff(t, "suspended batch after refused writes", before, getBatch(t, s, b.ID))
	diff(t, "checkpoint of shard 0 after refused writes", cp, getShard(t, s, b.ID, 0).Checkpoint)

	got, err = s.ResumeBatch(ctx, b.ID, t0.Add(2*time.Second))
	must(t, err, "ResumeBatch")
	if got.Status != state.BatchRunning || got.Message != "" {
		t.Fatalf("resumed batch: status %s, message %q; want RUNNING with no message", got.Status, got.Message)
	}
	diff(t, "counters of the resumed batch", before.Counts, got.Counts)
	_, sh := claim(t, s, b.ID, 0, "worker-c", time.Minute, t0.Add(2*time.Minute))
	diff(t, "checkpoint a resumed claim starts from", cp, sh.Checkpoint)
}

// testSuspendTransitions: SuspendBatch and ResumeBatch by the batch's
// status, table-driven: each is a no-op in its own target status and
// fails ErrBatchFinished on a finished batch, ErrNotFound on none.
func testSuspendTransitions(t *testing.T, s state.Store) {
	ctx := t.Context()
	finished := func(t *testing.T, id string) {
		_, err := s.FinishBatch(ctx, id, state.Final{Status: state.BatchCancelled, Counts: state.Counts{Total: 20, Skipped: 20}}, t0)
		must(t, err, "FinishBatch CANCELLED")
	}
	suspended := func(t *testing.T, id string) {
		_, err := s.SuspendBatch(ctx, id, "changed", t0)
		must(t, err, "SuspendBatch")
	}
	for _, tc := range []struct {
		name    string
		setup   func(t *testing.T, id string)
		suspend bool // SuspendBatch, else ResumeBatch
		want    state.BatchStatus
		err     error
	}{
		{"suspend running", nil, true, state.BatchSuspended, nil},
		{"suspend suspended is a no-op", suspended, true, state.BatchSuspended, nil},
		{"suspend finished", finished, true, state.BatchCancelled, state.ErrBatchFinished},
		{"resume running is a no-op", nil, false, state.BatchRunning, nil},
		{"resume suspended", suspended, false, state.BatchRunning, nil},
		{"resume finished", finished, false, state.BatchCancelled, state.ErrBatchFinished},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := create(t, s, 2)
			if tc.setup != nil {
				tc.setup(t, b.ID)
			}
			var err error
			if tc.suspend {
				_, err = s.SuspendBatch(ctx, b.ID, "changed", t0.Add(time.Second))
			} else {
				_, err = s.ResumeBatch(ctx, b.ID, t0.Add(time.Second))
			}
			if tc.err != nil {
				wantErr(t, err, tc.err, tc.name)
			} else {
				must(t, err, tc.name)
			}
			if got := getBatch(t, s, b.ID).Status; got != tc.want {
				t.Errorf("status after %s = %s, want %s", tc.name, got, tc.want)
			}
		})
	}
	_, err := s.SuspendBatch(ctx, newID("missing"), "changed", t0)
	wantErr(t, err, state.ErrNotFound, "SuspendBatch of an unknown batch")
	_, err = s.ResumeBatch(ctx, newID("missing"), t0)
	wantErr(t, err, state.ErrNotFound, "ResumeBatch of an unknown batch")
}

// testCancelBatch (decision): FinishBatch CANCELLED ends a RUNNING or a
// SUSPENDED batch; CANCELLED is finished, so a worker's next checkpoint
// fails ErrBatchFinished, and a second cancel is a no-op while finishing
// it another way fails.
func testCancelBatch(t *testing.T, s state.Store) {
	ctx := t.Context()
	for _, suspend := range []bool{false, true} {
		b, shards := create(t, s, 2)
		l0, _ := claim(t, s, b.ID, 0, "worker-a", time.Minute, t0)
		if suspend {
			_, err := s.SuspendBatch(ctx, b.ID, "changed", t0)
			must(t, err, "SuspendBatch")
		}
		final := state.Final{Status: state.BatchCancelled, Counts: state.Counts{Total: 20, Skipped: 20}, Message: "cancelled by alice"}
		got, err := s.FinishBatch(ctx, b.ID, final, t0.Add(time.Minute))
		must(t, err, fmt.Sprintf("FinishBatch CANCELLED (suspended %v)", suspend))
		if got.Status != state.BatchCancelled || !got.Status.Finished() || got.Message != final.Message || got.FinishedAt.IsZero() {
			t.Fatalf("cancelled batch: %s (finished %v) %q at %v", got.Status, got.Status.Finished(), got.Message, got.FinishedAt)
		}
		err = s.Checkpoint(ctx, l0, cpAt(shards[0], 3, state.Counts{Total: 3, Imported: 3}), nil, t0.Add(time.Minute))
		wantErr(t, err, state.ErrBatchFinished, "Checkpoint in a cancelled batch")
		_, err = s.FinishBatch(ctx, b.ID, final, t0.Add(time.Hour))
		must(t, err, "cancel twice")
		_, err = s.FinishBatch(ctx, b.ID, state.Final{Status: state.BatchCompleted, Counts: state.Counts{Total: 20, Imported: 20}}, t0)
		wantErr(t, err, state.ErrBatchFinished, "FinishBatch COMPLETED of a cancelled batch")
	}
}
