package dynamocatalog_test

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/catalog-import/catalog-import/internal/aws/awsclient"
	"github.com/catalog-import/catalog-import/internal/aws/awstest"
	"github.com/catalog-import/catalog-import/internal/aws/dynamocatalog"
	"github.com/catalog-import/catalog-import/internal/catalog"
)

// BenchmarkWriteCPU: the CPU time one product costs a worker in the
// products sink (deciding it, encoding its item, the SDK serializing,
// signing and sending its conditional PutItem, decoding the answer), in
// calls of 1,000 blind puts with 16 in flight, against a loopback server
// that answers every request at once with a canned response
// (awstest.Canned: its share of the CPU is a few µs).
// cpu-µs/row is the process's user + system time per product; one vCPU
// gives at most 1e6 / cpu-µs/row products per second.
func BenchmarkWriteCPU(b *testing.B) {
	c, err := awsclient.New(b.Context(), awsclient.Settings{Region: "us-east-1", Endpoint: awstest.Canned(b)})
	if err != nil {
		b.Fatal(err)
	}
	sink := dynamocatalog.New(c.DynamoDB, "products", dynamocatalog.Options{Reads: dynamocatalog.ReadsNever, InFlight: 16})
	products := make([]catalog.Product, 1000)
	b.ReportAllocs()
	before := cpuTime()
	b.ResetTimer()
	for n := 0; n < b.N; n += len(products) {
		call := products[:min(len(products), b.N-n)] // b.N products in all
		for i := range call {
			call[i] = product("B", fmt.Sprintf("SKU-%09d", n+i), 0, int64(n+i+2))
		}
		if _, err := sink.Write(b.Context(), catalog.Upsert, call); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-before).Microseconds())/float64(b.N), "cpu-µs/row")
}

// cpuTime is the process's user and system time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
