package shard

// Observability of the worker: tracing spans, metrics and the row-failure
// log, through two small ports that this package declares so that the
// engine imports no tracing or metrics SDK. Both are optional: a nil Tracer
// or Metrics in Deps records nothing. On AWS, internal/aws/xraytrace
// implements Tracer (X-Ray subsegments) and internal/aws/emf implements
// Metrics (CloudWatch Embedded Metric Format lines on stdout).
//
// Row failures are never logged one per row: each checkpoint that records
// failures logs ONE line with its counts by reason and a few sample rows, so
// a million bad rows make a thousand lines at the default checkpoint size,
// not a million.

import (
	"context"
	"log/slog"
	"time"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/queue"
)

// Tracer times the worker's steps: claim, each checkpoint, each sink write,
// finish. Start begins a span named name under ctx's current span and
// returns the context to run the step in (the store's and sink's requests
// nest under the span) and a function that ends the span with the step's
// error. Implementations must be safe for concurrent use and must not fail:
// with no trace in ctx, Start returns ctx and a no-op.
type Tracer interface {
	Start(ctx context.Context, name string) (context.Context, func(error))
}

// Span names the worker starts.
const (
	SpanClaim      = "claim"
	SpanCheckpoint = "checkpoint"
	SpanSinkWrite  = "sink.write"
	SpanFinish     = "finish"
)

// Metrics receives the worker's measurements. Methods are called from the
// committer and retry paths (never per row) and must be safe for concurrent
// use, quick, and free of network calls.
type Metrics interface {
	// Checkpointed: one checkpoint is durable.
	Checkpointed(ctx context.Context, c Checkpointed)
	// Retried: a transient error of op ("write", "checkpoint", "put
	// failures") is being retried in-process.
	Retried(ctx context.Context, m queue.Manifest, op string, reason failure.Reason)
	// BreakerChanged: the sink's circuit breaker moved from one state to
	// another ("closed", "open", "half-open").
	BreakerChanged(from, to string)
	// Processed: a Process call that claimed its shard ended with res
	// (and err) after took.
	Processed(ctx context.Context, m queue.Manifest, res Result, err error, took time.Duration)
}

// Checkpointed describes one durable checkpoint of a shard.
type Checkpointed struct {
	BatchID string
	Shard   int
	TraceID string
	// Rows of the checkpoint: imported, and failed by reason (the layer is
	// Reason.Layer()). Rows displaced by this checkpoint's products are
	// another shard's and are not counted here.
	Imported int64
	// Superseded rows changed nothing: newer uploads hold every field they
	// would change (not failures).
	Superseded int64
	Failed     int64
	ByReason   map[failure.Reason]int64
	// Lag is the time since the shard's previous checkpoint in this Process
	// call (or since its claim): how much work a crash would have redone.
	Lag time.Duration
	// NextRow is the row the checkpoint resumes from.
	NextRow int64
}

// SampleFailures is how many failed rows a checkpoint's log line shows.
const SampleFailures = 3

// failureSample is one failed row in a log line.
type failureSample struct {
	Row     int64  `json:"row"`
	Reason  string `json:"reason"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// byReason counts records by reason.
func byReason(fails []failure.Record) map[failure.Reason]int64 {
	if len(fails) == 0 {
		return nil
	}
	m := make(map[failure.Reason]int64, 4)
	for _, f := range fails {
		m[f.Reason]++
	}
	return m
}

// logFailures logs the failures of one durable checkpoint as one line: the
// counts by reason and the first SampleFailures rows (in row order).
func (r *run) logFailures(ctx context.Context, fails []failure.Record, counts map[failure.Reason]int64, nextRow int64) {
	if len(fails) == 0 || !r.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	reasons := make(map[string]int64, len(counts))
	for k, v := range counts {
		reasons[string(k)] = v
	}
	samples := make([]failureSample, 0, SampleFailures)
	for _, f := range fails {
		if len(samples) == SampleFailures {
			break
		}
		samples = append(samples, failureSample{Row: f.Row, Reason: string(f.Reason), Field: f.Field, Message: f.Message})
	}
	r.log.LogAttrs(ctx, slog.LevelInfo, "rows failed",
		slog.Int("rows_failed", len(fails)),
		slog.Any("by_reason", reasons),
		slog.Any("samples", samples),
		slog.Int64("next_row", nextRow))
}

// span starts a span with the worker's tracer.
func (w *Worker) span(ctx context.Context, name string) (context.Context, func(error)) {
	if w.tracer == nil {
		return ctx, func(error) {}
	}
	return w.tracer.Start(ctx, name)
}

// noMetrics records nothing.
type noMetrics struct{}

func (noMetrics) Checkpointed(context.Context, Checkpointed)                              {}
func (noMetrics) Retried(context.Context, queue.Manifest, string, failure.Reason)         {}
func (noMetrics) BreakerChanged(string, string)                                           {}
func (noMetrics) Processed(context.Context, queue.Manifest, Result, error, time.Duration) {}
