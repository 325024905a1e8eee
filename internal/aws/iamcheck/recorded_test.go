package iamcheck

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/catalog-import/catalog-import/internal/aws/awstest"
	"github.com/catalog-import/catalog-import/internal/aws/eventsource"
	"github.com/catalog-import/catalog-import/internal/aws/handler"
	"github.com/catalog-import/catalog-import/internal/aws/stack"
	"github.com/catalog-import/catalog-import/internal/split"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// iamActions maps a recorded call to the IAM actions it needs and the ARN
// they apply to.
func iamActions(c awstest.Call) (actions []string, arn string) {
	switch c.Service {
	case "S3":
		arn = "arn:aws:s3:::" + c.Resource
		switch c.Operation {
		case "HeadObject", "GetObject":
			return []string{"s3:GetObject"}, arn
		case "PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload":
			return []string{"s3:PutObject"}, arn
		case "AbortMultipartUpload":
			return []string{"s3:AbortMultipartUpload"}, arn
		case "ListObjectVersions":
			return []string{"s3:ListBucketVersions"}, arn
		case "ListObjectsV2":
			return []string{"s3:ListBucket"}, arn
		case "DeleteObject", "DeleteObjects":
			return []string{"s3:DeleteObject", "s3:DeleteObjectVersion"}, arn
		}
	case "DynamoDB":
		arn = "arn:aws:dynamodb:" + region + ":" + account + ":table/" + c.Resource
		switch c.Operation {
		case "TransactWriteItems": // IAM checks each item's action; the store uses these three
			return []string{"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"}, arn
		case "TransactGetItems":
			return []string{"dynamodb:GetItem"}, arn
		}
		return []string{"dynamodb:" + c.Operation}, arn
	case "SQS":
		parts := strings.Split(c.Resource, "/")
		arn = "arn:aws:sqs:" + region + ":" + account + ":" + parts[len(parts)-1]
		switch c.Operation {
		case "SendMessageBatch":
			return []string{"sqs:SendMessage"}, arn
		case "ChangeMessageVisibilityBatch":
			return []string{"sqs:ChangeMessageVisibility"}, arn
		case "DeleteMessageBatch":
			return []string{"sqs:DeleteMessage"}, arn
		}
		return []string{"sqs:" + c.Operation}, arn
	case "SNS":
		return []string{"sns:" + c.Operation}, c.Resource
	}
	return []string{strings.ToLower(c.Service) + ":" + c.Operation}, c.Resource
}

// TestRecordedCallsAreAllowed runs the splitter and the worker on moto over
// a stack named as the template names it, records every AWS call each
// function makes, and checks that the function's role in the expanded
// template allows each. It logs the actions a role allows that no recorded
// call used (triage is checked by the hand-written list of
// TestRolesAllowWhatTheFunctionsDo for now).
func TestRecordedCallsAreAllowed(t *testing.T) {
	roles := expand(t)
	ctx := t.Context()
	clients := awstest.Clients(t)
	res, err := stack.Provision(ctx, clients, stackName, stack.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	var csv strings.Builder
	csv.WriteString("商品编码,商品名称,类目,价格,库存\n")
	for i := range 60 {
		price := fmt.Sprintf("%d.5", i)
		if i%9 == 4 {
			price = "n/a"
		}
		fmt.Fprintf(&csv, "R-%03d,商品 %d,家居,%s,%d\n", i, i, price, i)
	}
	key := "incoming/iam.csv"
	if _, err := clients.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(res.Bucket), Key: aws.String(key), Body: strings.NewReader(csv.String())}); err != nil {
		t.Fatal(err)
	}
	cfg := handler.Config{Bucket: res.Bucket, StateTable: res.StateTable, ProductsTable: res.ProductsTable,
		ShardQueueURL: res.ShardQueueURL, DLQURL: res.DLQURL,
		Options: handler.Options{Split: split.Options{ShardRows: 25}, CheckpointEvery: 10, LeaseTTL: time.Minute}}
	recorded := map[string]*awstest.Requests{"SplitterFunction": {}, "ShardWorkerFunction": {}}
	splitter := handler.FromClients(awstest.Clients(t, recorded["SplitterFunction"].Option), cfg)
	worker := handler.FromClients(awstest.Clients(t, recorded["ShardWorkerFunction"].Option), cfg)

	var put events.S3Event
	put.Records = append(put.Records, events.S3EventRecord{EventName: "ObjectCreated:Put", EventTime: time.Now()})
	put.Records[0].S3.Bucket.Name, put.Records[0].S3.Object.Key, put.Records[0].S3.Object.Sequencer = res.Bucket, key, "0B"
	if err := splitter.Splitter(ctx, put); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		out, err := clients.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(res.ShardQueueURL), MaxNumberOfMessages: 10,
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			break
		}
		resp, err := worker.Worker(ctx, eventsource.Event(res.ShardQueueURL, out.Messages))
		if err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("worker: %+v %v", resp, err)
		}
	}

	for _, fn := range []string{"SplitterFunction", "ShardWorkerFunction"} {
		r := roles[fn]
		used := map[string]bool{}
		calls := recorded[fn].Take()
		if len(calls) == 0 {
			t.Errorf("%s made no AWS call", fn)
		}
		for c := range calls {
			actions, arn := iamActions(c)
			for _, a := range actions {
				used[a] = true
				if !r.allows(a, arn) {
					t.Errorf("%s calls %s %s on %s: its role does not allow %s on %s", fn, c.Service, c.Operation, c.Resource, a, arn)
				}
			}
		}
		var unused []string
		for _, st := range r.Statements {
			for _, a := range st.Actions {
				if !slices.ContainsFunc(keys(used), func(u string) bool { return match(a, u) }) {
					unused = append(unused, a)
				}
			}
		}
		sort.Strings(unused)
		t.Logf("%s: allowed by its inline policies, used by no recorded call: %v", fn, slices.Compact(unused))
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
