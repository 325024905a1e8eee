// Package xraytrace is the AWS X-Ray adapter of the engine's tracing port
// (shard.Tracer) and of the Lambda handlers' (handler.Tracer), built on
// github.com/aws/aws-xray-sdk-go: subsegments for the engine's steps, one
// segment per shard delivery in the trace its manifest names, and X-Ray
// instrumentation of the AWS SDK v2 clients (one subsegment per request,
// and the trace header on each request; the handlers leave out the
// products sink's client, whose requests are one per product).
//
// Tracing is on only inside Lambda with an X-Ray daemon (FromEnv). Locally,
// in importctl and in tests it is off: FromEnv returns nil, nothing is
// configured, nothing is printed. When on, the SDK's own messages go to the
// functions' slog logger (at debug, or warn for the SDK's errors), never to
// stdout, where the EMF metric lines are; a missing segment is ignored, not
// logged, and sampling decisions are local (no sampling-rule polling).
//
// Only the functions' main packages import this package, so importctl does
// not link the X-Ray SDK.
package xraytrace

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/aws/aws-xray-sdk-go/header"
	"github.com/aws/aws-xray-sdk-go/instrumentation/awsv2"
	"github.com/aws/aws-xray-sdk-go/strategy/ctxmissing"
	"github.com/aws/aws-xray-sdk-go/strategy/sampling"
	"github.com/aws/aws-xray-sdk-go/xray"
	"github.com/aws/aws-xray-sdk-go/xraylog"
	"github.com/aws/smithy-go/middleware"
)

// Tracer traces with X-Ray. Build it with FromEnv or New.
type Tracer struct{}

// FromEnv returns a Tracer when the process runs in Lambda
// (AWS_LAMBDA_FUNCTION_NAME) with an X-Ray daemon (AWS_XRAY_DAEMON_ADDRESS,
// which Lambda sets when tracing is active), and nil otherwise: then tracing
// is off. A daemon address the SDK refuses is logged and also turns tracing
// off: tracing never stops an import.
func FromEnv(getenv func(string) string, log *slog.Logger) *Tracer {
	addr := getenv("AWS_XRAY_DAEMON_ADDRESS")
	if getenv("AWS_LAMBDA_FUNCTION_NAME") == "" || addr == "" {
		return nil
	}
	t, err := New(addr, log)
	if err != nil {
		log.Warn("X-Ray tracing is off", "error", err)
		return nil
	}
	return t
}

// New configures the X-Ray SDK to send to the daemon at addr ("host:port",
// or "tcp:host:port udp:host:port") and returns a Tracer. The SDK's
// configuration is process-wide: call New once, before any tracing.
func New(addr string, log *slog.Logger) (*Tracer, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	xray.SetLogger(sdkLogger{log})
	local, err := sampling.NewLocalizedStrategy()
	if err != nil {
		return nil, fmt.Errorf("x-ray sampling: %w", err)
	}
	if err := xray.Configure(xray.Config{
		DaemonAddr:             addr,
		SamplingStrategy:       local,
		ContextMissingStrategy: ctxmissing.NewDefaultIgnoreErrorStrategy(),
	}); err != nil {
		return nil, fmt.Errorf("x-ray daemon address %q: %w", addr, err)
	}
	return &Tracer{}, nil
}

// Start begins a subsegment named name under ctx's segment (in Lambda, the
// invocation's facade segment when there is no other) and returns its
// context and a function that closes it with the step's error. Without a
// segment in ctx it returns ctx and a no-op.
func (t *Tracer) Start(ctx context.Context, name string) (context.Context, func(error)) {
	sctx, seg := xray.BeginSubsegment(ctx, name)
	if seg == nil {
		return ctx, func(error) {}
	}
	return sctx, func(err error) { seg.Close(err) }
}

// Continue begins the segment of one shard delivery named name in the trace
// that traceHeader names ("Root=...;Parent=...;Sampled=..."): its parent is
// the span that sent the manifest, and the header's sampling decision is
// kept. Annotations (strings, numbers, booleans) are indexed for search,
// e.g. annotation.batch_id. A header without a Root begins a subsegment of
// the invocation instead (Start).
func (t *Tracer) Continue(ctx context.Context, name, traceHeader string, annotations map[string]any) (context.Context, func(error)) {
	h := header.FromString(traceHeader)
	if h.TraceID == "" {
		ctx, end := t.Start(ctx, name)
		annotate(xray.GetSegment(ctx), annotations)
		return ctx, end
	}
	// The request only feeds the sampling rules when the header carries no
	// decision; a delivery has no URL of its own.
	r := &http.Request{Method: "SQS", Host: name, URL: &url.URL{Path: "/" + name}, Header: http.Header{}}
	sctx, seg := xray.NewSegmentFromHeader(ctx, name, r, h)
	annotate(seg, annotations)
	return sctx, func(err error) { seg.Close(err) }
}

func annotate(seg *xray.Segment, annotations map[string]any) {
	if seg == nil {
		return
	}
	for k, v := range annotations {
		_ = seg.AddAnnotation(k, v) // only refuses other types, which callers do not pass
	}
}

// Header returns the trace header to hand on from ctx's current segment or
// subsegment (its id as the Parent), or "" when ctx has none.
func (t *Tracer) Header(ctx context.Context) string {
	seg := xray.GetSegment(ctx)
	if seg == nil {
		return ""
	}
	return seg.DownstreamHeader().String()
}

// Instrument adds X-Ray to the clients built with these API options (the
// AWS SDK v2's aws.Config.APIOptions or awsclient.Settings.APIOptions): a
// subsegment per request under the caller's span, and the trace header on
// every request.
func (t *Tracer) Instrument(apiOptions *[]func(*middleware.Stack) error) {
	awsv2.AWSV2Instrumentor(apiOptions)
}

// sdkLogger sends the SDK's messages to slog: errors as warnings (tracing
// failing must not read as the import failing), the rest at debug.
type sdkLogger struct{ log *slog.Logger }

func (l sdkLogger) Log(level xraylog.LogLevel, msg fmt.Stringer) {
	lv := slog.LevelDebug
	if level >= xraylog.LogLevelWarn {
		lv = slog.LevelWarn
	}
	if l.log.Enabled(context.Background(), lv) {
		l.log.Log(context.Background(), lv, "x-ray: "+msg.String())
	}
}
