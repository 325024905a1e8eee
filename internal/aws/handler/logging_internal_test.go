package handler

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

// TestRequestIDWithSeveralInvocations: while two invocations run in one
// process, a line logged with an invocation's context carries its id, and a
// line logged without one carries none (never the other invocation's);
// with one invocation running, a line without a context carries its id.
func TestRequestIDWithSeveralInvocations(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	inv := &invocations{}
	log := slog.New(requestIDHandler{Handler: slog.NewJSONHandler(&buf, nil), inv: inv}).With("batch_id", "b-1")
	ctxA := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "a"})
	ctxB := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "b"})
	endA := inv.start(ctxA)
	log.Info("only a")
	endB := inv.start(ctxB)
	log.InfoContext(ctxA, "a with context")
	log.InfoContext(ctxB, "b with context")
	log.Info("both, no context")
	endA()
	log.Info("only b")
	endB()
	log.Info("none")
	want := map[string]any{"only a": "a", "a with context": "a", "b with context": "b", "both, no context": nil, "only b": "b", "none": nil}
	for line := range strings.SplitSeq(strings.TrimSpace(buf.String()), "\n") {
		var l map[string]any
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatal(err)
		}
		if got := l[RequestIDKey]; got != want[l["msg"].(string)] || l["batch_id"] != "b-1" {
			t.Errorf("%s: aws_request_id %v, want %v", line, got, want[l["msg"].(string)])
		}
	}
}
