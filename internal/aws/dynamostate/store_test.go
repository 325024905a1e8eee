package dynamostate_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmw "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/catalog-import/catalog-import/internal/aws/awstest"
	"github.com/catalog-import/catalog-import/internal/aws/dynamostate"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/state"
	"github.com/catalog-import/catalog-import/internal/state/statetest"
	"github.com/catalog-import/catalog-import/internal/triage"
	"github.com/catalog-import/catalog-import/internal/triage/triagetest"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// newTable creates a fresh state table on the shared moto_server (deleted
// when the test ends) and returns a client with the extra middleware.
func newTable(t *testing.T, apiOptions ...func(*middleware.Stack) error) (*dynamodb.Client, string) {
	t.Helper()
	c := awstest.Clients(t, append([]func(*middleware.Stack) error{serialize}, apiOptions...)...).DynamoDB
	name := awstest.Name("state")
	if err := dynamostate.CreateTable(t.Context(), c, name); err != nil {
		t.Fatalf("CreateTable: %v", err)
	}
	t.Cleanup(func() {
		_, _ = c.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	})
	return c, name
}

// motoMu makes moto_server handle one request of this test binary at a
// time. DynamoDB makes every request atomic; moto serves requests on many
// threads and does not: a conditional write reads the item, evaluates the
// condition and writes in separate steps (two concurrent claims of one shard
// can both win), and a cancelled transaction restores a copy of the whole
// table taken when it began (undoing writes made meanwhile). One request at
// a time restores DynamoDB's per-request atomicity; the store's calls still
// interleave between requests as they do on AWS.
var motoMu sync.Mutex

func serialize(stack *middleware.Stack) error {
	return stack.Deserialize.Add(middleware.DeserializeMiddlewareFunc("serialize-moto",
		func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
			motoMu.Lock()
			defer motoMu.Unlock()
			return next.HandleDeserialize(ctx, in)
		}), middleware.After)
}

func newStore(t *testing.T, apiOptions ...func(*middleware.Stack) error) (*dynamostate.Store, *dynamodb.Client, string) {
	t.Helper()
	c, name := newTable(t, apiOptions...)
	return dynamostate.New(c, name, dynamostate.Options{}), c, name
}

func TestContract(t *testing.T) {
	statetest.Run(t, func(t *testing.T) state.Store {
		s, _, _ := newStore(t)
		return s
	})
}

func TestCreateTableIsIdempotent(t *testing.T) {
	c, name := newTable(t)
	if err := dynamostate.CreateTable(t.Context(), c, name); err != nil {
		t.Fatalf("CreateTable of an existing table: %v", err)
	}
	ttl, err := c.DescribeTimeToLive(t.Context(), &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	if d := ttl.TimeToLiveDescription; d == nil || aws.ToString(d.AttributeName) != dynamostate.TTLAttribute ||
		d.TimeToLiveStatus != types.TimeToLiveStatusEnabled {
		t.Errorf("time to live: %+v", ttl.TimeToLiveDescription)
	}
	out, err := c.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	if gs := out.Table.GlobalSecondaryIndexes; len(gs) != 1 || aws.ToString(gs[0].IndexName) != dynamostate.IndexName {
		t.Errorf("indexes: %+v", gs)
	}
}

var t0 = time.Date(2031, 3, 14, 15, 9, 26, 535897932, time.UTC)

var seq atomic.Int64

// batchOf returns a RUNNING batch with n shards of rows rows each.
func batchOf(n int, rows int64) (state.Batch, []state.Shard) {
	id := fmt.Sprintf("batch-%x-%d", time.Now().UnixNano()&0xffffffffff, seq.Add(1))
	b := state.Batch{ID: id, Status: state.BatchRunning, Source: state.Source{URI: "s3://in/" + id + ".csv", Size: 1 << 30},
		Layout:  state.Layout{Format: "csv", Encoding: "utf-8", Delimiter: ",", Header: []string{"sku", "name", "price"}},
		Profile: []byte("name: default\n"), RuleVersion: "rv", Shards: n, Counts: state.Counts{Total: int64(n) * rows},
		CreatedAt: t0, UpdatedAt: t0}
	shards := make([]state.Shard, n)
	for i := range shards {
		first := 2 + int64(i)*rows
		shards[i] = state.Shard{BatchID: id, Index: i, Sheet: failure.NoSheet, Start: int64(i) * 1000, End: int64(i+1) * 1000,
			FirstRow: first, Rows: rows, Status: state.ShardPending,
			Checkpoint: state.Checkpoint{NextOffset: int64(i) * 1000, NextRow: first}, UpdatedAt: t0}
	}
	return b, shards
}

var cmpOpts = cmp.Options{cmpopts.EquateEmpty(), cmpopts.EquateApproxTime(time.Millisecond)}

// injector fails chosen calls of an operation, before they are sent
// (a crash) or after their response arrived (a lost response: the SDK
// retries the same request).
type injector struct {
	mu     sync.Mutex
	op     string
	calls  int
	crash  map[int]bool                      // call numbers (1-based) that never reach the server
	lose   map[int]bool                      // call numbers whose first response is lost
	before map[int]func(ctx context.Context) // run before these calls are sent
	counts map[string]int
}

type lostResponse struct{}

func (lostResponse) Error() string        { return "injected: response lost" }
func (lostResponse) RetryableError() bool { return true }

func (in *injector) arm(op string, crash, lose []int) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.op, in.calls, in.crash, in.lose, in.before = op, 0, map[int]bool{}, map[int]bool{}, nil
	for _, n := range crash {
		in.crash[n] = true
	}
	for _, n := range lose {
		in.lose[n] = true
	}
}

// option installs the injector and a counter of attempts per operation.
func (in *injector) option(stack *middleware.Stack) error {
	err := stack.Initialize.Add(middleware.InitializeMiddlewareFunc("inject-crash",
		func(ctx context.Context, x middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			op := awsmw.GetOperationName(ctx)
			in.mu.Lock()
			crash, lose := false, false
			var before func(context.Context)
			if op == in.op {
				in.calls++
				crash, lose, before = in.crash[in.calls], in.lose[in.calls], in.before[in.calls]
			}
			in.mu.Unlock()
			if before != nil {
				before(ctx)
			}
			if crash {
				return middleware.InitializeOutput{}, middleware.Metadata{}, errors.New("injected: crash before " + op)
			}
			if lose {
				ctx = context.WithValue(ctx, loseKey{}, new(atomic.Bool))
			}
			return next.HandleInitialize(ctx, x)
		}), middleware.Before)
	if err != nil {
		return err
	}
	return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("count-and-lose",
		func(ctx context.Context, x middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			op := awsmw.GetOperationName(ctx)
			in.mu.Lock()
			if in.counts == nil {
				in.counts = map[string]int{}
			}
			in.counts[op]++
			in.mu.Unlock()
			out, md, err := next.HandleFinalize(ctx, x)
			if lost, ok := ctx.Value(loseKey{}).(*atomic.Bool); ok && err == nil && lost.CompareAndSwap(false, true) {
				return out, md, lostResponse{}
			}
			return out, md, err
		}), middleware.After)
}

type loseKey struct{}

// armBefore runs hook just before the n-th call of op is sent (and after
// the calls before it returned).
func (in *injector) armBefore(op string, n int, hook func(ctx context.Context)) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.op, in.calls, in.crash, in.lose = op, 0, map[int]bool{}, map[int]bool{}
	in.before = map[int]func(context.Context){n: hook}
}

// take returns the attempts counted per operation since the last take.
func (in *injector) take() map[string]int {
	in.mu.Lock()
	defer in.mu.Unlock()
	c := in.counts
	in.counts = map[string]int{}
	return c
}

func rawShardKeys(t *testing.T, c *dynamodb.Client, table, batchID string) []string {
	t.Helper()
	out, err := c.Query(t.Context(), &dynamodb.QueryInput{
		TableName:                 aws.String(table),
		KeyConditionExpression:    aws.String("pk = :pk AND begins_with(sk, :s)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: "BATCH#" + batchID}, ":s": &types.AttributeValueMemberS{Value: "SHARD#"}},
		ConsistentRead:            aws.Bool(true),
		ProjectionExpression:      aws.String("sk"),
	})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, it := range out.Items {
		keys = append(keys, it["sk"].(*types.AttributeValueMemberS).Value)
	}
	return keys
}

// TestCreateBatchCrashAndRetry: a splitter that crashes between the
// registration transactions leaves shards nobody can see; its retry ends
// with exactly the retry's shards (stale ones overwritten or deleted).
func TestCreateBatchCrashAndRetry(t *testing.T) {
	var in injector
	s, c, table := newStore(t, in.option)
	ctx := t.Context()

	b, shards := batchOf(250, 10) // 3 transactions: 99 + 99 + 52 with the batch item
	in.arm("TransactWriteItems", []int{2}, nil)
	if _, _, err := s.CreateBatch(ctx, b, shards); err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("CreateBatch with a crash after the first transaction: err = %v", err)
	}
	if n := len(rawShardKeys(t, c, table, b.ID)); n != 99 {
		t.Fatalf("after the crash: %d shard items stored, want the first transaction's 99", n)
	}
	if _, err := s.GetBatch(ctx, b.ID); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("GetBatch after the crash: %v, want ErrNotFound", err)
	}
	if _, err := s.ListShards(ctx, b.ID); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("ListShards after the crash: %v, want ErrNotFound", err)
	}
	if _, _, err := s.Claim(ctx, b.ID, 0, "w", time.Minute, t0); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("Claim after the crash: %v, want ErrNotFound", err)
	}

	// The retry splits differently (fewer, other shards): shards 40..98 of
	// the crashed attempt must go, 0..39 must hold the retry's content.
	in.arm("", nil, nil)
	b2, shards2 := batchOf(40, 7)
	b2.ID = b.ID
	for i := range shards2 {
		shards2[i].BatchID = b.ID
	}
	got, created, err := s.CreateBatch(ctx, b2, shards2)
	if err != nil || !created {
		t.Fatalf("retried CreateBatch: created %v, err %v", created, err)
	}
	if got.Shards != 40 || got.Counts.Total != 280 {
		t.Errorf("retried batch: %d shards, total %d; want 40 and 280", got.Shards, got.Counts.Total)
	}
	ls, err := s.ListShards(ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(shards2, ls, cmpOpts); d != "" {
		t.Errorf("shards after the retry (-want +got):\n%s", d)
	}

	// A third, duplicated call changes nothing.
	_, created, err = s.CreateBatch(ctx, b, shards)
	if err != nil || created {
		t.Fatalf("duplicate CreateBatch: created %v, err %v", created, err)
	}
	if n := len(rawShardKeys(t, c, table, b.ID)); n != 40 {
		t.Errorf("after a duplicate: %d shard items, want 40", n)
	}
}

// TestCreateBatchLostResponse: the last registration transaction is applied
// but its response is lost, so the SDK sends it again. AWS answers the
// replay from its client token; moto runs it again and its condition fails.
// Either way the caller learns that it created the batch.
func TestCreateBatchLostResponse(t *testing.T) {
	var in injector
	s, _, _ := newStore(t, in.option)
	for _, n := range []int{1, 150} {
		b, shards := batchOf(n, 10)
		in.arm("TransactWriteItems", nil, []int{(n + 98) / 99})
		_, created, err := s.CreateBatch(t.Context(), b, shards)
		if err != nil || !created {
			t.Errorf("%d shards: CreateBatch whose last response was lost: created %v, err %v; want true, nil", n, created, err)
		}
		ls, err := s.ListShards(t.Context(), b.ID)
		if err != nil || len(ls) != n {
			t.Errorf("%d shards: ListShards: %d shards, err %v", n, len(ls), err)
		}
	}
}

// TestCreateBatchConcurrentLarge: duplicated splits of a batch that needs
// several transactions race; exactly one creates it, with its shards.
func TestCreateBatchConcurrentLarge(t *testing.T) {
	s, _, _ := newStore(t)
	b, shards := batchOf(120, 10) // two transactions
	var (
		wg      sync.WaitGroup
		created atomic.Int64
	)
	for range 4 {
		wg.Go(func() {
			_, c, err := s.CreateBatch(t.Context(), b, shards)
			if err != nil {
				t.Errorf("CreateBatch: %v", err)
			}
			if c {
				created.Add(1)
			}
		})
	}
	wg.Wait()
	if n := created.Load(); n != 1 {
		t.Errorf("4 concurrent CreateBatch calls created %d batches, want 1", n)
	}
	ls, err := s.ListShards(t.Context(), b.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(shards, ls, cmpOpts); d != "" {
		t.Errorf("shards (-want +got):\n%s", d)
	}
}

// TestCheckpointLostResponse: a checkpoint applied whose response is lost
// is sent again by the SDK, by either write path (a transaction with
// failure records, an UpdateItem without): the call succeeds, and the
// shard holds the checkpoint once: its progress has one sample, and the
// batch's counts, summed from the shard, moved once (invariant 3).
func TestCheckpointLostResponse(t *testing.T) {
	for _, tc := range []struct {
		op    string
		fails []failure.Record
		want  state.Counts
	}{
		{"TransactWriteItems", []failure.Record{{Sheet: "-", Row: 3, Layer: failure.LayerSemantic, Reason: failure.MissingField}}, state.Counts{Total: 10, Imported: 4, Failed: 1}},
		{"UpdateItem", nil, state.Counts{Total: 10, Imported: 5}},
	} {
		t.Run(tc.op, func(t *testing.T) {
			var in injector
			s, _, _ := newStore(t, in.option)
			ctx := t.Context()
			b, shards := batchOf(1, 10)
			if _, _, err := s.CreateBatch(ctx, b, shards); err != nil {
				t.Fatal(err)
			}
			l, _, err := s.Claim(ctx, b.ID, 0, "w", time.Minute, t0)
			if err != nil {
				t.Fatal(err)
			}
			for i := range tc.fails {
				tc.fails[i].BatchID = b.ID
			}
			in.arm(tc.op, nil, []int{1})
			cp := state.Checkpoint{NextOffset: 500, NextRow: 7, Counts: state.Counts{Total: 5, Imported: tc.want.Imported, Failed: tc.want.Failed}}
			if err := s.Checkpoint(ctx, l, cp, tc.fails, t0.Add(time.Minute)); err != nil {
				t.Fatalf("Checkpoint: %v", err)
			}
			in.mu.Lock()
			sent := in.calls
			in.mu.Unlock()
			if sent < 2 {
				t.Fatalf("%d %s calls, want the lost one and the one sent again", sent, tc.op)
			}
			ls, err := s.ListShards(ctx, b.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got := ls[0]; got.Checkpoint != cp || len(got.Progress) != 1 {
				t.Errorf("shard checkpoint %+v with %d progress samples, want %+v and 1", got.Checkpoint, len(got.Progress), cp)
			}
			gb, err := s.GetBatch(ctx, b.ID)
			if err != nil {
				t.Fatal(err)
			}
			if gb.Counts != tc.want {
				t.Errorf("batch counts %+v, want %+v (moved once)", gb.Counts, tc.want)
			}
		})
	}
}

// TestRequestsPerOperation pins the requests each operation makes, and the
// write requests of a 1,000-row shard checkpointed every 100 rows.
func TestRequestsPerOperation(t *testing.T) {
	var in injector
	s, _, _ := newStore(t, in.option)
	ctx := t.Context()
	check := func(what string, want map[string]int) {
		t.Helper()
		if d := cmp.Diff(want, in.take(), cmpopts.EquateEmpty()); d != "" {
			t.Errorf("requests of %s (-want +got):\n%s", what, d)
		}
	}
	b, shards := batchOf(2, 1000)
	in.take()
	if _, _, err := s.CreateBatch(ctx, b, shards); err != nil {
		t.Fatal(err)
	}
	check("CreateBatch", map[string]int{"GetItem": 1, "Query": 1, "TransactWriteItems": 1})
	l, _, err := s.Claim(ctx, b.ID, 0, "w", time.Minute, t0)
	if err != nil {
		t.Fatal(err)
	}
	check("Claim", map[string]int{"GetItem": 1, "UpdateItem": 1})

	fails := func(from, n int64) []failure.Record {
		var rs []failure.Record
		for r := from; r < from+n; r++ {
			rs = append(rs, failure.Record{BatchID: b.ID, Sheet: "-", Row: r, Layer: failure.LayerSemantic, Reason: failure.InvalidNumber,
				Field: "price", Message: "not a number", RawLine: fmt.Sprintf("SKU-%d,name,abc", r), FailureAt: t0})
		}
		return rs
	}
	writes := 0
	countWrites := func(c map[string]int) {
		writes += c["TransactWriteItems"] + c["BatchWriteItem"] + c["UpdateItem"] + c["PutItem"]
	}
	// 1,000 rows, a checkpoint every 100 rows, 5 failed rows per chunk.
	for k := int64(1); k <= 10; k++ {
		cp := state.Checkpoint{NextOffset: 100 * k, NextRow: 2 + 100*k, Counts: state.Counts{Total: 100 * k, Imported: 95 * k, Failed: 5 * k}}
		if err := s.Checkpoint(ctx, l, cp, fails(2+100*(k-1), 5), t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		c := in.take()
		if d := cmp.Diff(map[string]int{"BatchGetItem": 1, "TransactWriteItems": 1}, c); d != "" {
			t.Errorf("requests of a checkpoint with 5 failures (-want +got):\n%s", d)
		}
		countWrites(c)
	}
	final := state.Checkpoint{NextOffset: 1000, NextRow: 1002, Counts: state.Counts{Total: 1000, Imported: 950, Failed: 50}}
	if _, err := s.FinishShard(ctx, l, state.ShardDone, final, ""); err != nil {
		t.Fatal(err)
	}
	c := in.take()
	if d := cmp.Diff(map[string]int{"BatchGetItem": 1, "TransactWriteItems": 1}, c); d != "" {
		t.Errorf("requests of FinishShard (-want +got):\n%s", d)
	}
	countWrites(c)
	writes++ // the claim's UpdateItem
	t.Logf("state store write requests for a 1,000-row shard (claim, 10 checkpoints, finish): %d", writes)
	if writes > 12 {
		t.Errorf("%d write requests per 1,000 rows, want at most 12", writes)
	}

	// A checkpoint with more failures than fit its transaction: the rest
	// goes first, 25 per BatchWriteItem.
	l1, _, err := s.Claim(ctx, b.ID, 1, "w", time.Minute, t0)
	if err != nil {
		t.Fatal(err)
	}
	in.take()
	cp := state.Checkpoint{NextOffset: 1150, NextRow: 1152, Counts: state.Counts{Total: 150, Failed: 150}}
	if err := s.Checkpoint(ctx, l1, cp, fails(1002, 150), t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	check("a checkpoint with 150 failures", map[string]int{"BatchGetItem": 1, "BatchWriteItem": 3, "TransactWriteItems": 1})
	n, err := s.CountFailures(ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	if n[0] != 200 || len(n) != 1 { // the records of this test all say shard 0
		t.Errorf("CountFailures = %v, want 200 records of shard 0", n)
	}

	in.take()
	if _, err := s.ListBatches(ctx, 10); err != nil {
		t.Fatal(err)
	}
	check("ListBatches (the index's keys, the items, the shards of the running batch)", map[string]int{"Query": 2, "BatchGetItem": 1})
	if _, err := s.FinishBatch(ctx, b.ID, state.Final{Status: state.BatchAborted, Counts: state.Counts{Total: 2000}}, t0); err != nil {
		t.Fatal(err)
	}
	// Shard 1 never finished: it gets its expiry with the batch.
	check("FinishBatch of a batch stopped with an unfinished shard", map[string]int{"UpdateItem": 2, "Query": 1})

	b2, shards2 := batchOf(1, 10)
	if _, _, err := s.CreateBatch(ctx, b2, shards2); err != nil {
		t.Fatal(err)
	}
	l2, _, err := s.Claim(ctx, b2.ID, 0, "w", time.Minute, t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.FinishShard(ctx, l2, state.ShardDone, state.Checkpoint{NextOffset: 1000, NextRow: 12, Counts: state.Counts{Total: 10, Imported: 10}}, ""); err != nil {
		t.Fatal(err)
	}
	in.take()
	if _, err := s.FinishBatch(ctx, b2.ID, state.Final{Status: state.BatchCompleted, Counts: state.Counts{Total: 10, Imported: 10}}, t0); err != nil {
		t.Fatal(err)
	}
	check("FinishBatch", map[string]int{"UpdateItem": 1})
}

// TestLargeFailureRecords: records over DynamoDB's item limit are kept
// compressed (exactly), or cut when even that does not fit.
func TestLargeFailureRecords(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := t.Context()
	b, shards := batchOf(1, 10)
	if _, _, err := s.CreateBatch(ctx, b, shards); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("SKU-1,无线鼠标,\"long description\",", 30000) // ~1 MB, compresses well
	cells := []string{"SKU-1", strings.Repeat("无线鼠标", 50000)}
	rnd := rand.New(rand.NewPCG(1, 2))
	var noise strings.Builder
	for noise.Len() < 900_000 {
		noise.WriteRune(rune(0x4e00 + rnd.IntN(0x5000))) // incompressible CJK text
	}
	recs := []failure.Record{
		{BatchID: b.ID, Sheet: "-", Row: 2, Layer: failure.LayerSyntax, Reason: failure.RowTooLarge, RawLine: big, Cells: cells, FailureAt: t0},
		{BatchID: b.ID, Sheet: "-", Row: 3, Layer: failure.LayerSyntax, Reason: failure.RowTooLarge, RawLine: noise.String(), Cells: []string{"x"}, FailureAt: t0},
	}
	if err := s.PutFailures(ctx, recs); err != nil {
		t.Fatalf("PutFailures of large records: %v", err)
	}
	got, err := s.Failures(ctx, b.ID, state.FailureFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d records, want 2", len(got))
	}
	if d := cmp.Diff(recs[0], got[0], cmpOpts); d != "" {
		t.Errorf("compressible record (-want +got):\n%s", d)
	}
	r := got[1]
	if len(r.RawLine) == 0 || len(r.RawLine) >= len(recs[1].RawLine) || !strings.HasPrefix(recs[1].RawLine, r.RawLine) || len(r.Cells) != 0 {
		t.Errorf("incompressible record: raw line of %d bytes (a prefix: %v), %d cells; want a cut prefix and no cells",
			len(r.RawLine), strings.HasPrefix(recs[1].RawLine, r.RawLine), len(r.Cells))
	}
}

func TestTriageLogContract(t *testing.T) {
	triagetest.Run(t, func(t *testing.T) triage.Log {
		c, name := newTable(t)
		return dynamostate.NewTriageLog(c, name)
	})
}

// TestTriageLogBesideState: triage entries live in the batch's partition
// without disturbing the state store's queries.
func TestTriageLogBesideState(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := t.Context()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	b := state.Batch{ID: "b-tl", Status: state.BatchRunning, Source: state.Source{URI: "s3://x/y"}, Shards: 1, CreatedAt: now, UpdatedAt: now}
	if _, _, err := s.CreateBatch(ctx, b, []state.Shard{{BatchID: "b-tl", Index: 0, Sheet: "-", Rows: 3, FirstRow: 2, Status: state.ShardPending, UpdatedAt: now}}); err != nil {
		t.Fatal(err)
	}
	if err := s.TriageLog().Append(ctx, triage.Entry{BatchID: "b-tl", Kind: triage.KindError, Reason: failure.Throttled}); err != nil {
		t.Fatal(err)
	}
	shards, err := s.ListShards(ctx, "b-tl")
	if err != nil || len(shards) != 1 {
		t.Fatalf("ListShards: %d %v", len(shards), err)
	}
	if n, err := s.CountFailures(ctx, "b-tl"); err != nil || len(n) != 0 {
		t.Fatalf("CountFailures: %v %v", n, err)
	}
	if fs, err := s.Failures(ctx, "b-tl", state.FailureFilter{}); err != nil || len(fs) != 0 {
		t.Fatalf("Failures: %v %v", fs, err)
	}
}
