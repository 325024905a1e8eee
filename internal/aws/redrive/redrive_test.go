package redrive_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/middleware"
	"github.com/google/go-cmp/cmp"

	"github.com/catalog-import/catalog-import/internal/aws/awsclient"
	"github.com/catalog-import/catalog-import/internal/aws/awstest"
	"github.com/catalog-import/catalog-import/internal/aws/dynamostate"
	"github.com/catalog-import/catalog-import/internal/aws/redrive"
	"github.com/catalog-import/catalog-import/internal/aws/sqsqueue"
	"github.com/catalog-import/catalog-import/internal/aws/stack"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/queue"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/state"
	"github.com/catalog-import/catalog-import/internal/triage"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// env is one provisioned stack on the shared moto.
type env struct {
	c   *awsclient.Clients
	res stack.Resources
	st  *dynamostate.Store
}

func newEnv(t *testing.T, apiOptions ...func(*middleware.Stack) error) env {
	t.Helper()
	c := awstest.Clients(t, apiOptions...)
	res, err := stack.Provision(t.Context(), c, awstest.Name("rd"), stack.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	return env{c: c, res: res, st: dynamostate.New(c.DynamoDB, res.StateTable, dynamostate.Options{})}
}

// config is a redrive of e with a fast rate and moto's short polls.
func (e env) config() redrive.Config {
	return redrive.Config{SQS: e.c.SQS, Store: e.st, DLQURL: e.res.DLQURL, ShardQueueURL: e.res.ShardQueueURL, Rate: 1000, ShortPoll: true}
}

func body(t *testing.T, batch string, shard int) string {
	t.Helper()
	b, err := sqsqueue.Encode(queue.Manifest{BatchID: batch, Shard: shard, RetryCount: 4,
		Source: state.Source{URI: "s3://bucket/incoming/" + batch + ".csv"}, Start: int64(shard) * 100, End: int64(shard+1) * 100})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func put(t *testing.T, e env, url string, bodies ...string) {
	t.Helper()
	for _, b := range bodies {
		if _, err := e.c.SQS.SendMessage(t.Context(), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
}

// bodies receives every visible message of the queue (hiding them) and
// returns their bodies sorted.
func bodies(t *testing.T, e env, url string) []string {
	t.Helper()
	var out []string
	for {
		r, err := e.c.SQS.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, VisibilityTimeout: 600})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Messages) == 0 {
			slices.Sort(out)
			return out
		}
		for _, m := range r.Messages {
			out = append(out, aws.ToString(m.Body))
		}
	}
}

func sorted(s ...string) []string { slices.Sort(s); return s }

func run(t *testing.T, cfg redrive.Config) (redrive.Result, []redrive.Item) {
	t.Helper()
	var items []redrive.Item
	cfg.Report = func(it redrive.Item) { items = append(items, it) }
	res, err := redrive.Run(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Run: %v (result %+v)", err, res)
	}
	return res, items
}

// TestMovesAll: without a filter every message moves (message by message on
// moto, whose StartMessageMoveTask answers 500), none lost or duplicated,
// bodies (retry_count included) unchanged.
func TestMovesAll(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var want []string
	for i := range 23 {
		want = append(want, body(t, "b-all", i))
	}
	put(t, e, e.res.DLQURL, want...)
	res, items := run(t, e.config())
	if res.Moved != 23 || res.Kept != 0 || res.Failed != 0 || len(items) != 23 {
		t.Errorf("result %+v, %d items; want 23 moved", res, len(items))
	}
	if res.MoveTask != "" || res.Fallback == "" {
		t.Errorf("moto has no move task: MoveTask %q Fallback %q", res.MoveTask, res.Fallback)
	}
	t.Logf("fallback: %s", res.Fallback)
	if got := bodies(t, e, e.res.DLQURL); len(got) != 0 {
		t.Errorf("%d messages left in the DLQ", len(got))
	}
	if diff := cmp.Diff(sorted(want...), bodies(t, e, e.res.ShardQueueURL)); diff != "" {
		t.Errorf("shard queue (-want +got):\n%s", diff)
	}
}

// TestFilters: --batch and --shard move only matching messages; the others
// stay in the DLQ, visible again, even when more than one receive's worth of
// them comes first.
func TestFilters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var other, a []string
	for i := range 15 {
		other = append(other, body(t, "b-other", i))
	}
	for i := range 3 {
		a = append(a, body(t, "b-a", i))
	}
	put(t, e, e.res.DLQURL, other...)
	put(t, e, e.res.DLQURL, a...)

	cfg := e.config()
	cfg.Filter.BatchID = "b-a"
	res, _ := run(t, cfg)
	if res.Moved != 3 || res.Kept != 15 || res.Fallback != "" {
		t.Errorf("--batch: result %+v, want 3 moved, 15 kept, no move task tried", res)
	}

	cfg = e.config()
	cfg.Filter.BatchID, cfg.Filter.Shard = "b-other", new(int)
	*cfg.Filter.Shard = 7
	res, _ = run(t, cfg)
	if res.Moved != 1 || res.Kept != 14 {
		t.Errorf("--batch --shard: result %+v, want 1 moved, 14 kept", res)
	}
	if diff := cmp.Diff(sorted(append(slices.Clone(a), other[7])...), bodies(t, e, e.res.ShardQueueURL)); diff != "" {
		t.Errorf("shard queue (-want +got):\n%s", diff)
	}
	wantDLQ := slices.Delete(slices.Clone(other), 7, 8)
	if diff := cmp.Diff(sorted(wantDLQ...), bodies(t, e, e.res.DLQURL)); diff != "" {
		t.Errorf("DLQ (-want +got):\n%s", diff)
	}
}

// TestMax moves at most --max messages.
func TestMax(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for i := range 8 {
		put(t, e, e.res.DLQURL, body(t, "b-max", i))
	}
	cfg := e.config()
	cfg.Max = 3
	res, _ := run(t, cfg)
	if res.Moved != 3 {
		t.Errorf("result %+v, want 3 moved", res)
	}
	if q, d := len(bodies(t, e, e.res.ShardQueueURL)), len(bodies(t, e, e.res.DLQURL)); q != 3 || d != 5 {
		t.Errorf("shard queue %d, DLQ %d messages; want 3 and 5", q, d)
	}
}

// TestUnreadableStays: a body that is not a manifest stays in the DLQ.
func TestUnreadableStays(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	good := body(t, "b-u", 0)
	put(t, e, e.res.DLQURL, "not json", good, `{"v":9,"batch_id":"b-u","shard":1}`)
	res, items := run(t, e.config())
	if res.Moved != 1 || res.Kept != 2 {
		t.Errorf("result %+v, want 1 moved 2 kept; items %+v", res, items)
	}
	if diff := cmp.Diff([]string{good}, bodies(t, e, e.res.ShardQueueURL)); diff != "" {
		t.Errorf("shard queue (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(sorted("not json", `{"v":9,"batch_id":"b-u","shard":1}`), bodies(t, e, e.res.DLQURL)); diff != "" {
		t.Errorf("DLQ (-want +got):\n%s", diff)
	}
}

// escalate stores a running batch of n shards and escalates shard 1 with
// message msg, as triage does.
func escalate(t *testing.T, e env, n int, msg string) (state.Batch, []state.Shard) {
	t.Helper()
	ctx := t.Context()
	id := awstest.Name("batch")
	now := time.Now().UTC().Truncate(time.Millisecond)
	b := state.Batch{ID: id, Status: state.BatchRunning, Shards: n, RuleVersion: "rv-1", TraceID: "1-5759e988-bd862e3fe1be46a994272793",
		Source:    state.Source{URI: "s3://bucket/incoming/" + id + ".csv", Size: int64(n) * 100, ETag: `"e"`},
		Layout:    state.Layout{Format: "csv", Encoding: "utf-8", Delimiter: ",", Header: []string{"sku", "name"}, DataStart: 9},
		Profile:   []byte("name: default\n"),
		CreatedAt: now, UpdatedAt: now, Counts: state.Counts{Total: int64(10 * n)}}
	shards := make([]state.Shard, n)
	for i := range shards {
		start := int64(i)*100 + 9
		shards[i] = state.Shard{BatchID: id, Index: i, Sheet: "-", Start: start, End: start + 100, FirstRow: int64(2 + 10*i), Rows: 10,
			Status: state.ShardPending, Checkpoint: state.Checkpoint{NextOffset: start, NextRow: int64(2 + 10*i)}, UpdatedAt: now}
	}
	b, _, err := e.st.CreateBatch(ctx, b, shards) // as stored: with its upload order
	if err != nil {
		t.Fatal(err)
	}
	lease, sh, err := e.st.Claim(ctx, id, 1, "worker", time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.FinishShard(ctx, lease, state.ShardEscalated, sh.Checkpoint, msg); err != nil {
		t.Fatal(err)
	}
	return b, shards
}

// TestEscalated: the manifest of an ESCALATED shard is re-sent, as the
// splitter built it, and a worker can claim the shard again; --reason
// matches the shard's message.
func TestEscalated(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b, shards := escalate(t, e, 3, "AccessDenied: s3 GetObject")
	// A DLQ message of another shard of the batch, whose shard has no error.
	other := body(t, b.ID, 2)
	put(t, e, e.res.DLQURL, other)

	cfg := e.config()
	cfg.Filter.Reason = "ServiceUnavailable"
	res, _ := run(t, cfg)
	if res.Moved != 0 || res.Kept != 1 {
		t.Errorf("--reason ServiceUnavailable: result %+v, want nothing moved, the DLQ message kept", res)
	}

	cfg.Filter.Reason = "Denied" // a part of a code is not a code (the rule of failures --reason)
	if _, err := redrive.Run(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), `"Denied" is not a reason code`) {
		t.Errorf("--reason Denied: %v, want it refused", err)
	}

	cfg.Filter.Reason = "accessdenied"
	res, items := run(t, cfg)
	if res.Moved != 1 || res.Kept != 1 {
		t.Errorf("--reason accessdenied: result %+v, want 1 moved 1 kept; items %+v", res, items)
	}
	want, err := sqsqueue.Encode(split.Manifest(b, shards[1], b.TraceID))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{want}, bodies(t, e, e.res.ShardQueueURL)); diff != "" {
		t.Errorf("shard queue (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{other}, bodies(t, e, e.res.DLQURL)); diff != "" {
		t.Errorf("DLQ (-want +got):\n%s", diff)
	}
	if _, _, err := e.st.Claim(t.Context(), b.ID, 1, "worker-2", time.Minute, time.Now()); err != nil {
		t.Errorf("claim the redriven shard: %v", err)
	}
}

// TestDryRun moves nothing and lists what would move from both sources.
func TestDryRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b, _ := escalate(t, e, 2, "Internal: boom")
	dlq := []string{body(t, "b-dry", 0), body(t, "b-dry", 1), "garbage"}
	put(t, e, e.res.DLQURL, dlq...)
	cfg := e.config()
	cfg.DryRun = true
	res, items := run(t, cfg)
	if res.Moved != 0 || res.WouldMove != 3 || res.Kept != 1 {
		t.Errorf("result %+v, want 3 would move (2 dlq, 1 escalated), 1 kept", res)
	}
	var sources []string
	for _, it := range items {
		if it.Action == redrive.ActionWouldMove {
			sources = append(sources, fmt.Sprintf("%s/%d/%s", it.BatchID, it.Shard, it.Source))
		}
	}
	if diff := cmp.Diff(sorted("b-dry/0/dlq", "b-dry/1/dlq", b.ID+"/1/escalated"), sorted(sources...)); diff != "" {
		t.Errorf("would move (-want +got):\n%s", diff)
	}
	if got := bodies(t, e, e.res.ShardQueueURL); len(got) != 0 {
		t.Errorf("dry run sent %d messages", len(got))
	}
	// Every DLQ message is visible again at once.
	if diff := cmp.Diff(sorted(dlq...), bodies(t, e, e.res.DLQURL)); diff != "" {
		t.Errorf("DLQ (-want +got):\n%s", diff)
	}
}

// failSendOnce fails the first SendMessage before it leaves the process.
func failSendOnce(n *atomic.Int32) func(*middleware.Stack) error {
	return func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("failSendOnce",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				if awsmiddleware.GetOperationName(ctx) == "SendMessage" && n.Add(1) == 1 {
					return middleware.InitializeOutput{}, middleware.Metadata{}, errors.New("injected send failure")
				}
				return next.HandleInitialize(ctx, in)
			}), middleware.After)
	}
}

// TestSendFailure: a message whose send fails stays in the DLQ; the next run
// moves it; nothing is duplicated.
func TestSendFailure(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	want := []string{body(t, "b-f", 0), body(t, "b-f", 1), body(t, "b-f", 2)}
	put(t, e, e.res.DLQURL, want...)
	var sends atomic.Int32
	cfg := e.config()
	cfg.SQS = awstest.Clients(t, failSendOnce(&sends)).SQS
	res, items := run(t, cfg)
	if res.Moved != 2 || res.Kept != 1 || res.Failed != 1 || sends.Load() != 3 {
		t.Errorf("result %+v after %d sends, want 3 sends: 2 moved, 1 kept, 1 failed; items %+v", res, sends.Load(), items)
	}
	// The failed one stayed in the DLQ, visible: the next run moves it.
	if res, _ := run(t, e.config()); res.Moved != 1 || res.Kept != 0 {
		t.Errorf("second run: result %+v, want the one left moved", res)
	}
	if diff := cmp.Diff(sorted(want...), bodies(t, e, e.res.ShardQueueURL)); diff != "" {
		t.Errorf("shard queue: messages lost or duplicated (-want +got):\n%s", diff)
	}
	if n := len(bodies(t, e, e.res.DLQURL)); n != 0 {
		t.Errorf("%d messages left in the DLQ", n)
	}
}

// TestMoveTask: where StartMessageMoveTask exists (AWS; faked here, moto has
// none) the DLQ is left to it, at the --rate given.
func TestMoveTask(t *testing.T) {
	t.Parallel()
	var got *sqs.StartMessageMoveTaskInput
	fake := func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("fakeMoveTask",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				if p, ok := in.Parameters.(*sqs.StartMessageMoveTaskInput); ok {
					got = p
					return middleware.InitializeOutput{Result: &sqs.StartMessageMoveTaskOutput{TaskHandle: aws.String("task-1")}}, middleware.Metadata{}, nil
				}
				return next.HandleInitialize(ctx, in)
			}), middleware.After)
	}
	e := newEnv(t, fake)
	put(t, e, e.res.DLQURL, body(t, "b-t", 0), body(t, "b-t", 1))
	cfg := e.config()
	cfg.Rate = 2000
	res, _ := run(t, cfg)
	if res.MoveTask != "task-1" || res.Moved != 2 || res.Fallback != "" {
		t.Errorf("result %+v, want move task task-1 moving 2", res)
	}
	if got == nil || aws.ToInt32(got.MaxNumberOfMessagesPerSecond) != 500 ||
		!hasSuffix(aws.ToString(got.SourceArn), "-shards-dlq") || !hasSuffix(aws.ToString(got.DestinationArn), "-shards") {
		t.Errorf("StartMessageMoveTask input %+v", got)
	}
	if n := len(bodies(t, e, e.res.DLQURL)); n != 2 {
		t.Errorf("DLQ has %d messages, want both left to the task", n)
	}
}

func hasSuffix(s, suffix string) bool {
	return len(s) >= len(suffix) && s[len(s)-len(suffix):] == suffix
}

// TestReasonFromTriageLog: --reason matches the reason of each shard's
// newest triage log entry (its last error), not an older one.
func TestReasonFromTriageLog(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	at := time.Now().UTC()
	for _, en := range []triage.Entry{
		{BatchID: "b-r", Shard: 0, At: at, Kind: triage.KindError, Reason: failure.Throttled},
		{BatchID: "b-r", Shard: 0, At: at.Add(time.Second), Kind: triage.KindError, Reason: failure.AccessDenied},
		{BatchID: "b-r", Shard: 1, At: at, Kind: triage.KindError, Reason: failure.AccessDenied},
		{BatchID: "b-r", Shard: 1, At: at.Add(time.Second), Kind: triage.KindError, Reason: failure.Throttled},
	} {
		if err := e.st.TriageLog().Append(t.Context(), en); err != nil {
			t.Fatal(err)
		}
	}
	msgs := []string{body(t, "b-r", 0), body(t, "b-r", 1), body(t, "b-r", 2)}
	put(t, e, e.res.DLQURL, msgs...)
	cfg := e.config()
	cfg.Log, cfg.Filter.Reason = e.st.TriageLog(), "accessdenied"
	res, _ := run(t, cfg)
	if res.Moved != 1 || res.Kept != 2 {
		t.Errorf("result %+v, want shard 0 moved, 1 (last error Throttled) and 2 (no entry) kept", res)
	}
	if diff := cmp.Diff([]string{msgs[0]}, bodies(t, e, e.res.ShardQueueURL)); diff != "" {
		t.Errorf("shard queue (-want +got):\n%s", diff)
	}
}
