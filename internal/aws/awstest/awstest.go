// Package awstest runs the tests of the AWS adapters against a real AWS API:
// a moto_server on a free loopback port (started by internal/aws/motoserver,
// with its performance patch), started once per test binary. Tests
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
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go/middleware"

	"github.com/catalog-import/catalog-import/internal/aws/awsclient"
	"github.com/catalog-import/catalog-import/internal/aws/motoserver"
)

var server struct {
	once sync.Once
	srv  *motoserver.Server
	err  error
}

// Main runs the package's tests and stops the server afterwards.
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Stop stops the server, if one was started.
func Stop() {
	if server.srv != nil {
		server.srv.Stop()
	}
}

// Endpoint returns the URL of the shared moto_server, starting it if needed.
func Endpoint(t testing.TB) string {
	t.Helper()
	server.once.Do(func() { server.srv, server.err = motoserver.Start() })
	if server.err != nil {
		t.Fatalf("%v", server.err)
	}
	return server.srv.Endpoint
}

// Start starts a moto_server of its own (not shared) and returns its
// endpoint and a function that stops it. Benchmarks and commands use it.
func Start() (endpoint string, stop func(), err error) {
	s, err := motoserver.Start()
	if err != nil {
		return "", nil, err
	}
	return s.Endpoint, s.Stop, nil
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
