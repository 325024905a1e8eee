package cli

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/catalog-import/catalog-import/internal/aws/awstest"
	"github.com/catalog-import/catalog-import/internal/aws/eventsource"
	"github.com/catalog-import/catalog-import/internal/aws/stack"
)

// blockingWorker stands for the worker function: each invocation waits
// until the test releases it, and the most invocations at once are counted.
type blockingWorker struct {
	mu            sync.Mutex
	inflight, max int
	release       chan struct{}
}

func (w *blockingWorker) Worker(ctx context.Context, _ events.SQSEvent) (events.SQSEventResponse, error) {
	w.mu.Lock()
	w.inflight++
	w.max = max(w.max, w.inflight)
	w.mu.Unlock()
	select {
	case <-w.release:
	case <-ctx.Done():
	}
	w.mu.Lock()
	w.inflight--
	w.mu.Unlock()
	return events.SQSEventResponse{}, nil
}

func (w *blockingWorker) Splitter(context.Context, events.S3Event) error { return nil }
func (w *blockingWorker) Triage(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
	return events.SQSEventResponse{}, nil
}

// counts returns the invocations running and the most at once since the
// last reset (reset: start counting again).
func (w *blockingWorker) counts(reset bool) (inflight, most int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	inflight, most = w.inflight, w.max
	if reset {
		w.max = w.inflight
	}
	return inflight, most
}

// TestScaleWhileDevRuns: `importctl scale` on moto changes the cap of the
// worker function and mapping importctl dev registers, and dev's event
// source follows it while shards wait: from 2 workers at once to 5, then
// back to 2 once the running invocations end.
func TestScaleWhileDevRuns(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := awstest.Clients(t)
	name := awstest.Name("devscale")
	s := stack.Defaults()
	s.MaxConcurrency = 2
	res, err := stack.Provision(ctx, c, name, s)
	if err != nil {
		t.Fatal(err)
	}
	if err := stack.RegisterWorker(ctx, c, res, s); err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		if _, err := c.SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(res.ShardQueueURL), MessageBody: aws.String(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	w := &blockingWorker{release: make(chan struct{})}
	var logs syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- eventsource.Run(ctx, eventsource.Config{SQS: c.SQS, UploadQueueURL: res.UploadQueueURL, ShardQueueURL: res.ShardQueueURL,
			BatchSize: 1, MaxConcurrency: s.MaxConcurrency, WorkerTimeout: time.Minute, ShortPoll: true,
			Log: slog.New(slog.NewJSONHandler(&logs, nil)), ConcurrencyEvery: 100 * time.Millisecond,
			Concurrency: func(ctx context.Context) (int, error) {
				cp, err := stack.ReadWorkerCap(ctx, c, res)
				return cp.Effective(), err
			}}, w)
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				in, most := w.counts(false)
				t.Fatalf("waiting for %s: %d invocations running, at most %d; logs:\n%s", what, in, most, logs.String())
			}
		}
	}
	running := func(n int) func() bool { return func() bool { in, _ := w.counts(false); return in == n } }
	scale := func(n int) {
		t.Helper()
		code, stdout, stderr := importctl(t, "scale", "--endpoint", awstest.Endpoint(t), "--region", "us-east-1", "--stack", name, "--concurrency", fmt.Sprint(n))
		if code != 0 || !strings.Contains(stdout, fmt.Sprintf("worker cap of %s: %d", name, n)) {
			t.Fatalf("scale %d: exit %d\n%s%s", n, code, stdout, stderr)
		}
	}

	waitFor("2 workers", running(2))
	if _, most := w.counts(true); most != 2 {
		t.Fatalf("%d workers at once under a cap of 2", most)
	}
	scale(5)
	waitFor("5 workers after scale 5", running(5))
	if _, most := w.counts(true); most != 5 {
		t.Fatalf("%d workers at once under a cap of 5", most)
	}
	scale(2)
	waitFor("the event source to see the cap of 2", func() bool { return strings.Contains(logs.String(), `"max_concurrency":2,"was":5`) })
	for range 5 { // the running invocations end; the pollers over the cap stop
		w.release <- struct{}{}
	}
	waitFor("2 workers after scale 2", running(2))
	w.counts(true)
	for range 6 {
		w.release <- struct{}{}
		waitFor("the next invocation", running(2))
	}
	if _, most := w.counts(false); most != 2 {
		t.Errorf("%d workers at once after scaling down to 2", most)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
