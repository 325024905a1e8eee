package handler_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/go-cmp/cmp"

	"github.com/catalog-import/catalog-import/internal/aws/awsclient"
	"github.com/catalog-import/catalog-import/internal/aws/awstest"
	"github.com/catalog-import/catalog-import/internal/aws/dynamocatalog"
	"github.com/catalog-import/catalog-import/internal/aws/dynamostate"
	"github.com/catalog-import/catalog-import/internal/aws/eventsource"
	"github.com/catalog-import/catalog-import/internal/aws/faultproxy"
	"github.com/catalog-import/catalog-import/internal/aws/handler"
	"github.com/catalog-import/catalog-import/internal/aws/stack"
	"github.com/catalog-import/catalog-import/internal/embedded"
	"github.com/catalog-import/catalog-import/internal/split"
)

// TestWriteRateBacksOffWhenThrottled runs an upload on moto with WRITE_RATE
// set, through a proxy that answers a third of the products' conditional puts
// with ThrottlingException (as a provisioned table over its budget does):
// the worker's write rate is halved (the products sink reports each
// throttled attempt, before the SDK's retries hide it), and the import
// still ends exactly as `importctl run` ends the same file, every product
// stored once.
func TestWriteRateBacksOffWhenThrottled(t *testing.T) {
	if testing.Short() {
		t.Skip("imports a file on moto through a fault-injecting proxy")
	}
	t.Parallel()
	ctx := context.Background()
	clients := awstest.Clients(t)
	res, err := stack.Provision(ctx, clients, awstest.Name("wrate"), stack.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	p, err := faultproxy.Start(faultproxy.Config{Target: awstest.Endpoint(t), Rate: 0.3, Faults: []faultproxy.Fault{faultproxy.Throttle},
		Services: []string{"dynamodb"}, Seed: 12,
		Only: func(r *http.Request) bool {
			// The products sink's conditional puts (decision 29), not the
			// state store's requests.
			if r.Header.Get("X-Amz-Target") != "DynamoDB_20120810.PutItem" {
				return false
			}
			body, err := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			return err == nil && bytes.Contains(body, []byte(`"TableName":"`+res.ProductsTable+`"`))
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	throttled, err := awsclient.New(ctx, awsclient.Settings{Region: "us-east-1", Endpoint: p.URL, OneAtATime: &awstest.OneAtATime})
	if err != nil {
		t.Fatal(err)
	}
	const rate = 20_000 // rows/s: high enough not to slow the test, the halving is what counts
	fns := handler.FromClients(throttled, handler.Config{Bucket: res.Bucket, StateTable: res.StateTable, ProductsTable: res.ProductsTable,
		ShardQueueURL: res.ShardQueueURL, DLQURL: res.DLQURL, FailureTTL: time.Hour,
		Options: handler.Options{Split: split.Options{ShardRows: 500}, CheckpointEvery: 100, WriteRate: rate}})

	const file = "../../../testdata/demo/products-gbk.csv"
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	key := "incoming/throttled.csv"
	put, err := clients.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(res.Bucket), Key: aws.String(key), Body: bytes.NewReader(data)})
	if err != nil {
		t.Fatal(err)
	}
	ev := s3Event(res.Bucket, key, aws.ToString(put.VersionId), aws.ToString(put.ETag))
	if err := fns.Splitter(ctx, ev); err != nil {
		t.Fatal(err)
	}
	id := handler.BatchID(res.Bucket, key, aws.ToString(put.VersionId), "", "")
	deliverAll(t, fns, clients.SQS, res.ShardQueueURL)

	st := fns.Limiter().Stats()
	faults, calls := p.Injected()
	t.Logf("%d of %d calls throttled; limiter %+v", faults, calls, st)
	if faults == 0 || st.Throttles == 0 || st.Decreases == 0 || st.Lowest >= rate {
		t.Errorf("limiter %+v after %d throttled calls: want the write rate lowered", st, faults)
	}

	store := dynamostate.New(clients.DynamoDB, res.StateTable, dynamostate.Options{})
	b, err := store.GetBatch(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	local, err := embedded.Run(ctx, embedded.Config{DB: filepath.Join(t.TempDir(), "x.db"), Split: split.Options{ShardRows: 500}}, file)
	if err != nil {
		t.Fatal(err)
	}
	if b.Status != local.Batch.Status || b.Counts != local.Batch.Counts || !cmp.Equal(b.ByReason, local.Batch.ByReason) {
		t.Errorf("throttled on AWS: %s %+v %v\nimportctl run: %s %+v %v", b.Status, b.Counts, b.ByReason, local.Batch.Status, local.Batch.Counts, local.Batch.ByReason)
	}
	n, err := dynamocatalog.New(clients.DynamoDB, res.ProductsTable, dynamocatalog.Options{}).CountBatch(ctx, id, "", 0, 1<<40)
	if err != nil {
		t.Fatal(err)
	}
	if n != b.Counts.Imported {
		t.Errorf("%d products stored by the batch, %d imported", n, b.Counts.Imported)
	}
}

// deliverAll plays the shard queue's event source until the batch's work is
// done: it delivers every message, one invocation per message, delivers the
// ones the worker returns again at once (instead of after the visibility
// timeout), and picks up the continuations the worker hands on.
func deliverAll(t *testing.T, fns *handler.Functions, c *sqs.Client, url string) {
	t.Helper()
	pending := drain(t, c, url)
	for round := 0; len(pending) > 0; round++ {
		if round > 200 {
			t.Fatalf("still %d deliveries after %d rounds", len(pending), round)
		}
		var again []sqsMessage
		for _, m := range pending {
			resp, err := fns.Worker(context.Background(), eventsource.Event(url, []sqsMessage{m}))
			if err != nil {
				t.Fatal(err)
			}
			if slices.ContainsFunc(resp.BatchItemFailures, func(f events.SQSBatchItemFailure) bool { return f.ItemIdentifier == aws.ToString(m.MessageId) }) {
				again = append(again, m)
			}
		}
		pending = append(again, drain(t, c, url)...)
	}
}

// TestWriteRateFromEnv: WRITE_RATE is rows per second per worker, 0 or
// unset is unlimited, anything else is refused by name.
func TestWriteRateFromEnv(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		v    string
		want float64
		err  bool
	}{{"", 0, false}, {"0", 0, false}, {"250", 250, false}, {"12.5", 12.5, false}, {"-1", 0, true}, {"fast", 0, true}, {"Inf", 0, true}} {
		env := map[string]string{"BUCKET": "b", "STATE_TABLE": "s", "PRODUCTS_TABLE": "p", "SHARD_QUEUE_URL": "q", "WRITE_RATE": tc.v}
		c, err := handler.ConfigFromEnv(func(k string) string { return env[k] })
		if tc.err {
			if err == nil || !strings.Contains(err.Error(), "WRITE_RATE") {
				t.Errorf("WRITE_RATE=%q: error %v, want one naming WRITE_RATE", tc.v, err)
			}
			continue
		}
		if err != nil || c.Options.WriteRate != tc.want {
			t.Errorf("WRITE_RATE=%q: %v, %v; want %v", tc.v, c.Options.WriteRate, err, tc.want)
		}
	}
}
