package awstest

import (
	"bufio"
	"hash/crc32"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"testing"
)

// Canned starts a loopback HTTP server that answers every request at once
// with an empty DynamoDB answer ({}, with the CRC32 header the SDK checks),
// and returns its endpoint. It reads only the headers it needs, so its
// share of the CPU is a few µs a request: benchmarks of the client side
// (the SDK serializing, signing and sending) use it, as do tests of what a
// client does with a request. It stops when tb ends.
func Canned(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Close() })
	answer := "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\nX-Amz-Crc32: " +
		strconv.FormatUint(uint64(crc32.ChecksumIEEE([]byte("{}"))), 10) + "\r\nContent-Length: 2\r\n\r\n{}"
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go answerAll(conn, answer)
		}
	}()
	return "http://" + l.Addr().String()
}

// answerAll answers each HTTP/1.1 request on conn with answer until conn
// closes.
func answerAll(conn net.Conn, answer string) {
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
}
