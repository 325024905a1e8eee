package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/catalog-import/catalog-import/internal/aws/awstest"
	"github.com/catalog-import/catalog-import/internal/aws/dynamostate"
	"github.com/catalog-import/catalog-import/internal/aws/eventsource"
	"github.com/catalog-import/catalog-import/internal/aws/handler"
	"github.com/catalog-import/catalog-import/internal/aws/redrive"
	"github.com/catalog-import/catalog-import/internal/aws/stack"
	"github.com/catalog-import/catalog-import/internal/state"
)

// TestRedriveUploads on moto: the splitter's OnFailure queue holds Lambda's
// records of three failed upload events (hand-made in Lambda's format) and
// a body that is no such record. A dry run splits nothing; redrive
// --uploads splits the upload that is there (its batch is registered and
// its manifests sent) and deletes its record, keeps the record of an
// upload whose object is gone (its split fails again, exit 2) and the
// unreadable body; a second run finds only those two.
func TestRedriveUploads(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := awstest.Clients(t)
	name := awstest.Name("upredrive")
	res, err := stack.Provision(ctx, c, name, stack.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	put, err := c.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(res.Bucket), Key: aws.String("incoming/feed 1.csv"),
		Body: bytes.NewReader([]byte("sku,name,category,price\nA-1,Lamp,Home,9.50\nA-2,Desk,Home,x\n"))})
	if err != nil {
		t.Fatal(err)
	}
	record := func(key, version string) string {
		var ev events.S3Event
		ev.Records = append(ev.Records, events.S3EventRecord{EventVersion: "2.1", EventSource: "aws:s3", EventName: "ObjectCreated:Put",
			EventTime: time.Now().UTC()})
		ev.Records[0].S3.Bucket.Name = res.Bucket
		ev.Records[0].S3.Object.Key, ev.Records[0].S3.Object.VersionID = key, version
		payload, _ := json.Marshal(ev)
		body, _ := json.Marshal(eventsource.NewFailureRecord("e4b46cbf-b738-4880-8880-a18cdf61200e",
			"arn:aws:lambda:us-east-1:123456789012:function:"+name+"-splitter:$LATEST", 3, payload, errTimeout))
		return string(body)
	}
	for _, body := range []string{
		record("incoming/feed+1.csv", aws.ToString(put.VersionId)), // keys come URL-encoded
		record("incoming/gone.csv", ""),
		`{"not": "a failure record"}`,
	} {
		if _, err := c.SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(res.SplitterFailedQueueURL), MessageBody: aws.String(body)}); err != nil {
			t.Fatal(err)
		}
	}
	flags := []string{"redrive", "--uploads", "--endpoint", awstest.Endpoint(t), "--region", "us-east-1", "--stack", name, "--json"}
	run := func(extra ...string) (int, []redrive.UploadItem, redrive.UploadsResult, string) {
		t.Helper()
		code, stdout, stderr := importctl(t, append(flags, extra...)...)
		var items []redrive.UploadItem
		var sum struct {
			Summary redrive.UploadsResult `json:"summary"`
		}
		for line := range strings.SplitSeq(strings.TrimSpace(stdout), "\n") {
			if strings.HasPrefix(line, `{"summary"`) {
				if err := json.Unmarshal([]byte(line), &sum); err != nil {
					t.Fatal(err)
				}
				continue
			}
			var it redrive.UploadItem
			if err := json.Unmarshal([]byte(line), &it); err != nil {
				t.Fatalf("%q: %v (stderr %s)", line, err, stderr)
			}
			items = append(items, it)
		}
		return code, items, sum.Summary, stderr
	}

	code, items, sum, stderr := run("--dry-run")
	if code != 0 || sum != (redrive.UploadsResult{WouldSplit: 2, Kept: 1}) || len(items) != 3 {
		t.Fatalf("dry run: exit %d, %+v, %+v %s", code, sum, items, stderr)
	}
	wantID := handler.BatchID(res.Bucket, "incoming/feed 1.csv", aws.ToString(put.VersionId), "", "")
	store := dynamostate.New(c.DynamoDB, res.StateTable, dynamostate.Options{})
	if _, err := store.GetBatch(ctx, wantID); err == nil {
		t.Fatal("a dry run split an upload")
	}

	code, items, sum, stderr = run()
	if code != ExitFailed || sum != (redrive.UploadsResult{Split: 1, Kept: 2, Failed: 1}) {
		t.Fatalf("redrive: exit %d, %+v, %+v %s", code, sum, items, stderr)
	}
	for _, it := range items {
		switch it.Key {
		case "incoming/feed 1.csv":
			if it.Action != redrive.ActionSplit || it.BatchID != wantID || it.Condition != "RetriesExhausted" || it.Invokes != 3 || it.LastError == "" {
				t.Errorf("the upload: %+v", it)
			}
		case "incoming/gone.csv":
			if it.Action != redrive.ActionKept || !strings.Contains(it.Note, "split failed again") {
				t.Errorf("the missing upload: %+v", it)
			}
		default:
			if it.Action != redrive.ActionKept || !strings.Contains(it.Note, "not an S3 event") {
				t.Errorf("the unreadable body: %+v", it)
			}
		}
	}
	b, err := store.GetBatch(ctx, wantID)
	if err != nil || b.Status != state.BatchRunning || b.Shards != 1 {
		t.Fatalf("the redriven upload's batch: %+v %v", b, err)
	}
	if n := len(drainQueue(t, c.SQS, res.ShardQueueURL)); n != 1 {
		t.Errorf("%d manifests sent, want 1", n)
	}

	code, _, sum, _ = run("--dry-run") // the kept records were made visible again at the end of the run
	if code != 0 || sum != (redrive.UploadsResult{WouldSplit: 1, Kept: 1}) {
		t.Errorf("after the redrive: exit %d, %+v: want the missing upload and the unreadable body left", code, sum)
	}
}

var errTimeout = errorString("Task timed out after 900.00 seconds")

type errorString string

func (e errorString) Error() string { return string(e) }

func drainQueue(t *testing.T, c *sqs.Client, url string) []string {
	t.Helper()
	var bodies []string
	for {
		out, err := c.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			return bodies
		}
		for _, m := range out.Messages {
			bodies = append(bodies, aws.ToString(m.Body))
		}
	}
}
