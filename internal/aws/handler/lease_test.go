package handler_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsmw "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"

	"github.com/catalog-import/catalog-import/internal/aws/awstest"
	"github.com/catalog-import/catalog-import/internal/aws/dynamostate"
	"github.com/catalog-import/catalog-import/internal/aws/eventsource"
	"github.com/catalog-import/catalog-import/internal/aws/handler"
	"github.com/catalog-import/catalog-import/internal/aws/stack"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/state"
)

// beforeProductsWrite runs hook once, before the first PutItem on table
// (the sink's products write) that the client sends.
func beforeProductsWrite(table string, hook func(ctx context.Context)) func(*middleware.Stack) error {
	var once sync.Once
	return func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("beforeProductsWrite",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				if put, ok := in.Parameters.(*dynamodb.PutItemInput); ok && awsmw.GetOperationName(ctx) == "PutItem" &&
					aws.ToString(put.TableName) == table {
					once.Do(func() { hook(ctx) })
				}
				return next.HandleInitialize(ctx, in)
			}), middleware.After)
	}
}

// TestDuplicateDeliveryToAnotherSandboxIsLeased: a duplicated S3 event
// makes no second read of the object, only a second manifest of the
// unfinished shard; two sandboxes receive the two manifests at the same
// time (as with an SQS duplicate or a redrive). The
// second delivery, made while the first holds the lease and is writing
// products, gets Leased (a batch item failure: the message comes back) and
// changes nothing; the first finishes the shard with its one claim. With
// every sandbox claiming as the same owner, the second took the live lease
// over.
func TestDuplicateDeliveryToAnotherSandboxIsLeased(t *testing.T) {
	ctx := t.Context()
	clients := awstest.Clients(t)
	res, err := stack.Provision(ctx, clients, "lease-handler", stack.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	var csv strings.Builder
	csv.WriteString("商品编码,商品名称,类目,价格,库存\n")
	for i := range 50 {
		fmt.Fprintf(&csv, "L-%03d,商品 %d,家居,%d.5,%d\n", i, i, i, i)
	}
	key := "incoming/lease.csv"
	if _, err := clients.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(res.Bucket), Key: aws.String(key), Body: strings.NewReader(csv.String())}); err != nil {
		t.Fatal(err)
	}
	cfg := handler.Config{Bucket: res.Bucket, StateTable: res.StateTable, ProductsTable: res.ProductsTable,
		ShardQueueURL: res.ShardQueueURL, DLQURL: res.DLQURL,
		Options: handler.Options{Split: split.Options{ShardRows: 1000}, CheckpointEvery: 10, LeaseTTL: time.Minute, Log: testLogger(t)}}
	b := handler.FromClients(awstest.Clients(t), cfg) // the other sandbox

	var evA, evB events.SQSEvent
	var second events.SQSEventResponse
	var secondErr error
	ran := false
	var reqs awstest.Requests
	a := handler.FromClients(awstest.Clients(t, reqs.Option, beforeProductsWrite(res.ProductsTable, func(context.Context) {
		// Sandbox a holds the lease and is about to write products.
		ran = true
		second, secondErr = b.Worker(context.WithoutCancel(ctx), evB)
	})), cfg)

	var put events.S3Event
	put.Records = append(put.Records, events.S3EventRecord{EventName: "ObjectCreated:Put", EventTime: time.Now()})
	put.Records[0].S3.Bucket.Name, put.Records[0].S3.Object.Key, put.Records[0].S3.Object.Sequencer = res.Bucket, key, "0A1B2C"
	if err := a.Splitter(ctx, put); err != nil {
		t.Fatal(err)
	}
	if n := reqs.Count("S3", "GetObject"); n == 0 {
		t.Fatal("the split read nothing")
	}
	// The same S3 event again (S3 delivers at least once): the batch exists,
	// so the splitter re-sends the unfinished shard's manifest without
	// reading the object again.
	reqs.Take()
	if err := a.Splitter(ctx, put); err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{"GetObject", "HeadObject"} {
		if n := reqs.Count("S3", op); n != 0 {
			t.Errorf("the duplicate S3 event made %d S3 %s requests, want none (the batch exists)", n, op)
		}
	}
	msgs := drain(t, clients.SQS, res.ShardQueueURL)
	if len(msgs) != 2 || manifestOf(t, msgs[:1], 0).Shard != 0 || manifestOf(t, msgs[1:], 0).Shard != 0 {
		t.Fatalf("%d manifests, want shard 0's twice (one per event)", len(msgs))
	}
	evA, evB = eventsource.Event(res.ShardQueueURL, msgs[:1]), eventsource.Event(res.ShardQueueURL, msgs[1:])

	first, err := a.Worker(ctx, evA)
	if err != nil || len(first.BatchItemFailures) != 0 {
		t.Fatalf("first delivery: %+v %v", first, err)
	}
	if !ran {
		t.Fatal("the second delivery never ran")
	}
	if secondErr != nil || len(second.BatchItemFailures) != 1 || second.BatchItemFailures[0].ItemIdentifier != evB.Records[0].MessageId {
		t.Errorf("second delivery, made while the first held the lease: %+v %v; want its message returned (Leased)", second, secondErr)
	}
	store := dynamostate.New(clients.DynamoDB, res.StateTable, dynamostate.Options{})
	id := handler.BatchID(res.Bucket, key, "", "0A1B2C", "")
	shards, err := store.ListShards(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if sh := shards[0]; sh.Attempts != 1 || sh.Epoch != 1 || sh.Owner != a.Owner() || sh.Status != state.ShardDone {
		t.Errorf("shard: status %s, owner %q, epoch %d, %d claims; want DONE by %q with one claim", sh.Status, sh.Owner, sh.Epoch, sh.Attempts, a.Owner())
	}
	got, err := store.GetBatch(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != state.BatchCompleted || got.Counts.Imported != 50 {
		t.Errorf("batch %s %+v, want COMPLETED with 50 rows imported", got.Status, got.Counts)
	}
	if a.Owner() == b.Owner() || !strings.HasPrefix(a.Owner(), "lambda-") {
		t.Errorf("owners %q and %q: want distinct lambda-<id>", a.Owner(), b.Owner())
	}
}

// afterStateCheckpoint runs hook once, after the n-th TransactWriteItems on
// table (the state store's checkpoint) that the client sent succeeded.
func afterStateCheckpoint(table string, n int, hook func()) func(*middleware.Stack) error {
	var mu sync.Mutex
	seen := 0
	return func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("afterStateCheckpoint",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleInitialize(ctx, in)
				if tw, ok := in.Parameters.(*dynamodb.TransactWriteItemsInput); ok && err == nil && len(tw.TransactItems) > 0 &&
					tw.TransactItems[0].Update != nil && aws.ToString(tw.TransactItems[0].Update.TableName) == table {
					mu.Lock()
					seen++
					run := seen == n
					mu.Unlock()
					if run {
						hook()
					}
				}
				return out, md, err
			}), middleware.After)
	}
}

// clock is the time both sandboxes read: it moves only when the test says.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *clock) Add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.now = c.now.Add(d) }

// TestZombieWorkerWritesNothingAfterTheLeaseMoved: sandbox a stalls right
// after its second checkpoint, past its lease (the clock both sandboxes
// read moves 5 minutes); sandbox b receives the manifest again, claims the
// shard (the lease moves to b) and finishes the batch. When a wakes up it
// renews its lease before its next write, finds it fenced and stops: from
// the moment the lease moved, a sends no write request at all — no product
// (products table) and no failure record or checkpoint (state table) —
// only the read that tells it the shard is b's.
func TestZombieWorkerWritesNothingAfterTheLeaseMoved(t *testing.T) {
	ctx := t.Context()
	clients := awstest.Clients(t)
	res, err := stack.Provision(ctx, clients, "zombie-handler", stack.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	var csv strings.Builder
	csv.WriteString("商品编码,商品名称,类目,价格,库存\n")
	for i := range 300 {
		price := fmt.Sprintf("%d.5", i)
		if i%7 == 3 {
			price = "n/a" // a failure record in every chunk of 10
		}
		fmt.Fprintf(&csv, "Z-%03d,商品 %d,家居,%s,%d\n", i, i, price, i)
	}
	key := "incoming/zombie.csv"
	if _, err := clients.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(res.Bucket), Key: aws.String(key), Body: strings.NewReader(csv.String())}); err != nil {
		t.Fatal(err)
	}
	clk := &clock{now: time.Now()}
	cfg := handler.Config{Bucket: res.Bucket, StateTable: res.StateTable, ProductsTable: res.ProductsTable,
		ShardQueueURL: res.ShardQueueURL, DLQURL: res.DLQURL,
		Options: handler.Options{Split: split.Options{ShardRows: 1000}, CheckpointEvery: 10, Pool: 1, LeaseTTL: time.Minute,
			Log: testLogger(t), Now: clk.Now}}
	b := handler.FromClients(awstest.Clients(t), cfg)

	var put events.S3Event
	put.Records = append(put.Records, events.S3EventRecord{EventName: "ObjectCreated:Put", EventTime: time.Now()})
	put.Records[0].S3.Bucket.Name, put.Records[0].S3.Object.Key, put.Records[0].S3.Object.Sequencer = res.Bucket, key, "0Z"
	if err := b.Splitter(ctx, put); err != nil {
		t.Fatal(err)
	}
	msgs := drain(t, clients.SQS, res.ShardQueueURL)
	if len(msgs) != 1 {
		t.Fatalf("%d manifests, want 1", len(msgs))
	}
	ev := eventsource.Event(res.ShardQueueURL, msgs)

	var reqs awstest.Requests // sandbox a's requests
	var bResp events.SQSEventResponse
	var bErr error
	moved := false
	a := handler.FromClients(awstest.Clients(t, reqs.Option, afterStateCheckpoint(res.StateTable, 2, func() {
		// a stalls here: its lease runs out, and b gets the manifest again.
		clk.Add(5 * time.Minute)
		bResp, bErr = b.Worker(context.WithoutCancel(ctx), ev)
		moved = true
		reqs.Take() // what a sent before the lease moved
	})), cfg)

	aResp, err := a.Worker(ctx, ev)
	if err != nil || len(aResp.BatchItemFailures) != 0 {
		t.Fatalf("zombie a: %+v %v, want its message settled (fenced)", aResp, err)
	}
	if !moved {
		t.Fatal("a never checkpointed twice")
	}
	if bErr != nil || len(bResp.BatchItemFailures) != 0 {
		t.Fatalf("b's delivery: %+v %v", bResp, bErr)
	}
	for c, n := range reqs.Take() {
		switch {
		case c.Service != "DynamoDB":
		case c.Operation == "PutItem", c.Operation == "UpdateItem", c.Operation == "TransactWriteItems",
			c.Operation == "BatchWriteItem", c.Operation == "DeleteItem":
			t.Errorf("zombie a sent %d %s on %s after its lease moved to b", n, c.Operation, c.Resource)
		}
	}

	store := dynamostate.New(clients.DynamoDB, res.StateTable, dynamostate.Options{})
	id := handler.BatchID(res.Bucket, key, "", "0Z", "")
	shards, err := store.ListShards(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if sh := shards[0]; sh.Status != state.ShardDone || sh.Owner != b.Owner() || sh.Epoch != 2 || sh.Attempts != 2 {
		t.Errorf("shard: %s by %q, epoch %d, %d claims; want DONE by b (%q) at epoch 2", sh.Status, sh.Owner, sh.Epoch, sh.Attempts, b.Owner())
	}
	got, err := store.GetBatch(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != state.BatchCompletedWithErrors || got.Counts.Total != 300 || got.Counts.Failed != 43 || got.Counts.Imported != 257 {
		t.Errorf("batch %s %+v, want COMPLETED_WITH_ERRORS with 257 imported and 43 failed", got.Status, got.Counts)
	}
}
