package sqsqueue

import (
	"context"
	"strings"

	"github.com/aws/aws-xray-sdk-go/header"
)

// traceHeaderKey is the context key of WithTraceHeader.
type traceHeaderKey struct{}

// WithTraceHeader returns ctx carrying the X-Ray trace header of the
// caller's current span ("Root=...;Parent=...;Sampled=..."). Send hands it
// on as the AWSTraceHeader of each manifest of that trace, so the span that
// sent a manifest becomes the parent of the worker's segment.
func WithTraceHeader(ctx context.Context, traceHeader string) context.Context {
	if traceHeader == "" {
		return ctx
	}
	return context.WithValue(ctx, traceHeaderKey{}, traceHeader)
}

// TraceID returns the trace id of an X-Ray trace header (its Root), or s
// itself when s is already a bare trace id.
func TraceID(s string) string {
	if !strings.Contains(s, "=") {
		return s
	}
	return header.FromString(s).TraceID
}

// TraceHeader returns the trace header to continue the trace of a manifest
// whose TraceID is traceID, given the header a delivery carried (the
// AWSTraceHeader attribute, possibly empty): that header when it is of the
// same trace (it names the parent span), else a header naming only the
// trace. "" when there is no trace id.
func TraceHeader(traceID, delivered string) string {
	id := TraceID(traceID)
	if delivered != "" && (id == "" || TraceID(delivered) == id) {
		return delivered
	}
	if !ValidTraceID(id) {
		return ""
	}
	return header.RootPrefix + id
}

// traceHeader is the AWSTraceHeader of a manifest of trace traceID sent
// from ctx ("" for none).
func traceHeader(ctx context.Context, traceID string) string {
	h, _ := ctx.Value(traceHeaderKey{}).(string)
	id := TraceID(traceID)
	if !ValidTraceID(id) {
		return ""
	}
	if TraceID(h) == id {
		return h
	}
	return header.RootPrefix + id
}

// ValidTraceID reports whether id has the X-Ray trace id form
// 1-<8 hex digits>-<24 hex digits>; SQS refuses other AWSTraceHeader values.
func ValidTraceID(id string) bool {
	if len(id) != 35 || id[0] != '1' || id[1] != '-' || id[10] != '-' {
		return false
	}
	for i := 2; i < len(id); i++ {
		if i == 10 {
			continue
		}
		if c := id[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
