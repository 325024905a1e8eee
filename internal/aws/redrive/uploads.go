package redrive

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/catalog-import/catalog-import/internal/aws/awserr"
	"github.com/catalog-import/catalog-import/internal/aws/eventsource"
)

// What Uploads did with a failure record.
const (
	ActionSplit      = "split"       // the upload was split (and the record deleted)
	ActionWouldSplit = "would-split" // dry run: would have been split
)

// UploadsConfig is one redrive of the splitter's failed uploads: the
// records Lambda sent to the splitter's OnFailure queue for the upload
// events it gave up on (after its retries, or MaximumEventAgeInSeconds of
// throttling), each holding the S3 event as requestPayload.
type UploadsConfig struct {
	SQS      *sqs.Client
	QueueURL string // the splitter's OnFailure queue (SplitterFailedQueueUrl)
	// Split runs the splitter on an event, in this process (the handler's
	// Splitter): an upload split before (the failure came after it
	// registered its batch) is found, not split again.
	Split func(context.Context, events.S3Event) error
	// BatchOf names the batch of an upload, for the report (optional).
	BatchOf func(events.S3EventRecord) string
	// Max splits at most this many records; 0: all.
	Max    int
	DryRun bool
	// Visibility, Wait and ShortPoll are as in Config.
	Visibility time.Duration
	Wait       time.Duration
	ShortPoll  bool
	Report     func(UploadItem)
}

// UploadItem is one failure record Uploads handled.
type UploadItem struct {
	Action    string `json:"action"` // split, would-split, kept
	MessageID string `json:"message_id"`
	Bucket    string `json:"bucket,omitempty"`
	Key       string `json:"key,omitempty"`
	Version   string `json:"version,omitempty"`
	BatchID   string `json:"batch_id,omitempty"`
	// Condition and Invokes say why Lambda gave up (RetriesExhausted,
	// EventAgeExceeded) after how many invocations; LastError is the
	// splitter's last error then.
	Condition string `json:"condition,omitempty"`
	Invokes   int    `json:"approximate_invoke_count,omitempty"`
	LastError string `json:"last_error,omitempty"`
	Note      string `json:"note,omitempty"`
}

// UploadsResult sums up a redrive of uploads.
type UploadsResult struct {
	Split      int `json:"split"`
	WouldSplit int `json:"would_split"`
	Kept       int `json:"kept"`
	// Failed counts the uploads whose split failed again (the record stays
	// for a later redrive) and records split but not deleted.
	Failed int `json:"failed"`
}

// Uploads splits the upload of every failure record in the splitter's
// OnFailure queue and deletes each record whose split succeeded. A record
// that is not a Lambda failure record of an S3 event, or whose split fails
// again, stays in the queue (held during the pass, visible again after it,
// as Run holds DLQ messages).
func Uploads(ctx context.Context, cfg UploadsConfig) (res UploadsResult, err error) {
	if cfg.Visibility <= 0 {
		cfg.Visibility = DefaultVisibility
	}
	if cfg.Wait <= 0 && !cfg.ShortPoll {
		cfg.Wait = DefaultWait
	}
	report := func(it UploadItem) {
		switch it.Action {
		case ActionSplit:
			res.Split++
		case ActionWouldSplit:
			res.WouldSplit++
		default:
			res.Kept++
		}
		if cfg.Report != nil {
			cfg.Report(it)
		}
	}
	full := func() bool { return cfg.Max > 0 && res.Split+res.WouldSplit >= cfg.Max }
	seen := map[string]bool{}
	held := map[string]string{}
	defer func() {
		if rerr := release(ctx, cfg.SQS, cfg.QueueURL, held, cfg.Visibility); err == nil {
			err = rerr
		}
	}()
	for !full() {
		out, err := cfg.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(cfg.QueueURL), MaxNumberOfMessages: maxReceive,
			VisibilityTimeout: int32((cfg.Visibility + time.Second - 1) / time.Second),
			WaitTimeSeconds:   int32((cfg.Wait + time.Second - 1) / time.Second)})
		if err != nil {
			return res, awserr.Wrap(err, "receive from the splitter's OnFailure queue")
		}
		fresh := 0
		for _, msg := range out.Messages {
			id, receipt := aws.ToString(msg.MessageId), aws.ToString(msg.ReceiptHandle)
			if seen[id] {
				if _, ok := held[id]; ok {
					held[id] = receipt
				}
				continue
			}
			seen[id] = true
			fresh++
			if full() {
				held[id] = receipt
				continue
			}
			it, keep := splitOne(ctx, cfg, msg, &res)
			if keep {
				held[id] = receipt
			}
			report(it)
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
		}
		if fresh == 0 {
			return res, nil
		}
	}
	return res, nil
}

// splitOne splits the upload of one failure record; keep says the record
// stays in the queue.
func splitOne(ctx context.Context, cfg UploadsConfig, msg types.Message, res *UploadsResult) (it UploadItem, keep bool) {
	it = UploadItem{MessageID: aws.ToString(msg.MessageId), Action: ActionKept}
	var rec eventsource.FailureRecord
	if err := json.Unmarshal([]byte(aws.ToString(msg.Body)), &rec); err != nil {
		it.Note = "not a Lambda failure record: " + err.Error()
		return it, true
	}
	it.Condition, it.Invokes, it.LastError = rec.RequestContext.Condition, rec.RequestContext.ApproximateInvokeCount, rec.LastError()
	ev, err := rec.S3Event()
	if err != nil {
		it.Note = err.Error()
		return it, true
	}
	r := ev.Records[0]
	it.Bucket, it.Version = r.S3.Bucket.Name, r.S3.Object.VersionID
	it.Key = r.S3.Object.Key
	if k, err := url.QueryUnescape(r.S3.Object.Key); err == nil {
		it.Key = k
	}
	if cfg.BatchOf != nil {
		it.BatchID = cfg.BatchOf(r)
	}
	if n := len(ev.Records); n > 1 {
		it.Note = fmt.Sprintf("and %d more uploads in the same event", n-1)
	}
	if cfg.DryRun {
		it.Action = ActionWouldSplit
		return it, true
	}
	if err := cfg.Split(ctx, ev); err != nil {
		res.Failed++
		it.Note = "split failed again, the record stays: " + err.Error()
		return it, true
	}
	it.Action = ActionSplit
	if _, err := cfg.SQS.DeleteMessage(context.WithoutCancel(ctx), &sqs.DeleteMessageInput{QueueUrl: aws.String(cfg.QueueURL), ReceiptHandle: msg.ReceiptHandle}); err != nil {
		res.Failed++
		it.Note = "split, but the record was not deleted (splitting it again finds the batch): " + awserr.Wrap(err, "delete").Error()
	}
	return it, false
}
