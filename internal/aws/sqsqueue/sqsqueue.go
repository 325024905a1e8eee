// Package sqsqueue is the SQS adapter of the shard queue port
// (internal/queue): one standard queue, at-least-once delivery, visibility
// timeouts and per-message delays as SQS gives them.
//
// A message body is the manifest's JSON (Encode), which carries its schema
// version; Decode refuses another major version. Lambda handlers, which get
// SQS events rather than ReceiveMessage output, use FromEvent and decode
// bodies the same way.
//
// A body that is not a readable manifest is never dropped silently: Receive
// returns it, with its receipt, inside an *UnreadableError next to the
// readable messages, and FromEvent returns it with an error matching
// ErrUnreadable. Left alone it comes back after the visibility timeout and
// ends in the dead-letter queue, where triage skips it.
//
// SQS counts time in whole seconds. Delays (Send, Retry) are rounded up, so a
// message never comes back sooner than asked; so is Receive's wait, capped at
// SQS's 20 s long poll.
package sqsqueue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/catalog-import/catalog-import/internal/aws/awserr"
	"github.com/catalog-import/catalog-import/internal/queue"
)

// SQS limits.
const (
	// MaxSendDelay is the longest delay Send accepts (SQS DelaySeconds 900).
	MaxSendDelay = 15 * time.Minute
	// MaxRetryDelay is the longest delay Retry accepts (SQS visibility
	// timeout, 12 hours; SQS also caps a message's total at 12 hours from
	// its first receipt).
	MaxRetryDelay = 12 * time.Hour
	// MaxWait is the longest long poll of one Receive (WaitTimeSeconds 20).
	MaxWait = 20 * time.Second

	maxBatch      = 10        // entries per SendMessageBatch, messages per ReceiveMessage
	maxBatchBytes = 256 << 10 // payload of one SendMessageBatch (and so of one body)
)

// Retries of entries SendMessageBatch reports as failed (not the sender's
// fault): sendAttempts tries in all, waiting sendBackoff, then twice as
// long, and so on.
const (
	sendAttempts = 4
	sendBackoff  = 100 * time.Millisecond
)

// Queue is one SQS queue. It is safe for concurrent use.
type Queue struct {
	client *sqs.Client
	url    string
}

var _ queue.Queue = (*Queue)(nil)

// New returns the queue at queueURL, used through client.
func New(client *sqs.Client, queueURL string) *Queue {
	return &Queue{client: client, url: queueURL}
}

// URL returns the queue's URL.
func (q *Queue) URL() string { return q.url }

// Send enqueues manifests with SendMessageBatch, ten to a request, each
// visible after delay rounded up to whole seconds (at most MaxSendDelay).
// A manifest with a TraceID carries it as the message's AWSTraceHeader
// system attribute (see WithTraceHeader), so X-Ray links the receiving
// worker to the trace.
// Entries SQS reports as failed through no fault of the sender are sent
// again with backoff, a bounded number of times; the error then names the
// manifests not sent. Encoding errors and invalid delays send nothing, but
// a failed request may follow successful ones: sending every manifest again
// is the remedy, and safe, since delivery is at least once anyway.
func (q *Queue) Send(ctx context.Context, delay time.Duration, manifests ...queue.Manifest) error {
	if delay < 0 || delay > MaxSendDelay {
		return fmt.Errorf("sqsqueue: send: delay %v, want 0 to %v", delay, MaxSendDelay)
	}
	secs := seconds(delay)
	entries := make([]types.SendMessageBatchRequestEntry, len(manifests))
	for i, m := range manifests {
		body, err := Encode(m)
		if err != nil {
			return err
		}
		if len(body) > maxBatchBytes {
			return fmt.Errorf("sqsqueue: manifest of batch %s shard %d: %d bytes, more than SQS's %d", m.BatchID, m.Shard, len(body), maxBatchBytes)
		}
		entries[i] = types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(body), DelaySeconds: secs}
		if th := traceHeader(ctx, m.TraceID); th != "" {
			entries[i].MessageSystemAttributes = map[string]types.MessageSystemAttributeValue{
				attrTraceHeader: {DataType: aws.String("String"), StringValue: aws.String(th)},
			}
		}
	}
	for len(entries) > 0 {
		n, size := 0, 0
		for n < len(entries) && n < maxBatch && size+len(*entries[n].MessageBody) <= maxBatchBytes {
			size += len(*entries[n].MessageBody)
			n++
		}
		if err := q.sendBatch(ctx, entries[:n], manifests); err != nil {
			return err
		}
		entries = entries[n:]
	}
	return nil
}

// sendBatch sends one request's entries, retrying the failed ones.
// manifests are all of Send's, which entry ids index.
func (q *Queue) sendBatch(ctx context.Context, entries []types.SendMessageBatchRequestEntry, manifests []queue.Manifest) error {
	var final []error // entries that will not be sent
	backoff := sendBackoff
	for attempt := 1; ; attempt++ {
		out, err := q.client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: &q.url, Entries: entries})
		if err != nil {
			return awserr.Wrap(err, "SendMessageBatch "+q.url)
		}
		byID := make(map[string]types.SendMessageBatchRequestEntry, len(entries))
		for _, e := range entries {
			byID[*e.Id] = e
		}
		entries = entries[:0:0]
		for _, f := range out.Failed {
			id := aws.ToString(f.Id)
			err := entryError(f, manifests, id)
			e, ok := byID[id]
			if f.SenderFault || !ok || attempt == sendAttempts {
				final = append(final, err)
				continue
			}
			entries = append(entries, e)
		}
		if len(entries) == 0 {
			break
		}
		if err := sleep(ctx, backoff); err != nil {
			return err
		}
		backoff *= 2
	}
	if len(final) > 0 {
		return fmt.Errorf("sqsqueue: %d manifests not sent: %w", len(final), errors.Join(final...))
	}
	return nil
}

// entryError describes a failed entry of SendMessageBatch, with the reason
// awserr gives its code.
func entryError(f types.BatchResultErrorEntry, manifests []queue.Manifest, id string) error {
	what := "entry " + id
	if i, err := strconv.Atoi(id); err == nil && i >= 0 && i < len(manifests) {
		what = fmt.Sprintf("batch %s shard %d", manifests[i].BatchID, manifests[i].Shard)
	}
	cause := &smithy.GenericAPIError{Code: aws.ToString(f.Code), Message: aws.ToString(f.Message)}
	if f.SenderFault {
		cause.Fault = smithy.FaultClient
	} else {
		cause.Fault = smithy.FaultServer
	}
	return awserr.Wrap(cause, "SendMessageBatch "+what)
}

// Receive long-polls for up to wait (rounded up to whole seconds, at most
// MaxWait) and returns at most max messages (at most 10 per call, as SQS
// allows; SQS may return fewer than are available). ReceiveCount is SQS's
// ApproximateReceiveCount; a manifest without a TraceID gets the trace id
// (Root) of the message's AWSTraceHeader, if any.
//
// When some bodies are not readable manifests, Receive returns the readable
// messages together with an *UnreadableError holding the others, with their
// receipts for Ack or Retry. Those deliveries are in flight like any other:
// a caller that gives up on the error leaves every message to come back
// after the visibility timeout, and nothing is lost.
//
// A canceled ctx ends the long poll at once with ctx's error.
func (q *Queue) Receive(ctx context.Context, max int, wait time.Duration) ([]queue.Message, error) {
	if max < 1 {
		return nil, fmt.Errorf("sqsqueue: receive: max %d, want at least 1", max)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out, err := q.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:            &q.url,
		MaxNumberOfMessages: int32(min(max, maxBatch)),
		WaitTimeSeconds:     seconds(min(wait, MaxWait)),
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{
			types.MessageSystemAttributeNameApproximateReceiveCount,
			types.MessageSystemAttributeNameAWSTraceHeader,
		},
	})
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, awserr.Wrap(err, "ReceiveMessage "+q.url)
	}
	msgs := make([]queue.Message, 0, len(out.Messages))
	var bad []Unreadable
	for _, m := range out.Messages {
		body := aws.ToString(m.Body)
		msg, err := message(aws.ToString(m.MessageId), aws.ToString(m.ReceiptHandle), body, m.Attributes)
		if err != nil {
			bad = append(bad, Unreadable{Message: msg, Body: body, Err: err})
			continue
		}
		msgs = append(msgs, msg)
	}
	if len(bad) > 0 {
		return msgs, &UnreadableError{Messages: bad}
	}
	return msgs, nil
}

// Ack deletes the message m is a delivery of (DeleteMessage with its
// receipt). What a receipt of an earlier delivery does is SQS's business:
// moto deletes the message, AWS may refuse; either way the shard lease
// keeps the work from being done twice.
func (q *Queue) Ack(ctx context.Context, m queue.Message) error {
	_, err := q.client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &q.url, ReceiptHandle: &m.Receipt})
	if err != nil {
		return awserr.Wrap(err, "DeleteMessage "+m.ID)
	}
	return nil
}

// Retry makes the message m is a delivery of visible again after delay,
// rounded up to whole seconds (ChangeMessageVisibility; at most
// MaxRetryDelay).
func (q *Queue) Retry(ctx context.Context, m queue.Message, delay time.Duration) error {
	if delay < 0 || delay > MaxRetryDelay {
		return fmt.Errorf("sqsqueue: retry %s: delay %v, want 0 to %v", m.ID, delay, MaxRetryDelay)
	}
	_, err := q.client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl:          &q.url,
		ReceiptHandle:     &m.Receipt,
		VisibilityTimeout: seconds(delay),
	})
	if err != nil {
		return awserr.Wrap(err, "ChangeMessageVisibility "+m.ID)
	}
	return nil
}

// Unreadable is one delivery whose body is not a readable manifest.
type Unreadable struct {
	// Message has the delivery's ID, Receipt and ReceiveCount, for Ack or
	// Retry, and in Manifest whatever fields could be read (to name the
	// batch and shard); it must not be processed.
	Message queue.Message
	Body    string // the body as delivered
	Err     error  // why it is unreadable; matches ErrUnreadable
}

// UnreadableError is returned by Receive, next to the readable messages,
// when some delivered bodies are not readable manifests.
type UnreadableError struct {
	Messages []Unreadable
}

// Error lists the unreadable messages.
func (e *UnreadableError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sqsqueue: %d unreadable messages", len(e.Messages))
	for i, u := range e.Messages {
		sep := ", "
		if i == 0 {
			sep = ": "
		}
		b.WriteString(sep + u.Err.Error())
	}
	return b.String()
}

// Unwrap returns each message's error, so errors.Is(err, ErrUnreadable)
// holds.
func (e *UnreadableError) Unwrap() []error {
	errs := make([]error, len(e.Messages))
	for i, u := range e.Messages {
		errs[i] = u.Err
	}
	return errs
}

// seconds rounds d up to whole seconds.
func seconds(d time.Duration) int32 {
	if d <= 0 {
		return 0
	}
	return int32((d + time.Second - 1) / time.Second)
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
