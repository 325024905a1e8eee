package dynamocatalog_test

import (
	"bufio"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/catalog-import/catalog-import/internal/aws/awsclient"
	"github.com/catalog-import/catalog-import/internal/aws/dynamocatalog"
	"github.com/catalog-import/catalog-import/internal/catalog"
)

// BenchmarkWriteCPU: the CPU time one product costs a worker in the
// products sink (deciding it, encoding its item, the SDK serializing,
// signing and sending its conditional PutItem, decoding the answer), in
// calls of 1,000 blind puts with 16 in flight, against a loopback server
// that answers every request at once with a canned response (its share of
// the CPU, reading the request and writing the answer, is a few µs).
// cpu-µs/row is the process's user + system time per product; one vCPU
// gives at most 1e6 / cpu-µs/row products per second.
func BenchmarkWriteCPU(b *testing.B) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	go cannedServer(l)
	c, err := awsclient.New(b.Context(), awsclient.Settings{Region: "us-east-1", Endpoint: "http://" + l.Addr().String()})
	if err != nil {
		b.Fatal(err)
	}
	sink := dynamocatalog.New(c.DynamoDB, "products", dynamocatalog.Options{Reads: dynamocatalog.ReadsNever, InFlight: 16})
	products := make([]catalog.Product, 1000)
	b.ReportAllocs()
	before := cpuTime()
	b.ResetTimer()
	for n := 0; n < b.N; n += len(products) {
		for i := range products {
			products[i] = product("B", fmt.Sprintf("SKU-%09d", n+i), 0, int64(n+i+2))
		}
		if _, err := sink.Write(b.Context(), catalog.Upsert, products); err != nil {
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

// cannedServer answers every HTTP/1.1 request on l with an empty DynamoDB
// answer ({}), reading just the headers it needs.
func cannedServer(l net.Listener) {
	answer := "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\nX-Amz-Crc32: " +
		strconv.FormatUint(uint64(crc32.ChecksumIEEE([]byte("{}"))), 10) + "\r\nContent-Length: 2\r\n\r\n{}"
	for {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			r := textproto.NewReader(bufio.NewReaderSize(conn, 16<<10))
			for {
				if _, err := r.ReadLine(); err != nil { // the request line
					return
				}
				h, err := r.ReadMIMEHeader()
				if err != nil {
					return
				}
				n, _ := strconv.ParseInt(strings.TrimSpace(h.Get("Content-Length")), 10, 64)
				if _, err := io.CopyN(io.Discard, r.R, n); err != nil {
					return
				}
				if _, err := io.WriteString(conn, answer); err != nil {
					return
				}
			}
		}()
	}
}
