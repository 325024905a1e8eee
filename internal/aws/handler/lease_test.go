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
