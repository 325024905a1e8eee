package iamcheck

import (
	"context"
	"fmt"
	"net/url"
	"path"
	"reflect"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmw "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/middleware"
)

// access is one authorization a request needs: an IAM action on a
// resource, with the condition keys the request carries.
type access struct {
	Op       string // the SDK operation that needs it ("DynamoDB TransactWriteItems")
	Action   string
	Resource string
	Prefix   *string // s3:prefix of a listing
}

// ctx is the access's condition keys.
func (a access) ctx() map[string]string {
	if a.Prefix == nil {
		return nil
	}
	return map[string]string{"s3:prefix": *a.Prefix}
}

// recorder records the accesses of the requests of the clients it is
// installed on (every request, before the SDK's retries).
type recorder struct {
	mu       sync.Mutex
	accesses map[access]bool
	unknown  map[string]bool // operations accessesOf cannot map
}

// option is the middleware to pass to awstest.Clients.
func (r *recorder) option(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("iamcheck",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			svc, op := awsmw.GetServiceID(ctx), awsmw.GetOperationName(ctx)
			as, ok := accessesOf(svc+" "+op, in.Parameters)
			r.mu.Lock()
			if r.accesses == nil {
				r.accesses, r.unknown = map[access]bool{}, map[string]bool{}
			}
			for _, a := range as {
				r.accesses[a] = true
			}
			if !ok {
				r.unknown[svc+" "+op] = true
			}
			r.mu.Unlock()
			return next.HandleInitialize(ctx, in)
		}), middleware.After)
}

// all returns the accesses recorded so far, sorted.
func (r *recorder) all() []access {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]access, 0, len(r.accesses))
	for a := range r.accesses {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return fmt.Sprint(out[i]) < fmt.Sprint(out[j]) })
	return out
}

func table(name *string) string {
	return "arn:aws:dynamodb:" + region + ":" + account + ":table/" + aws.ToString(name)
}

func object(bucket, key *string) string {
	return "arn:aws:s3:::" + aws.ToString(bucket) + "/" + aws.ToString(key)
}

// queueARN is the ARN of the queue at u (.../<account>/<name>).
func queueARN(u *string) string {
	p, err := url.Parse(aws.ToString(u))
	if err != nil {
		return "unparsable queue URL " + aws.ToString(u)
	}
	return "arn:aws:sqs:" + region + ":" + path.Base(path.Dir(p.Path)) + ":" + path.Base(p.Path)
}

// accessesOf maps one request to the IAM authorizations it needs, as the
// services' authorization references list them: a read naming a version
// needs s3:GetObjectVersion, each item of a transaction the action of its
// kind, a Query on an index the index's ARN. ok is false for an operation
// it does not know (the test fails, naming it: add it here).
func accessesOf(op string, params any) (as []access, ok bool) {
	add := func(action, resource string) { as = append(as, access{Op: op, Action: action, Resource: resource}) }
	read := func(version *string) string {
		if aws.ToString(version) != "" {
			return "s3:GetObjectVersion"
		}
		return "s3:GetObject"
	}
	del := func(version *string) string {
		if aws.ToString(version) != "" {
			return "s3:DeleteObjectVersion"
		}
		return "s3:DeleteObject"
	}
	switch in := params.(type) {
	case *s3.GetObjectInput:
		add(read(in.VersionId), object(in.Bucket, in.Key))
	case *s3.HeadObjectInput: // HeadObject is authorized as GetObject
		add(read(in.VersionId), object(in.Bucket, in.Key))
	case *s3.PutObjectInput:
		add("s3:PutObject", object(in.Bucket, in.Key))
	case *s3.CreateMultipartUploadInput:
		add("s3:PutObject", object(in.Bucket, in.Key))
	case *s3.UploadPartInput:
		add("s3:PutObject", object(in.Bucket, in.Key))
	case *s3.CompleteMultipartUploadInput:
		add("s3:PutObject", object(in.Bucket, in.Key))
	case *s3.AbortMultipartUploadInput:
		add("s3:AbortMultipartUpload", object(in.Bucket, in.Key))
	case *s3.DeleteObjectInput:
		add(del(in.VersionId), object(in.Bucket, in.Key))
	case *s3.DeleteObjectsInput: // authorized per object
		for _, o := range in.Delete.Objects {
			add(del(o.VersionId), object(in.Bucket, o.Key))
		}
	case *s3.ListObjectVersionsInput:
		as = append(as, access{Op: op, Action: "s3:ListBucketVersions", Resource: "arn:aws:s3:::" + aws.ToString(in.Bucket), Prefix: aws.String(aws.ToString(in.Prefix))})
	case *s3.ListObjectsV2Input:
		as = append(as, access{Op: op, Action: "s3:ListBucket", Resource: "arn:aws:s3:::" + aws.ToString(in.Bucket), Prefix: aws.String(aws.ToString(in.Prefix))})
	case *dynamodb.GetItemInput:
		add("dynamodb:GetItem", table(in.TableName))
	case *dynamodb.PutItemInput:
		add("dynamodb:PutItem", table(in.TableName))
	case *dynamodb.UpdateItemInput:
		add("dynamodb:UpdateItem", table(in.TableName))
	case *dynamodb.DeleteItemInput:
		add("dynamodb:DeleteItem", table(in.TableName))
	case *dynamodb.ScanInput:
		add("dynamodb:Scan", table(in.TableName))
	case *dynamodb.QueryInput:
		res := table(in.TableName)
		if in.IndexName != nil {
			res += "/index/" + *in.IndexName
		}
		add("dynamodb:Query", res)
	case *dynamodb.BatchGetItemInput:
		for name := range in.RequestItems {
			add("dynamodb:BatchGetItem", table(&name))
		}
	case *dynamodb.BatchWriteItemInput:
		for name := range in.RequestItems {
			add("dynamodb:BatchWriteItem", table(&name))
		}
	case *dynamodb.TransactWriteItemsInput: // authorized per item, by its kind
		for _, it := range in.TransactItems {
			switch {
			case it.Put != nil:
				add("dynamodb:PutItem", table(it.Put.TableName))
			case it.Update != nil:
				add("dynamodb:UpdateItem", table(it.Update.TableName))
			case it.Delete != nil:
				add("dynamodb:DeleteItem", table(it.Delete.TableName))
			case it.ConditionCheck != nil:
				add("dynamodb:ConditionCheckItem", table(it.ConditionCheck.TableName))
			}
		}
	case *dynamodb.TransactGetItemsInput:
		for _, it := range in.TransactItems {
			add("dynamodb:GetItem", table(it.Get.TableName))
		}
	case *sqs.SendMessageInput:
		add("sqs:SendMessage", queueARN(in.QueueUrl))
	case *sqs.SendMessageBatchInput:
		add("sqs:SendMessage", queueARN(in.QueueUrl))
	case *sqs.ReceiveMessageInput:
		add("sqs:ReceiveMessage", queueARN(in.QueueUrl))
	case *sqs.DeleteMessageInput:
		add("sqs:DeleteMessage", queueARN(in.QueueUrl))
	case *sqs.DeleteMessageBatchInput:
		add("sqs:DeleteMessage", queueARN(in.QueueUrl))
	case *sqs.ChangeMessageVisibilityInput:
		add("sqs:ChangeMessageVisibility", queueARN(in.QueueUrl))
	case *sqs.ChangeMessageVisibilityBatchInput:
		add("sqs:ChangeMessageVisibility", queueARN(in.QueueUrl))
	case *sqs.GetQueueAttributesInput:
		add("sqs:GetQueueAttributes", queueARN(in.QueueUrl))
	case *sns.PublishInput:
		add("sns:Publish", aws.ToString(in.TopicArn))
	default:
		// EventBridge PutEvents, by reflection: each entry's bus (the
		// default bus when it names none).
		if op == "EventBridge PutEvents" {
			v := reflect.ValueOf(params).Elem().FieldByName("Entries")
			for i := range v.Len() {
				bus := "default"
				if b := v.Index(i).FieldByName("EventBusName"); !b.IsNil() && b.Elem().String() != "" {
					bus = b.Elem().String()
				}
				if !strings.HasPrefix(bus, "arn:") {
					bus = "arn:aws:events:" + region + ":" + account + ":event-bus/" + bus
				}
				add("events:PutEvents", bus)
			}
			return as, true
		}
		return nil, false
	}
	return as, true
}
