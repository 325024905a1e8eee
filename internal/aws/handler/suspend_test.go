package handler_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/catalog-import/catalog-import/internal/aws/awstest"
	"github.com/catalog-import/catalog-import/internal/aws/dynamocatalog"
	"github.com/catalog-import/catalog-import/internal/aws/dynamostate"
	"github.com/catalog-import/catalog-import/internal/aws/eventsource"
	"github.com/catalog-import/catalog-import/internal/aws/handler"
	"github.com/catalog-import/catalog-import/internal/aws/redrive"
	"github.com/catalog-import/catalog-import/internal/aws/s3store"
	"github.com/catalog-import/catalog-import/internal/aws/sqsqueue"
	"github.com/catalog-import/catalog-import/internal/aws/stack"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/state"
)

// otherContent is what overwrites the upload: other SKUs, other prices.
const otherContent = "商品编码,商品名称,类目,品牌,售价,币种,库存,状态\nSKU-00000002,Changed,Home,X,999.99,CNY,1,active\nNEW-1,New,Home,X,1.00,CNY,1,active\n"

// TestOverwrittenBetweenSplitAndRead (issue 11 item 4): the object is
// overwritten after the split, before any worker reads it. In a versioned
// bucket every read is pinned to the registered version: the batch
// completes with the upload's own values and nothing of the new object. In
// a bucket without versions (versioning suspended) the read by ETag fails,
// the batch is SUSPENDED with a message that says what to do, no row of the
// new object is written; the object restored, `redrive --batch` resumes it
// and it completes with the upload's values.
func TestOverwrittenBetweenSplitAndRead(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		versioned bool
	}{
		{"versioned", true},
		{"unversioned", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			clients := awstest.Clients(t)
			res, err := stack.Provision(ctx, clients, awstest.Name("overwrite"), stack.Defaults())
			if err != nil {
				t.Fatal(err)
			}
			if !tc.versioned {
				if _, err := clients.S3.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(res.Bucket),
					VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusSuspended}}); err != nil {
					t.Fatal(err)
				}
			}
			store := dynamostate.New(clients.DynamoDB, res.StateTable, dynamostate.Options{})
			products := dynamocatalog.New(clients.DynamoDB, res.ProductsTable, dynamocatalog.Options{})
			fns := handler.New(handler.Ports{Source: s3store.New(clients.S3), Store: store, Sink: products,
				Queue: sqsqueue.New(clients.SQS, res.ShardQueueURL), DLQ: sqsqueue.New(clients.SQS, res.DLQURL),
				Reports: s3store.NewReports(clients.S3, res.Bucket), TriageLog: store.TriageLog()},
				handler.Options{Log: testLogger(t), Owner: "test", Split: split.Options{ShardRows: 400}, CheckpointEvery: 100, LeaseTTL: time.Minute})

			key := "incoming/products.csv"
			data, err := os.ReadFile("../../../testdata/demo/products-gbk.csv")
			if err != nil {
				t.Fatal(err)
			}
			put := func(body []byte) string {
				out, err := clients.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(res.Bucket), Key: aws.String(key), Body: bytesReader(body)})
				if err != nil {
					t.Fatal(err)
				}
				return strings.Trim(aws.ToString(out.ETag), `"`)
			}
			var ev events.S3Event
			ev.Records = append(ev.Records, events.S3EventRecord{EventName: "ObjectCreated:Put"})
			ev.Records[0].S3.Bucket.Name, ev.Records[0].S3.Object.Key = res.Bucket, key
			ev.Records[0].S3.Object.ETag = put(data)
			if err := fns.Splitter(ctx, ev); err != nil {
				t.Fatal(err)
			}
			o := ev.Records[0].S3.Object
			id := handler.BatchID(res.Bucket, key, o.VersionID, o.Sequencer, o.ETag)
			msgs := drain(t, clients.SQS, res.ShardQueueURL)
			if len(msgs) != 3 {
				t.Fatalf("%d manifests, want 3", len(msgs))
			}
			put([]byte(otherContent)) // overwritten before any worker read

			deliver := func(msgs []sqsMessage) {
				t.Helper()
				resp, err := fns.Worker(ctx, eventsource.Event(res.ShardQueueURL, msgs))
				if err != nil || len(resp.BatchItemFailures) != 0 {
					t.Fatalf("worker: %+v %v, want every message settled", resp, err)
				}
			}
			deliver(msgs)
			b, err := store.GetBatch(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.versioned {
				if b.Status != state.BatchSuspended || b.Counts.Done() != 0 {
					t.Fatalf("batch %s with %+v, want SUSPENDED with nothing done", b.Status, b.Counts)
				}
				for _, want := range []string{"products.csv changed since this import started", "redrive", "importctl cancel"} {
					if !strings.Contains(b.Message, want) {
						t.Errorf("message %q does not say %q", b.Message, want)
					}
				}
				if _, ok, err := products.Get(ctx, "NEW-1"); ok || err != nil {
					t.Errorf("a row of the new object was written (%v)", err)
				}
				put(data) // restored: the same bytes, the same ETag
				if _, err := redrive.Run(ctx, redrive.Config{SQS: clients.SQS, Store: store, DLQURL: res.DLQURL, ShardQueueURL: res.ShardQueueURL,
					Filter: redrive.Filter{BatchID: id}, ShortPoll: true, Rate: 100}); err != nil {
					t.Fatalf("redrive --batch %s: %v", id, err)
				}
				resumed := drain(t, clients.SQS, res.ShardQueueURL)
				if len(resumed) != 3 {
					t.Fatalf("redrive of the suspended batch sent %d manifests, want 3", len(resumed))
				}
				deliver(resumed)
				if b, err = store.GetBatch(ctx, id); err != nil {
					t.Fatal(err)
				}
			}
			if !b.Status.Finished() || b.Status == state.BatchCancelled || b.Counts.Total == 0 || b.Counts.Done() != b.Counts.Total || b.Counts.Skipped != 0 {
				t.Fatalf("batch %s with %+v, want it completed with every row of the upload", b.Status, b.Counts)
			}
			if p, ok, err := products.Get(ctx, "SKU-00000002"); err != nil || !ok || p.Price != "1616.43" {
				t.Errorf("SKU-00000002: %+v %v %v, want the upload's price 1616.43", p.Price, ok, err)
			}
			if _, ok, err := products.Get(ctx, "NEW-1"); ok || err != nil {
				t.Errorf("a row of the overwriting object was written (%v)", err)
			}
		})
	}
}
