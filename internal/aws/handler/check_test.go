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
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"

	"github.com/catalog-import/catalog-import/internal/aws/awstest"
	"github.com/catalog-import/catalog-import/internal/aws/dynamocatalog"
	"github.com/catalog-import/catalog-import/internal/aws/dynamostate"
	"github.com/catalog-import/catalog-import/internal/aws/eventsource"
	"github.com/catalog-import/catalog-import/internal/aws/handler"
	"github.com/catalog-import/catalog-import/internal/aws/s3store"
	"github.com/catalog-import/catalog-import/internal/aws/sqsqueue"
	"github.com/catalog-import/catalog-import/internal/aws/stack"
	"github.com/catalog-import/catalog-import/internal/profile"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/state"
)

// tableWrites counts the DynamoDB write requests per table (PutItem,
// UpdateItem, DeleteItem, BatchWriteItem and TransactWriteItems, each
// counted once per table it writes to).
type tableWrites struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *tableWrites) option(s *middleware.Stack) error {
	return s.Initialize.Add(middleware.InitializeMiddlewareFunc("CountTableWrites", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		if awsmiddleware.GetServiceID(ctx) == "DynamoDB" {
			tables := map[string]bool{}
			switch p := in.Parameters.(type) {
			case *dynamodb.PutItemInput:
				tables[aws.ToString(p.TableName)] = true
			case *dynamodb.UpdateItemInput:
				tables[aws.ToString(p.TableName)] = true
			case *dynamodb.DeleteItemInput:
				tables[aws.ToString(p.TableName)] = true
			case *dynamodb.BatchWriteItemInput:
				for t := range p.RequestItems {
					tables[t] = true
				}
			case *dynamodb.TransactWriteItemsInput:
				for _, it := range p.TransactItems {
					switch {
					case it.Put != nil:
						tables[aws.ToString(it.Put.TableName)] = true
					case it.Update != nil:
						tables[aws.ToString(it.Update.TableName)] = true
					case it.Delete != nil:
						tables[aws.ToString(it.Delete.TableName)] = true
					}
				}
			}
			c.mu.Lock()
			for t := range tables {
				c.n[t]++
			}
			c.mu.Unlock()
		}
		return next.HandleInitialize(ctx, in)
	}), middleware.After)
}

func (c *tableWrites) of(table string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[table]
}

// TestCheckBeforeWriteOnAWS: with max_error_ratio the Lambda functions
// check every shard before the first write (decision 20). A file whose bad
// rows are all in its last shard (the worst case of the old mid-write
// abort) ends ABORTED with no write request to the products table and a
// failure record per bad row; a file under the budget imports.
func TestCheckBeforeWriteOnAWS(t *testing.T) {
	const rows, shardRows = 500, 100
	tests := []struct {
		name   string
		bad    int // bad rows, at the end of the file
		status state.BatchStatus
	}{
		{"over the budget in the last shard", 60, state.BatchAborted},
		{"under the budget", 10, state.BatchCompletedWithErrors},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			writes := &tableWrites{n: map[string]int{}}
			clients := awstest.Clients(t, writes.option)
			res, err := stack.Provision(ctx, clients, fmt.Sprintf("check-%d", i), stack.Defaults())
			if err != nil {
				t.Fatal(err)
			}
			p, err := profile.Parse([]byte("name: strict\nmax_error_ratio: 0.05\n"))
			if err != nil {
				t.Fatal(err)
			}
			store := dynamostate.New(clients.DynamoDB, res.StateTable, dynamostate.Options{})
			products := dynamocatalog.New(clients.DynamoDB, res.ProductsTable, dynamocatalog.Options{})
			fns := handler.New(handler.Ports{
				Source: s3store.New(clients.S3), Store: store, Sink: products,
				Queue:   sqsqueue.New(clients.SQS, res.ShardQueueURL),
				Reports: s3store.NewReports(clients.S3, res.Bucket), TriageLog: store.TriageLog(),
			}, handler.Options{Profile: p, Log: testLogger(t), Owner: "test", Split: split.Options{ShardRows: shardRows},
				CheckpointEvery: 50, LeaseTTL: time.Minute})

			var csv strings.Builder
			csv.WriteString("sku,name,category,price,stock\n")
			for r := range rows {
				price := fmt.Sprintf("%d.50", r+1)
				if r >= rows-tc.bad {
					price = "-1"
				}
				fmt.Fprintf(&csv, "SKU-%04d,Item %d,Home,%s,%d\n", r, r, price, r)
			}
			key := "incoming/strict.csv"
			out, err := clients.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(res.Bucket), Key: aws.String(key), Body: bytesReader([]byte(csv.String()))})
			if err != nil {
				t.Fatal(err)
			}
			var ev events.S3Event
			ev.Records = append(ev.Records, events.S3EventRecord{EventName: "ObjectCreated:Put"})
			ev.Records[0].S3.Bucket.Name = res.Bucket
			ev.Records[0].S3.Object.Key = key
			ev.Records[0].S3.Object.ETag = strings.Trim(aws.ToString(out.ETag), `"`)
			if err := fns.Splitter(ctx, ev); err != nil {
				t.Fatal(err)
			}
			o := ev.Records[0].S3.Object
			id := handler.BatchID(res.Bucket, key, o.VersionID, o.Sequencer, o.ETag)

			// Deliver what the queue holds until it is empty: the check
			// phase's manifests, then (under the budget) the write phase's.
			checks := 0
			for round := 0; ; round++ {
				msgs := drain(t, clients.SQS, res.ShardQueueURL)
				if len(msgs) == 0 {
					break
				}
				if round == 0 {
					checks = len(msgs)
					if n := writes.of(res.ProductsTable); n != 0 {
						t.Fatalf("%d product writes before any shard was checked", n)
					}
				}
				resp, err := fns.Worker(ctx, eventsource.Event(res.ShardQueueURL, msgs))
				if err != nil || len(resp.BatchItemFailures) != 0 {
					t.Fatalf("worker round %d: %+v %v", round, resp, err)
				}
				if round > 3 {
					t.Fatal("the queue does not empty")
				}
			}
			if checks != rows/shardRows {
				t.Errorf("%d check manifests, want one per shard (%d)", checks, rows/shardRows)
			}
			b, err := store.GetBatch(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			fs, err := store.Failures(ctx, id, state.FailureFilter{})
			if err != nil {
				t.Fatal(err)
			}
			n, err := products.CountBatch(ctx, id, "", 0, rows+2)
			if err != nil {
				t.Fatal(err)
			}
			if b.Status != tc.status || len(fs) != tc.bad || b.Counts.Failed != int64(tc.bad) || b.Counts.Done() != rows {
				t.Fatalf("batch %s %+v %q with %d failure records; want %s with %d failed", b.Status, b.Counts, b.Message, len(fs), tc.status, tc.bad)
			}
			if tc.status != state.BatchAborted {
				if n != rows-int64(tc.bad) || b.Counts.Imported != n {
					t.Errorf("%d products of the batch, %d imported; want %d", n, b.Counts.Imported, rows-tc.bad)
				}
				return
			}
			want := fmt.Sprintf("aborted: %d of %d rows failed the checks (12.0%%), over max_error_ratio 5%%: nothing was imported", tc.bad, rows)
			if b.Message != want || b.Counts.Imported != 0 || b.Counts.Skipped != rows-int64(tc.bad) {
				t.Errorf("aborted batch %+v %q, want nothing imported and %q", b.Counts, b.Message, want)
			}
			if w := writes.of(res.ProductsTable); w != 0 || n != 0 {
				t.Errorf("%d write requests to the products table, %d products of the aborted batch; want none", w, n)
			}
		})
	}
}
