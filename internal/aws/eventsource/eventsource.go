// Package eventsource plays Lambda's event sources against an AWS API
// endpoint, so the real handlers run locally (importctl dev): the bucket's
// ObjectCreated notifications (delivered to an upload queue) invoke the
// splitter; the shard queue invokes the worker in batches of BatchSize,
// at most MaxConcurrency at a time, each under the worker's timeout,
// deleting only the messages the partial batch response does not return;
// the DLQ invokes triage. Messages a handler returns stay invisible for the
// queue's visibility timeout and come back with a higher receive count, and
// the queue's redrive policy moves them to the DLQ: the same at-least-once
// life as on AWS.
package eventsource

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/catalog-import/catalog-import/internal/aws/awserr"
)

// Handlers are the functions the event sources invoke.
type Handlers interface {
	Splitter(ctx context.Context, ev events.S3Event) error
	Worker(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error)
	Triage(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error)
}

// Config is one run of the event sources.
type Config struct {
	SQS            *sqs.Client
	UploadQueueURL string // S3 ObjectCreated notifications
	ShardQueueURL  string
	DLQURL         string
	BatchSize      int           // shard messages per worker invocation (default 1)
	MaxConcurrency int           // concurrent worker invocations (default 2)
	WorkerTimeout  time.Duration // each worker invocation's deadline (default 5m)
	// ShortPoll: receive without waiting and pause between empty polls, for
	// clients that send one request at a time (awsclient.Settings.OneAtATime),
	// where a long poll would hold up every other request.
	ShortPoll    bool
	SplitTimeout time.Duration // each splitter invocation's deadline (default 15m)
	// UntilIdle: return once no message is waiting or in flight on the upload
	// and shard queues, none waits for triage in the DLQ, and no invocation
	// runs (DLQ messages triage parked for redrive are not work).
	UntilIdle bool
	Log       *slog.Logger
	// Concurrency, when set, is asked every ConcurrencyEvery (default 2s)
	// for the worker cap, as Lambda's event source reads its mapping's
	// MaximumConcurrency (and the function's reserve): the shard queue's
	// pollers follow it (importctl scale), starting more, or ending the ones
	// over the cap once their invocation returns. An error or a value < 1
	// keeps the current cap.
	Concurrency      func(context.Context) (int, error)
	ConcurrencyEvery time.Duration
	// FailedUploadsURL, when set, receives an invocation record (Lambda's
	// OnFailure destination format: requestContext, requestPayload = the
	// S3 event) for each upload event the splitter failed on three times,
	// as Lambda's asynchronous invocation sends it to the splitter's
	// OnFailure queue (importctl redrive --uploads reads it).
	FailedUploadsURL string
}

func (c Config) withDefaults() Config {
	if c.BatchSize <= 0 {
		c.BatchSize = 1
	}
	if c.MaxConcurrency <= 0 {
		c.MaxConcurrency = 2
	}
	if c.WorkerTimeout <= 0 {
		c.WorkerTimeout = 5 * time.Minute
	}
	if c.SplitTimeout <= 0 {
		c.SplitTimeout = 15 * time.Minute
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.ConcurrencyEvery <= 0 {
		c.ConcurrencyEvery = 2 * time.Second
	}
	return c
}

// pollers are the shard queue's pollers, one per allowed concurrent worker
// invocation, by index.
type pollers struct {
	mu     sync.Mutex
	want   int
	active map[int]bool
}

// keep reports whether poller i may take another batch; a poller over the
// cap is marked gone and must return.
func (p *pollers) keep(i int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if i >= p.want {
		delete(p.active, i)
		return false
	}
	return true
}

// set changes the cap to n and starts, with start, the pollers under it
// that are not running.
func (p *pollers) set(n int, start func(i int)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.want = n
	for i := range n {
		if !p.active[i] {
			p.active[i] = true
			start(i)
		}
	}
}

func (p *pollers) cap() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.want
}

// Run polls the queues and invokes h until ctx ends (nil error), or, with
// UntilIdle, until there is no work left.
func Run(ctx context.Context, cfg Config, h Handlers) error {
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var running atomic.Int64
	var wg sync.WaitGroup
	// loop polls url until ctx ends or keep says stop.
	loop := func(name, url string, max int, keep func() bool, invoke func(context.Context, []sqstypes.Message)) {
		for ctx.Err() == nil && keep() {
			msgs, err := receive(ctx, cfg.SQS, url, max, !cfg.ShortPoll)
			if err != nil {
				if ctx.Err() == nil {
					cfg.Log.Warn("receive failed", "queue", name, "error", err)
					sleep(ctx, time.Second)
				}
				continue
			}
			if len(msgs) > 0 {
				running.Add(1)
				invoke(ctx, msgs)
				running.Add(-1)
			} else if cfg.ShortPoll {
				sleep(ctx, 200*time.Millisecond)
			}
		}
	}
	always := func() bool { return true }
	wg.Go(func() {
		loop("uploads", cfg.UploadQueueURL, 1, always, func(ctx context.Context, ms []sqstypes.Message) { split(ctx, cfg, h, ms[0]) })
	})
	shards := &pollers{active: map[int]bool{}}
	startShard := func(i int) {
		wg.Go(func() {
			loop("shards", cfg.ShardQueueURL, cfg.BatchSize, func() bool { return shards.keep(i) }, func(ctx context.Context, ms []sqstypes.Message) {
				invokeSQS(ctx, cfg, cfg.ShardQueueURL, cfg.WorkerTimeout, h.Worker, ms)
			})
		})
	}
	shards.set(cfg.MaxConcurrency, startShard)
	if cfg.Concurrency != nil {
		wg.Go(func() {
			for ctx.Err() == nil {
				sleep(ctx, cfg.ConcurrencyEvery)
				n, err := cfg.Concurrency(ctx)
				if err != nil {
					if ctx.Err() == nil {
						cfg.Log.Warn("worker cap unknown; keeping the current one", "error", err)
					}
					continue
				}
				if was := shards.cap(); n >= 1 && n != was {
					cfg.Log.Info("worker cap changed", "max_concurrency", n, "was", was)
					shards.set(n, startShard)
				}
			}
		})
	}
	if cfg.DLQURL != "" {
		wg.Go(func() {
			loop("dlq", cfg.DLQURL, 1, always, func(ctx context.Context, ms []sqstypes.Message) {
				invokeSQS(ctx, cfg, cfg.DLQURL, time.Minute, h.Triage, ms)
			})
		})
	}
	if cfg.UntilIdle {
		wg.Go(func() {
			quiet := 0
			for ctx.Err() == nil {
				sleep(ctx, 500*time.Millisecond)
				busy, err := pending(ctx, cfg.SQS, cfg.UploadQueueURL, cfg.ShardQueueURL)
				if err == nil && cfg.DLQURL != "" {
					var fresh int
					fresh, err = visible(ctx, cfg.SQS, cfg.DLQURL)
					busy += fresh
				}
				if err != nil {
					if ctx.Err() == nil {
						cfg.Log.Warn("queue depth unknown", "error", err)
					}
					continue
				}
				cfg.Log.Debug("queues", "messages", busy, "invocations", running.Load())
				if busy == 0 && running.Load() == 0 {
					quiet++
				} else {
					quiet = 0
				}
				if quiet >= 3 {
					cancel(errIdle)
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, errIdle) && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

var errIdle = errors.New("idle")

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func receive(ctx context.Context, c *sqs.Client, url string, max int, long bool) ([]sqstypes.Message, error) {
	wait := int32(0)
	if long {
		wait = 1
	}
	out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(url), MaxNumberOfMessages: int32(min(max, 10)), WaitTimeSeconds: wait,
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
	})
	if err != nil {
		return nil, awserr.Wrap(err, "receive from "+url)
	}
	return out.Messages, nil
}

// pending counts the messages waiting or in flight on the queues.
func pending(ctx context.Context, c *sqs.Client, urls ...string) (int, error) {
	total := 0
	for _, u := range urls {
		out, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(u), AttributeNames: []sqstypes.QueueAttributeName{
			sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed}})
		if err != nil {
			return 0, err
		}
		for _, v := range out.Attributes {
			n, _ := strconv.Atoi(v)
			total += n
		}
	}
	return total, nil
}

// visible is the number of messages waiting in the queue (in the DLQ: not
// yet triaged; parked ones are invisible).
func visible(ctx context.Context, c *sqs.Client, url string) (int, error) {
	out, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages}})
	if err != nil {
		return 0, err
	}
	n, _ := strconv.Atoi(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessages)])
	return n, nil
}

// split invokes the splitter with the S3 event a notification carries, as
// Lambda's asynchronous invocation does: retried twice, then dropped with
// an error log.
func split(ctx context.Context, cfg Config, h Handlers, m sqstypes.Message) {
	body := aws.ToString(m.Body)
	var probe struct {
		Event string `json:"Event"`
	}
	var ev events.S3Event
	if err := json.Unmarshal([]byte(body), &probe); err == nil && probe.Event == "s3:TestEvent" {
		del(ctx, cfg, cfg.UploadQueueURL, m)
		return
	}
	if err := json.Unmarshal([]byte(fixEventTimes(body)), &ev); err != nil || len(ev.Records) == 0 {
		cfg.Log.Error("upload notification is not an S3 event; dropped", "body", body, "error", err)
		del(ctx, cfg, cfg.UploadQueueURL, m)
		return
	}
	ictx, cancel := context.WithTimeout(invocation(ctx, "splitter"), cfg.SplitTimeout)
	err := h.Splitter(ictx, ev)
	cancel()
	if err == nil || receiveCount(m) >= 3 {
		if err != nil {
			failed(ctx, cfg, ictx, json.RawMessage(fixEventTimes(body)), receiveCount(m), err)
		}
		del(ctx, cfg, cfg.UploadQueueURL, m)
		return
	}
	_, _ = cfg.SQS.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(cfg.UploadQueueURL),
		ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 1})
}

// failed hands an upload event the splitter failed on for the last time
// to the OnFailure queue, as Lambda does (or drops it with an error log,
// as Lambda does without a destination).
func failed(ctx context.Context, cfg Config, ictx context.Context, event json.RawMessage, invokes int, cause error) {
	if cfg.FailedUploadsURL == "" {
		cfg.Log.Error("splitter failed 3 times; event dropped as Lambda drops an async event", "error", cause)
		return
	}
	lc, _ := lambdacontext.FromContext(ictx)
	rec := NewFailureRecord(lc.AwsRequestID, "arn:aws:lambda:us-east-1:123456789012:function:splitter", invokes, event, cause)
	body, err := json.Marshal(rec)
	if err == nil {
		_, err = cfg.SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(cfg.FailedUploadsURL), MessageBody: aws.String(string(body))})
	}
	if err != nil {
		cfg.Log.Error("splitter failed 3 times; its event could not reach the OnFailure queue and is dropped", "error", cause, "send_error", err)
		return
	}
	cfg.Log.Error("splitter failed 3 times; event sent to the OnFailure queue (importctl redrive --uploads)", "error", cause)
}

// invocation is ctx as Lambda gives it to one invocation: with a
// lambdacontext.LambdaContext of a new request id.
func invocation(ctx context.Context, function string) context.Context {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80 // a version 4 UUID, as Lambda's request ids are
	id := fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
	return lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{AwsRequestID: id,
		InvokedFunctionArn: "arn:aws:lambda:us-east-1:123456789012:function:" + function})
}

// invokeSQS invokes fn with the messages as an SQS event under timeout and
// deletes every message the response does not name as failed.
func invokeSQS(ctx context.Context, cfg Config, url string, timeout time.Duration,
	fn func(context.Context, events.SQSEvent) (events.SQSEventResponse, error), ms []sqstypes.Message) {
	ev := Event(url, ms)
	ictx, cancel := context.WithTimeout(invocation(ctx, "function"), timeout)
	resp, err := fn(ictx, ev)
	cancel()
	if ctx.Err() != nil {
		return // stopping: leave the messages to their visibility timeout
	}
	if err != nil { // the whole batch returns
		cfg.Log.Error("invocation failed", "queue", url, "messages", len(ms), "error", err)
		return
	}
	failed := map[string]bool{}
	for _, f := range resp.BatchItemFailures {
		failed[f.ItemIdentifier] = true
	}
	for _, m := range ms {
		if !failed[aws.ToString(m.MessageId)] {
			del(ctx, cfg, url, m)
		}
	}
}

// Event builds the SQS event Lambda would deliver for ms.
func Event(queueURL string, ms []sqstypes.Message) events.SQSEvent {
	var ev events.SQSEvent
	for _, m := range ms {
		attrs := map[string]string{}
		for k, v := range m.Attributes {
			attrs[k] = v
		}
		ev.Records = append(ev.Records, events.SQSMessage{
			MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle), Body: aws.ToString(m.Body),
			Md5OfBody: aws.ToString(m.MD5OfBody), Attributes: attrs, EventSource: "aws:sqs", EventSourceARN: queueURL,
		})
	}
	return ev
}

func receiveCount(m sqstypes.Message) int {
	n, _ := strconv.Atoi(m.Attributes[string(sqstypes.MessageSystemAttributeNameApproximateReceiveCount)])
	return n
}

func del(ctx context.Context, cfg Config, url string, m sqstypes.Message) {
	if _, err := cfg.SQS.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil && ctx.Err() == nil {
		cfg.Log.Warn("delete failed", "queue", url, "error", fmt.Sprint(err))
	}
}

// eventTimeNoZone matches an S3 event's eventTime without a time zone, as
// moto writes it ("2026-11-24T14:24:02.215104"); S3 writes UTC with a Z.
var eventTimeNoZone = regexp.MustCompile(`("eventTime"\s*:\s*"\d{4}-\d\d-\d\dT[0-9:.]+)"`)

// fixEventTimes marks zone-less event times as UTC so they decode.
func fixEventTimes(body string) string { return eventTimeNoZone.ReplaceAllString(body, `${1}Z"`) }
