package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// coldRun is the cold-start measurement of one Lambda function binary.
type coldRun struct {
	binMB   float64
	runs    map[string][]time.Duration // variant -> process start to the first /next
	invokes []time.Duration            // first /next to the first response (an empty SQS event)
	inits   []pkgInit                  // package init times (GODEBUG=inittrace=1), largest first
}

// pkgInit is one package's init time as inittrace prints it.
type pkgInit struct {
	pkg    string
	ms     float64
	allocs string
}

// coldVariants are the ways a worker starts: in Lambda with active tracing
// (an X-Ray daemon address set, as Lambda sets it), the same with the
// binary's pages dropped from the page cache first (as in a new sandbox,
// where the code was just unpacked; posix_fadvise DONTNEED, so the start
// reads what it touches from disk), and without tracing.
var coldVariants = []string{"tracing on (X-Ray daemon set)", "tracing on, binary not in the page cache", "tracing off"}

// measureColdStart builds the shard worker as the Makefile's
// build-ShardWorkerFunction does, for this machine's architecture, and
// starts it runs times per variant (interleaved) against a fake Lambda
// Runtime API on loopback. Init is the time from the process's start to
// its first GET /runtime/invocation/next (what Lambda reports as Init
// Duration: the handler is called as soon as that request is answered);
// the first invocation (an SQS event with no records) is timed to its
// response.
func measureColdStart(dir string, runs int) (*coldRun, error) {
	bin := filepath.Join(dir, "bootstrap")
	build := exec.Command("go", "build", "-trimpath", "-tags", "lambda.norpc", "-ldflags=-s -w", "-o", bin, "./functions/shard-worker")
	build.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+runtime.GOARCH, "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build shard-worker: %v: %s", err, out)
	}
	st, err := os.Stat(bin)
	if err != nil {
		return nil, err
	}
	home := filepath.Join(dir, "home") // no shared AWS config, as in Lambda
	if err := os.MkdirAll(home, 0o755); err != nil {
		return nil, err
	}
	r := &coldRun{binMB: float64(st.Size()) / 1e6, runs: map[string][]time.Duration{}}
	for i := range runs + 1 {
		for v, variant := range coldVariants {
			// A Runtime API of its own per start: a killed process's
			// next poll must not take the next process's event.
			api, err := startRuntimeAPI()
			if err != nil {
				return nil, err
			}
			env := lambdaEnv(api.addr, home, v < 2)
			if v == 1 {
				if err := evict(bin); err != nil {
					return nil, err
				}
			}
			init, invoke, stderr, err := api.coldStart(bin, env, i == 0 && v == 0)
			api.close()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", variant, err)
			}
			if i == 0 {
				if v == 0 {
					r.inits = parseInitTrace(stderr)
				}
				continue // the first start warms the page cache
			}
			r.runs[variant] = append(r.runs[variant], init)
			if v == 0 {
				r.invokes = append(r.invokes, invoke)
			}
		}
	}
	return r, nil
}

// lambdaEnv is the environment Lambda gives the worker (template.yaml's
// variables, the runtime's own, credentials as environment variables).
func lambdaEnv(api, home string, tracing bool) []string {
	env := []string{
		"PATH=/usr/bin:/bin", "HOME=" + home, "TZ=:UTC", "LANG=en_US.UTF-8",
		"AWS_LAMBDA_RUNTIME_API=" + api, "AWS_LAMBDA_FUNCTION_NAME=bench-ShardWorkerFunction",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=1769", "AWS_LAMBDA_FUNCTION_VERSION=$LATEST", "AWS_LAMBDA_INITIALIZATION_TYPE=on-demand",
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/bench", "AWS_LAMBDA_LOG_STREAM_NAME=bench", "_HANDLER=bootstrap", "LAMBDA_TASK_ROOT=/var/task",
		"AWS_REGION=us-east-1", "AWS_DEFAULT_REGION=us-east-1", "AWS_EXECUTION_ENV=AWS_Lambda_provided.al2023",
		"AWS_ACCESS_KEY_ID=AKIDBENCH", "AWS_SECRET_ACCESS_KEY=bench", "AWS_SESSION_TOKEN=bench",
		"BUCKET=bench-bucket", "STATE_TABLE=bench-state", "PRODUCTS_TABLE=bench-products",
		"SHARD_QUEUE_URL=https://sqs.us-east-1.amazonaws.com/123456789012/bench-shards",
		"DLQ_URL=https://sqs.us-east-1.amazonaws.com/123456789012/bench-dlq",
		"POOL_SIZE=16", "CHECKPOINT_EVERY=1000", "LEASE_TTL_SECONDS=300", "LOG_LEVEL=INFO", "STACK_NAME=bench",
	}
	if tracing {
		env = append(env, "AWS_XRAY_DAEMON_ADDRESS=127.0.0.1:2000", "_X_AMZN_TRACE_ID=Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
			"AWS_XRAY_CONTEXT_MISSING=LOG_ERROR")
	}
	return env
}

// runtimeAPI is a fake Lambda Runtime API for one process: it records when
// the process asks for its first event, hands it an SQS event without
// records, and records when the response arrives.
type runtimeAPI struct {
	addr string
	srv  *http.Server
	mu   sync.Mutex
	next chan time.Time // first GET /next of the current process
	resp chan time.Time // first POST .../response
	sent bool
}

func startRuntimeAPI() (*runtimeAPI, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	a := &runtimeAPI{addr: ln.Addr().String(), next: make(chan time.Time, 1), resp: make(chan time.Time, 1)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		a.mu.Lock()
		first := !a.sent
		a.sent = true
		next := a.next
		a.mu.Unlock()
		if !first {
			<-r.Context().Done() // the second poll waits until the process is stopped
			return
		}
		next <- now
		w.Header().Set("Lambda-Runtime-Aws-Request-Id", "bench-1")
		w.Header().Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(time.Now().Add(5*time.Minute).UnixMilli(), 10))
		w.Header().Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:bench-ShardWorkerFunction")
		w.Header().Set("Lambda-Runtime-Trace-Id", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")
		io.WriteString(w, `{"Records":[]}`)
	})
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		io.Copy(io.Discard, r.Body)
		a.mu.Lock()
		resp := a.resp
		a.mu.Unlock()
		select {
		case resp <- now:
		default:
		}
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc("POST /2018-06-01/runtime/", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		a.mu.Lock()
		resp := a.resp
		a.mu.Unlock()
		select {
		case resp <- time.Time{}: // an init or invocation error
		default:
		}
		fmt.Fprintf(os.Stderr, "runtime API: %s %s\n", r.URL.Path, body)
		w.WriteHeader(http.StatusAccepted)
	})
	a.srv = &http.Server{Handler: mux}
	go a.srv.Serve(ln)
	return a, nil
}

func (a *runtimeAPI) close() { a.srv.Close() }

// coldStart starts bin once and returns its init time, the first
// invocation's time and (with trace) the inittrace lines it printed.
func (a *runtimeAPI) coldStart(bin string, env []string, trace bool) (init, invoke time.Duration, stderr string, err error) {
	next, resp := a.next, a.resp
	if trace {
		env = append(env, "GODEBUG=inittrace=1")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = env
	var errb strings.Builder
	cmd.Stdout, cmd.Stderr = io.Discard, &errb
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, "", err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var t1, t2 time.Time
	select {
	case t1 = <-next:
	case <-ctx.Done():
		return 0, 0, "", fmt.Errorf("no request for an event within 30 s")
	}
	select {
	case t2 = <-resp:
	case <-ctx.Done():
		return 0, 0, "", fmt.Errorf("no response to the event within 30 s")
	}
	if t2.IsZero() {
		return 0, 0, "", fmt.Errorf("the function reported an error")
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	return t1.Sub(start), t2.Sub(t1), errb.String(), nil
}

// initLine is one line of GODEBUG=inittrace=1: "init pkg @t ms, d ms clock, b bytes, n allocs".
var initLine = regexp.MustCompile(`^init (\S+) @[0-9.]+ ms, ([0-9.]+) ms clock, (\d+) bytes, (\d+) allocs`)

func parseInitTrace(s string) []pkgInit {
	var out []pkgInit
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		m := initLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		ms, _ := strconv.ParseFloat(m[2], 64)
		out = append(out, pkgInit{pkg: m[1], ms: ms, allocs: m[4]})
	}
	slices.SortFunc(out, func(a, b pkgInit) int {
		switch {
		case a.ms > b.ms:
			return -1
		case a.ms < b.ms:
			return 1
		}
		return strings.Compare(a.pkg, b.pkg)
	})
	return out
}

func (c *coldRun) markdown(b *strings.Builder) {
	fmt.Fprintf(b, "\n## Cold start of the shard worker\n\n")
	fmt.Fprintf(b, "`functions/shard-worker` built as the Makefile's `build-ShardWorkerFunction` does (CGO off, `-trimpath -tags lambda.norpc -ldflags='-s -w'`), for this machine (linux/%s; Lambda runs arm64), %.1f MB, started %d times per variant, interleaved, against a fake Lambda Runtime API on loopback with the template's environment. Init is process start to the first `GET /runtime/invocation/next` (Lambda's Init Duration: the handler is called as soon as it is answered). Lambda adds its own sandbox start and code download, which this does not measure.\n\n",
		runtime.GOARCH, c.binMB, len(c.runs[coldVariants[0]]))
	fmt.Fprintf(b, "| variant | init, median | min | max |\n|---|---:|---:|---:|\n")
	for _, v := range coldVariants {
		ds := c.runs[v]
		fmt.Fprintf(b, "| %s | %.1f ms | %.1f ms | %.1f ms |\n", v, ms(median(ds)), ms(slices.Min(ds)), ms(slices.Max(ds)))
	}
	fmt.Fprintf(b, "| first invocation (an SQS event without records, tracing on) | %.1f ms | %.1f ms | %.1f ms |\n\n", ms(median(c.invokes)), ms(slices.Min(c.invokes)), ms(slices.Max(c.invokes)))
	var total float64
	for _, p := range c.inits {
		total += p.ms
	}
	fmt.Fprintf(b, "Package initialisation (`GODEBUG=inittrace=1`, one start): %.1f ms in all; the largest:", total)
	for i, p := range c.inits[:min(8, len(c.inits))] {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(b, " %s %.2f ms (%s allocs)", p.pkg, p.ms, p.allocs)
	}
	b.WriteString(".\n")
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// evict drops path's pages from the page cache.
func evict(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return fmt.Errorf("fadvise %s: %w", path, err)
	}
	return nil
}
