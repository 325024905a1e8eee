package xraytrace_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/catalog-import/catalog-import/internal/aws/xraytrace"
)

// TestFromEnv: tracing is on only in Lambda with a daemon address.
func TestFromEnv(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		on   bool
	}{
		{"locally", map[string]string{}, false},
		{"daemon address outside Lambda", map[string]string{"AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000"}, false},
		{"Lambda without tracing", map[string]string{"AWS_LAMBDA_FUNCTION_NAME": "fn"}, false},
		{"Lambda with a daemon", map[string]string{"AWS_LAMBDA_FUNCTION_NAME": "fn", "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := xraytrace.FromEnv(func(k string) string { return tt.env[k] }, slog.New(slog.DiscardHandler))
			if (got != nil) != tt.on {
				t.Errorf("FromEnv = %v, want tracing on: %v", got, tt.on)
			}
		})
	}
}

// TestQuietWithoutTrace: with tracing configured but no trace in the
// context (a local run, a test, a call outside any delivery), spans and
// instrumented SDK calls print nothing, log nothing above debug, and fail
// nothing.
func TestQuietWithoutTrace(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	stdout, stderr := capture(t)
	tr, err := xraytrace.New("127.0.0.1:2000", log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, end := tr.Start(context.Background(), "claim")
	end(errors.New("a step failed"))
	if h := tr.Header(ctx); h != "" {
		t.Errorf("Header without a trace = %q, want empty", h)
	}
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("a", "b", ""),
		BaseEndpoint: aws.String("http://" + closedPort(t)), RetryMaxAttempts: 1}
	tr.Instrument(&cfg.APIOptions)
	_, callErr := sqs.NewFromConfig(cfg).ListQueues(context.Background(), &sqs.ListQueuesInput{})
	if callErr == nil || strings.Contains(callErr.Error(), "segment") {
		t.Errorf("ListQueues to a closed port: %v, want a connection error that is not about tracing", callErr)
	}
	if out, errOut := stdout(), stderr(); out != "" || errOut != "" || logs.Len() != 0 {
		t.Errorf("noise without a trace: stdout %q, stderr %q, logs %q", out, errOut, logs.String())
	}
}

// TestContinueSendsTheSegment: a delivery's segment joins the trace its
// header names, under the header's parent, with its annotations and the
// subsegments of the steps; Header hands on the current span as parent.
func TestContinueSendsTheSegment(t *testing.T) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tr, err := xraytrace.New(conn.LocalAddr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	const root = "1-6743a1c0-0123456789abcdef01234567"
	ctx, end := tr.Continue(context.Background(), "shard-worker", "Root="+root+";Parent=53995c3f42cd8ad8;Sampled=1",
		map[string]any{"batch_id": "b-1", "shard": 2})
	sctx, endStep := tr.Start(ctx, "checkpoint")
	h := tr.Header(sctx)
	endStep(nil)
	end(nil)
	if !strings.HasPrefix(h, "Root="+root+";Parent=") || !strings.HasSuffix(h, ";Sampled=1") {
		t.Errorf("Header inside the step = %q, want the trace with the step as parent", h)
	}
	buf := make([]byte, 1<<16)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(buf[:n])
	for _, want := range []string{`"trace_id":"` + root + `"`, `"parent_id":"53995c3f42cd8ad8"`, `"name":"shard-worker"`,
		`"batch_id":"b-1"`, `"name":"checkpoint"`} {
		if !strings.Contains(doc, want) {
			t.Errorf("segment %s: no %s", doc, want)
		}
	}
}

// capture redirects os.Stdout and os.Stderr until t ends; the functions
// return what was written so far.
func capture(t *testing.T) (stdout, stderr func() string) {
	t.Helper()
	redirect := func(f **os.File) func() string {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		old := *f
		*f = w
		var got bytes.Buffer
		done := make(chan struct{})
		go func() { _, _ = io.Copy(&got, r); close(done) }()
		restored := false
		restore := func() {
			if !restored {
				restored = true
				*f = old
				w.Close()
				<-done
			}
		}
		t.Cleanup(restore)
		return func() string { restore(); return got.String() }
	}
	return redirect(&os.Stdout), redirect(&os.Stderr)
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
