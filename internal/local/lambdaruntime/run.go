package lambdaruntime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"time"
)

// Function is a built bootstrap and the configuration Lambda gives it.
type Function struct {
	Name      string            // the function's name (logs)
	Bootstrap string            // path of the executable
	Env       map[string]string // its whole environment (AWS_LAMBDA_RUNTIME_API is added)
	Timeout   time.Duration     // the invocation's limit; the init phase has the same limit here
	MemoryMB  int               // shown in the REPORT line
	// Tracing: the function's tracing is Active (an XRAY line follows REPORT).
	Tracing bool
	// Logs receives the process's stdout and stderr and the platform's
	// START, END and REPORT lines, as CloudWatch Logs would.
	Logs io.Writer
}

// Invocation is one invocation of a function.
type Invocation struct {
	RequestID   string
	Payload     []byte
	FunctionARN string
	TraceID     string        // the X-Ray trace header (Root=...;Parent=...;Sampled=...)
	Timeout     time.Duration // set by Run from Function.Timeout
}

// Outcome says how an invocation ended.
type Outcome int

// Outcomes of an invocation.
const (
	Succeeded     Outcome = iota // the function returned a response
	FunctionError                // the function returned (or panicked with) an error
	InitError                    // the runtime never took the invocation: it posted an init error or exited
	TimedOut                     // the deadline passed first
	RuntimeExited                // the process exited during the invocation without an answer
)

func (o Outcome) String() string {
	return [...]string{"succeeded", "function error", "init error", "timed out", "runtime exited"}[o]
}

// Result is what an invocation returned.
type Result struct {
	RequestID string
	Outcome   Outcome
	// Payload is the response, or the error document Lambda returns
	// ({"errorMessage": ..., "errorType": ...}).
	Payload []byte
	// ErrorType is the error's type ("" when Outcome is Succeeded): the
	// runtime's (e.g. *errors.errorString), or Lambda's own
	// (Runtime.ExitError, Sandbox.Timedout).
	ErrorType    string
	InitDuration time.Duration // process start to the runtime's first GET next
	Duration     time.Duration // the invocation, from GET next to the answer
}

// settleWait bounds how long Run waits, after an answer, for the runtime
// to ask for the next invocation (it has finished then, logs included)
// before it stops the process.
const settleWait = 2 * time.Second

// Run starts fn's bootstrap under a Runtime API on a loopback port, hands it
// inv, waits for the answer (or an init error, an exit, the timeout), stops
// the process and returns the result. The error is for what prevented the
// invocation (the process could not start, ctx was cancelled); what the
// function did is in Result.
func Run(ctx context.Context, fn Function, inv Invocation) (Result, error) {
	if fn.Timeout <= 0 {
		return Result{}, fmt.Errorf("function %s: timeout %s, want > 0", fn.Name, fn.Timeout)
	}
	inv.Timeout = fn.Timeout
	res := Result{RequestID: inv.RequestID}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, fmt.Errorf("runtime API: %w", err)
	}
	a := newAPI()
	srv := &http.Server{Handler: a, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		a.close()
		_ = srv.Close()
	}()

	logs := &syncWriter{w: fn.Logs}
	if fn.Logs == nil {
		logs.w = io.Discard
	}
	cmd := exec.Command(fn.Bootstrap)
	cmd.Env = environ(fn.Env, ln.Addr().String())
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.Dir = "/"
	setProcessGroup(cmd)

	c := &call{inv: inv, taken: make(chan struct{}), done: make(chan posted, 1)}
	a.queue <- c
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("start %s: %w", fn.Bootstrap, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	stop := func() {
		killProcessGroup(cmd)
		<-exited
	}

	// Init: until the runtime takes the invocation.
	initLimit := time.NewTimer(fn.Timeout)
	defer initLimit.Stop()
	select {
	case <-c.taken:
		res.InitDuration = time.Since(start)
	case p := <-a.initError:
		res.InitDuration = time.Since(start)
		stop()
		res.Outcome, res.ErrorType, res.Payload = InitError, p.errorType, p.payload
		logs.initReport(res)
		return res, nil
	case <-exited:
		res.InitDuration = time.Since(start)
		res.Outcome, res.ErrorType = InitError, "Runtime.ExitError"
		res.Payload = ErrorDoc{Type: res.ErrorType, Message: fmt.Sprintf("RequestId: %s Error: Runtime exited with error: %s", inv.RequestID, exitText(waitErr))}.JSON()
		logs.initReport(res)
		return res, nil
	case <-initLimit.C:
		res.InitDuration = time.Since(start)
		stop()
		res.Outcome, res.ErrorType = InitError, "Sandbox.Timedout"
		res.Payload = ErrorDoc{Type: res.ErrorType, Message: fmt.Sprintf("RequestId: %s Error: Task timed out after %.2f seconds (init)", inv.RequestID, fn.Timeout.Seconds())}.JSON()
		logs.initReport(res)
		return res, nil
	case <-ctx.Done():
		stop()
		return res, ctx.Err()
	}

	// Invoke: until the answer, the deadline, or the process's end.
	invoked := time.Now()
	logs.printf("START RequestId: %s Version: $LATEST\n", inv.RequestID)
	deadline := time.NewTimer(time.Until(c.deadline))
	defer deadline.Stop()
	timedOut := func() {
		res.Outcome, res.ErrorType = TimedOut, "Sandbox.Timedout"
		res.Payload = ErrorDoc{Type: res.ErrorType, Message: fmt.Sprintf("RequestId: %s Error: Task timed out after %.2f seconds", inv.RequestID, fn.Timeout.Seconds())}.JSON()
	}
	answered := func(p posted) {
		switch {
		case !p.at.Before(c.deadline):
			// Lambda's deadline is final: an answer at or after it (the
			// handler's context expired, it gave up) is a timeout.
			timedOut()
		case p.errorType != "":
			res.Outcome, res.ErrorType, res.Payload = FunctionError, p.errorType, p.payload
		default:
			res.Outcome, res.Payload = Succeeded, p.payload
		}
	}
	select {
	case p := <-c.done:
		answered(p)
	case <-deadline.C:
		select {
		case p := <-c.done:
			answered(p)
		default:
			timedOut()
		}
	case <-exited:
		select {
		case p := <-c.done: // posted, then exited (a panic)
			answered(p)
		default:
			res.Outcome, res.ErrorType = RuntimeExited, "Runtime.ExitError"
			res.Payload = ErrorDoc{Type: res.ErrorType, Message: fmt.Sprintf("RequestId: %s Error: Runtime exited with error: %s", inv.RequestID, exitText(waitErr))}.JSON()
		}
	case <-ctx.Done():
		stop()
		return res, ctx.Err()
	}
	res.Duration = time.Since(invoked)
	if res.Outcome == TimedOut {
		res.Duration = fn.Timeout
	} else {
		// Let the runtime finish the invocation (it asks for the next one)
		// or exit, so that its last log lines are not cut.
		settle := time.NewTimer(settleWait)
	wait:
		for a.nextCount() < 2 {
			select {
			case <-a.idle:
			case <-exited:
				break wait
			case <-settle.C:
				break wait
			}
		}
		settle.Stop()
	}
	stop()
	logs.printf("END RequestId: %s\n", inv.RequestID)
	logs.printf("REPORT RequestId: %s\tInit Duration: %.2f ms\tDuration: %.2f ms\tBilled Duration: %d ms\tMemory Size: %d MB\t\n",
		inv.RequestID, ms(res.InitDuration), ms(res.Duration), billed(res.Duration), fn.MemoryMB)
	if fn.Tracing {
		logs.printf("XRAY TraceId: %s\tSampled: true\t\n", traceRoot(inv.TraceID))
	}
	if res.Outcome == TimedOut {
		logs.printf("%s %s Task timed out after %.2f seconds\n", time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), inv.RequestID, fn.Timeout.Seconds())
	}
	return res, nil
}

// environ is the process environment: env plus AWS_LAMBDA_RUNTIME_API,
// in a stable order.
func environ(env map[string]string, apiAddr string) []string {
	out := make([]string, 0, len(env)+1)
	for k, v := range env {
		if k != "AWS_LAMBDA_RUNTIME_API" {
			out = append(out, k+"="+v)
		}
	}
	sort.Strings(out)
	return append(out, "AWS_LAMBDA_RUNTIME_API="+apiAddr)
}

func exitText(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ProcessState.String() // "exit status 1", "signal: killed"
	}
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// traceRoot is the Root field of an X-Ray trace header.
func traceRoot(h string) string {
	for _, f := range strings.Split(h, ";") {
		if v, ok := strings.CutPrefix(f, "Root="); ok {
			return v
		}
	}
	return h
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// billed is Lambda's billed duration: rounded up to the millisecond.
func billed(d time.Duration) int64 { return int64((d + time.Millisecond - 1) / time.Millisecond) }

// syncWriter serialises the process's output and the platform's lines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *syncWriter) printf(format string, args ...any) { fmt.Fprintf(s, format, args...) }

// initReport is Lambda's line for a failed init phase.
func (s *syncWriter) initReport(res Result) {
	s.printf("INIT_REPORT Init Duration: %.2f ms\tPhase: init\tStatus: error\tError Type: %s\n", ms(res.InitDuration), res.ErrorType)
}
