package eventsource_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/catalog-import/catalog-import/internal/aws/awstest"
	"github.com/catalog-import/catalog-import/internal/aws/eventsource"
	"github.com/catalog-import/catalog-import/internal/aws/stack"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// failingSplitter fails every invocation and keeps their request ids.
type failingSplitter struct {
	mu  sync.Mutex
	ids []string
}

func (f *failingSplitter) Splitter(ctx context.Context, _ events.S3Event) error {
	lc, _ := lambdacontext.FromContext(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ids = append(f.ids, lc.AwsRequestID)
	return errors.New("head s3://bucket/incoming/p.csv: ServiceUnavailable")
}

func (f *failingSplitter) Worker(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
	return events.SQSEventResponse{}, nil
}

func (f *failingSplitter) Triage(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
	return events.SQSEventResponse{}, nil
}

// TestSplitterFailureGoesToOnFailureQueue: an upload the splitter fails on
// three times (each invocation with its own Lambda request id) ends, as
// Lambda's asynchronous invocation ends it, as a failure record on the
// splitter's OnFailure queue: requestPayload is the S3 event of the upload.
func TestSplitterFailureGoesToOnFailureQueue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := awstest.Clients(t)
	res, err := stack.Provision(ctx, c, awstest.Name("onfailure"), stack.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(res.Bucket), Key: aws.String("incoming/p.csv"),
		Body: bytes.NewReader([]byte("sku,name,category,price\nA,B,C,1\n"))}); err != nil {
		t.Fatal(err)
	}
	h := &failingSplitter{}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := eventsource.Run(rctx, eventsource.Config{SQS: c.SQS, UploadQueueURL: res.UploadQueueURL, ShardQueueURL: res.ShardQueueURL,
		ShortPoll: true, UntilIdle: true, FailedUploadsURL: res.SplitterFailedQueueURL}, h); err != nil {
		t.Fatal(err)
	}
	if len(h.ids) != 3 || h.ids[0] == "" || h.ids[0] == h.ids[1] || h.ids[1] == h.ids[2] {
		t.Errorf("splitter invocations with request ids %q, want 3 distinct", h.ids)
	}
	out, err := c.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(res.SplitterFailedQueueURL), MaxNumberOfMessages: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != 1 {
		t.Fatalf("%d records on the OnFailure queue, want 1", len(out.Messages))
	}
	var rec eventsource.FailureRecord
	if err := json.Unmarshal([]byte(aws.ToString(out.Messages[0].Body)), &rec); err != nil {
		t.Fatal(err)
	}
	ev, err := rec.S3Event()
	if err != nil {
		t.Fatal(err)
	}
	if rec.RequestContext.Condition != "RetriesExhausted" || rec.RequestContext.ApproximateInvokeCount != 3 ||
		rec.RequestContext.RequestID != h.ids[2] || rec.LastError() == "" ||
		ev.Records[0].S3.Bucket.Name != res.Bucket || ev.Records[0].S3.Object.URLDecodedKey != "incoming/p.csv" {
		t.Errorf("failure record %+v (last error %q) with event %+v", rec.RequestContext, rec.LastError(), ev.Records[0].S3)
	}
}
