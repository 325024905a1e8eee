package handler

import (
	"context"
	"log/slog"
	"sync"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

// RequestIDKey is the log attribute that names the Lambda invocation a line
// belongs to (the context's lambdacontext.LambdaContext.AwsRequestID).
const RequestIDKey = "aws_request_id"

// invocations are the Lambda request ids of the invocations a Functions is
// running.
type invocations struct {
	mu  sync.Mutex
	ids map[string]int
}

// start registers the invocation of ctx (if it is one) until the returned
// function is called.
func (in *invocations) start(ctx context.Context) func() {
	lc, ok := lambdacontext.FromContext(ctx)
	if !ok || lc.AwsRequestID == "" {
		return func() {}
	}
	id := lc.AwsRequestID
	in.mu.Lock()
	if in.ids == nil {
		in.ids = map[string]int{}
	}
	in.ids[id]++
	in.mu.Unlock()
	return func() {
		in.mu.Lock()
		if in.ids[id]--; in.ids[id] <= 0 {
			delete(in.ids, id)
		}
		in.mu.Unlock()
	}
}

// only returns the request id of the one invocation running, "" when none
// or several run.
func (in *invocations) only() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.ids) != 1 {
		return ""
	}
	for id := range in.ids {
		return id
	}
	return ""
}

// requestIDHandler adds aws_request_id to every record: the id of the
// invocation in the record's context, else the id of the one invocation
// running. Lambda runs one invocation per sandbox at a time, so every line
// a handler's call logs carries its id, whether or not the code that logs
// passes the context; when several run in one process (importctl dev, a
// Lambda managed instance with AWS_LAMBDA_MAX_CONCURRENCY) a line logged
// without a context carries none rather than another invocation's.
type requestIDHandler struct {
	slog.Handler
	inv *invocations
}

// Handle implements slog.Handler.
func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	id := ""
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		id = lc.AwsRequestID
	}
	if id == "" {
		id = h.inv.only()
	}
	if id != "" {
		r = r.Clone()
		r.AddAttrs(slog.String(RequestIDKey, id))
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h requestIDHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return requestIDHandler{Handler: h.Handler.WithAttrs(as), inv: h.inv}
}

// WithGroup implements slog.Handler.
func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{Handler: h.Handler.WithGroup(name), inv: h.inv}
}
