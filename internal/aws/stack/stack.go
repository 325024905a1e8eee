// Package stack knows the resources of one Catalog Import stack: their names
// (from the CloudFormation stack's outputs on AWS, or derived from the stack
// name on an emulator), the settings template.yaml gives them, and how to
// provision the same resources on an endpoint that has no CloudFormation
// stack (importctl dev against moto).
package stack

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"

	"github.com/catalog-import/catalog-import/internal/aws/awsclient"
	"github.com/catalog-import/catalog-import/internal/aws/awserr"
)

// Resources are the names and URLs of one stack's resources.
type Resources struct {
	Stack         string `json:"stack"`
	Bucket        string `json:"bucket"`
	ShardQueueURL string `json:"shard_queue_url"`
	DLQURL        string `json:"dlq_url"`
	StateTable    string `json:"state_table"`
	ProductsTable string `json:"products_table"`
	// UploadQueueURL receives the bucket's ObjectCreated notifications under
	// importctl dev, which plays Lambda's S3 trigger by polling it. Empty on AWS.
	UploadQueueURL string `json:"upload_queue_url,omitempty"`
	// WorkerFunction is the shard worker function's name (output
	// ShardWorkerFunctionName): importctl scale changes its reserved
	// concurrency and its shard queue mapping's MaximumConcurrency.
	WorkerFunction string `json:"worker_function,omitempty"`
	// SplitterFunction is the splitter function's name (output
	// SplitterFunctionName): importctl redrive --uploads splits as it does,
	// with its environment. Empty on an emulator.
	SplitterFunction string `json:"splitter_function,omitempty"`
	// SplitterFailedQueueURL is the splitter's OnFailure destination
	// (output SplitterFailedQueueUrl): Lambda's records of the upload
	// events the splitter failed on after its retries, which importctl
	// redrive --uploads splits again. Empty when the stack has none.
	SplitterFailedQueueURL string `json:"splitter_failed_queue_url,omitempty"`
}

// Settings are the template's parameters that shape the resources and the
// functions. Defaults returns template.yaml's defaults (a test keeps them equal).
type Settings struct {
	WorkerTimeout   time.Duration // ShardWorkerFunction timeout
	MaxReceiveCount int           // deliveries before the DLQ
	BatchSize       int           // shard messages per worker invocation
	MaxConcurrency  int           // concurrent worker invocations
	PoolSize        int           // goroutines per shard, and the products sink's puts in flight
	CheckpointEvery int           // rows per checkpoint
	ShardRows       int64         // target rows per shard
	ShardBytes      int64         // target bytes per shard
	FailureTTLDays  int           // failure records expire after
	WriteRate       float64       // rows per second per worker (WriteRate; 0: unlimited)
	MaxUploadBytes  int64         // largest CSV/TSV/JSON Lines upload the splitter reads (MaxUploadBytes; 0: no limit)
	// Visibility, when set, is the shard queue's visibility timeout instead
	// of the template's 6x WorkerTimeout: how long a failed or abandoned
	// delivery waits before it comes back (importctl dev --visibility-timeout,
	// short in tests). AWS requires at least WorkerTimeout.
	Visibility time.Duration
}

// Defaults are template.yaml's parameter defaults.
func Defaults() Settings {
	return Settings{
		WorkerTimeout: 300 * time.Second, MaxReceiveCount: 5, BatchSize: 1, MaxConcurrency: 10,
		PoolSize: 16, CheckpointEvery: 1000, ShardRows: 50000, ShardBytes: 16 << 20, FailureTTLDays: 30,
		MaxUploadBytes: 10 << 30,
	}
}

// VisibilityTimeout is the shard queue's: six times the worker's timeout
// (template.yaml's WorkerVisibility mapping), or Visibility when set.
func (s Settings) VisibilityTimeout() time.Duration {
	if s.Visibility > 0 {
		return s.Visibility
	}
	return 6 * s.WorkerTimeout
}

// Queue settings that do not depend on parameters (as template.yaml has them).
const (
	ShardRetention = 4 * 24 * time.Hour  // shard queue message retention
	DLQRetention   = 14 * 24 * time.Hour // longer than the shard queue's: messages keep their enqueue time
)

// Lookup reads the resources of a deployed stack from its outputs.
func Lookup(ctx context.Context, c *awsclient.Clients, name string) (Resources, error) {
	out, err := c.CloudFormation.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(name)})
	if err != nil {
		return Resources{}, awserr.Wrap(err, "describe stack "+name)
	}
	if len(out.Stacks) == 0 {
		return Resources{}, fmt.Errorf("stack %s not found", name)
	}
	r := Resources{Stack: name}
	for _, o := range out.Stacks[0].Outputs {
		v := aws.ToString(o.OutputValue)
		switch aws.ToString(o.OutputKey) {
		case "BucketName":
			r.Bucket = v
		case "ShardQueueUrl":
			r.ShardQueueURL = v
		case "ShardDLQUrl":
			r.DLQURL = v
		case "StateTableName":
			r.StateTable = v
		case "ProductsTableName":
			r.ProductsTable = v
		case "ShardWorkerFunctionName":
			r.WorkerFunction = v
		case "SplitterFunctionName":
			r.SplitterFunction = v
		case "SplitterFailedQueueUrl":
			r.SplitterFailedQueueURL = v
		}
	}
	if r.StateTable == "" || r.ProductsTable == "" || r.Bucket == "" || r.ShardQueueURL == "" {
		return r, fmt.Errorf("stack %s lacks the outputs BucketName, ShardQueueUrl, StateTableName, ProductsTableName: is it a Catalog Import stack?", name)
	}
	return r, nil
}

// Names are the resource names importctl dev gives a stack on an emulator.
type Names struct {
	Bucket, ShardQueue, DLQ, UploadQueue, StateTable, ProductsTable string
	SplitterFailedQueue, WorkerFunction, WorkerRole                 string
}

// DevNames derives the names for stack on an emulator whose account is
// account: the bucket as template.yaml names it
// (<stack>-<account>-<region>), the rest prefixed with the stack name.
func DevNames(stack, account, region string) Names {
	return Names{
		Bucket:        fmt.Sprintf("%s-%s-%s", stack, account, region),
		ShardQueue:    stack + "-shards",
		DLQ:           stack + "-shards-dlq",
		UploadQueue:   stack + "-uploads",
		StateTable:    stack + "-state",
		ProductsTable: stack + "-products",
		// The splitter's OnFailure queue, and the worker function that
		// importctl dev registers (never invoked: dev plays the event
		// source) so that importctl scale has a function and a mapping.
		SplitterFailedQueue: stack + "-splitter-failed",
		WorkerFunction:      stack + "-shard-worker",
		WorkerRole:          stack + "-shard-worker-role",
	}
}

// seconds formats d as whole seconds for queue attributes.
func seconds(d time.Duration) string { return strconv.Itoa(int(d / time.Second)) }

// errNoStack says a stack was not given.
var errNoStack = errors.New("no stack name (--stack)")
