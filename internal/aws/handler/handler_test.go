package handler_test

import (
	"context"
	"encoding/json"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/go-cmp/cmp"

	"github.com/catalog-import/catalog-import/internal/aws/awstest"
	"github.com/catalog-import/catalog-import/internal/aws/dynamocatalog"
	"github.com/catalog-import/catalog-import/internal/aws/dynamostate"
	"github.com/catalog-import/catalog-import/internal/aws/eventsource"
	"github.com/catalog-import/catalog-import/internal/aws/handler"
	"github.com/catalog-import/catalog-import/internal/aws/sqsqueue"
	"github.com/catalog-import/catalog-import/internal/aws/stack"
	"github.com/catalog-import/catalog-import/internal/embedded"
	"github.com/catalog-import/catalog-import/internal/queue"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/state"
	"github.com/catalog-import/catalog-import/internal/triage"
)

var update = flag.Bool("update", false, "rewrite events/sqs-shard.json and events/sqs-dlq.json from the splitter's real manifest")

func TestMain(m *testing.M) { awstest.Main(m) }

const eventsDir = "../../../events"

func readEvent(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(eventsDir, name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// TestSampleEvents drives the handlers with events/*.json (the files
// `sam local invoke -e` uses) against moto, so the files stay valid: the
// splitter registers the upload of events/s3-put.json once however often the
// event comes; the worker imports the shard of events/sqs-shard.json once
// however often it is delivered; the batch ends as `importctl run` ends the
// same file; triage drops the message of events/sqs-dlq.json, whose shard is
// done, and logs the decision.
func TestSampleEvents(t *testing.T) {
	ctx := context.Background()
	clients := awstest.Clients(t)
	// The events name the bucket of a stack called catalog-import in moto's
	// account; provision it as importctl dev does.
	res, err := stack.Provision(ctx, clients, "catalog-import", stack.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	var put events.S3Event
	readEvent(t, "s3-put.json", &put)
	obj := put.Records[0].S3
	if obj.Bucket.Name != res.Bucket {
		t.Fatalf("events/s3-put.json names bucket %s; the stack's is %s", obj.Bucket.Name, res.Bucket)
	}
	data, err := os.ReadFile("../../../testdata/demo/products-gbk.csv")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := clients.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(res.Bucket), Key: aws.String(obj.Object.Key), Body: bytesReader(data)}); err != nil {
		t.Fatal(err)
	}

	// The functions' configuration as events/env.json gives it (sam local
	// invoke --env-vars), pointed at this moto.
	var env struct{ Parameters map[string]string }
	readEvent(t, "env.json", &env)
	env.Parameters["AWS_ENDPOINT_URL"] = awstest.Endpoint(t)
	env.Parameters["AWS_REGION"] = "us-east-1"
	env.Parameters["SHARD_QUEUE_URL"], env.Parameters["DLQ_URL"] = res.ShardQueueURL, res.DLQURL
	env.Parameters["LOG_LEVEL"] = os.Getenv("TEST_LOG_LEVEL") + map[bool]string{true: "error"}[os.Getenv("TEST_LOG_LEVEL") == ""]
	cfg, err := handler.ConfigFromEnv(func(k string) string { return env.Parameters[k] })
	if err != nil {
		t.Fatal(err)
	}
	cfg.AWS.OneAtATime = &awstest.OneAtATime
	fns, err := handler.Build(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	store := dynamostate.New(clients.DynamoDB, res.StateTable, dynamostate.Options{})
	products := dynamocatalog.New(clients.DynamoDB, res.ProductsTable, dynamocatalog.Options{})

	// A duplicated S3 event makes one batch (invariant 1).
	for range 2 {
		if err := fns.Splitter(ctx, put); err != nil {
			t.Fatal(err)
		}
	}
	id := handler.BatchID(obj.Bucket.Name, obj.Object.Key, obj.Object.VersionID, obj.Object.Sequencer, obj.Object.ETag)
	batches, err := store.ListBatches(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(batches) != 1 || batches[0].ID != id || batches[0].Shards != 3 {
		t.Fatalf("%d batches after two events (first: %s with %d shards), want one batch %s of 3 shards", len(batches), batches[0].ID, batches[0].Shards, id)
	}
	msgs := drain(t, clients.SQS, res.ShardQueueURL)
	if len(msgs) != 6 { // each event sent the manifests of the unfinished shards
		t.Fatalf("%d manifests on the queue, want 3 per event", len(msgs))
	}

	// events/sqs-shard.json carries the splitter's manifest of shard 1.
	real := manifestOf(t, msgs, 1)
	if *update {
		rewrite(t, "sqs-shard.json", real, "1", res.ShardQueueURL)
		rewrite(t, "sqs-dlq.json", real, "6", res.DLQURL)
	}
	var shardEv events.SQSEvent
	readEvent(t, "sqs-shard.json", &shardEv)
	got, err := sqsqueue.Decode(shardEv.Records[0].Body)
	if err != nil {
		t.Fatalf("events/sqs-shard.json: %v", err)
	}
	// The upload time, version id and trace id differ from run to run.
	got.Source.ModTime, got.Source.Version, got.TraceID = real.Source.ModTime, real.Source.Version, real.TraceID
	if diff := cmp.Diff(real, got); diff != "" {
		t.Fatalf("events/sqs-shard.json is not the splitter's manifest of shard 1 (go test -update rewrites it):\n%s", diff)
	}

	// Every read is pinned to the upload's version (decision 19): the
	// event is delivered with this run's version id of the upload.
	pinned, err := sqsqueue.Decode(shardEv.Records[0].Body)
	if err != nil {
		t.Fatal(err)
	}
	pinned.Source.Version = real.Source.Version
	if shardEv.Records[0].Body, err = sqsqueue.Encode(pinned); err != nil {
		t.Fatal(err)
	}

	// Delivered twice, the shard is imported once.
	for i := range 2 {
		resp, err := fns.Worker(ctx, shardEv)
		if err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("delivery %d: %+v %v", i+1, resp, err)
		}
	}
	shards, err := store.ListShards(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	s1 := shards[1]
	n, err := products.CountBatch(ctx, id, s1.Sheet, s1.FirstRow, shards[2].FirstRow-1)
	if err != nil {
		t.Fatal(err)
	}
	if s1.Status != state.ShardDone || s1.Checkpoint.Counts.Total != s1.Rows || n != s1.Checkpoint.Counts.Imported || s1.Attempts != 1 {
		t.Fatalf("shard 1 after two deliveries: %+v with %d products", s1, n)
	}
	// Its failure records carry the trace of the delivery (the manifest's
	// trace_id, else the root of its AWSTraceHeader attribute).
	wantTrace := sqsqueue.TraceID(shardEv.Records[0].Attributes["AWSTraceHeader"])
	if m, _ := sqsqueue.FromEvent(shardEv.Records[0]); m.Manifest.TraceID != "" {
		wantTrace = m.Manifest.TraceID
	}
	one := 1
	fs, err := store.Failures(ctx, id, state.FailureFilter{Shard: &one})
	if err != nil || len(fs) == 0 {
		t.Fatalf("failures of shard 1: %d, %v", len(fs), err)
	}
	for _, f := range fs {
		if f.TraceID != wantTrace || wantTrace == "" {
			t.Fatalf("failure record of row %d: trace id %q, want %q", f.Row, f.TraceID, wantTrace)
		}
	}

	// The rest of the queue's deliveries (duplicates included) finish the batch.
	resp, err := fns.Worker(ctx, eventsource.Event(res.ShardQueueURL, msgs))
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("worker: %+v %v", resp, err)
	}
	b, err := store.GetBatch(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	local, err := embedded.Run(ctx, embedded.Config{DB: filepath.Join(t.TempDir(), "x.db"), Split: split.Options{ShardRows: 500}}, "../../../testdata/demo/products-gbk.csv")
	if err != nil {
		t.Fatal(err)
	}
	if b.Status != local.Batch.Status || b.Counts != local.Batch.Counts || !cmp.Equal(b.ByReason, local.Batch.ByReason) {
		t.Errorf("on AWS: %s %+v %v\nimportctl run: %s %+v %v", b.Status, b.Counts, b.ByReason, local.Batch.Status, local.Batch.Counts, local.Batch.ByReason)
	}
	if b.Report != "s3://"+res.Bucket+"/reports/"+id+"/errors.csv" {
		t.Errorf("report at %q", b.Report)
	}
	checkBatchReport(t, clients.S3, res.Bucket, b) // reports/<batch>/report.html beside it

	// events/sqs-dlq.json dead-letters shard 1's manifest, but the shard is
	// DONE: triage logs the decision "done" and drops the message.
	var dlqEv events.SQSEvent
	readEvent(t, "sqs-dlq.json", &dlqEv)
	tr, err := fns.Triage(ctx, dlqEv)
	if err != nil || len(tr.BatchItemFailures) != 0 {
		t.Fatalf("triage: %+v %v, want the message dropped", tr, err)
	}
	entries, err := dynamostate.NewTriageLog(clients.DynamoDB, res.StateTable).List(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(entries); n == 0 || entries[n-1].Kind != triage.KindDecision || entries[n-1].Action != triage.Done ||
		entries[n-1].Shard != 1 || entries[n-1].ReceiveCount != 6 || entries[n-1].MessageID != dlqEv.Records[0].MessageId {
		t.Fatalf("triage log: %+v, want the decision done for shard 1", entries)
	}
}

func drain(t *testing.T, c *sqs.Client, url string) []sqsMessage {
	t.Helper()
	var all []sqsMessage
	for {
		out, err := c.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10,
			MessageSystemAttributeNames: []sqsAttr{"All"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			return all
		}
		all = append(all, out.Messages...)
	}
}

func manifestOf(t *testing.T, msgs []sqsMessage, shard int) queue.Manifest {
	t.Helper()
	for _, m := range msgs {
		man, err := sqsqueue.Decode(aws.ToString(m.Body))
		if err != nil {
			t.Fatal(err)
		}
		if man.Shard == shard {
			return man
		}
	}
	t.Fatalf("no manifest of shard %d", shard)
	return queue.Manifest{}
}

// rewrite writes events/name as an SQS event delivering m.
func rewrite(t *testing.T, name string, m queue.Manifest, receiveCount, queueURL string) {
	t.Helper()
	// No version id: an upload's differs from run to run, and without one
	// the worker reads the object by its ETag, so the events work against
	// any upload of the demo file (importctl invoke, sam local invoke).
	m.Source.Version = ""
	body, err := sqsqueue.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	queueName := filepath.Base(queueURL)
	ev := map[string]any{"Records": []map[string]any{{
		"messageId":     "059f36b4-87a3-44ab-83d2-661975830a7d",
		"receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
		"body":          body,
		"attributes": map[string]string{
			"ApproximateReceiveCount": receiveCount, "SentTimestamp": "1795953600000",
			"SenderId": "AIDAIENQZJOLO23YVJ4VO", "ApproximateFirstReceiveTimestamp": "1795953600001",
			"AWSTraceHeader": "Root=" + m.TraceID + ";Parent=53995c3f42cd8ad8;Sampled=1",
		},
		"messageAttributes": map[string]any{},
		"md5OfBody":         "",
		"eventSource":       "aws:sqs",
		"eventSourceARN":    "arn:aws:sqs:us-east-1:123456789012:" + queueName,
		"awsRegion":         "us-east-1",
	}}}
	b, err := json.MarshalIndent(ev, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(eventsDir, name), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// offTracer stands for xraytrace.Tracer in TestFromEnv.
type offTracer struct{ handler.Tracer }

// TestFromEnv: the functions' main builds the handlers from the
// environment; a tracer constructor that returns nil (tracing off, as
// xraytrace.FromEnv outside Lambda) leaves the functions untraced, and a
// missing variable is named.
func TestFromEnv(t *testing.T) {
	t.Parallel()
	var env struct{ Parameters map[string]string }
	readEvent(t, "env.json", &env)
	env.Parameters["AWS_REGION"] = "us-east-1"
	getenv := func(k string) string { return env.Parameters[k] }
	asked := false
	off := func(func(string) string, *slog.Logger) *offTracer { asked = true; return nil }
	fns, err := handler.FromEnv(context.Background(), getenv, off)
	if err != nil || fns == nil || !asked {
		t.Fatalf("FromEnv = %v, %v (tracer asked: %v), want handlers", fns, err, asked)
	}
	delete(env.Parameters, "STATE_TABLE")
	if _, err := handler.FromEnv(context.Background(), getenv, off); err == nil || !strings.Contains(err.Error(), "STATE_TABLE") {
		t.Errorf("FromEnv without STATE_TABLE = %v, want an error naming it", err)
	}
}
