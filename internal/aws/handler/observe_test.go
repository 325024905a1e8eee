package handler_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/middleware"

	"github.com/catalog-import/catalog-import/internal/aws/awsclient"
	"github.com/catalog-import/catalog-import/internal/aws/awstest"
	"github.com/catalog-import/catalog-import/internal/aws/dynamostate"
	"github.com/catalog-import/catalog-import/internal/aws/emf"
	"github.com/catalog-import/catalog-import/internal/aws/eventsource"
	"github.com/catalog-import/catalog-import/internal/aws/handler"
	"github.com/catalog-import/catalog-import/internal/aws/stack"
	"github.com/catalog-import/catalog-import/internal/aws/xraytrace"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/shard"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/state"
)

// sentHeaders records the AWSTraceHeader of every SendMessageBatch entry,
// by message body. moto does not keep the attribute of a batch send, so the
// test delivers it to the worker as Lambda would.
type sentHeaders struct {
	mu     sync.Mutex
	byBody map[string]string
}

func (s *sentHeaders) add(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("sentHeaders",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			if p, ok := in.Parameters.(*sqs.SendMessageBatchInput); ok {
				s.mu.Lock()
				for _, e := range p.Entries {
					s.byBody[aws.ToString(e.MessageBody)] = aws.ToString(e.MessageSystemAttributes["AWSTraceHeader"].StringValue)
				}
				s.mu.Unlock()
			}
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
}

// daemon is a stand-in X-Ray daemon: it keeps every segment document sent
// to its UDP port.
type daemon struct {
	conn *net.UDPConn
	mu   sync.Mutex
	docs []map[string]any
}

func startDaemon(t *testing.T) *daemon {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadBuffer(8 << 20)
	d := &daemon{conn: conn}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 1<<16)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			_, doc, ok := bytes.Cut(buf[:n], []byte("\n")) // {"format": "json", "version": 1}\n{segment}
			var m map[string]any
			if ok && json.Unmarshal(doc, &m) == nil {
				d.mu.Lock()
				d.docs = append(d.docs, m)
				d.mu.Unlock()
			}
		}
	}()
	return d
}

// spans returns every segment and subsegment received (nested ones too),
// each with the trace id and parent id of the document it came in, once per
// id: the SDK may send a segment again (when it closes, and when its
// context ends), and streams subsegments of large segments on their own.
func (d *daemon) spans() []map[string]any {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []map[string]any
	seen := map[any]bool{}
	var walk func(m map[string]any, traceID, parent any)
	walk = func(m map[string]any, traceID, parent any) {
		if m["trace_id"] != nil {
			traceID = m["trace_id"]
		}
		if m["parent_id"] != nil {
			parent = m["parent_id"]
		}
		m["trace_id"], m["parent_id"] = traceID, parent
		if !seen[m["id"]] {
			seen[m["id"]] = true
			out = append(out, m)
		}
		subs, _ := m["subsegments"].([]any)
		for _, s := range subs {
			if sm, ok := s.(map[string]any); ok {
				walk(sm, traceID, m["id"])
			}
		}
	}
	for _, doc := range d.docs {
		walk(doc, nil, nil)
	}
	return out
}

// TestTraceFromUploadToFailedRow follows one upload on moto with tracing
// on (the X-Ray adapter sending to a stand-in daemon): the splitter takes
// the trace of its invocation, sends every manifest with an AWSTraceHeader
// of that trace whose parent is its "register" span; the worker, invoked in
// another trace as SQS-triggered Lambdas are, continues the manifest's
// trace (segment "shard-worker" under that parent, with claim, checkpoint,
// sink.write and finish subsegments and the DynamoDB calls under them);
// every failure record and the batch carry the trace id; the worker's log
// lines carry batch_id, shard and trace_id, with one "rows failed" line per
// failing checkpoint; and its EMF lines are valid and count every row.
func TestTraceFromUploadToFailedRow(t *testing.T) {
	ctx := context.Background()
	d := startDaemon(t)
	var logs, metrics bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&syncWriter{w: &logs}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	tracer, err := xraytrace.New(d.conn.LocalAddr().String(), log)
	if err != nil {
		t.Fatal(err)
	}
	sent := &sentHeaders{byBody: map[string]string{}}
	settings := awsclient.Settings{Region: "us-east-1", Endpoint: awstest.Endpoint(t), OneAtATime: &awstest.OneAtATime,
		APIOptions: []func(*middleware.Stack) error{sent.add}}
	tracer.Instrument(&settings.TraceOptions) // as Build instruments the clients
	clients, err := awsclient.New(ctx, settings)
	if err != nil {
		t.Fatal(err)
	}
	res, err := stack.Provision(ctx, clients, "traced", stack.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("../../../testdata/demo/products-gbk.csv")
	if err != nil {
		t.Fatal(err)
	}
	key := "incoming/traced.csv"
	put, err := clients.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(res.Bucket), Key: aws.String(key), Body: bytes.NewReader(data)})
	if err != nil {
		t.Fatal(err)
	}
	fns := handler.FromClients(clients, handler.Config{Bucket: res.Bucket, StateTable: res.StateTable, ProductsTable: res.ProductsTable,
		ShardQueueURL: res.ShardQueueURL, DLQURL: res.DLQURL, FailureTTL: 24 * time.Hour,
		Options: handler.Options{Split: split.Options{ShardRows: 400}, CheckpointEvery: 100, Log: log,
			Tracer: tracer, Metrics: emf.New(&syncWriter{w: &metrics}, "catalog-import-ShardWorker")}})

	// The splitter's invocation, as Lambda starts it: a trace header in ctx.
	const traceID = "1-6743a1c0-0123456789abcdef01234567"
	//lint:ignore SA1029 aws-lambda-go's own key for the invocation's trace header
	splitCtx := context.WithValue(ctx, "x-amzn-trace-id", "Root="+traceID+";Parent=a1b2c3d4e5f60718;Sampled=1")
	ev := s3Event(res.Bucket, key, aws.ToString(put.VersionId), aws.ToString(put.ETag))
	if err := fns.Splitter(splitCtx, ev); err != nil {
		t.Fatal(err)
	}
	msgs := drain(t, clients.SQS, res.ShardQueueURL)
	if len(msgs) < 2 {
		t.Fatalf("%d manifests, want several shards", len(msgs))
	}
	var register map[string]any
	for _, s := range d.spans() {
		if s["name"] == "register" {
			register = s
		}
	}
	if register == nil || register["trace_id"] != traceID {
		t.Fatalf("no register subsegment in trace %s: %v", traceID, d.spans())
	}
	parent := "Root=" + traceID + ";Parent=" + register["id"].(string) + ";Sampled=1"
	sqsEvent := eventsource.Event(res.ShardQueueURL, msgs)
	for i, r := range sqsEvent.Records {
		h := sent.byBody[r.Body]
		if h != parent {
			t.Fatalf("manifest %d sent with AWSTraceHeader %q, want %q (the register span)", i, h, parent)
		}
		sqsEvent.Records[i].Attributes["AWSTraceHeader"] = h // as Lambda delivers it
	}

	// The worker's invocation has a trace of its own; it continues the manifests'.
	//lint:ignore SA1029 aws-lambda-go's own key for the invocation's trace header
	workCtx := context.WithValue(ctx, "x-amzn-trace-id", "Root=1-6743a1c9-fedcba9876543210fedcba98;Parent=0718a1b2c3d4e5f6;Sampled=1")
	if resp, err := fns.Worker(workCtx, sqsEvent); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("worker: %+v %v", resp, err)
	}

	store := dynamostate.New(clients.DynamoDB, res.StateTable, dynamostate.Options{})
	o := ev.Records[0].S3.Object
	id := handler.BatchID(res.Bucket, key, o.VersionID, o.Sequencer, o.ETag)
	b, err := store.GetBatch(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if b.Status != state.BatchCompletedWithErrors || b.TraceID != traceID {
		t.Fatalf("batch %s trace %q, want COMPLETED_WITH_ERRORS in trace %s", b.Status, b.TraceID, traceID)
	}
	fails, err := store.Failures(ctx, id, state.FailureFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(fails)) != b.Counts.Failed || len(fails) == 0 {
		t.Fatalf("%d failure records, batch counts %d failed", len(fails), b.Counts.Failed)
	}
	for _, f := range fails {
		if f.TraceID != traceID {
			t.Fatalf("failure record of row %d has trace id %q, want %s", f.Row, f.TraceID, traceID)
		}
	}

	// X-Ray: one shard-worker segment per shard in the upload's trace, under
	// the register span, with the engine's subsegments and the SDK calls.
	names := map[string]int{}
	ops := map[string]int{} // DynamoDB spans by operation
	workers := 0
	for _, s := range d.spans() {
		if s["trace_id"] != traceID {
			continue
		}
		names[s["name"].(string)]++
		if a, ok := s["aws"].(map[string]any); ok && s["name"] == "DynamoDB" {
			ops[fmt.Sprint(a["operation"])]++
		}
		if s["name"] == "shard-worker" {
			workers++
			ann, _ := s["annotations"].(map[string]any)
			if s["parent_id"] != register["id"] || ann["batch_id"] != id {
				t.Errorf("shard-worker segment %v: want parent %v and annotation batch_id %s", s, register["id"], id)
			}
		}
	}
	if workers != len(msgs) {
		t.Errorf("%d shard-worker segments in trace %s for %d manifests (spans %v)", workers, traceID, len(msgs), names)
	}
	for _, n := range []string{"split", shard.SpanClaim, shard.SpanCheckpoint, shard.SpanSinkWrite, shard.SpanFinish, "DynamoDB", "S3", "SQS"} {
		if names[n] == 0 {
			t.Errorf("no %q span in trace %s (spans %v)", n, traceID, names)
		}
	}
	// The products sink's requests (a PutItem per product) have no span
	// each: the engine's sink.write span per chunk stands for them, so a
	// trace (at most 500 KB on X-Ray) is not filled with one span per row.
	if ops["PutItem"] > int(b.Counts.Imported)/10 {
		t.Errorf("%d PutItem spans for %d products imported (DynamoDB spans by operation %v): want the products' puts untraced", ops["PutItem"], b.Counts.Imported, ops)
	}

	// Logs: every worker line names the batch, shard and trace; row
	// failures come one line per failing checkpoint, not one per row.
	var failedLines, failedRows int
	sc := bufio.NewScanner(bytes.NewReader(logs.Bytes()))
	for sc.Scan() {
		var l map[string]any
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("log line %s: %v", sc.Bytes(), err)
		}
		if l["msg"] == "rows failed" || l["msg"] == "shard delivery" {
			if l["batch_id"] != id || l["shard"] == nil || l["trace_id"] != traceID {
				t.Errorf("log line without batch_id, shard and trace_id: %s", sc.Bytes())
			}
		}
		if l["msg"] == "rows failed" {
			failedLines++
			failedRows += int(l["rows_failed"].(float64))
		}
		if strings.HasPrefix(l["msg"].(string), "x-ray") && l["level"] != "DEBUG" {
			t.Errorf("X-Ray SDK noise in the logs: %s", sc.Bytes())
		}
	}
	maxCheckpoints := int(b.Counts.Total)/100 + len(msgs)
	if failedRows != int(b.Counts.Failed)-displaced(fails) || failedLines == 0 || failedLines > maxCheckpoints {
		t.Errorf("%d 'rows failed' lines counting %d rows; the batch has %d failed rows (%d displaced), at most %d checkpoints",
			failedLines, failedRows, b.Counts.Failed, displaced(fails), maxCheckpoints)
	}

	// Metrics: valid EMF; the rows imported and failed add up to the batch.
	var imported, failed float64
	sc = bufio.NewScanner(bytes.NewReader(metrics.Bytes()))
	for sc.Scan() {
		if err := emf.Validate(sc.Bytes()); err != nil {
			t.Fatalf("EMF line %s: %v", sc.Bytes(), err)
		}
		var l map[string]any
		_ = json.Unmarshal(sc.Bytes(), &l)
		if l["batch_id"] != id || l["trace_id"] != traceID {
			t.Errorf("EMF line without the batch and trace: %s", sc.Bytes())
		}
		if _, byReason := l["Reason"]; !byReason {
			imported += num(l["RowsImported"])
			failed += num(l["RowsFailed"])
		}
	}
	if int64(imported) != b.Counts.Imported+int64(displaced(fails)) || int64(failed) != b.Counts.Failed-int64(displaced(fails)) {
		t.Errorf("EMF counted %v imported and %v failed rows; batch %+v", imported, failed, b.Counts)
	}
}

// displaced counts the failure records of rows displaced by a lower row of
// the same SKU in another shard: their shard counted them imported first.
func displaced(fs []failureRecord) int {
	n := 0
	for _, f := range fs {
		if strings.Contains(f.Message, "is also on") {
			n++
		}
	}
	return n
}

type failureRecord = failure.Record

// s3Event is the ObjectCreated event of an upload.
func s3Event(bucket, key, version, etag string) events.S3Event {
	var ev events.S3Event
	ev.Records = append(ev.Records, events.S3EventRecord{EventName: "ObjectCreated:Put"})
	ev.Records[0].S3.Bucket.Name = bucket
	ev.Records[0].S3.Object.Key = key
	ev.Records[0].S3.Object.VersionID = version
	ev.Records[0].S3.Object.ETag = strings.Trim(etag, `"`)
	return ev
}

func num(v any) float64 {
	f, _ := v.(float64)
	return f
}

// syncWriter serializes writes (the worker logs from several goroutines).
type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
