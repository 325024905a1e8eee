package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/catalog-import/catalog-import/internal/aws/awsclient"
	"github.com/catalog-import/catalog-import/internal/aws/awserr"
	"github.com/catalog-import/catalog-import/internal/aws/eventsource"
	"github.com/catalog-import/catalog-import/internal/aws/handler"
	"github.com/catalog-import/catalog-import/internal/aws/s3store"
	"github.com/catalog-import/catalog-import/internal/aws/stack"
	"github.com/catalog-import/catalog-import/internal/profile"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/triage"
)

// resources finds the stack's resources: from its CloudFormation outputs on
// AWS, or by the names importctl dev gives them on an --endpoint.
func (g *global) resources(ctx context.Context) (stack.Resources, *awsclient.Clients, error) {
	clients, err := awsclient.New(ctx, g.awsSettings())
	if err != nil {
		return stack.Resources{}, nil, err
	}
	var res stack.Resources
	if g.endpoint != "" {
		res, err = stack.Find(ctx, clients, g.stack)
	} else {
		res, err = stack.Lookup(ctx, clients, g.stack)
	}
	return res, clients, err
}

func newDevCmd(env Env, g *global) *cobra.Command {
	s := stack.Defaults()
	var (
		untilIdle   bool
		profilePath string
		logLevel    string
		retryDelay  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "dev --endpoint URL --stack NAME",
		Short: "Run the Lambda handlers locally against an AWS API (moto): drop a file in the bucket",
		Long: `dev provisions the resources template.yaml declares (bucket, shard queue and DLQ
with the same settings, state and products tables) on --endpoint where missing,
prints the bucket, then plays Lambda's event sources: the bucket's incoming/
notifications invoke the splitter, the shard queue invokes the worker in
batches of --batch-size under --max-concurrency, the DLQ invokes triage.

  moto_server -H 127.0.0.1 -p 5000 &
  importctl dev --endpoint http://127.0.0.1:5000 --stack dev
  aws --endpoint-url http://127.0.0.1:5000 s3 cp products.csv s3://BUCKET/incoming/
  importctl status --endpoint http://127.0.0.1:5000 --stack dev`,
		Args: cobra.NoArgs,
	}
	fl := cmd.Flags()
	fl.BoolVar(&untilIdle, "until-idle", false, "exit when no upload or shard message is left (scripts, tests)")
	fl.DurationVar(&s.WorkerTimeout, "worker-timeout", s.WorkerTimeout, "worker invocation timeout (WorkerTimeout); the shard queue's visibility timeout is 6x")
	fl.DurationVar(&s.Visibility, "visibility-timeout", 0, "shard queue visibility timeout, whole seconds, at least --worker-timeout: how long a failed delivery waits to come back (default 6x --worker-timeout, as template.yaml)")
	fl.DurationVar(&retryDelay, "retry-delay", triage.DefaultBaseDelay, "triage's delay before the first retry of a shard from the DLQ (doubled per retry)")
	fl.IntVar(&s.MaxReceiveCount, "max-receive-count", s.MaxReceiveCount, "deliveries of a shard message before the DLQ")
	fl.IntVar(&s.BatchSize, "batch-size", s.BatchSize, "shard messages per worker invocation")
	fl.IntVar(&s.MaxConcurrency, "max-concurrency", s.MaxConcurrency, "concurrent worker invocations")
	fl.IntVar(&s.PoolSize, "pool", s.PoolSize, "goroutines per shard")
	fl.IntVar(&s.CheckpointEvery, "checkpoint-every", s.CheckpointEvery, "rows per checkpoint")
	fl.Int64Var(&s.ShardRows, "shard-rows", s.ShardRows, "target rows per shard")
	fl.Int64Var(&s.ShardBytes, "shard-bytes", s.ShardBytes, "target bytes per shard")
	fl.StringVar(&profilePath, "profile", "", "profile YAML (default: the built-in default profile)")
	fl.StringVar(&logLevel, "log-level", "info", "handler log level on stderr: debug, info, warn, error")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if g.stack == "" {
			return usage("dev needs --stack NAME (resource names derive from it)")
		}
		if v := s.Visibility; v != 0 && (v < s.WorkerTimeout || v%time.Second != 0) {
			return usage("--visibility-timeout %v: want whole seconds, at least --worker-timeout %v", v, s.WorkerTimeout)
		}
		if retryDelay <= 0 {
			return usage("--retry-delay %v: want a positive duration", retryDelay)
		}
		ctx := cmd.Context()
		p, err := loadProfile(profilePath)
		if err != nil {
			return err
		}
		log, err := jsonLogger(env.Stderr, logLevel)
		if err != nil {
			return usage("--log-level: %v", err)
		}
		clients, err := awsclient.New(ctx, g.awsSettings())
		if err != nil {
			return err
		}
		res, err := provision(ctx, clients, g.stack, s, log)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "stack %s on %s\nbucket: %s\nupload: aws s3 cp FILE s3://%s/%s\n", g.stack, endpointName(g.endpoint),
			res.Bucket, res.Bucket, s3store.IncomingPrefix)
		fns := handler.FromClients(clients, handler.Config{
			Bucket: res.Bucket, StateTable: res.StateTable, ProductsTable: res.ProductsTable,
			ShardQueueURL: res.ShardQueueURL, DLQURL: res.DLQURL, FailureTTL: time.Duration(s.FailureTTLDays) * 24 * time.Hour,
			Options: handler.Options{
				Profile: p, Split: split.Options{ShardRows: s.ShardRows, ShardBytes: s.ShardBytes},
				Pool: s.PoolSize, CheckpointEvery: s.CheckpointEvery, LeaseTTL: s.WorkerTimeout,
				DeadlineMargin: min(10*time.Second, s.WorkerTimeout/5), Owner: "dev", Log: log, StackName: g.stack,
				Triage: triage.Policy{BaseDelay: retryDelay},
			},
		})
		return eventsource.Run(ctx, eventsource.Config{
			SQS: clients.SQS, UploadQueueURL: res.UploadQueueURL, ShardQueueURL: res.ShardQueueURL, DLQURL: res.DLQURL,
			BatchSize: s.BatchSize, MaxConcurrency: s.MaxConcurrency, WorkerTimeout: s.WorkerTimeout,
			UntilIdle: untilIdle, Log: log, ShortPoll: g.endpoint != "",
		}, fns)
	}
	return cmd
}

func endpointName(ep string) string {
	if ep == "" {
		return "AWS"
	}
	return ep
}

// loadProfile loads the profile at path, or the built-in default when path is "".
func loadProfile(path string) (*profile.Profile, error) {
	if path == "" {
		return profile.Default(), nil
	}
	p, err := profile.Load(path)
	if err != nil {
		return nil, usage("profile %s: %v", path, err)
	}
	return p, nil
}

// jsonLogger logs JSON lines at level to w.
func jsonLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, err
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// provision runs stack.Provision, again on a transient error (an endpoint
// having a bad moment should not stop dev before it starts).
func provision(ctx context.Context, c *awsclient.Clients, name string, s stack.Settings, log *slog.Logger) (stack.Resources, error) {
	for attempt := 1; ; attempt++ {
		res, err := stack.Provision(ctx, c, name, s)
		if err == nil || attempt == 5 || !awserr.Reason(err).Transient() {
			return res, err
		}
		log.Warn("provisioning failed, trying again", "attempt", attempt, "error", err)
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
		}
	}
}
