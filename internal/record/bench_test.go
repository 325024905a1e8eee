package record

import (
	"bytes"
	"io"
	"sync"
	"testing"

	"github.com/catalog-import/catalog-import/internal/record/recordtest"
)

// benchRows makes a ~20 MB product CSV (10 columns, 40% of the rows with a
// quoted multi-line description with commas and doubled quotes).
const benchRows = 80_000

var benchCSV = sync.OnceValue(func() []byte {
	var b bytes.Buffer
	if err := recordtest.WriteProductCSV(&b, benchRows, 1, false); err != nil {
		panic(err)
	}
	return b.Bytes()
})

// readerOnly hides bytes.Reader's WriterTo, so io.Copy really reads the
// bytes (through io.Discard's ReadFrom buffer) instead of handing over the
// slice in one call.
type readerOnly struct{ io.Reader }

// BenchmarkRawRead is the baseline: reading the same bytes with io.Copy to
// io.Discard.
func BenchmarkRawRead(b *testing.B) {
	data := benchCSV()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := io.Copy(io.Discard, readerOnly{bytes.NewReader(data)}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScan finds every record boundary (what the splitter does).
func BenchmarkScan(b *testing.B) {
	data := benchCSV()
	b.SetBytes(int64(len(data)))
	var n int
	for b.Loop() {
		s := NewScanner(readerOnly{bytes.NewReader(data)}, csvUTF8, 0, 1, DefaultMaxRecord)
		n = 0
		for s.Next() {
			n++
		}
		if s.Err() != nil {
			b.Fatal(s.Err())
		}
	}
	if n != benchRows+1 {
		b.Fatalf("scanned %d records, want %d", n, benchRows+1)
	}
}

// BenchmarkParse scans and parses every row (what a worker does before
// validation).
func BenchmarkParse(b *testing.B) {
	data := benchCSV()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	rows := 0
	for b.Loop() {
		r := readerOnly{bytes.NewReader(data)}
		header, start, first, err := Header(bytes.NewReader(data), csvUTF8, DefaultMaxRecord)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyN(io.Discard, r, start); err != nil {
			b.Fatal(err)
		}
		s := NewScanner(r, csvUTF8, start, first, DefaultMaxRecord)
		p := NewParser(csvUTF8, header)
		for s.Next() {
			if row := p.Parse(s.Raw()); row.Err != nil {
				b.Fatal(row.Err)
			}
			rows++
		}
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}
