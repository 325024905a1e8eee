// Package awstest runs the tests of the AWS adapters against a real AWS API:
// a moto_server on a free loopback port, started once per test binary. Tests
// create their own uniquely named tables, queues and buckets, so they can run
// in parallel against one server.
//
// Use it from TestMain:
//
//	func TestMain(m *testing.M) { awstest.Main(m) }
//
// moto_server must be installed (the Makefile's deps target installs it);
// a test that needs it fails, never skips, when it is missing.
package awstest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go/middleware"

	"github.com/catalog-import/catalog-import/internal/aws/awsclient"
)

var server struct {
	once     sync.Once
	endpoint string
	cmd      *exec.Cmd
	err      error
}

// Main runs the package's tests and stops the server afterwards.
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Stop stops the server, if one was started.
func Stop() {
	if server.cmd != nil && server.cmd.Process != nil {
		_ = syscall.Kill(-server.cmd.Process.Pid, syscall.SIGKILL)
		_ = server.cmd.Wait()
	}
}

// Endpoint returns the URL of the shared moto_server, starting it if needed.
func Endpoint(t testing.TB) string {
	t.Helper()
	server.once.Do(func() { server.endpoint, server.cmd, server.err = start() })
	if server.err != nil {
		t.Fatalf("moto_server: %v (run `make deps` to install it)", server.err)
	}
	return server.endpoint
}

// Start starts a moto_server of its own (not shared) and returns its
// endpoint and a function that stops it. Benchmarks and commands use it.
func Start() (endpoint string, stop func(), err error) {
	ep, cmd, err := start()
	if err != nil {
		return "", nil, err
	}
	return ep, func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() }, nil
}

func start() (string, *exec.Cmd, error) {
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		return "", nil, err
	}
	// The same server, with moto's TransactWriteItems copying each table once
	// per transaction instead of once per item (see motoPatch), when the
	// Python that has moto is at hand.
	argv := []string{bin}
	if py, err := exec.LookPath("python3"); err == nil && exec.Command(py, "-c", "import moto.server, moto.dynamodb.models").Run() == nil {
		argv = []string{py, "-c", motoPatch}
	}
	var last error
	for range 3 {
		port, err := freePort()
		if err != nil {
			return "", nil, err
		}
		cmd := exec.Command(argv[0], append(argv[1:], "-H", "127.0.0.1", "-p", fmt.Sprint(port))...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = nil, &limited{w: &out, n: 4096}
		if err := cmd.Start(); err != nil {
			return "", nil, err
		}
		ep := fmt.Sprintf("http://127.0.0.1:%d", port)
		if err := waitReady(ep, 30*time.Second); err != nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Wait()
			last = fmt.Errorf("%w; output: %s", err, out.String())
			continue
		}
		return ep, cmd, nil
	}
	return "", nil, last
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitReady(ep string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		resp, err := http.Get(ep + "/moto-api/data.json")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("not ready at %s after %s", ep, within)
}

type limited struct {
	mu sync.Mutex
	w  *strings.Builder
	n  int
}

func (l *limited) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := l.n - l.w.Len(); room > 0 {
		l.w.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// OneAtATime is the lock every client of the shared server holds per
// request (see awsclient.Settings.OneAtATime); in-process code under test
// that builds its own clients for the server must use it too.
var OneAtATime sync.Mutex

// Clients returns clients for the shared server, one request at a time
// (OneAtATime). Extra middleware (request counters) may be passed.
func Clients(t testing.TB, apiOptions ...func(*middleware.Stack) error) *awsclient.Clients {
	t.Helper()
	c, err := awsclient.New(context.Background(), awsclient.Settings{Region: "us-east-1", Endpoint: Endpoint(t), APIOptions: apiOptions, OneAtATime: &OneAtATime})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var seq atomic.Int64

// Name returns a resource name unique within the test binary run, made of
// lowercase letters, digits and dashes (valid for buckets, queues and tables).
func Name(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), seq.Add(1))
}

// Config returns the aws.Config of Clients (for adapters built from a config).
func Config(t testing.TB) aws.Config { return Clients(t).Config }

// motoPatch runs moto_server with one fix. moto's TransactWriteItems keeps a
// copy of each table it touches to roll back a cancelled transaction, but it
// deep-copies the table once per ITEM of the transaction (identical copies:
// all are taken before any write), so a 100-item transaction on a table of
// n items copies 100n items and an import costs time quadratic in its rows.
// The patch makes the copies of Table objects within one call share one copy,
// which is what the loop already means. Behaviour is otherwise moto's own.
const motoPatch = `
import copy, sys
import moto.dynamodb.models as m
from moto.dynamodb.models.table import Table
from moto.server import main

_transact = m.DynamoDBBackend.transact_write_items

def transact_write_items(self, transact_items):
    copies = {}
    def deepcopy(x, memo=None):
        if not isinstance(x, Table):
            return copy.deepcopy(x, memo)
        if id(x) not in copies:
            copies[id(x)] = (x, copy.deepcopy(x, memo))
        return copies[id(x)][1]
    m.copy = type("copy", (), {"deepcopy": staticmethod(deepcopy)})
    try:
        return _transact(self, transact_items)
    finally:
        m.copy = copy

m.DynamoDBBackend.transact_write_items = transact_write_items
main(sys.argv[1:])
`
