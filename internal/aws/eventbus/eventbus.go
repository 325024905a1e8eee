// Package eventbus publishes the pipeline's "batch finished" events to an
// Amazon EventBridge event bus (PutEvents): source catalog-import,
// detail-type "Batch Finished", the detail pipeline.BatchEvent's JSON
// (docs/events.md). A rule on the bus routes them to a shop's consumers
// (a search indexer's queue, a Lambda function, Step Functions).
package eventbus

import (
	"context"
	"encoding/json"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/catalog-import/catalog-import/internal/aws/awserr"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/pipeline"
)

// The event's source and detail-type, what a rule's event pattern matches.
const (
	Source     = "catalog-import"
	DetailType = "Batch Finished"
)

// attempts bounds the tries of an entry EventBridge refuses with a
// transient error code (PutEvents answers 200 and reports the entry failed;
// the SDK retries only whole requests).
const attempts = 3

// Bus is an event bus as a pipeline.Publisher.
type Bus struct {
	client *eventbridge.Client
	name   string
	retry  time.Duration
}

var _ pipeline.Publisher = (*Bus)(nil)

// New returns the bus named name (or its ARN; "default" is the account's
// default bus).
func New(client *eventbridge.Client, name string) *Bus {
	return &Bus{client: client, name: name, retry: 200 * time.Millisecond}
}

// BatchFinished puts the event on the bus.
func (b *Bus) BatchFinished(ctx context.Context, e pipeline.BatchEvent) error {
	detail, err := json.Marshal(e)
	if err != nil {
		return failure.Wrap(failure.Internal, "", err, "batch event: "+err.Error())
	}
	entry := types.PutEventsRequestEntry{
		EventBusName: aws.String(b.name), Source: aws.String(Source), DetailType: aws.String(DetailType),
		Detail: aws.String(string(detail)),
	}
	if !e.FinishedAt.IsZero() {
		entry.Time = aws.Time(e.FinishedAt)
	}
	for attempt := 1; ; attempt++ {
		out, err := b.client.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []types.PutEventsRequestEntry{entry}})
		if err != nil {
			return awserr.Wrap(err, "PutEvents to "+b.name)
		}
		if out.FailedEntryCount == 0 {
			return nil
		}
		code, msg := "", ""
		if len(out.Entries) > 0 {
			code, msg = aws.ToString(out.Entries[0].ErrorCode), aws.ToString(out.Entries[0].ErrorMessage)
		}
		if attempt >= attempts || !transient(code) {
			return failure.New(reasonOf(code), "", "PutEvents to %s: the event of batch %s was refused: %s %s", b.name, e.BatchID, code, msg)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt) * b.retry):
		}
	}
}

// transient reports whether an entry's error code is worth another try.
func transient(code string) bool {
	switch code {
	case "ThrottlingException", "InternalFailure", "InternalException", "ServiceUnavailable":
		return true
	}
	return false
}

func reasonOf(code string) failure.Reason {
	switch code {
	case "ThrottlingException":
		return failure.Throttled
	case "AccessDeniedException", "NotAuthorized":
		return failure.AccessDenied
	case "InternalFailure", "InternalException", "ServiceUnavailable":
		return failure.ServiceUnavailable
	}
	return failure.Internal
}
