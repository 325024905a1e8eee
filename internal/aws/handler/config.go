package handler

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/catalog-import/catalog-import/internal/aws/awsclient"
	"github.com/catalog-import/catalog-import/internal/aws/dynamocatalog"
	"github.com/catalog-import/catalog-import/internal/aws/dynamostate"
	"github.com/catalog-import/catalog-import/internal/aws/emf"
	"github.com/catalog-import/catalog-import/internal/aws/eventbus"
	"github.com/catalog-import/catalog-import/internal/aws/s3store"
	"github.com/catalog-import/catalog-import/internal/aws/sqsqueue"
	"github.com/catalog-import/catalog-import/internal/profile"
	"github.com/catalog-import/catalog-import/internal/shard"
)

// DefaultMaxUploadBytes is the largest CSV, TSV or JSON Lines upload the
// splitter reads when MAX_UPLOAD_BYTES is not set: 10 GiB. The splitter
// reads an upload once (twice under a profile with a weight) in one GET
// stream within its 900 s timeout. Its scan runs at 1.7 to 4.1 GB/s on one
// core (docs/performance.md "boundary scan"; BenchmarkPlan in
// internal/split: 1.9 GB/s with a byte weight, 0.23 GB/s with a weight over
// fields), about 0.6 of that on the splitter's 1024 MB (0.58 vCPU), so the
// GET stream bounds it at about 85 MB/s (S3's guidance per connection):
// 10 GiB is about 126 s per pass, leaving a factor of 3.5 to 7 for one or
// two passes and a slow stream. See decision 25.
const DefaultMaxUploadBytes = 10 << 30

// Config is what a function needs from its environment: where the
// resources are, and the engine's settings (template.yaml sets them).
type Config struct {
	AWS           awsclient.Settings
	Bucket        string // BUCKET
	StateTable    string // STATE_TABLE
	ProductsTable string // PRODUCTS_TABLE
	ShardQueueURL string // SHARD_QUEUE_URL
	DLQURL        string // DLQ_URL
	// EscalationTopicARN is the SNS topic of triage escalations
	// (ESCALATION_TOPIC_ARN, optional: without it escalations are only logged).
	EscalationTopicARN string
	// EventBusName is the EventBridge bus of the "batch finished" events
	// (EVENT_BUS_NAME, optional: without it none is published).
	EventBusName string
	FailureTTL   time.Duration // FAILURE_TTL_DAYS (default 30 days)
	// BatchTTL is how long a finished batch (its batch and shard items) and
	// triage-log entries are kept in the state table (BATCH_TTL_DAYS,
	// default 90 days; see dynamostate.Options.BatchTTL).
	BatchTTL time.Duration
	Options  Options
}

// ConfigFromEnv reads Config from the variables template.yaml sets:
// BUCKET, STATE_TABLE, PRODUCTS_TABLE, SHARD_QUEUE_URL, DLQ_URL (required);
// SHARD_ROWS, SHARD_BYTES, POOL_SIZE, CHECKPOINT_EVERY, LEASE_TTL_SECONDS,
// FAILURE_TTL_DAYS, BATCH_TTL_DAYS, MAX_UPLOAD_BYTES (the largest CSV, TSV or JSON Lines
// upload the splitter reads; unset: DefaultMaxUploadBytes, 0: no limit),
// WRITE_RATE (rows per second per worker, adaptive;
// 0 or unset: unlimited), PROFILE_FILE, LOG_LEVEL, ESCALATION_TOPIC_ARN,
// EVENT_BUS_NAME (the "batch finished" events; unset: none) and
// STACK_NAME (optional; the stack's name in notifications); AWS_REGION and
// AWS_ENDPOINT_URL as the SDK reads them. Logs are JSON on stderr; in
// Lambda (AWS_LAMBDA_FUNCTION_NAME set) metrics are EMF lines on stdout.
// Tracing is the caller's to add (Options.Tracer): functions/<name>/main.go
// sets it, so that importctl does not link the X-Ray SDK.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		AWS:    awsclient.Settings{Region: getenv("AWS_REGION"), Endpoint: getenv("AWS_ENDPOINT_URL")},
		Bucket: getenv("BUCKET"), StateTable: getenv("STATE_TABLE"), ProductsTable: getenv("PRODUCTS_TABLE"),
		ShardQueueURL: getenv("SHARD_QUEUE_URL"), DLQURL: getenv("DLQ_URL"),
		EscalationTopicARN: getenv("ESCALATION_TOPIC_ARN"), EventBusName: getenv("EVENT_BUS_NAME"),
	}
	c.Options.StackName = getenv("STACK_NAME")
	for name, v := range map[string]string{"BUCKET": c.Bucket, "STATE_TABLE": c.StateTable, "PRODUCTS_TABLE": c.ProductsTable, "SHARD_QUEUE_URL": c.ShardQueueURL} {
		if v == "" {
			return c, fmt.Errorf("environment variable %s is not set", name)
		}
	}
	var err error
	num := func(name string, def int64) int64 {
		v := getenv(name)
		if v == "" || err != nil {
			return def
		}
		n, e := strconv.ParseInt(v, 10, 64)
		if e != nil || n < 0 {
			err = fmt.Errorf("environment variable %s=%q: want a whole number >= 0", name, v)
		}
		return n
	}
	c.Options.Split.ShardRows = num("SHARD_ROWS", 0)
	c.Options.Split.ShardBytes = num("SHARD_BYTES", 0)
	c.Options.Split.MaxText = num("MAX_UPLOAD_BYTES", DefaultMaxUploadBytes)
	c.Options.Pool = int(num("POOL_SIZE", 0))
	c.Options.CheckpointEvery = int(num("CHECKPOINT_EVERY", 0))
	c.Options.LeaseTTL = time.Duration(num("LEASE_TTL_SECONDS", 0)) * time.Second
	c.FailureTTL = time.Duration(num("FAILURE_TTL_DAYS", 30)) * 24 * time.Hour
	c.BatchTTL = time.Duration(num("BATCH_TTL_DAYS", 90)) * 24 * time.Hour
	if err != nil {
		return c, err
	}
	if v := getenv("WRITE_RATE"); v != "" {
		r, e := strconv.ParseFloat(v, 64)
		if e != nil || r < 0 || math.IsInf(r, 0) || math.IsNaN(r) {
			return c, fmt.Errorf("environment variable WRITE_RATE=%q: want rows per second per worker, a number >= 0 (0: unlimited)", v)
		}
		c.Options.WriteRate = r
	}
	if path := getenv("PROFILE_FILE"); path != "" {
		if c.Options.Profile, err = profile.Load(path); err != nil {
			return c, fmt.Errorf("PROFILE_FILE: %w", err)
		}
	}
	level := slog.LevelInfo
	if v := getenv("LOG_LEVEL"); v != "" {
		if err := level.UnmarshalText([]byte(v)); err != nil {
			return c, fmt.Errorf("LOG_LEVEL=%q: %w", v, err)
		}
	}
	c.Options.Log = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if fn := getenv("AWS_LAMBDA_FUNCTION_NAME"); fn != "" {
		// In Lambda: metrics as EMF lines on stdout (logs are on stderr).
		c.Options.Metrics = emf.New(os.Stdout, fn)
	}
	return c, nil
}

// FromEnv builds a Lambda function's handlers from its environment: the
// Config of ConfigFromEnv, the tracer that tracing returns (nil: tracing is
// off; xraytrace.FromEnv in the functions, so that only they link X-Ray),
// then Build. functions/<name>/main.go calls it once per container.
func FromEnv[P interface {
	*T
	Tracer
}, T any](ctx context.Context, getenv func(string) string, tracing func(func(string) string, *slog.Logger) P) (*Functions, error) {
	c, err := ConfigFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	if tracing != nil {
		if t := tracing(getenv, c.Options.Log); t != nil {
			c.Options.Tracer = t
		}
	}
	return Build(ctx, c)
}

// Build makes the clients (once per container; traced when
// c.Options.Tracer is set, all but the products sink's, whose requests are
// one per product: awsclient.Settings.TraceOptions) and the AWS adapters,
// and returns the handlers over them.
func Build(ctx context.Context, c Config) (*Functions, error) {
	if c.Options.Tracer != nil {
		c.AWS.TraceOptions = slices.Clone(c.AWS.TraceOptions)
		c.Options.Tracer.Instrument(&c.AWS.TraceOptions)
	}
	clients, err := awsclient.New(ctx, clientSettings(c))
	if err != nil {
		return nil, err
	}
	return FromClients(clients, c), nil
}

// clientSettings are c.AWS with idle connections for the worker's puts in
// flight: a pool above awsclient.MaxIdleConnsPerHost keeps a connection
// per put (and a few for the state table, S3 and SQS) instead of opening a
// new TLS connection for every put over the default.
func clientSettings(c Config) awsclient.Settings {
	s := c.AWS
	s.IdleConnsPerHost = max(s.IdleConnsPerHost, c.Options.Pool+16, awsclient.MaxIdleConnsPerHost)
	return s
}

// FromClients returns the handlers over the AWS adapters built on clients.
// The products sink uses clients.BulkDynamoDB (DynamoDB when nil).
// The products sink keeps Options.Pool puts in flight (its default 16 when
// Pool is 0). The worker's write-rate limiter (Options.WriteRate) hears of every
// throttled attempt of the products table's requests.
func FromClients(clients *awsclient.Clients, c Config) *Functions {
	if c.Options.Limiter == nil {
		c.Options.Limiter = shard.NewAdaptiveLimiter(c.Options.WriteRate, 0) // New gives it the log
	}
	bulk := clients.BulkDynamoDB // the products sink's requests, one per product: no span each
	if bulk == nil {
		bulk = clients.DynamoDB
	}
	store := dynamostate.New(clients.DynamoDB, c.StateTable, dynamostate.Options{FailureTTL: c.FailureTTL, BatchTTL: c.BatchTTL})
	p := Ports{
		Source:    s3store.New(clients.S3),
		Store:     store,
		Sink:      dynamocatalog.New(bulk, c.ProductsTable, sinkOptions(c.Options)),
		Queue:     sqsqueue.New(clients.SQS, c.ShardQueueURL),
		DLQ:       sqsqueue.New(clients.SQS, c.DLQURL),
		Reports:   s3store.NewReports(clients.S3, c.Bucket),
		Staging:   s3store.NewStaging(clients.S3, c.Bucket),
		TriageLog: store.TriageLog(),
		Profiles:  s3store.NewProfiles(clients.S3, c.Bucket),
	}
	if c.EscalationTopicARN != "" {
		p.Notify = SNSNotifier(clients.SNS, c.EscalationTopicARN)
	}
	if c.EventBusName != "" {
		p.Events = eventbus.New(clients.EventBridge, c.EventBusName)
	}
	return New(p, c.Options)
}

// sinkOptions are the products sink's options of a worker: its puts (and
// reads of 100 SKUs) in flight follow the pool size (POOL_SIZE, the
// template's PoolSize; 0 leaves the sink's default of 16), and it tells
// the write-rate limiter of every throttled attempt.
func sinkOptions(o Options) dynamocatalog.Options {
	s := dynamocatalog.Options{InFlight: o.Pool}
	if o.Limiter != nil {
		s.OnThrottle = o.Limiter.Throttled
	}
	return s
}

// SNSNotifier returns a Notifier that publishes to the SNS topic.
func SNSNotifier(client *sns.Client, topicARN string) Notifier {
	return func(ctx context.Context, subject, message string) error {
		_, err := client.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(topicARN), Subject: aws.String(subject), Message: aws.String(message)})
		if err != nil {
			return fmt.Errorf("publish to %s: %w", topicARN, err)
		}
		return nil
	}
}
