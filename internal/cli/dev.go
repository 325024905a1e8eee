package cli

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/catalog-import/catalog-import/internal/aws/awsclient"
	"github.com/catalog-import/catalog-import/internal/aws/awserr"
	"github.com/catalog-import/catalog-import/internal/aws/eventsource"
	"github.com/catalog-import/catalog-import/internal/aws/handler"
	"github.com/catalog-import/catalog-import/internal/aws/motoserver"
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
		Use:   "dev [--endpoint URL] [--stack NAME]",
		Short: "Run the Lambda handlers locally against an AWS emulator (moto): drop a file in the bucket",
		Long: `dev runs the stack locally. Without --endpoint it starts its own emulator,
moto_server on a free loopback port (with the fix the tests use), and stops it
when it stops (Ctrl-C, SIGTERM, an error); with --endpoint it uses that one.
It provisions the resources template.yaml declares (bucket, shard queue and DLQ
with the same settings, state and products tables) where missing, prints the
endpoint, the bucket, an upload command and a status command, then plays
Lambda's event sources: the bucket's incoming/ notifications invoke the
splitter, the shard queue invokes the worker in batches of --batch-size under
--max-concurrency, the DLQ invokes triage. --stack defaults to "dev".

  importctl dev
  # in another shell, the upload and status commands it printed, e.g.
  AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 \
    aws --endpoint-url http://127.0.0.1:PORT s3 cp products.csv s3://BUCKET/incoming/
  importctl status --endpoint http://127.0.0.1:PORT --stack dev`,
		Args: cobra.NoArgs,
	}
	fl := cmd.Flags()
	// dev's own --endpoint and --stack (the global ones, with dev's defaults).
	fl.StringVar(&g.endpoint, "endpoint", "", "URL of an AWS emulator already running (default: start moto_server on a free loopback port, stopped with dev)")
	fl.StringVar(&g.stack, "stack", "", `stack name: resource names derive from it (default "dev")`)
	fl.BoolVar(&untilIdle, "until-idle", false, "exit when no upload or shard message is left (scripts, tests)")
	fl.DurationVar(&s.WorkerTimeout, "worker-timeout", s.WorkerTimeout, "worker invocation timeout (WorkerTimeout); the shard queue's visibility timeout is 6x")
	fl.DurationVar(&s.Visibility, "visibility-timeout", 0, "shard queue visibility timeout, whole seconds, at least --worker-timeout: how long a failed delivery waits to come back (default 6x --worker-timeout, as template.yaml)")
	fl.DurationVar(&retryDelay, "retry-delay", triage.DefaultBaseDelay, "triage's delay before the first retry of a shard from the DLQ (doubled per retry)")
	fl.IntVar(&s.MaxReceiveCount, "max-receive-count", s.MaxReceiveCount, "deliveries of a shard message before the DLQ")
	fl.IntVar(&s.BatchSize, "batch-size", s.BatchSize, "shard messages per worker invocation")
	fl.IntVar(&s.MaxConcurrency, "max-concurrency", s.MaxConcurrency, "concurrent worker invocations")
	fl.IntVar(&s.PoolSize, "pool", s.PoolSize, "goroutines per shard, and the products table puts in flight")
	fl.IntVar(&s.CheckpointEvery, "checkpoint-every", s.CheckpointEvery, "rows per checkpoint")
	fl.Int64Var(&s.ShardRows, "shard-rows", s.ShardRows, "target rows per shard")
	fl.Int64Var(&s.ShardBytes, "shard-bytes", s.ShardBytes, "target bytes per shard")
	fl.Float64Var(&s.WriteRate, "write-rate", s.WriteRate, "rows per second per worker (WriteRate; 0: unlimited): dev's workers share one limiter of --write-rate x --max-concurrency, the table's budget on AWS; it halves when DynamoDB throttles")
	fl.Int64Var(&s.MaxUploadBytes, "max-upload-bytes", s.MaxUploadBytes, "largest CSV, TSV or JSON Lines upload the splitter reads (MaxUploadBytes; 0: no limit)")
	fl.StringVar(&profilePath, "profile", "", "profile YAML (default: the built-in default profile)")
	fl.StringVar(&logLevel, "log-level", "info", "handler log level on stderr: debug, info, warn, error")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		name := cmp.Or(g.stack, "dev")
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
		if g.endpoint == "" {
			srv, err := motoserver.Start()
			if err != nil {
				return fmt.Errorf("%w; or pass --endpoint URL of a running emulator", err)
			}
			defer func() {
				srv.Stop()
				log.Info("emulator stopped", "endpoint", srv.Endpoint)
			}()
			if !srv.Patched {
				log.Warn("moto_server runs without the TransactWriteItems fix (no Python with moto found to apply it): imports will be slow, see docs/decisions/0008-importctl-dev-and-moto.md")
			}
			fmt.Fprintf(env.Stdout, "emulator: moto_server on %s (pid %d; stops when importctl dev stops)\n", srv.Endpoint, srv.Pid())
			g.endpoint = srv.Endpoint
			var cancel context.CancelCauseFunc
			ctx, cancel = context.WithCancelCause(ctx)
			defer cancel(nil)
			go func() {
				select {
				case <-srv.Exited():
					cancel(fmt.Errorf("the emulator (moto_server) exited: %s", lastLine(srv.Output())))
				case <-ctx.Done():
				}
			}()
		}
		clients, err := awsclient.New(ctx, g.awsSettings())
		if err != nil {
			return err
		}
		res, err := provision(ctx, clients, name, s, log)
		if err != nil {
			return err
		}
		// On an emulator, the worker function and its mapping, for
		// importctl scale; the shard pollers follow their cap.
		if err := stack.RegisterWorker(ctx, clients, res, s); err != nil {
			return err
		}
		workerCap := func(ctx context.Context) (int, error) {
			w, err := stack.ReadWorkerCap(ctx, clients, res)
			return w.Effective(), err
		}
		region := ""
		if g.region != "" {
			region = " --region " + g.region
		}
		fmt.Fprintf(env.Stdout, "stack %s on %s\nbucket: %s\nupload: AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=%s aws --endpoint-url %s s3 cp products.csv s3://%s/%s\nstatus: %s status --endpoint %s --stack %s%s\n",
			name, g.endpoint, res.Bucket, clients.Config.Region, g.endpoint, res.Bucket, s3store.IncomingPrefix, program(), g.endpoint, name, region)
		fns := handler.FromClients(clients, handler.Config{
			Bucket: res.Bucket, StateTable: res.StateTable, ProductsTable: res.ProductsTable,
			ShardQueueURL: res.ShardQueueURL, DLQURL: res.DLQURL, FailureTTL: time.Duration(s.FailureTTLDays) * 24 * time.Hour,
			Options: handler.Options{
				Profile: p, Split: split.Options{ShardRows: s.ShardRows, ShardBytes: s.ShardBytes, MaxText: s.MaxUploadBytes},
				Pool: s.PoolSize, CheckpointEvery: s.CheckpointEvery, LeaseTTL: s.WorkerTimeout,
				DeadlineMargin: min(10*time.Second, s.WorkerTimeout/5), Owner: "dev", Log: log, StackName: name,
				WriteRate: s.WriteRate * float64(s.MaxConcurrency), // one process plays every worker
				Triage:    triage.Policy{BaseDelay: retryDelay},
			},
		})
		return eventsource.Run(ctx, eventsource.Config{
			SQS: clients.SQS, UploadQueueURL: res.UploadQueueURL, ShardQueueURL: res.ShardQueueURL, DLQURL: res.DLQURL,
			BatchSize: s.BatchSize, MaxConcurrency: s.MaxConcurrency, WorkerTimeout: s.WorkerTimeout,
			UntilIdle: untilIdle, Log: log, ShortPoll: true,
			Concurrency: workerCap, FailedUploadsURL: res.SplitterFailedQueueURL,
		}, fns)
	}
	return cmd
}

// program is how to run importctl from any directory: the running
// binary's path when it is importctl (bin/importctl after make), else
// "importctl" (on PATH; or in process, in tests).
func program() string {
	if exe, err := os.Executable(); err == nil && filepath.Base(exe) == "importctl" {
		return exe
	}
	return "importctl"
}

// lastLine is the last non-empty line of s (a process's last words).
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// loadProfile loads the profile at path, or the built-in default when path is "".
func loadProfile(path string) (*profile.Profile, error) {
	if path == "" {
		return profile.Default(), nil
	}
	p, err := profile.Load(path)
	if err != nil {
		return nil, usage("%w", err) // "profile <path>: ..."
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
