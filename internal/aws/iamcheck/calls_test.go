package iamcheck

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/xuri/excelize/v2"

	"github.com/catalog-import/catalog-import/internal/aws/awsclient"
	"github.com/catalog-import/catalog-import/internal/aws/awstest"
	"github.com/catalog-import/catalog-import/internal/aws/dynamostate"
	"github.com/catalog-import/catalog-import/internal/aws/eventsource"
	"github.com/catalog-import/catalog-import/internal/aws/handler"
	"github.com/catalog-import/catalog-import/internal/aws/s3store"
	"github.com/catalog-import/catalog-import/internal/aws/sqsqueue"
	"github.com/catalog-import/catalog-import/internal/aws/stack"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/pipeline/profilestest"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/state"
	"github.com/catalog-import/catalog-import/internal/triage"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// unrecorded is a grant of a role that no recorded call uses, and why the
// function needs it anyway.
type unrecorded struct {
	function, action, resource, why string
}

// notRecorded explains every grant the recorded calls do not use. An entry
// must be allowed by its function's role (so removing the grant fails the
// test), must explain a grant no recorded call uses (an entry a call now
// uses fails as stale), and every unused grant must have one.
var notRecorded = []unrecorded{
	// What Lambda does with each function's role, not our code.
	{"SplitterFunction", "logs:CreateLogStream", logGroup("splitter"), "Lambda writes the function's logs to its log group with its role"},
	{"SplitterFunction", "logs:PutLogEvents", logGroup("splitter"), "Lambda writes the function's logs to its log group with its role"},
	{"SplitterFunction", "xray:PutTraceSegments", "*", "the X-Ray daemon in the sandbox sends the segments with the function's role"},
	{"SplitterFunction", "xray:PutTelemetryRecords", "*", "the X-Ray daemon in the sandbox sends its telemetry with the function's role"},
	{"SplitterFunction", "sqs:SendMessage", failedQueue, "Lambda sends an S3 event the splitter failed on to its OnFailure destination with the function's role"},
	{"SplitterFunction", "s3:ListBucket", bucketARN, "S3 answers a GET of a missing profile with 404, not 403, only to a caller allowed to list the bucket (no ListObjects call)"},
	{"ShardWorkerFunction", "logs:CreateLogStream", logGroup("shard-worker"), "Lambda writes the function's logs to its log group with its role"},
	{"ShardWorkerFunction", "logs:PutLogEvents", logGroup("shard-worker"), "Lambda writes the function's logs to its log group with its role"},
	{"ShardWorkerFunction", "xray:PutTraceSegments", "*", "the X-Ray daemon in the sandbox sends the segments with the function's role"},
	{"ShardWorkerFunction", "xray:PutTelemetryRecords", "*", "the X-Ray daemon in the sandbox sends its telemetry with the function's role"},
	{"ShardWorkerFunction", "sqs:ReceiveMessage", shardQueue, "event source poller, not our code"},
	{"ShardWorkerFunction", "sqs:DeleteMessage", shardQueue, "event source poller (deletes what a partial batch response does not return), not our code"},
	{"ShardWorkerFunction", "sqs:GetQueueAttributes", shardQueue, "event source poller, not our code"},
	{"ShardWorkerFunction", "sqs:ChangeMessageVisibility", shardQueue, "event source poller, not our code"},
	{"ShardWorkerFunction", "sqs:SendMessage", shardQueue, "a shard stopped by the invocation's deadline is handed on as a continuation manifest (pipeline.HandOn); no invocation here runs out of time"},
	{"ShardWorkerFunction", "s3:AbortMultipartUpload", bucketARN + "/reports/b-1/errors.csv", "the upload manager aborts a multipart report upload that failed (none fails here)"},
	{"TriageFunction", "logs:CreateLogStream", logGroup("triage"), "Lambda writes the function's logs to its log group with its role"},
	{"TriageFunction", "logs:PutLogEvents", logGroup("triage"), "Lambda writes the function's logs to its log group with its role"},
	{"TriageFunction", "xray:PutTraceSegments", "*", "the X-Ray daemon in the sandbox sends the segments with the function's role"},
	{"TriageFunction", "xray:PutTelemetryRecords", "*", "the X-Ray daemon in the sandbox sends its telemetry with the function's role"},
	{"TriageFunction", "sqs:ReceiveMessage", dlq, "event source poller, not our code"},
	{"TriageFunction", "sqs:DeleteMessage", dlq, "event source poller (deletes what a partial batch response does not return), not our code"},
	{"TriageFunction", "sqs:GetQueueAttributes", dlq, "event source poller, not our code"},
	{"TriageFunction", "kms:GenerateDataKey", topicKey, "SNS encrypts a published escalation with the topic's key on the publisher's behalf (moto's topic has no key)"},
	{"TriageFunction", "kms:Decrypt", topicKey, "SNS uses the topic's key on the publisher's behalf (moto's topic has no key)"},
}

// functionsOn builds one function's handlers over clients that record into
// rec, as template.yaml configures it (the stack's resources, the
// escalation topic), cutting shards of shardRows rows.
func functionsOn(t *testing.T, rec *recorder, res stack.Resources, shardRows int64, now func() time.Time) *handler.Functions {
	t.Helper()
	return handler.FromClients(awstest.Clients(t, rec.option), handler.Config{
		Bucket: res.Bucket, StateTable: res.StateTable, ProductsTable: res.ProductsTable,
		ShardQueueURL: res.ShardQueueURL, DLQURL: res.DLQURL, EscalationTopicARN: topic, EventBusName: "default",
		Options: handler.Options{Split: split.Options{ShardRows: shardRows}, CheckpointEvery: 200, LeaseTTL: time.Minute,
			StackName: stackName, Now: now},
	})
}

// upload puts data at key and returns its ObjectCreated event.
func upload(t *testing.T, c *awsclient.Clients, bucket, key string, data []byte) events.S3Event {
	t.Helper()
	out, err := c.S3.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(data)})
	if err != nil {
		t.Fatal(err)
	}
	var ev events.S3Event
	ev.Records = append(ev.Records, events.S3EventRecord{EventName: "ObjectCreated:Put", EventTime: time.Now()})
	ev.Records[0].S3.Bucket.Name, ev.Records[0].S3.Object.Key = bucket, key
	ev.Records[0].S3.Object.VersionID = aws.ToString(out.VersionId)
	return ev
}

// feed is a CSV of n rows under the default profile; one price in every
// badEvery is not a number.
func feed(n, badEvery int) []byte {
	var b strings.Builder
	b.WriteString("商品编码,商品名称,类目,价格,库存\n")
	for i := range n {
		price := fmt.Sprintf("%d.5", i)
		if i%badEvery == badEvery/2 {
			price = "n/a"
		}
		fmt.Fprintf(&b, "R-%03d,商品 %d,家居,%s,%d\n", i, i, price, i)
	}
	return []byte(b.String())
}

// workbook is an .xlsx of two sheets of n rows under header.
func workbook(t *testing.T, header []any, n int) []byte {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	for s, name := range []string{"Sheet1", "Sheet 2"} {
		if s > 0 {
			if _, err := f.NewSheet(name); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.SetSheetRow(name, "A1", &header); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			row := []any{fmt.Sprintf("S%d-%03d", s, i), fmt.Sprintf("商品 %d", i), "家居", float64(i) + 0.5, i}
			if err := f.SetSheetRow(name, fmt.Sprintf("A%d", i+2), &row); err != nil {
				t.Fatal(err)
			}
		}
	}
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// truncateSheet returns the workbook xlsx with its second sheet's XML cut
// off after cut bytes: its header reads, its rows end in a syntax error.
func truncateSheet(t *testing.T, xlsx []byte, cut int) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(xlsx), int64(len(xlsx)))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range zr.File {
		r, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		if f.Name == "xl/worksheets/sheet2.xml" {
			data = data[:min(cut, len(data))]
		}
		w, err := zw.Create(f.Name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// receiveAll takes every visible message off the queue at url.
func receiveAll(t *testing.T, c *sqs.Client, url string) []sqstypes.Message {
	t.Helper()
	var all []sqstypes.Message
	for {
		out, err := c.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10,
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			return all
		}
		all = append(all, out.Messages...)
	}
}

// TestRecordedCallsAreAllowed runs the three functions on moto over a stack
// named as the template names it, records every request each makes
// (mapped to the IAM authorizations it needs), and checks that:
//   - the function's role in the expanded template allows each on its
//     resource (with the request's condition keys);
//   - every grant of the role that no request used is explained in
//     notRecorded, and every entry there is still allowed and still unused.
//
// The scenarios: a CSV (its event twice: a duplicate resumes), a workbook
// (staged sheets), an upload under a profile's folder, a workbook the
// default profile rejects, the workers until the queue is empty (each
// batch finalized: reports, staging removed); then triage of a batch whose
// shards reached the DLQ: an escalation (notified, parked), the parked
// message back, a retry, a skip that is not the batch's last shard, a
// message that is no manifest, and a skip of a batch's only shard (the
// finalization handed on to a worker).
func TestRecordedCallsAreAllowed(t *testing.T) {
	x := expand(t)
	ctx := t.Context()
	admin := awstest.Clients(t)
	res, err := stack.Provision(ctx, admin, stackName, stack.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	tp, err := admin.SNS.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(stackName + "-escalations")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(tp.TopicArn) != topic {
		t.Fatalf("topic %s on moto, %s in the template", aws.ToString(tp.TopicArn), topic)
	}
	rec := map[string]*recorder{"SplitterFunction": {}, "ShardWorkerFunction": {}, "TriageFunction": {}}
	splitter := functionsOn(t, rec["SplitterFunction"], res, 25, nil)
	worker := functionsOn(t, rec["ShardWorkerFunction"], res, 25, nil)
	// Triage runs after the deliveries are exhausted, leases long expired.
	triager := functionsOn(t, rec["TriageFunction"], res, 25, func() time.Time { return time.Now().Add(time.Hour) })

	// A split that crashed after its first transaction of shards: 101
	// one-row shards (two transactions, the first guarded by a check on the
	// batch item), the batch item gone again; the retried split cuts 5
	// shards and deletes the 96 stale ones.
	ev := upload(t, admin, res.Bucket, "incoming/crashed.csv", feed(101, 1000))
	if err := functionsOn(t, rec["SplitterFunction"], res, 1, nil).Splitter(ctx, ev); err != nil {
		t.Fatal(err)
	}
	crashed := handler.BatchID(res.Bucket, "incoming/crashed.csv", ev.Records[0].S3.Object.VersionID, "", "")
	if _, err := admin.DynamoDB.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(res.StateTable), Key: map[string]ddbtypes.AttributeValue{
		"pk": &ddbtypes.AttributeValueMemberS{Value: "BATCH#" + crashed}, "sk": &ddbtypes.AttributeValueMemberS{Value: "#BATCH"}}}); err != nil {
		t.Fatal(err)
	}
	if n := len(receiveAll(t, admin.SQS, res.ShardQueueURL)); n != 101 {
		t.Fatalf("%d manifests of the crashed split, want 101", n)
	}
	if err := splitter.Splitter(ctx, ev); err != nil {
		t.Fatal(err)
	}

	if _, _, err := s3store.NewProfiles(admin.S3, res.Bucket).Put(ctx, "stock", []byte(profilestest.Stock)); err != nil {
		t.Fatal(err)
	}
	header := []any{"商品编码", "商品名称", "类目", "价格", "库存"}
	for _, u := range []struct {
		key      string
		data     []byte
		twice    bool
		mayFail  bool // the split may fail (Lambda would retry it) or reject the upload
		splitter *handler.Functions
	}{
		{key: "incoming/products.csv", data: feed(60, 9), twice: true},
		{key: "incoming/products.xlsx", data: workbook(t, header, 30)},
		{key: "incoming/stock/feed.csv", data: []byte("sku,stock\nA-1,5\nA-2,-3\nA-3,x\nA-4,7\n")},
		{key: "incoming/wrong-header.xlsx", data: workbook(t, []any{"sku", "stock"}, 3)},
		// A sheet that breaks after the first sheet was staged: the
		// staging is removed.
		{key: "incoming/broken.xlsx", data: truncateSheet(t, workbook(t, header, 60), 1500), mayFail: true},
		// One shard, 150 failed rows in one checkpoint: more failure
		// records than its transaction holds.
		{key: "incoming/failures.csv", data: feed(150, 1), splitter: functionsOn(t, rec["SplitterFunction"], res, 1000, nil)},
	} {
		ev := upload(t, admin, res.Bucket, u.key, u.data)
		n, sp := 1, u.splitter
		if u.twice {
			n = 2
		}
		if sp == nil {
			sp = splitter
		}
		for range n {
			if err := sp.Splitter(ctx, ev); err != nil && !u.mayFail {
				t.Fatalf("splitter on %s: %v", u.key, err)
			}
		}
	}
	for msgs := receiveAll(t, admin.SQS, res.ShardQueueURL); len(msgs) > 0; msgs = receiveAll(t, admin.SQS, res.ShardQueueURL) {
		resp, err := worker.Worker(ctx, eventsource.Event(res.ShardQueueURL, msgs))
		if err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("worker: %+v %v", resp, err)
		}
	}
	store := dynamostate.New(admin.DynamoDB, res.StateTable, dynamostate.Options{})
	batches, err := store.ListBatches(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range batches {
		if !b.Status.Finished() {
			t.Errorf("batch %s (%s) not finished: %s", b.ID, b.Source.URI, b.Status)
		}
		if b.ID == crashed && (b.Shards != 5 || b.Counts.Total != 101) {
			t.Errorf("the crashed split's batch after the retry: %d shards, %d rows, want 5 and 101", b.Shards, b.Counts.Total)
		}
	}

	// Triage: a batch of three shards whose manifests reached the DLQ.
	ev = upload(t, admin, res.Bucket, "incoming/triage.csv", feed(60, 9))
	if err := splitter.Splitter(ctx, ev); err != nil {
		t.Fatal(err)
	}
	id := handler.BatchID(res.Bucket, "incoming/triage.csv", ev.Records[0].S3.Object.VersionID, "", "")
	bodies := []string{"not a manifest"}
	for _, m := range receiveAll(t, admin.SQS, res.ShardQueueURL) {
		bodies = append(bodies, aws.ToString(m.Body))
	}
	if len(bodies) != 4 {
		t.Fatalf("%d manifests of the triage batch, want 3", len(bodies)-1)
	}
	for _, b := range bodies {
		if _, err := admin.SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(res.DLQURL), MessageBody: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	dead := map[int]events.SQSEvent{} // by shard; -1: the message that is no manifest
	for _, m := range receiveAll(t, admin.SQS, res.DLQURL) {
		e := eventsource.Event(res.DLQURL, []sqstypes.Message{m})
		e.Records[0].Attributes["ApproximateReceiveCount"] = "6"
		shard := -1
		if strings.Contains(aws.ToString(m.Body), `"shard"`) {
			msg, err := sqsqueue.FromEvent(e.Records[0])
			if err != nil {
				t.Fatal(err)
			}
			shard = msg.Manifest.Shard
		}
		dead[shard] = e
	}
	log := store.TriageLog()
	for shard, reason := range map[int]failure.Reason{0: failure.AccessDenied, 1: failure.Throttled, 2: failure.SourceChanged} {
		if err := log.Append(ctx, triage.Entry{BatchID: id, Shard: shard, At: time.Now().UTC(), Kind: triage.KindError,
			Layer: failure.LayerInfrastructure, Reason: reason, Message: string(reason), ReceiveCount: 5}); err != nil {
			t.Fatal(err)
		}
	}
	for _, step := range []struct {
		name  string
		shard int
		kept  bool
	}{
		{"escalate (notify, park)", 0, true},
		{"the parked message back (park again)", 0, true},
		{"retry", 1, false},
		{"skip a shard that is not the batch's last", 2, false},
		{"a message that is no manifest (escalate, park)", -1, true},
	} {
		resp, err := triager.Triage(ctx, dead[step.shard])
		if err != nil || (len(resp.BatchItemFailures) == 1) != step.kept {
			t.Fatalf("triage: %s: %+v %v, want the message kept: %v", step.name, resp, err, step.kept)
		}
	}
	shards, err := store.ListShards(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got := []state.ShardStatus{shards[0].Status, shards[2].Status}; !slices.Equal(got, []state.ShardStatus{state.ShardEscalated, state.ShardSkipped}) {
		t.Fatalf("shards 0 and 2 after triage: %v, want escalated and skipped", got)
	}

	// A skip of a batch's only shard: triage hands the finalization on to
	// a worker (decision 24), which finalizes the batch.
	ev = upload(t, admin, res.Bucket, "incoming/last-skip.csv", feed(10, 3))
	if err := splitter.Splitter(ctx, ev); err != nil {
		t.Fatal(err)
	}
	last := handler.BatchID(res.Bucket, "incoming/last-skip.csv", ev.Records[0].S3.Object.VersionID, "", "")
	msgs := receiveAll(t, admin.SQS, res.ShardQueueURL)
	if len(msgs) != 1 {
		t.Fatalf("%d manifests of a 10-row upload, want 1", len(msgs))
	}
	if _, err := admin.SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(res.DLQURL), MessageBody: msgs[0].Body}); err != nil {
		t.Fatal(err)
	}
	if err := log.Append(ctx, triage.Entry{BatchID: last, Shard: 0, At: time.Now().UTC(), Kind: triage.KindError,
		Layer: failure.LayerInfrastructure, Reason: failure.SourceChanged, Message: "source changed", ReceiveCount: 5}); err != nil {
		t.Fatal(err)
	}
	for _, m := range receiveAll(t, admin.SQS, res.DLQURL) {
		e := eventsource.Event(res.DLQURL, []sqstypes.Message{m})
		e.Records[0].Attributes["ApproximateReceiveCount"] = "6"
		if resp, err := triager.Triage(ctx, e); err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("triage: skip the last shard: %+v %v", resp, err)
		}
	}
	handed := receiveAll(t, admin.SQS, res.ShardQueueURL)
	if len(handed) != 1 {
		t.Fatalf("%d messages handed on by triage's last skip, want 1", len(handed))
	}
	if resp, err := worker.Worker(ctx, eventsource.Event(res.ShardQueueURL, handed)); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("worker on the handed-on manifest: %+v %v", resp, err)
	}
	if b, err := store.GetBatch(ctx, last); err != nil || !b.Status.Finished() {
		t.Fatalf("batch after the handed-on finalization: %s %v, want finished", b.Status, err)
	}

	for _, fn := range []string{"SplitterFunction", "ShardWorkerFunction", "TriageFunction"} {
		t.Run(fn, func(t *testing.T) { checkRole(t, fn, x.Roles[fn], rec[fn]) })
	}
}

// grant is one action on one resource pattern of a role's statement.
type grant struct {
	st               statement
	action, resource string
}

// checkRole checks one function's recorded accesses against its role, and
// the role's unused grants against notRecorded.
func checkRole(t *testing.T, fn string, r role, rec *recorder) {
	accesses := rec.all()
	if len(accesses) == 0 {
		t.Fatalf("%s made no AWS call", fn)
	}
	for op := range rec.unknown {
		t.Errorf("%s calls %s, which accessesOf does not map to IAM actions: add it there", fn, op)
	}
	for _, a := range accesses {
		t.Logf("%-34s %-28s %s %v", a.Op, a.Action, a.Resource, a.ctx())
		if !r.allows(a.Action, a.Resource, a.ctx()) {
			t.Errorf("%s's %s needs %s on %s (condition keys %v): its role does not allow it", fn, a.Op, a.Action, a.Resource, a.ctx())
		}
	}
	used := func(g grant) bool {
		return slices.ContainsFunc(accesses, func(a access) bool {
			return match(g.action, a.Action) && match(g.resource, a.Resource) && g.st.holds(a.ctx())
		})
	}
	explains := func(e unrecorded, g grant) bool {
		return e.function == fn && match(g.action, e.action) && match(g.resource, e.resource)
	}
	var mine []unrecorded
	for _, e := range notRecorded {
		if e.function == fn {
			mine = append(mine, e)
		}
	}
	explained := map[int]bool{}
	for _, st := range r.Statements {
		for _, action := range st.Actions {
			for _, resource := range st.Resources {
				g := grant{st, action, resource}
				if used(g) {
					continue
				}
				i := slices.IndexFunc(mine, func(e unrecorded) bool { return explains(e, g) })
				if i < 0 {
					t.Errorf("%s's statement %s allows %s on %s, which no recorded call uses and notRecorded does not explain: remove the grant, or explain it",
						fn, st.Sid, action, resource)
					continue
				}
				for j, e := range mine {
					if explains(e, g) {
						explained[j] = true
					}
				}
			}
		}
	}
	for i, e := range mine {
		switch {
		case !r.allows(e.action, e.resource, nil):
			t.Errorf("%s's role does not allow %s on %s, which it needs: %s", fn, e.action, e.resource, e.why)
		case !explained[i]:
			t.Errorf("notRecorded explains %s's %s on %s (%s), but a recorded call uses that grant now: remove the entry",
				fn, e.action, e.resource, e.why)
		}
	}
	t.Logf("%s: %d accesses recorded, %d grants explained", fn, len(accesses), len(explained))
}
