package sqsqueue_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go/middleware"
	"github.com/google/go-cmp/cmp"

	"github.com/catalog-import/catalog-import/internal/aws/awstest"
	"github.com/catalog-import/catalog-import/internal/aws/sqsqueue"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/queue"
	"github.com/catalog-import/catalog-import/internal/queue/queuetest"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// newQueue creates a queue with the visibility timeout given (rounded up to
// whole seconds) and deletes it when t ends.
func newQueue(t *testing.T, visibility time.Duration) (*sqsqueue.Queue, *sqs.Client) {
	t.Helper()
	client := awstest.Clients(t).SQS
	name := awstest.Name("sqsqueue")
	secs := (visibility + time.Second - 1) / time.Second
	out, err := client.CreateQueue(t.Context(), &sqs.CreateQueueInput{
		QueueName:  &name,
		Attributes: map[string]string{"VisibilityTimeout": strconv.Itoa(int(secs))},
	})
	if err != nil {
		t.Fatalf("CreateQueue %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := client.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: out.QueueUrl}); err != nil {
			t.Errorf("DeleteQueue %s: %v", name, err)
		}
	})
	return sqsqueue.New(client, *out.QueueUrl), client
}

func TestContract(t *testing.T) {
	queuetest.Run(t, func(t *testing.T, cfg queuetest.Config) queue.Queue {
		q, _ := newQueue(t, cfg.VisibilityTimeout)
		return q
	})
}

func TestEncodeDecode(t *testing.T) {
	m := queuetest.Manifest(3)
	body, err := sqsqueue.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(body, `{"v":1,`) {
		t.Errorf("body %.40s...: want the schema version first", body)
	}
	got, err := sqsqueue.Decode(body)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}

	// A zero version is this version; another one is refused.
	m.Version = 0
	if body, err := sqsqueue.Encode(m); err != nil || !strings.HasPrefix(body, `{"v":1,`) {
		t.Errorf("Encode(version 0) = %.20s, %v; want version 1", body, err)
	}
	m.Version = 2
	if _, err := sqsqueue.Encode(m); err == nil {
		t.Error("Encode(version 2) succeeded")
	}

	// Fields a newer minor revision adds are ignored.
	extra := strings.Replace(body, `{"v":1,`, `{"v":1,"new_field":{"x":[1,2]},`, 1)
	if got, err := sqsqueue.Decode(extra); err != nil || got.Shard != 3 {
		t.Errorf("Decode with an unknown field = shard %d, %v", got.Shard, err)
	}
}

func TestDecodeRefuses(t *testing.T) {
	body, err := sqsqueue.Encode(queuetest.Manifest(4))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, body string
		wantShard  int // shard triage can still read, -1: none
		wantErr    string
	}{
		{"Empty", "", -1, "unexpected end"},
		{"NotJSON", "s3://bucket/key", -1, "invalid character"},
		{"Array", `[1,2]`, -1, "cannot unmarshal"},
		{"Trailing", body + `{}`, -1, "invalid character"},
		{"NoVersion", strings.Replace(body, `"v":1,`, ``, 1), 4, "no schema version"},
		{"NextMajor", strings.Replace(body, `"v":1,`, `"v":2,`, 1), 4, "schema version 2, this worker reads version 1"},
		{"WrongType", strings.Replace(body, `"shard":4`, `"shard":"4"`, 1), -1, "cannot unmarshal"},
		{"NoBatch", strings.Replace(body, `"batch_id":"b-01J9ZQ6V3K"`, `"batch_id":""`, 1), 4, "no batch_id"},
		{"EmptyObject", `{"v":1}`, 0, "no batch_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.body == body {
				t.Fatal("test body unchanged")
			}
			m, err := sqsqueue.Decode(tt.body)
			if !errors.Is(err, sqsqueue.ErrUnreadable) {
				t.Fatalf("Decode: %v, want ErrUnreadable", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Decode: %v, want it to say %q", err, tt.wantErr)
			}
			if tt.wantShard >= 0 && m.Shard != tt.wantShard {
				t.Errorf("partial manifest has shard %d, want %d", m.Shard, tt.wantShard)
			}
		})
	}
}

func TestFromEvent(t *testing.T) {
	want := queuetest.Manifest(5)
	body, err := sqsqueue.Encode(want)
	if err != nil {
		t.Fatal(err)
	}
	ev := events.SQSMessage{
		MessageId:     "059f36b4-87a3-44ab-83d2-661975830a7d",
		ReceiptHandle: "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
		Body:          body,
		Attributes:    map[string]string{"ApproximateReceiveCount": "3", "SentTimestamp": "1545082649183"},
	}
	m, err := sqsqueue.FromEvent(ev)
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != ev.MessageId || m.Receipt != ev.ReceiptHandle || m.ReceiveCount != 3 {
		t.Errorf("FromEvent = ID %q Receipt %q ReceiveCount %d", m.ID, m.Receipt, m.ReceiveCount)
	}
	if diff := cmp.Diff(want, m.Manifest); diff != "" {
		t.Errorf("manifest (-want +got):\n%s", diff)
	}

	// The trace id of the trace header fills a manifest without one.
	noTrace := want
	noTrace.TraceID = ""
	ev.Body, _ = sqsqueue.Encode(noTrace)
	ev.Attributes["AWSTraceHeader"] = "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"
	if m, err := sqsqueue.FromEvent(ev); err != nil || m.Manifest.TraceID != "1-5759e988-bd862e3fe1be46a994272793" {
		t.Errorf("FromEvent with AWSTraceHeader: TraceID %q, %v", m.Manifest.TraceID, err)
	}

	ev.Body = `{"v":9,"batch_id":"b-9","shard":7}`
	m, err = sqsqueue.FromEvent(ev)
	if !errors.Is(err, sqsqueue.ErrUnreadable) {
		t.Fatalf("FromEvent of a v9 body: %v, want ErrUnreadable", err)
	}
	if m.ID != ev.MessageId || m.Receipt != ev.ReceiptHandle || m.Manifest.BatchID != "b-9" || m.Manifest.Shard != 7 {
		t.Errorf("FromEvent of a v9 body = %+v; want its delivery and the batch and shard it names", m)
	}
}

// TestUnreadableBodies sends bodies that are not manifests next to good
// ones: Receive returns both, the bad ones inside an *UnreadableError with
// receipts that Ack accepts.
func TestUnreadableBodies(t *testing.T) {
	q, client := newQueue(t, 5*time.Second)
	good, err := sqsqueue.Encode(queuetest.Manifest(1))
	if err != nil {
		t.Fatal(err)
	}
	bodies := map[string]bool{good: true, "not json": false, `{"v":2,"batch_id":"b","shard":2}`: false}
	for body := range bodies {
		if _, err := client.SendMessage(t.Context(), &sqs.SendMessageInput{QueueUrl: aws.String(q.URL()), MessageBody: aws.String(body)}); err != nil {
			t.Fatal(err)
		}
	}
	var readable []queue.Message
	var unreadable []sqsqueue.Unreadable
	deadline := time.Now().Add(10 * time.Second)
	for len(readable)+len(unreadable) < len(bodies) && time.Now().Before(deadline) {
		msgs, err := q.Receive(t.Context(), 10, time.Second)
		var ue *sqsqueue.UnreadableError
		if errors.As(err, &ue) {
			if !errors.Is(err, sqsqueue.ErrUnreadable) {
				t.Errorf("UnreadableError %v does not match ErrUnreadable", err)
			}
			unreadable = append(unreadable, ue.Messages...)
		} else if err != nil {
			t.Fatal(err)
		}
		readable = append(readable, msgs...)
	}
	if len(readable) != 1 || len(unreadable) != 2 {
		t.Fatalf("received %d readable and %d unreadable messages, want 1 and 2", len(readable), len(unreadable))
	}
	if readable[0].Manifest.Shard != 1 {
		t.Errorf("readable message is shard %d, want 1", readable[0].Manifest.Shard)
	}
	for _, u := range unreadable {
		if bodies[u.Body] || !errors.Is(u.Err, sqsqueue.ErrUnreadable) || u.Message.ReceiveCount != 1 || u.Message.Receipt == "" {
			t.Errorf("unreadable %+v: want a bad body, ErrUnreadable, ReceiveCount 1 and a receipt", u)
		}
		if err := q.Ack(t.Context(), u.Message); err != nil {
			t.Errorf("Ack of an unreadable message: %v", err)
		}
	}
	if err := q.Ack(t.Context(), readable[0]); err != nil {
		t.Error(err)
	}
}

// TestSendManyWithDelay sends more than one request's worth with a delay
// that is not whole seconds: nothing shows up before it.
func TestSendManyWithDelay(t *testing.T) {
	q, _ := newQueue(t, 30*time.Second)
	const n = 23
	manifests := make([]queue.Manifest, n)
	for i := range manifests {
		manifests[i] = queuetest.Manifest(i)
	}
	start := time.Now()
	if err := q.Send(t.Context(), 1100*time.Millisecond, manifests...); err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for len(seen) < n && time.Since(start) < 15*time.Second {
		msgs, err := q.Receive(t.Context(), 25, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) > 10 {
			t.Errorf("Receive returned %d messages, more than SQS's 10", len(msgs))
		}
		if len(msgs) > 0 && time.Since(start) < 2*time.Second-200*time.Millisecond {
			t.Errorf("delay 1.1 s: a message came after %v, want 2 s (rounded up)", time.Since(start))
		}
		for _, m := range msgs {
			seen[m.Manifest.Shard] = true
		}
	}
	if len(seen) != n {
		t.Errorf("received %d of %d manifests", len(seen), n)
	}
}

func TestInvalidArguments(t *testing.T) {
	q, _ := newQueue(t, time.Second)
	ctx := t.Context()
	for _, d := range []time.Duration{-time.Second, sqsqueue.MaxSendDelay + time.Second} {
		if err := q.Send(ctx, d, queuetest.Manifest(1)); err == nil {
			t.Errorf("Send(delay %v) succeeded", d)
		}
	}
	bad := queuetest.Manifest(1)
	bad.Version = 2
	if err := q.Send(ctx, 0, queuetest.Manifest(0), bad); err == nil {
		t.Error("Send of a version 2 manifest succeeded")
	}
	huge := queuetest.Manifest(1)
	huge.Layout.Header = []string{strings.Repeat("x", 300<<10)}
	if err := q.Send(ctx, 0, huge); err == nil {
		t.Error("Send of a 300 KiB manifest succeeded")
	}
	if _, err := q.Receive(ctx, 0, 0); err == nil {
		t.Error("Receive(max 0) succeeded")
	}
	if msgs, err := q.Receive(ctx, 10, 0); err != nil || len(msgs) != 0 {
		t.Errorf("after refused Sends the queue has %d messages (%v), want none", len(msgs), err)
	}
	m := queue.Message{ID: "x", Receipt: "x"}
	for _, d := range []time.Duration{-time.Second, sqsqueue.MaxRetryDelay + time.Second} {
		if err := q.Retry(ctx, m, d); err == nil {
			t.Errorf("Retry(delay %v) succeeded", d)
		}
	}
}

func TestSendToMissingQueue(t *testing.T) {
	q, client := newQueue(t, time.Second)
	missing := sqsqueue.New(client, q.URL()+"-missing")
	err := missing.Send(t.Context(), 0, queuetest.Manifest(1))
	if err == nil {
		t.Fatal("Send to a missing queue succeeded")
	}
	if !strings.Contains(err.Error(), "SendMessageBatch") {
		t.Errorf("error %v does not name the operation", err)
	}
}

// failEntries is a middleware that takes the entry with id out of the next
// SendMessageBatch requests and reports it as failed with code, as SQS does
// when it could not store it; times < 0 means every time.
type failEntries struct {
	id, code    string
	senderFault bool
	times       int
	requests    atomic.Int32
}

func (f *failEntries) add(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("failEntries",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			params, ok := in.Parameters.(*sqs.SendMessageBatchInput)
			if !ok {
				return next.HandleInitialize(ctx, in)
			}
			n := f.requests.Add(1)
			if f.times >= 0 && int(n) > f.times {
				return next.HandleInitialize(ctx, in)
			}
			copied := *params
			copied.Entries = nil
			dropped := false
			for _, e := range params.Entries {
				if aws.ToString(e.Id) == f.id {
					dropped = true
					continue
				}
				copied.Entries = append(copied.Entries, e)
			}
			in.Parameters = &copied
			var (
				out middleware.InitializeOutput
				md  middleware.Metadata
				err error
			)
			if len(copied.Entries) > 0 {
				out, md, err = next.HandleInitialize(ctx, in)
			} else {
				out.Result = &sqs.SendMessageBatchOutput{} // SQS refuses an empty batch
			}
			if err == nil && dropped {
				res := out.Result.(*sqs.SendMessageBatchOutput)
				res.Failed = append(res.Failed, types.BatchResultErrorEntry{
					Id: aws.String(f.id), Code: aws.String(f.code), Message: aws.String("injected"), SenderFault: f.senderFault,
				})
			}
			return out, md, err
		}), middleware.After)
}

func TestSendRetriesFailedEntries(t *testing.T) {
	tests := []struct {
		name         string
		fail         *failEntries
		wantRequests int32
		wantReason   failure.Reason // "" for success
	}{
		{"FailsOnce", &failEntries{id: "1", code: "InternalError", times: 1}, 2, ""},
		{"FailsAlways", &failEntries{id: "1", code: "InternalError", times: -1}, 4, failure.ServiceUnavailable},
		{"Throttled", &failEntries{id: "1", code: "RequestThrottled", times: -1}, 4, failure.Throttled},
		{"SenderFault", &failEntries{id: "1", code: "InvalidParameterValue", senderFault: true, times: -1}, 1, failure.Internal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base, _ := newQueue(t, 30*time.Second)
			client := awstest.Clients(t, tt.fail.add).SQS
			q := sqsqueue.New(client, base.URL())
			err := q.Send(t.Context(), 0, queuetest.Manifest(0), queuetest.Manifest(1), queuetest.Manifest(2))
			if got := tt.fail.requests.Load(); got != tt.wantRequests {
				t.Errorf("%d SendMessageBatch requests, want %d", got, tt.wantRequests)
			}
			if tt.wantReason == "" {
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
			} else {
				if err == nil {
					t.Fatal("Send succeeded, want an error naming shard 1")
				}
				if !strings.Contains(err.Error(), "shard 1") || strings.Contains(err.Error(), "shard 0") {
					t.Errorf("Send: %v, want it to name shard 1 alone", err)
				}
				if r := failure.ReasonOf(err); r != tt.wantReason {
					t.Errorf("Send: reason %s, want %s", r, tt.wantReason)
				}
			}
			want := map[int]bool{0: true, 2: true}
			if tt.wantReason == "" {
				want[1] = true
			}
			got := map[int]bool{}
			deadline := time.Now().Add(5 * time.Second)
			for len(got) < len(want) && time.Now().Before(deadline) {
				msgs, err := q.Receive(t.Context(), 10, time.Second)
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range msgs {
					if got[m.Manifest.Shard] {
						t.Errorf("shard %d sent twice", m.Manifest.Shard)
					}
					got[m.Manifest.Shard] = true
				}
			}
			if msgs, err := q.Receive(t.Context(), 10, 0); err != nil || len(msgs) > 0 {
				t.Errorf("%d more messages (%v), want none", len(msgs), err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("shards received (-want +got):\n%s", diff)
			}
		})
	}
}

// captureTraceHeaders records the AWSTraceHeader of every entry of the
// SendMessageBatch requests ("" for none), by manifest shard.
type captureTraceHeaders struct {
	mu  sync.Mutex
	got map[string]string // entry id -> header
}

func (c *captureTraceHeaders) add(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("captureTraceHeaders",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			if params, ok := in.Parameters.(*sqs.SendMessageBatchInput); ok {
				c.mu.Lock()
				for _, e := range params.Entries {
					c.got[aws.ToString(e.Id)] = aws.ToString(e.MessageSystemAttributes["AWSTraceHeader"].StringValue)
				}
				c.mu.Unlock()
			}
			return next.HandleInitialize(ctx, in)
		}), middleware.After)
}

// TestSendTraceHeader: Send gives each manifest of a trace the
// AWSTraceHeader system attribute: the caller's span header when it is of
// the manifest's trace (its Parent links the worker to the sender), else
// the trace id alone; none without a valid trace id. SQS (moto) accepts
// the requests.
func TestSendTraceHeader(t *testing.T) {
	const (
		id    = "1-5759e988-bd862e3fe1be46a994272793"
		span  = "Root=" + id + ";Parent=53995c3f42cd8ad8;Sampled=1"
		other = "Root=1-67891233-abcdef012345678912345678;Parent=1234567890abcdef;Sampled=1"
	)
	tests := []struct {
		name, traceID, ctxHeader, want string
	}{
		{"span of the same trace", id, span, span},
		{"span of another trace", id, other, "Root=" + id},
		{"no span", id, "", "Root=" + id},
		{"a header as trace id", span, "", "Root=" + id},
		{"no trace id", "", span, ""},
		{"not an X-Ray trace id", "local-42", "", ""},
	}
	base, _ := newQueue(t, 30*time.Second)
	capture := &captureTraceHeaders{got: map[string]string{}}
	q := sqsqueue.New(awstest.Clients(t, capture.add).SQS, base.URL())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := queuetest.Manifest(0)
			m.TraceID = tt.traceID
			ctx := sqsqueue.WithTraceHeader(t.Context(), tt.ctxHeader)
			if err := q.Send(ctx, 0, m); err != nil {
				t.Fatalf("Send: %v", err)
			}
			capture.mu.Lock()
			got := capture.got["0"]
			capture.mu.Unlock()
			if got != tt.want {
				t.Errorf("AWSTraceHeader %q, want %q", got, tt.want)
			}
		})
	}
}

// TestTraceHeader: the header a worker continues a manifest's trace with.
func TestTraceHeader(t *testing.T) {
	const id = "1-5759e988-bd862e3fe1be46a994272793"
	delivered := "Root=" + id + ";Parent=53995c3f42cd8ad8;Sampled=1"
	tests := []struct {
		name, traceID, delivered, want string
	}{
		{"delivered header of the manifest's trace", id, delivered, delivered},
		{"delivered header, manifest without trace", "", delivered, delivered},
		{"delivered header of another trace", "1-67891233-abcdef012345678912345678", delivered, "Root=1-67891233-abcdef012345678912345678"},
		{"nothing delivered", id, "", "Root=" + id},
		{"nothing at all", "", "", ""},
		{"not an X-Ray trace id", "local-42", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sqsqueue.TraceHeader(tt.traceID, tt.delivered); got != tt.want {
				t.Errorf("TraceHeader(%q, %q) = %q, want %q", tt.traceID, tt.delivered, got, tt.want)
			}
		})
	}
}
