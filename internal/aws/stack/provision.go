package stack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/catalog-import/catalog-import/internal/aws/awsclient"
	"github.com/catalog-import/catalog-import/internal/aws/awserr"
	"github.com/catalog-import/catalog-import/internal/aws/dynamocatalog"
	"github.com/catalog-import/catalog-import/internal/aws/dynamostate"
	"github.com/catalog-import/catalog-import/internal/aws/s3store"
)

// DLQVisibilityTimeout is the shard DLQ's visibility timeout: six times the
// triage function's 60-second timeout, as template.yaml sets it.
const DLQVisibilityTimeout = 360

// Provision creates, where missing, the resources template.yaml declares for
// stack (same keys, indexes, TTL, queue settings; the splitter's OnFailure
// queue), plus the upload queue that stands in for the S3 -> Lambda
// trigger, and returns their names. The worker function and its mapping
// are RegisterWorker's.
// Running it again changes nothing that exists except queue attributes,
// which it sets to the template's values.
func Provision(ctx context.Context, c *awsclient.Clients, stack string, s Settings) (Resources, error) {
	if stack == "" {
		return Resources{}, errNoStack
	}
	id, err := c.STS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return Resources{}, awserr.Wrap(err, "get caller identity")
	}
	n := DevNames(stack, aws.ToString(id.Account), c.Config.Region)
	r := Resources{Stack: stack, Bucket: n.Bucket, StateTable: n.StateTable, ProductsTable: n.ProductsTable}

	if err := dynamostate.CreateTable(ctx, c.DynamoDB, n.StateTable); err != nil {
		return r, fmt.Errorf("state table %s: %w", n.StateTable, err)
	}
	if err := dynamocatalog.CreateTable(ctx, c.DynamoDB, n.ProductsTable); err != nil {
		return r, fmt.Errorf("products table %s: %w", n.ProductsTable, err)
	}

	if r.DLQURL, err = ensureQueue(ctx, c.SQS, n.DLQ, map[string]string{
		"MessageRetentionPeriod": seconds(DLQRetention),
		"VisibilityTimeout":      fmt.Sprint(DLQVisibilityTimeout),
		"SqsManagedSseEnabled":   "true",
	}); err != nil {
		return r, err
	}
	dlqARN, err := queueARN(ctx, c.SQS, r.DLQURL)
	if err != nil {
		return r, err
	}
	redrive, _ := json.Marshal(map[string]string{"deadLetterTargetArn": dlqARN, "maxReceiveCount": fmt.Sprint(s.MaxReceiveCount)})
	if r.ShardQueueURL, err = ensureQueue(ctx, c.SQS, n.ShardQueue, map[string]string{
		"VisibilityTimeout":      seconds(s.VisibilityTimeout()),
		"MessageRetentionPeriod": seconds(ShardRetention),
		"RedrivePolicy":          string(redrive),
		"SqsManagedSseEnabled":   "true",
	}); err != nil {
		return r, err
	}
	if r.SplitterFailedQueueURL, err = ensureQueue(ctx, c.SQS, n.SplitterFailedQueue, map[string]string{
		"MessageRetentionPeriod": seconds(DLQRetention),
		"SqsManagedSseEnabled":   "true",
	}); err != nil {
		return r, err
	}
	r.WorkerFunction = n.WorkerFunction
	if r.UploadQueueURL, err = ensureQueue(ctx, c.SQS, n.UploadQueue, map[string]string{
		"VisibilityTimeout": "960", // the splitter's 900 s timeout and some
	}); err != nil {
		return r, err
	}
	uploadARN, err := queueARN(ctx, c.SQS, r.UploadQueueURL)
	if err != nil {
		return r, err
	}
	if err := ensureBucket(ctx, c, n.Bucket, uploadARN); err != nil {
		return r, err
	}
	return r, nil
}

func ensureQueue(ctx context.Context, c *sqs.Client, name string, attrs map[string]string) (string, error) {
	out, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err == nil {
		return aws.ToString(out.QueueUrl), nil
	}
	var exists *sqstypes.QueueNameExists
	if !errors.As(err, &exists) {
		return "", awserr.Wrap(err, "create queue "+name)
	}
	u, err := c.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(name)})
	if err != nil {
		return "", awserr.Wrap(err, "get queue url "+name)
	}
	if _, err := c.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: u.QueueUrl, Attributes: attrs}); err != nil {
		return "", awserr.Wrap(err, "set attributes of queue "+name)
	}
	return aws.ToString(u.QueueUrl), nil
}

func queueARN(ctx context.Context, c *sqs.Client, url string) (string, error) {
	out, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		return "", awserr.Wrap(err, "get queue arn "+url)
	}
	return out.Attributes[string(sqstypes.QueueAttributeNameQueueArn)], nil
}

// ensureBucket creates the bucket as the template does (versioned,
// encrypted, public access blocked) and points its incoming/ notifications
// at the upload queue.
func ensureBucket(ctx context.Context, c *awsclient.Clients, name, uploadQueueARN string) error {
	in := &s3.CreateBucketInput{Bucket: aws.String(name)}
	if c.Config.Region != "us-east-1" {
		in.CreateBucketConfiguration = &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(c.Config.Region)}
	}
	if _, err := c.S3.CreateBucket(ctx, in); err != nil {
		var owned *s3types.BucketAlreadyOwnedByYou
		if !errors.As(err, &owned) {
			return awserr.Wrap(err, "create bucket "+name)
		}
	}
	if _, err := c.S3.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(name),
		VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}}); err != nil {
		return awserr.Wrap(err, "enable versioning on "+name)
	}
	if _, err := c.S3.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{Bucket: aws.String(name),
		ServerSideEncryptionConfiguration: &s3types.ServerSideEncryptionConfiguration{Rules: []s3types.ServerSideEncryptionRule{{
			ApplyServerSideEncryptionByDefault: &s3types.ServerSideEncryptionByDefault{SSEAlgorithm: s3types.ServerSideEncryptionAes256},
		}}}}); err != nil {
		return awserr.Wrap(err, "encrypt "+name)
	}
	if _, err := c.S3.PutPublicAccessBlock(ctx, &s3.PutPublicAccessBlockInput{Bucket: aws.String(name),
		PublicAccessBlockConfiguration: &s3types.PublicAccessBlockConfiguration{BlockPublicAcls: aws.Bool(true),
			BlockPublicPolicy: aws.Bool(true), IgnorePublicAcls: aws.Bool(true), RestrictPublicBuckets: aws.Bool(true)}}); err != nil {
		return awserr.Wrap(err, "block public access on "+name)
	}
	if _, err := c.S3.PutBucketNotificationConfiguration(ctx, &s3.PutBucketNotificationConfigurationInput{Bucket: aws.String(name),
		NotificationConfiguration: &s3types.NotificationConfiguration{QueueConfigurations: []s3types.QueueConfiguration{{
			QueueArn: aws.String(uploadQueueARN),
			Events:   []s3types.Event{"s3:ObjectCreated:*"},
			Filter: &s3types.NotificationConfigurationFilter{Key: &s3types.S3KeyFilter{FilterRules: []s3types.FilterRule{{
				Name: s3types.FilterRuleNamePrefix, Value: aws.String(s3store.IncomingPrefix),
			}}}},
		}}}}); err != nil {
		return awserr.Wrap(err, "notify "+name+" uploads")
	}
	return nil
}

// Find returns the resources importctl dev provisioned for stack on the
// clients' endpoint, without creating anything.
func Find(ctx context.Context, c *awsclient.Clients, stack string) (Resources, error) {
	if stack == "" {
		return Resources{}, errNoStack
	}
	id, err := c.STS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return Resources{}, awserr.Wrap(err, "get caller identity")
	}
	n := DevNames(stack, aws.ToString(id.Account), c.Config.Region)
	r := Resources{Stack: stack, Bucket: n.Bucket, StateTable: n.StateTable, ProductsTable: n.ProductsTable, WorkerFunction: n.WorkerFunction}
	// Provisioned by an older importctl dev, a stack may lack this queue.
	if out, err := c.SQS.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(n.SplitterFailedQueue)}); err == nil {
		r.SplitterFailedQueueURL = aws.ToString(out.QueueUrl)
	}
	for _, q := range []struct {
		name string
		url  *string
	}{{n.ShardQueue, &r.ShardQueueURL}, {n.DLQ, &r.DLQURL}, {n.UploadQueue, &r.UploadQueueURL}} {
		out, err := c.SQS.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(q.name)})
		if err != nil {
			return r, fmt.Errorf("stack %s is not provisioned on this endpoint (run importctl dev first): %w", stack, awserr.Wrap(err, "queue "+q.name))
		}
		*q.url = aws.ToString(out.QueueUrl)
	}
	return r, nil
}
