package handler_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/go-cmp/cmp"

	"github.com/catalog-import/catalog-import/internal/aws/awsclient"
	"github.com/catalog-import/catalog-import/internal/aws/awstest"
	"github.com/catalog-import/catalog-import/internal/aws/dynamostate"
	"github.com/catalog-import/catalog-import/internal/aws/eventbus"
	"github.com/catalog-import/catalog-import/internal/aws/handler"
	"github.com/catalog-import/catalog-import/internal/aws/stack"
	"github.com/catalog-import/catalog-import/internal/pipeline"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/state"
)

// TestBatchFinishedEvent: with EVENT_BUS_NAME set, a batch that finishes
// through the handlers on moto puts one "Batch Finished" event on the bus,
// and a rule on the bus delivers it to a shop's SQS queue with the batch's
// id, source, status, counts, failures by reason and report; an upload the
// splitter rejects publishes its REJECTED event.
func TestBatchFinishedEvent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clients := awstest.Clients(t)
	res, err := stack.Provision(ctx, clients, awstest.Name("events"), stack.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	bus, indexer := eventRoute(t, clients)
	fns := handler.FromClients(clients, handler.Config{Bucket: res.Bucket, StateTable: res.StateTable, ProductsTable: res.ProductsTable,
		ShardQueueURL: res.ShardQueueURL, DLQURL: res.DLQURL, FailureTTL: time.Hour, EventBusName: bus,
		Options: handler.Options{Split: split.Options{ShardRows: 500}, CheckpointEvery: 100}})
	store := dynamostate.New(clients.DynamoDB, res.StateTable, dynamostate.Options{})

	upload := func(key string, data []byte) string {
		t.Helper()
		put, err := clients.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(res.Bucket), Key: aws.String(key), Body: bytes.NewReader(data)})
		if err != nil {
			t.Fatal(err)
		}
		if err := fns.Splitter(ctx, s3Event(res.Bucket, key, aws.ToString(put.VersionId), aws.ToString(put.ETag))); err != nil {
			t.Fatal(err)
		}
		return handler.BatchID(res.Bucket, key, aws.ToString(put.VersionId), "", "")
	}
	data, err := os.ReadFile("../../../testdata/demo/products-gbk.csv")
	if err != nil {
		t.Fatal(err)
	}
	id := upload("incoming/events.csv", data)
	if got := receiveEvents(t, clients.SQS, indexer); len(got) != 0 {
		t.Fatalf("%d events before the batch finished", len(got))
	}
	deliverAll(t, fns, clients.SQS, res.ShardQueueURL)
	b, err := store.GetBatch(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if b.Status != state.BatchCompletedWithErrors || len(b.ByReason) == 0 {
		t.Fatalf("batch %s %v: the sample should finish with failed rows", b.Status, b.ByReason)
	}
	got := receiveEvents(t, clients.SQS, indexer)
	if len(got) != 1 {
		t.Fatalf("%d events for one finished batch, want 1", len(got))
	}
	ev := got[0]
	if ev.Source != eventbus.Source || ev.DetailType != eventbus.DetailType {
		t.Errorf("event source %q detail-type %q", ev.Source, ev.DetailType)
	}
	want := pipeline.BatchEvent{Version: 1, BatchID: id, Status: state.BatchCompletedWithErrors,
		Source: pipeline.EventSource{URI: "s3://" + res.Bucket + "/incoming/events.csv", Bucket: res.Bucket, Key: "incoming/events.csv",
			Version: b.Source.Version, Size: int64(len(data))},
		Order: b.Order, RuleVersion: b.RuleVersion,
		Counts: pipeline.EventCounts{Total: b.Counts.Total, Imported: b.Counts.Imported, Superseded: b.Counts.Superseded,
			Failed: b.Counts.Failed, Skipped: b.Counts.Skipped},
		FailuresByReason: b.ByReason, Report: "s3://" + res.Bucket + "/reports/" + id + "/errors.csv",
		ReportBucket: res.Bucket, ReportKey: "reports/" + id + "/errors.csv", TraceID: b.TraceID}
	ev.Detail.CreatedAt, ev.Detail.FinishedAt = time.Time{}, time.Time{}
	if diff := cmp.Diff(want, ev.Detail); diff != "" || b.Source.Version == "" || b.Counts.Total == 0 {
		t.Errorf("event detail (-want +got):\n%s", diff)
	}

	// An upload the splitter rejects is finished when it is registered.
	rej := upload("incoming/no-price.csv", []byte("sku,name,category\nA-1,Lamp,Home\n"))
	got = receiveEvents(t, clients.SQS, indexer)
	if len(got) != 1 || got[0].Detail.BatchID != rej || got[0].Detail.Status != state.BatchRejected || got[0].Detail.Message == "" ||
		got[0].Detail.Counts != (pipeline.EventCounts{}) {
		t.Errorf("events after a rejected upload: %+v, want one REJECTED event of %s with its message", got, rej)
	}
}

// busEvent is an EventBridge event as a rule's SQS target receives it.
type busEvent struct {
	Source     string              `json:"source"`
	DetailType string              `json:"detail-type"`
	Detail     pipeline.BatchEvent `json:"detail"`
}

// eventRoute makes an event bus and a queue that a rule on the bus sends
// the "Batch Finished" events of catalog-import to (a shop's indexer), and
// returns the bus name and the queue URL.
func eventRoute(t *testing.T, c *awsclient.Clients) (bus, queueURL string) {
	t.Helper()
	ctx := context.Background()
	bus = awstest.Name("bus")
	if _, err := c.EventBridge.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String(bus)}); err != nil {
		t.Fatal(err)
	}
	q, err := c.SQS.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(awstest.Name("indexer"))})
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := c.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	pattern, _ := json.Marshal(map[string][]string{"source": {eventbus.Source}, "detail-type": {eventbus.DetailType}})
	rule := awstest.Name("batches")
	if _, err := c.EventBridge.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String(rule), EventBusName: aws.String(bus),
		EventPattern: aws.String(string(pattern))}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.EventBridge.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String(rule), EventBusName: aws.String(bus),
		Targets: []ebtypes.Target{{Id: aws.String("indexer"), Arn: aws.String(attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)])}}}); err != nil {
		t.Fatal(err)
	}
	return bus, aws.ToString(q.QueueUrl)
}

// receiveEvents takes every event waiting in the queue (and deletes them).
func receiveEvents(t *testing.T, c *sqs.Client, url string) []busEvent {
	t.Helper()
	var out []busEvent
	for _, m := range drain(t, c, url) {
		var e busEvent
		if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &e); err != nil {
			t.Fatalf("event %s: %v", aws.ToString(m.Body), err)
		}
		out = append(out, e)
		if _, err := c.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
			t.Fatal(err)
		}
	}
	return out
}
