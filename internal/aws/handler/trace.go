package handler

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/aws/smithy-go/middleware"

	"github.com/catalog-import/catalog-import/internal/aws/sqsqueue"
	"github.com/catalog-import/catalog-import/internal/queue"
	"github.com/catalog-import/catalog-import/internal/shard"
)

// attrTraceHeader is the SQS message system attribute of the X-Ray trace
// header (Lambda passes it in the record's attributes).
const attrTraceHeader = "AWSTraceHeader"

// Tracer is the tracing the functions need (internal/aws/xraytrace): the
// engine's spans, a segment per shard delivery continuing the manifest's
// trace, the header to hand on with manifests, and the SDK clients'
// instrumentation. Implementations must not fail or print when there is no
// trace.
type Tracer interface {
	shard.Tracer
	// Continue begins the segment of one delivery in the trace traceHeader
	// names (a subsegment of the invocation when it names none), with
	// searchable annotations.
	Continue(ctx context.Context, name, traceHeader string, annotations map[string]any) (context.Context, func(error))
	// Header returns the trace header of ctx's current span ("" when none).
	Header(ctx context.Context) string
	// Instrument adds tracing to the clients built with these API options.
	Instrument(apiOptions *[]func(*middleware.Stack) error)
}

// lambdaTraceKey is the context key under which aws-lambda-go puts the
// invocation's X-Ray trace header (a plain string key, its choice).
const lambdaTraceKey = "x-amzn-trace-id"

// traceHeader is the trace header to hand on from ctx: the current span's,
// else the invocation's (Lambda passes one even when tracing is off).
func (f *Functions) traceHeader(ctx context.Context) string {
	if f.o.Tracer != nil {
		if h := f.o.Tracer.Header(ctx); h != "" {
			return h
		}
	}
	h, _ := ctx.Value(lambdaTraceKey).(string)
	return h
}

// continueTrace begins the segment of one delivery of m (name: the
// function's role) in m's trace; delivered is the AWSTraceHeader the
// delivery carried.
func (f *Functions) continueTrace(ctx context.Context, name string, m queue.Manifest, delivered string) (context.Context, func(error)) {
	if f.o.Tracer == nil {
		return ctx, func(error) {}
	}
	return f.o.Tracer.Continue(ctx, name, sqsqueue.TraceHeader(m.TraceID, delivered),
		map[string]any{"batch_id": m.BatchID, "shard": m.Shard})
}

// tracedQueue is the shard queue whose sends hand on the trace header of
// the sending context (its current span's, else the invocation's).
type tracedQueue struct {
	queue.Queue
	f *Functions
}

// Send sends the manifests with ctx's trace header.
func (q tracedQueue) Send(ctx context.Context, delay time.Duration, manifests ...queue.Manifest) error {
	return q.Queue.Send(sqsqueue.WithTraceHeader(ctx, q.f.traceHeader(ctx)), delay, manifests...)
}

// NewTraceID returns a new X-Ray trace id (1-<epoch seconds, 8 hex>-<96
// random bits, 24 hex>): the splitter's when its invocation carries none
// (importctl dev, tests), so failure records and log lines of one upload
// still share an id.
func NewTraceID(now time.Time) string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return fmt.Sprintf("1-%08x-%s", uint32(now.Unix()), hex.EncodeToString(b[:]))
}
