// Package awsclient builds the AWS SDK clients the adapters use, once, from
// one Settings value: the Lambda functions build them outside the handler
// (once per container), importctl once per command. Endpoint points every
// client at an emulator (moto on loopback) or another API endpoint.
package awsclient

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/middleware"
)

// Settings say where the AWS APIs are.
type Settings struct {
	// Region; default: the SDK's usual chain (AWS_REGION, profile), else us-east-1.
	Region string
	// Endpoint, when set, is used by every client (moto: http://127.0.0.1:5000).
	// Without credentials in the environment, static test credentials are used.
	Endpoint string
	// APIOptions are added to every client's middleware stack (request
	// counting in benchmarks, tracing).
	APIOptions []func(*middleware.Stack) error
	// OneAtATime, when set, is held by every DynamoDB and SQS request from
	// send to response. moto does not apply a conditional write or a
	// transaction atomically while other requests run (two conditional
	// claims can both win), and concurrent ReceiveMessage calls can hide a
	// message that no response carries; so everything that talks to one moto
	// from one process shares one lock: calls still interleave between
	// requests, as they do on AWS. Receivers must then short-poll (a long
	// poll would hold the lock). S3 requests are not held.
	OneAtATime sync.Locker
	// TraceOptions are added to every client's middleware stack but
	// BulkDynamoDB's: the tracer's instrumentation (a span per request),
	// which a request made once per product would fill a trace with.
	TraceOptions []func(*middleware.Stack) error
	// IdleConnsPerHost is how many idle connections the clients keep per
	// endpoint; 0 or less: MaxIdleConnsPerHost. A worker whose pool keeps
	// more puts in flight sets it above its pool (handler.Build).
	IdleConnsPerHost int
}

// MaxIdleConnsPerHost is how many idle connections the clients keep per
// endpoint unless Settings.IdleConnsPerHost says more: above the products
// sink's puts in flight (default 16) times the shards one process works on
// at once.
const MaxIdleConnsPerHost = 64

// FromEnv reads Settings from AWS_REGION and AWS_ENDPOINT_URL.
func FromEnv() Settings {
	return Settings{Region: os.Getenv("AWS_REGION"), Endpoint: os.Getenv("AWS_ENDPOINT_URL")}
}

// Clients are the service clients of one configuration.
type Clients struct {
	Config   aws.Config
	S3       *s3.Client
	SQS      *sqs.Client
	DynamoDB *dynamodb.Client
	// BulkDynamoDB is the client of the requests made once per product
	// (the products sink's puts and reads): DynamoDB without
	// Settings.TraceOptions, so a trace gets one span per chunk written
	// (the engine's) instead of one per product. It is DynamoDB itself
	// when there are no TraceOptions.
	BulkDynamoDB   *dynamodb.Client
	SNS            *sns.Client
	CloudFormation *cloudformation.Client
	STS            *sts.Client
	EventBridge    *eventbridge.Client
	Lambda         *lambda.Client
}

// New loads the configuration and builds every client.
func New(ctx context.Context, s Settings) (*Clients, error) {
	var opts []func(*config.LoadOptions) error
	if s.Region != "" {
		opts = append(opts, config.WithRegion(s.Region))
	}
	if s.Endpoint != "" && os.Getenv("AWS_ACCESS_KEY_ID") == "" {
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")))
	}
	// The products sink keeps many puts in flight per shard
	// (dynamocatalog.Options.InFlight): keep that many connections per host
	// open between calls, not the SDK's 10, or every call over ten opens a
	// new TLS connection.
	idle := s.IdleConnsPerHost
	if idle <= 0 {
		idle = MaxIdleConnsPerHost
	}
	opts = append(opts, config.WithHTTPClient(awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConnsPerHost = idle
	})))
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	cfg.APIOptions = append(cfg.APIOptions, s.APIOptions...)
	if s.Endpoint != "" {
		cfg.BaseEndpoint = aws.String(s.Endpoint)
	}
	db := dynamoDB(cfg, s)
	bulk := db
	if len(s.TraceOptions) > 0 {
		cfg.APIOptions = append(slices.Clip(cfg.APIOptions), s.TraceOptions...)
		db = dynamoDB(cfg, s)
	}
	return &Clients{
		Config: cfg,
		S3: s3.NewFromConfig(cfg, func(o *s3.Options) {
			// Emulators serve buckets by path, not by virtual host.
			o.UsePathStyle = s.Endpoint != ""
			// Ranged GETs carry no whole-object checksum: not worth a log line each.
			o.DisableLogOutputChecksumValidationSkipped = true
		}),
		SQS:            sqs.NewFromConfig(cfg),
		DynamoDB:       db,
		BulkDynamoDB:   bulk,
		SNS:            sns.NewFromConfig(cfg),
		CloudFormation: cloudformation.NewFromConfig(cfg),
		STS:            sts.NewFromConfig(cfg),
		EventBridge:    eventbridge.NewFromConfig(cfg),
		Lambda:         lambda.NewFromConfig(cfg),
	}, nil
}

// dynamoDB is a DynamoDB client on cfg, with the settings' lock.
func dynamoDB(cfg aws.Config, s Settings) *dynamodb.Client {
	return dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		if s.OneAtATime != nil {
			o.APIOptions = append(o.APIOptions, oneAtATime(s.OneAtATime))
		}
	})
}

// oneAtATime holds l around each request's transmission.
func oneAtATime(l sync.Locker) func(*middleware.Stack) error {
	return func(s *middleware.Stack) error {
		return s.Deserialize.Add(middleware.DeserializeMiddlewareFunc("OneAtATime",
			func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
				l.Lock()
				defer l.Unlock()
				return next.HandleDeserialize(ctx, in)
			}), middleware.After)
	}
}
