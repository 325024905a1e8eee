package lambdaruntime_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/catalog-import/catalog-import/internal/local/lambdaruntime"
)

var testBootstrap struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

// bootstrap builds testdata/bootstrap (a function on aws-lambda-go's
// runtime client, built as the Makefile builds the real ones) once.
func bootstrap(t *testing.T) string {
	t.Helper()
	testBootstrap.once.Do(func() {
		dir, err := os.MkdirTemp("", "lambdaruntime-test")
		if err != nil {
			testBootstrap.err = err
			return
		}
		testBootstrap.path = filepath.Join(dir, "bootstrap")
		cmd := exec.Command("go", "build", "-trimpath", "-tags", "lambda.norpc", "-o", testBootstrap.path, "./testdata/bootstrap")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		testBootstrap.out, testBootstrap.err = cmd.CombinedOutput()
	})
	if testBootstrap.err != nil {
		t.Fatalf("build testdata/bootstrap: %v\n%s", testBootstrap.err, testBootstrap.out)
	}
	return testBootstrap.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if testBootstrap.path != "" {
		os.RemoveAll(filepath.Dir(testBootstrap.path))
	}
	os.Exit(code)
}

const trace = "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1"

// TestRun invokes a function built on aws-lambda-go's runtime client through
// the Runtime API, once per way an invocation can end, and checks what
// Lambda would return and log.
func TestRun(t *testing.T) {
	t.Parallel()
	bin := bootstrap(t)
	for _, tc := range []struct {
		name      string
		init      string // INIT of testdata/bootstrap
		do        string
		timeout   time.Duration
		outcome   lambdaruntime.Outcome
		errorType string
		payload   string // in the payload
		logs      []string
	}{
		{name: "response", do: "echo", outcome: lambdaruntime.Succeeded, payload: `"greeting":"hello"`,
			logs: []string{"START RequestId: req-1 Version: $LATEST", `handling "echo"`, "END RequestId: req-1", "REPORT RequestId: req-1\t", "Memory Size: 256 MB", "XRAY TraceId: 1-5bef4de7-ad49b0e87f6ef6c87fc2e700"}},
		{name: "function error", do: "error", outcome: lambdaruntime.FunctionError, errorType: "errorString",
			payload: `{"errorMessage":"boom: the handler failed","errorType":"errorString"}`, logs: []string{"END RequestId: req-1"}},
		{name: "panic", do: "panic", outcome: lambdaruntime.FunctionError, errorType: "string", payload: `"errorMessage":"oops"`},
		{name: "gives up at the deadline", do: "wait", timeout: 1500 * time.Millisecond, outcome: lambdaruntime.TimedOut, errorType: "Sandbox.Timedout",
			payload: `{"errorMessage":"RequestId: req-1 Error: Task timed out after 1.50 seconds","errorType":"Sandbox.Timedout"}`,
			logs:    []string{"req-1 Task timed out after 1.50 seconds"}},
		{name: "ignores the deadline", do: "hang", timeout: time.Second, outcome: lambdaruntime.TimedOut, errorType: "Sandbox.Timedout",
			payload: "Task timed out after 1.00 seconds"},
		{name: "exits while invoked", do: "exit", outcome: lambdaruntime.RuntimeExited, errorType: "Runtime.ExitError",
			payload: `{"errorMessage":"RequestId: req-1 Error: Runtime exited with error: exit status 3","errorType":"Runtime.ExitError"}`},
		{name: "response too large", do: "big", outcome: lambdaruntime.FunctionError, errorType: "Function.ResponseSizeTooLarge", payload: "maximum allowed payload size"},
		{name: "init exits", init: "fatal", outcome: lambdaruntime.InitError, errorType: "Runtime.ExitError",
			payload: `{"errorMessage":"RequestId: req-1 Error: Runtime exited with error: exit status 1","errorType":"Runtime.ExitError"}`,
			logs:    []string{"environment variable BUCKET is not set", "INIT_REPORT Init Duration", "Error Type: Runtime.ExitError"}},
		{name: "init error posted", init: "post", outcome: lambdaruntime.InitError, errorType: "InitFailed",
			payload: `{"errorMessage":"cannot start","errorType":"InitFailed"}`},
		{name: "init too slow", init: "hang", timeout: time.Second, outcome: lambdaruntime.InitError, errorType: "Sandbox.Timedout", payload: "Task timed out"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.timeout == 0 {
				tc.timeout = 20 * time.Second
			}
			var logs bytes.Buffer
			fn := lambdaruntime.Function{Name: "Test", Bootstrap: bin, Timeout: tc.timeout, MemoryMB: 256, Tracing: true, Logs: &logs,
				Env: map[string]string{"GREETING": "hello", "INIT": tc.init}}
			payload, _ := json.Marshal(map[string]string{"do": tc.do})
			inv := lambdaruntime.Invocation{RequestID: "req-1", Payload: payload, FunctionARN: "arn:aws:lambda:us-east-1:123456789012:function:Test", TraceID: trace}
			started := time.Now()
			res, err := lambdaruntime.Run(context.Background(), fn, inv)
			if err != nil {
				t.Fatal(err)
			}
			if res.Outcome != tc.outcome || res.ErrorType != tc.errorType || !bytes.Contains(res.Payload, []byte(tc.payload)) {
				t.Errorf("got %s %q %.300s\nwant %s %q with %s\nlogs:\n%.2000s", res.Outcome, res.ErrorType, res.Payload, tc.outcome, tc.errorType, tc.payload, logs.String())
			}
			for _, l := range tc.logs {
				if !strings.Contains(logs.String(), l) {
					t.Errorf("logs lack %q:\n%.2000s", l, logs.String())
				}
			}
			if tc.outcome == lambdaruntime.TimedOut && res.Duration != tc.timeout {
				t.Errorf("a timed-out invocation lasted %s, want the timeout %s", res.Duration, tc.timeout)
			}
			if tc.outcome != lambdaruntime.Succeeded {
				return
			}
			// The function saw the invocation's request id, ARN, trace
			// header and a deadline of the timeout from when it took it.
			var got struct {
				RequestID  string `json:"request_id"`
				ARN        string `json:"arn"`
				Trace      string `json:"trace"`
				DeadlineMs int64  `json:"deadline_ms"`
			}
			if err := json.Unmarshal(res.Payload, &got); err != nil {
				t.Fatal(err)
			}
			if got.RequestID != inv.RequestID || got.ARN != inv.FunctionARN || got.Trace != trace {
				t.Errorf("the function saw %+v, want the invocation's request id, ARN and trace header", got)
			}
			if d := time.UnixMilli(got.DeadlineMs).Sub(started); d < tc.timeout-time.Second || d > tc.timeout+time.Second {
				t.Errorf("deadline %s after the start, want the timeout %s", d, tc.timeout)
			}
		})
	}
}

// TestRunEnvironment: the process gets exactly the environment given, plus
// AWS_LAMBDA_RUNTIME_API (nothing leaks in from this process).
func TestRunEnvironment(t *testing.T) {
	t.Setenv("GREETING", "from the caller's environment") // not passed on
	var logs bytes.Buffer
	fn := lambdaruntime.Function{Name: "Test", Bootstrap: bootstrap(t), Timeout: 20 * time.Second, MemoryMB: 128, Logs: &logs}
	res, err := lambdaruntime.Run(context.Background(), fn, lambdaruntime.Invocation{RequestID: "r", Payload: []byte(`{"do":"echo"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != lambdaruntime.Succeeded || !bytes.Contains(res.Payload, []byte(`"greeting":""`)) {
		t.Fatalf("%s %s; logs:\n%s", res.Outcome, res.Payload, logs.String())
	}
	if strings.Contains(logs.String(), "XRAY") {
		t.Errorf("an XRAY line without active tracing:\n%s", logs.String())
	}
}
