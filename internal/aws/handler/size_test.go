package handler_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/catalog-import/catalog-import/internal/aws/awstest"
	"github.com/catalog-import/catalog-import/internal/aws/dynamostate"
	"github.com/catalog-import/catalog-import/internal/aws/handler"
	"github.com/catalog-import/catalog-import/internal/aws/stack"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/state"
)

// TestUploadOverTheSizeLimit: the splitter rejects a CSV upload larger than
// MAX_UPLOAD_BYTES at once (REJECTED, no shard, no manifest), and the
// batch's message names the size, the limit and what to do.
func TestUploadOverTheSizeLimit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clients := awstest.Clients(t)
	res, err := stack.Provision(ctx, clients, awstest.Name("size"), stack.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("../../../testdata/demo/products-gbk.csv")
	if err != nil {
		t.Fatal(err)
	}
	limit := int64(len(data)) / 2
	fns := handler.FromClients(clients, handler.Config{Bucket: res.Bucket, StateTable: res.StateTable, ProductsTable: res.ProductsTable,
		ShardQueueURL: res.ShardQueueURL, DLQURL: res.DLQURL, FailureTTL: time.Hour,
		Options: handler.Options{Split: split.Options{MaxText: limit}}})
	key := "incoming/big.csv"
	put, err := clients.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(res.Bucket), Key: aws.String(key), Body: bytes.NewReader(data)})
	if err != nil {
		t.Fatal(err)
	}
	if err := fns.Splitter(ctx, s3Event(res.Bucket, key, aws.ToString(put.VersionId), aws.ToString(put.ETag))); err != nil {
		t.Fatal(err)
	}
	b, err := dynamostate.New(clients.DynamoDB, res.StateTable, dynamostate.Options{}).GetBatch(ctx, handler.BatchID(res.Bucket, key, aws.ToString(put.VersionId), "", ""))
	if err != nil {
		t.Fatal(err)
	}
	if b.Status != state.BatchRejected || b.Shards != 0 || !strings.Contains(b.Message, string(failure.RowTooLarge)) ||
		!strings.Contains(b.Message, "over the limit of") || !strings.Contains(b.Message, "MaxUploadBytes") {
		t.Errorf("batch %s, %d shards, message %q: want REJECTED naming the limit and MaxUploadBytes", b.Status, b.Shards, b.Message)
	}
	if msgs := drain(t, clients.SQS, res.ShardQueueURL); len(msgs) != 0 {
		t.Errorf("%d manifests sent for a rejected upload", len(msgs))
	}
}

// TestMaxUploadBytesFromEnv: unset is DefaultMaxUploadBytes, 0 is no limit.
func TestMaxUploadBytesFromEnv(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]int64{"": handler.DefaultMaxUploadBytes, "0": 0, "1048576": 1 << 20} {
		env := map[string]string{"BUCKET": "b", "STATE_TABLE": "s", "PRODUCTS_TABLE": "p", "SHARD_QUEUE_URL": "q", "MAX_UPLOAD_BYTES": v}
		c, err := handler.ConfigFromEnv(func(k string) string { return env[k] })
		if err != nil || c.Options.Split.MaxText != want {
			t.Errorf("MAX_UPLOAD_BYTES=%q: %d, %v; want %d", v, c.Options.Split.MaxText, err, want)
		}
	}
}
