package handler_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/catalog-import/catalog-import/internal/aws/awsclient"
	"github.com/catalog-import/catalog-import/internal/aws/awstest"
	"github.com/catalog-import/catalog-import/internal/aws/dynamocatalog"
	"github.com/catalog-import/catalog-import/internal/aws/dynamostate"
	"github.com/catalog-import/catalog-import/internal/aws/emf"
	"github.com/catalog-import/catalog-import/internal/aws/eventsource"
	"github.com/catalog-import/catalog-import/internal/aws/handler"
	"github.com/catalog-import/catalog-import/internal/aws/s3store"
	"github.com/catalog-import/catalog-import/internal/aws/sqsqueue"
	"github.com/catalog-import/catalog-import/internal/aws/stack"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/queue"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/state"
	"github.com/catalog-import/catalog-import/internal/triage"
)

// notice is one escalation notification.
type notice struct{ subject, message string }

// triageRig is a stack on moto with the demo file split into 3 shards whose
// manifests were taken off the shard queue (not yet processed).
type triageRig struct {
	clients *awsclient.Clients
	res     stack.Resources
	fns     *handler.Functions // splitter and workers
	triage  *handler.Functions // triage, an hour later
	store   *dynamostate.Store
	log     *dynamostate.TriageLog
	batchID string
	key     string
	msgs    []sqsMessage // manifests by shard index

	mu      sync.Mutex
	notices []notice
	metrics syncWriter       // triage's EMF lines
	reqs    awstest.Requests // triage's AWS requests
}

func newTriageRig(t *testing.T, name string, policy triage.Policy) *triageRig {
	t.Helper()
	ctx := t.Context()
	clients := awstest.Clients(t)
	res, err := stack.Provision(ctx, clients, name, stack.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	r := &triageRig{clients: clients, res: res, key: "incoming/products.csv"}
	r.store = dynamostate.New(clients.DynamoDB, res.StateTable, dynamostate.Options{})
	r.log = r.store.TriageLog()
	ports := func(clients *awsclient.Clients) handler.Ports {
		store := dynamostate.New(clients.DynamoDB, res.StateTable, dynamostate.Options{})
		return handler.Ports{
			Source:    s3store.New(clients.S3),
			Store:     store,
			Sink:      dynamocatalog.New(clients.DynamoDB, res.ProductsTable, dynamocatalog.Options{}),
			Queue:     sqsqueue.New(clients.SQS, res.ShardQueueURL),
			DLQ:       sqsqueue.New(clients.SQS, res.DLQURL),
			Reports:   s3store.NewReports(clients.S3, res.Bucket),
			TriageLog: store.TriageLog(),
			Notify: func(_ context.Context, subject, message string) error {
				r.mu.Lock()
				defer r.mu.Unlock()
				r.notices = append(r.notices, notice{subject, message})
				return nil
			},
		}
	}
	opts := handler.Options{Log: testLogger(t), Triage: policy, StackName: name, Owner: "test",
		Split: split.Options{ShardRows: 400}, CheckpointEvery: 100, LeaseTTL: time.Minute}
	r.fns = handler.New(ports(clients), opts)
	r.metrics.w = &bytes.Buffer{}
	opts.Metrics = emf.New(&r.metrics, "triage")
	// Triage runs after the message's deliveries are exhausted (six
	// visibility timeouts), when the leases of the failed deliveries have
	// long expired. Its requests are recorded (r.reqs).
	opts.Now = func() time.Time { return time.Now().Add(time.Hour) }
	r.triage = handler.New(ports(awstest.Clients(t, r.reqs.Option)), opts)

	data, err := os.ReadFile("../../../testdata/demo/products-gbk.csv")
	if err != nil {
		t.Fatal(err)
	}
	out, err := clients.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(res.Bucket), Key: aws.String(r.key), Body: bytesReader(data)})
	if err != nil {
		t.Fatal(err)
	}
	var ev events.S3Event
	ev.Records = append(ev.Records, events.S3EventRecord{EventName: "ObjectCreated:Put"})
	ev.Records[0].S3.Bucket.Name = res.Bucket
	ev.Records[0].S3.Object.Key = r.key
	ev.Records[0].S3.Object.ETag = strings.Trim(aws.ToString(out.ETag), `"`)
	if err := r.fns.Splitter(ctx, ev); err != nil {
		t.Fatal(err)
	}
	o := ev.Records[0].S3.Object
	r.batchID = handler.BatchID(res.Bucket, r.key, o.VersionID, o.Sequencer, o.ETag)
	msgs := drain(t, clients.SQS, res.ShardQueueURL)
	if len(msgs) != 3 {
		t.Fatalf("%d manifests, want 3", len(msgs))
	}
	r.msgs = make([]sqsMessage, 3)
	for _, m := range msgs {
		man, err := sqsqueue.Decode(aws.ToString(m.Body))
		if err != nil {
			t.Fatal(err)
		}
		r.msgs[man.Shard] = m
	}
	return r
}

// dead returns the DLQ event of shard i's manifest after 6 receives.
func (r *triageRig) dead(i int) events.SQSEvent {
	ev := eventsource.Event(r.res.DLQURL, r.msgs[i:i+1])
	ev.Records[0].Attributes["ApproximateReceiveCount"] = "6"
	return ev
}

func (r *triageRig) shard(t *testing.T, i int) state.Shard {
	t.Helper()
	shards, err := r.store.ListShards(t.Context(), r.batchID)
	if err != nil {
		t.Fatal(err)
	}
	return shards[i]
}

func (r *triageRig) decisions(t *testing.T, batchID string) []triage.Entry {
	t.Helper()
	es, err := r.log.List(t.Context(), batchID)
	if err != nil {
		t.Fatal(err)
	}
	var out []triage.Entry
	for _, e := range es {
		if e.Kind == triage.KindDecision {
			out = append(out, e)
		}
	}
	return out
}

// TestTriageSkipsChangedSource: the object changes after shard 0 was
// imported; the workers of shards 1 and 2 fail with SourceChanged and log
// it; triage skips both shards (their rows counted skipped). The last skip
// does not finalize the batch: triage (60 s, 256 MB) hands that on to a
// shard worker with a manifest on the shard queue, and makes no request to
// the products table and writes no report (decision 24); the worker that
// receives the manifest finalizes. The batch reconciles and completes with
// errors: the skipped ranges are in its status, errors.csv and report.html.
func TestTriageSkipsChangedSource(t *testing.T) {
	ctx := t.Context()
	r := newTriageRig(t, "triage-skip", triage.Policy{})
	if resp, err := r.fns.Worker(ctx, eventsource.Event(r.res.ShardQueueURL, r.msgs[:1])); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("shard 0: %+v %v", resp, err)
	}
	// Shards 1 and 2 failed SourceChanged in deliveries recorded before
	// workers suspended a batch on SourceChanged (today a worker suspends
	// it: TestOverwrittenBetweenSplitAndRead), and reached the DLQ.
	for i := 1; i <= 2; i++ {
		if err := r.log.Append(ctx, triage.Entry{BatchID: r.batchID, Shard: i, At: time.Now().UTC(), Kind: triage.KindError,
			Layer: failure.LayerInfrastructure, Reason: failure.SourceChanged, Message: "the object changed", ReceiveCount: 5}); err != nil {
			t.Fatal(err)
		}
	}
	es, err := r.log.List(ctx, r.batchID)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 || es[0].Kind != triage.KindError || es[0].Reason != failure.SourceChanged || es[0].Layer != failure.LayerInfrastructure {
		t.Fatalf("triage log after the failed deliveries: %+v", es)
	}

	r.reqs.Take()
	for i := 1; i <= 2; i++ {
		tr, err := r.triage.Triage(ctx, r.dead(i))
		if err != nil || len(tr.BatchItemFailures) != 0 {
			t.Fatalf("triage of shard %d: %+v %v, want the message dropped", i, tr, err)
		}
		if s := r.shard(t, i); s.Status != state.ShardSkipped || s.Checkpoint.Counts.Skipped != s.Rows {
			t.Fatalf("shard %d after triage: %s with %+v of %d rows", i, s.Status, s.Checkpoint.Counts, s.Rows)
		}
	}
	calls := r.reqs.Take()
	for c, n := range calls {
		if c.Resource == r.res.ProductsTable || (c.Service == "S3" && c.Operation != "GetObject" && c.Operation != "HeadObject") {
			t.Errorf("triage made %d %s %s requests on %s; finalization is a worker's", n, c.Service, c.Operation, c.Resource)
		}
	}
	if n := calls[awstest.Call{Service: "SQS", Operation: "SendMessageBatch", Resource: r.res.ShardQueueURL}] +
		calls[awstest.Call{Service: "SQS", Operation: "SendMessage", Resource: r.res.ShardQueueURL}]; n != 1 {
		t.Errorf("triage sent %d requests to the shard queue, want 1 (the finalization handed on)", n)
	}
	if b, err := r.store.GetBatch(ctx, r.batchID); err != nil || b.Status != state.BatchRunning || b.ShardsDone != 3 {
		t.Fatalf("batch after the skips: %s, %d shards done (%v); want RUNNING with all 3 done (a worker finalizes)", b.Status, b.ShardsDone, err)
	}
	handed := drain(t, r.clients.SQS, r.res.ShardQueueURL)
	if len(handed) != 1 || manifestOf(t, handed, 2).BatchID != r.batchID {
		t.Fatalf("%d messages handed on, want shard 2's manifest", len(handed))
	}
	if resp, err := r.fns.Worker(ctx, eventsource.Event(r.res.ShardQueueURL, handed)); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("worker delivery of the handed-on manifest: %+v %v", resp, err)
	}

	b, err := r.store.GetBatch(ctx, r.batchID)
	if err != nil {
		t.Fatal(err)
	}
	s1, s2 := r.shard(t, 1), r.shard(t, 2)
	if b.Status != state.BatchCompletedWithErrors || b.Counts.Skipped != s1.Rows+s2.Rows ||
		b.Counts.Total != b.Counts.Imported+b.Counts.Failed+b.Counts.Skipped || !strings.Contains(b.Message, fmt.Sprintf("%d rows skipped", s1.Rows+s2.Rows)) {
		t.Fatalf("batch after the worker finalized: %s %+v %q; want COMPLETED_WITH_ERRORS, the skipped rows counted and named", b.Status, b.Counts, b.Message)
	}
	csv := s3Text(t, r.clients, r.res.Bucket, "reports/"+r.batchID+"/errors.csv")
	html := s3Text(t, r.clients, r.res.Bucket, "reports/"+r.batchID+"/report.html")
	for _, s := range []state.Shard{s1, s2} {
		line := fmt.Sprintf("%d,ShardSkipped,infrastructure,,\"rows %d", s.FirstRow, s.FirstRow)
		if !strings.Contains(csv, line) {
			t.Errorf("errors.csv has no line for shard %d's skipped rows (%q):\n%.2000s", s.Index, line, csv)
		}
		if !strings.Contains(html, fmt.Sprintf(`data-shard="%d" data-first-row="%d" data-count="%d"`, s.Index, s.FirstRow, s.Rows)) {
			t.Errorf("report.html does not list shard %d's skipped rows", s.Index)
		}
	}
	ds := r.decisions(t, r.batchID)
	if len(ds) != 2 || ds[0].Action != triage.Skip || ds[0].Reason != failure.SourceChanged || ds[0].ReceiveCount != 6 || ds[0].MessageID == "" {
		t.Fatalf("decisions: %+v", ds)
	}
	// The message again (a duplicate delivery): nothing left to do.
	if tr, err := r.triage.Triage(ctx, r.dead(1)); err != nil || len(tr.BatchItemFailures) != 0 {
		t.Fatalf("triage again: %+v %v", tr, err)
	}
	if ds := r.decisions(t, r.batchID); len(ds) != 3 || ds[2].Action != triage.Done {
		t.Fatalf("decisions: %+v", ds)
	}
	if again := drain(t, r.clients.SQS, r.res.ShardQueueURL); len(again) != 0 {
		t.Errorf("%d messages handed on for a finished batch", len(again))
	}
	// Each decision is a TriageDecisions metric by action.
	var actions []string
	for _, l := range strings.Split(strings.TrimSpace(r.metrics.w.String()), "\n") {
		var m struct {
			Action  string
			BatchID string  `json:"batch_id"`
			N       float64 `json:"TriageDecisions"`
		}
		if err := emf.Validate([]byte(l)); err != nil || json.Unmarshal([]byte(l), &m) != nil || m.N != 1 || m.BatchID != r.batchID {
			t.Fatalf("triage metric line %s: %v", l, err)
		}
		actions = append(actions, m.Action)
	}
	if want := []string{"skip", "skip", "done"}; !slices.Equal(actions, want) {
		t.Errorf("TriageDecisions lines by action %v, want %v", actions, want)
	}
	if len(r.notices) != 0 {
		t.Errorf("notifications for skips: %+v", r.notices)
	}
}

// s3Text reads an object's text.
func s3Text(t *testing.T, c *awsclient.Clients, bucket, key string) string {
	t.Helper()
	out, err := c.S3.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestTriageEscalatesAndRetries: an AccessDenied shard is ESCALATED (batch
// RUNNING, operators notified, message kept); a Throttled shard goes back
// to the shard queue with retry_count+1; a body that is no manifest is
// escalated, logged under triage.UnknownBatch and kept.
func TestTriageEscalatesAndRetries(t *testing.T) {
	ctx := t.Context()
	r := newTriageRig(t, "triage-escalate", triage.Policy{BaseDelay: time.Second})
	if err := r.log.Append(ctx, triage.Entry{BatchID: r.batchID, Shard: 0, Kind: triage.KindError, Layer: failure.LayerInfrastructure,
		Reason: failure.AccessDenied, Message: "AccessDenied: s3 GetObject: access denied", ReceiveCount: 5}); err != nil {
		t.Fatal(err)
	}
	ev := r.dead(0)
	tr, err := r.triage.Triage(ctx, ev)
	if err != nil || len(tr.BatchItemFailures) != 1 || tr.BatchItemFailures[0].ItemIdentifier != ev.Records[0].MessageId {
		t.Fatalf("triage of an AccessDenied shard: %+v %v, want the message kept", tr, err)
	}
	if s := r.shard(t, 0); s.Status != state.ShardEscalated || !strings.Contains(s.Message, "AccessDenied") {
		t.Fatalf("shard 0: %s %q", s.Status, s.Message)
	}
	if b, err := r.store.GetBatch(ctx, r.batchID); err != nil || b.Status != state.BatchRunning {
		t.Fatalf("batch: %s %v, want RUNNING", b.Status, err)
	}
	if len(r.notices) != 1 || !strings.Contains(r.notices[0].subject, r.batchID) || !strings.Contains(r.notices[0].subject, "AccessDenied") ||
		!strings.Contains(r.notices[0].message, "importctl failures --stack triage-escalate "+r.batchID) {
		t.Fatalf("notifications: %+v", r.notices)
	}
	if len(r.notices[0].subject) > 100 {
		t.Errorf("subject of %d bytes (SNS allows 100)", len(r.notices[0].subject))
	}
	// The parked message back while the shard is still escalated: kept
	// again, without a second claim or notification.
	before := r.shard(t, 0)
	if tr, err := r.triage.Triage(ctx, ev); err != nil || len(tr.BatchItemFailures) != 1 {
		t.Fatalf("triage of the parked message: %+v %v, want it kept", tr, err)
	}
	if s := r.shard(t, 0); s.Status != state.ShardEscalated || s.Epoch != before.Epoch || len(r.notices) != 1 {
		t.Fatalf("shard 0 after the parked message came back: %s epoch %d (was %d), %d notifications", s.Status, s.Epoch, before.Epoch, len(r.notices))
	}

	// Throttled with budget left: back to the shard queue, retry_count 1.
	if err := r.log.Append(ctx, triage.Entry{BatchID: r.batchID, Shard: 1, Kind: triage.KindError, Layer: failure.LayerInfrastructure,
		Reason: failure.Throttled, Message: "Throttled: slow down"}); err != nil {
		t.Fatal(err)
	}
	if tr, err := r.triage.Triage(ctx, r.dead(1)); err != nil || len(tr.BatchItemFailures) != 0 {
		t.Fatalf("triage of a throttled shard: %+v %v, want the message dropped", tr, err)
	}
	var back []sqsMessage
	for deadline := time.Now().Add(10 * time.Second); len(back) == 0 && time.Now().Before(deadline); {
		time.Sleep(300 * time.Millisecond)
		back = drain(t, r.clients.SQS, r.res.ShardQueueURL)
	}
	if len(back) != 1 {
		t.Fatalf("%d messages back on the shard queue, want 1", len(back))
	}
	m, err := sqsqueue.Decode(aws.ToString(back[0].Body))
	if err != nil || m.Shard != 1 || m.RetryCount != 1 {
		t.Fatalf("manifest sent back: shard %d retry_count %d %v", m.Shard, m.RetryCount, err)
	}
	ds := r.decisions(t, r.batchID)
	if len(ds) != 3 || ds[0].Action != triage.Escalate || ds[1].Action != triage.Escalate || ds[2].Action != triage.Retry || ds[2].Delay != time.Second {
		t.Fatalf("decisions: %+v", ds)
	}

	// A body that is no manifest names no shard: escalated and kept.
	poison := events.SQSEvent{Records: []events.SQSMessage{{MessageId: "poison-1", ReceiptHandle: "rh", Body: "not a manifest",
		Attributes: map[string]string{"ApproximateReceiveCount": "6"}}}}
	if tr, err := r.triage.Triage(ctx, poison); err != nil || len(tr.BatchItemFailures) != 1 {
		t.Fatalf("triage of a poison message: %+v %v, want it kept", tr, err)
	}
	if ds := r.decisions(t, triage.UnknownBatch); len(ds) != 1 || ds[0].Action != triage.Escalate || ds[0].Shard != -1 || ds[0].MessageID != "poison-1" {
		t.Fatalf("decisions about the poison message: %+v", ds)
	}
	if len(r.notices) != 2 || !strings.Contains(r.notices[1].message, "poison-1") {
		t.Fatalf("notifications: %+v", r.notices)
	}
}

// testLogger logs to the test at TEST_LOG_LEVEL (default: errors only).
func testLogger(t *testing.T) *slog.Logger {
	level := slog.LevelError
	if v := os.Getenv("TEST_LOG_LEVEL"); v != "" {
		_ = level.UnmarshalText([]byte(v))
	}
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: level}))
}

// TestTriageParksAndNotifiesOnce: on moto, with the SNS notifier of
// FromClients, triage escalates a body that is no manifest and a manifest
// of a batch that does not exist (expired, say): each is published to the
// escalation topic once and parked in the DLQ (ChangeMessageVisibility:
// it is not received again). When a parked message comes back (the park
// expired), triage parks it again without publishing again.
func TestTriageParksAndNotifiesOnce(t *testing.T) {
	ctx := t.Context()
	clients := awstest.Clients(t)
	res, err := stack.Provision(ctx, clients, "triage-park", stack.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	topic, err := clients.SNS.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(awstest.Name("escalations"))})
	if err != nil {
		t.Fatal(err)
	}
	var reqs awstest.Requests
	cfg := handler.Config{Bucket: res.Bucket, StateTable: res.StateTable, ProductsTable: res.ProductsTable,
		ShardQueueURL: res.ShardQueueURL, DLQURL: res.DLQURL, EscalationTopicARN: aws.ToString(topic.TopicArn),
		Options: handler.Options{Log: testLogger(t), StackName: "triage-park"}}
	tri := handler.FromClients(awstest.Clients(t, reqs.Option), cfg)

	gone, err := sqsqueue.Encode(queue.Manifest{Version: queue.ManifestVersion, BatchID: "b-gone", Shard: 3, RuleVersion: "rv",
		Source: state.Source{URI: "s3://" + res.Bucket + "/incoming/gone.csv"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{"not a manifest", gone} {
		if _, err := clients.SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(res.DLQURL), MessageBody: aws.String(body)}); err != nil {
			t.Fatal(err)
		}
	}
	// receive takes what the DLQ shows now, leaving it visible (visibility
	// 0): only triage's park hides a message.
	receive := func() []sqsMessage {
		t.Helper()
		out, err := clients.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(res.DLQURL), MaxNumberOfMessages: 10,
			VisibilityTimeout: 0, MessageSystemAttributeNames: []sqsAttr{"All"}})
		if err != nil {
			t.Fatal(err)
		}
		return out.Messages
	}
	msgs := receive()
	if len(msgs) != 2 {
		t.Fatalf("%d messages in the DLQ, want 2", len(msgs))
	}
	for round := 1; round <= 2; round++ {
		reqs.Take()
		resp, err := tri.Triage(ctx, eventsource.Event(res.DLQURL, msgs))
		if err != nil || len(resp.BatchItemFailures) != 2 {
			t.Fatalf("round %d: triage %+v %v, want both messages kept", round, resp, err)
		}
		wantPublish := map[int]int{1: 2, 2: 0}[round]
		if n := reqs.Count("SNS", "Publish"); n != wantPublish {
			t.Errorf("round %d: %d SNS Publish requests, want %d (one per escalated message, once)", round, n, wantPublish)
		}
		if n := reqs.Count("SQS", "ChangeMessageVisibility"); n != 2 {
			t.Errorf("round %d: %d ChangeMessageVisibility requests, want 2 (each message parked)", round, n)
		}
		if left := receive(); len(left) != 0 {
			t.Fatalf("round %d: %d messages visible in the DLQ after triage, want both parked", round, len(left))
		}
		// The park expires: the messages are visible again.
		for _, m := range msgs {
			if _, err := clients.SQS.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(res.DLQURL),
				ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0}); err != nil {
				t.Fatal(err)
			}
		}
		if msgs = receive(); len(msgs) != 2 {
			t.Fatalf("round %d: %d messages back after the park, want 2", round, len(msgs))
		}
	}
	log := dynamostate.NewTriageLog(clients.DynamoDB, res.StateTable)
	for _, batch := range []string{triage.UnknownBatch, "b-gone"} {
		es, err := log.List(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != 2 || es[0].Action != triage.Escalate || es[1].Action != triage.Escalate || es[0].MessageID != es[1].MessageID {
			t.Errorf("triage log of %s: %+v, want the same message escalated twice (notified once)", batch, es)
		}
	}
}
