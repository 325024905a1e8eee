package handler_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/catalog-import/catalog-import/internal/aws/awstest"
	"github.com/catalog-import/catalog-import/internal/aws/eventsource"
	"github.com/catalog-import/catalog-import/internal/aws/handler"
	"github.com/catalog-import/catalog-import/internal/aws/stack"
	"github.com/catalog-import/catalog-import/internal/split"
)

// TestLogLinesCarryRequestID: every log line a handler's invocation writes
// (the handler's own, the pipeline's, the worker's and the finalization's,
// at debug level) carries that invocation's Lambda request id as
// aws_request_id, so a CloudWatch Logs Insights query on one id shows one
// invocation whole.
func TestLogLinesCarryRequestID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clients := awstest.Clients(t)
	res, err := stack.Provision(ctx, clients, awstest.Name("reqid"), stack.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&syncWriter{w: &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	fns := handler.FromClients(clients, handler.Config{Bucket: res.Bucket, StateTable: res.StateTable, ProductsTable: res.ProductsTable,
		ShardQueueURL: res.ShardQueueURL, DLQURL: res.DLQURL, FailureTTL: time.Hour,
		Options: handler.Options{Split: split.Options{ShardRows: 500}, CheckpointEvery: 100, Log: log}})
	data, err := os.ReadFile("../../../testdata/demo/products-gbk.csv")
	if err != nil {
		t.Fatal(err)
	}
	key := "incoming/reqid.csv"
	put, err := clients.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(res.Bucket), Key: aws.String(key), Body: bytes.NewReader(data)})
	if err != nil {
		t.Fatal(err)
	}
	invoke := func(id string, call func(context.Context)) {
		t.Helper()
		start := logs.Len()
		call(lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{AwsRequestID: id}))
		lines := 0
		sc := bufio.NewScanner(bytes.NewReader(logs.Bytes()[start:]))
		for sc.Scan() {
			var l map[string]any
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Fatalf("log line %s: %v", sc.Bytes(), err)
			}
			lines++
			if l[handler.RequestIDKey] != id {
				t.Errorf("invocation %s logged a line without its request id: %s", id, sc.Bytes())
			}
		}
		if lines == 0 {
			t.Errorf("invocation %s logged nothing", id)
		}
	}
	invoke("req-split", func(ctx context.Context) {
		if err := fns.Splitter(ctx, s3Event(res.Bucket, key, aws.ToString(put.VersionId), aws.ToString(put.ETag))); err != nil {
			t.Fatal(err)
		}
	})
	msgs := drain(t, clients.SQS, res.ShardQueueURL)
	if len(msgs) < 2 {
		t.Fatalf("%d manifests, want several shards", len(msgs))
	}
	for i, m := range msgs { // the last one finalizes the batch
		invoke(fmt.Sprintf("req-work-%d", i), func(ctx context.Context) {
			if resp, err := fns.Worker(ctx, eventsource.Event(res.ShardQueueURL, []sqsMessage{m})); err != nil || len(resp.BatchItemFailures) > 0 {
				t.Fatalf("worker: %+v %v", resp, err)
			}
		})
	}
	if !bytes.Contains(logs.Bytes(), []byte(`"msg":"batch finished"`)) {
		t.Error("no 'batch finished' line: the finalization's lines were not checked")
	}
}
