package sqsqueue

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/aws/aws-lambda-go/events"

	"github.com/catalog-import/catalog-import/internal/queue"
)

// ErrUnreadable matches (errors.Is) every error about a message body that is
// not a manifest this version can process: not JSON, not a manifest, another
// major schema version, or no batch or source. Triage skips such messages.
var ErrUnreadable = errors.New("unreadable manifest")

// Encode returns the message body of m: its JSON, which carries the schema
// version in "v". A zero Version is taken as queue.ManifestVersion; another
// version is refused, since no worker of this version would read it.
func Encode(m queue.Manifest) (string, error) {
	if m.Version == 0 {
		m.Version = queue.ManifestVersion
	}
	if m.Version != queue.ManifestVersion {
		return "", fmt.Errorf("sqsqueue: encode manifest of batch %s shard %d: schema version %d, this build writes version %d",
			m.BatchID, m.Shard, m.Version, queue.ManifestVersion)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("sqsqueue: encode manifest of batch %s shard %d: %w", m.BatchID, m.Shard, err)
	}
	return string(b), nil
}

// Decode reads a message body written by Encode. Unknown fields are ignored
// (a newer minor revision of the same version adds fields), but a body that
// is not one JSON object of the manifest's shape, has another schema version
// (or none), or names no batch or source fails with an error matching
// ErrUnreadable. On such an error the returned manifest holds whatever
// fields could be read, so triage can name the batch and shard; it must not
// be processed.
func Decode(body string) (queue.Manifest, error) {
	var m queue.Manifest
	err := json.Unmarshal([]byte(body), &m)
	var typeErr *json.UnmarshalTypeError
	switch {
	case err != nil && (!errors.As(err, &typeErr) || typeErr.Field == ""):
		// Not JSON, or not an object: nothing partial is worth keeping.
		return queue.Manifest{}, fmt.Errorf("%w: %v", ErrUnreadable, err)
	case m.Version == 0:
		return m, fmt.Errorf("%w: no schema version (\"v\")", ErrUnreadable)
	case m.Version != queue.ManifestVersion:
		return m, fmt.Errorf("%w: schema version %d, this worker reads version %d", ErrUnreadable, m.Version, queue.ManifestVersion)
	case err != nil:
		return m, fmt.Errorf("%w: %v", ErrUnreadable, err)
	case m.BatchID == "" || m.Source.URI == "":
		return m, fmt.Errorf("%w: no batch_id or source uri", ErrUnreadable)
	}
	return m, nil
}

// FromEvent turns one record of a Lambda SQS event into a Message, decoding
// its body as Receive does: ReceiveCount comes from the
// ApproximateReceiveCount attribute (0 when absent), and the trace id (Root)
// of an AWSTraceHeader attribute fills a manifest without a TraceID. A body that is not a readable
// manifest returns the Message (with what could be read) and an error
// matching ErrUnreadable.
func FromEvent(m events.SQSMessage) (queue.Message, error) {
	return message(m.MessageId, m.ReceiptHandle, m.Body, m.Attributes)
}

// Names of the message system attributes Receive asks for.
const (
	attrReceiveCount = "ApproximateReceiveCount"
	attrTraceHeader  = "AWSTraceHeader"
)

// message builds the Message of one delivery.
func message(id, receipt, body string, attrs map[string]string) (queue.Message, error) {
	count, _ := strconv.Atoi(attrs[attrReceiveCount])
	m, err := Decode(body)
	if m.TraceID == "" {
		m.TraceID = TraceID(attrs[attrTraceHeader])
	}
	msg := queue.Message{ID: id, Receipt: receipt, ReceiveCount: count, Manifest: m}
	if err != nil {
		return msg, fmt.Errorf("message %s: %w", id, err)
	}
	return msg, nil
}
