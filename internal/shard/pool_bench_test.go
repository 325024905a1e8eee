package shard

import (
	"bytes"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/alitto/pond/v2"
	"github.com/panjf2000/ants/v2"
	"golang.org/x/sync/errgroup"

	"github.com/catalog-import/catalog-import/internal/profile"
	"github.com/catalog-import/catalog-import/internal/record"
	"github.com/catalog-import/catalog-import/internal/record/recordtest"
)

// BenchmarkPool compares the goroutine pools the worker could use, on the
// worker's real task (parse + validate a chunk of rows), per row and per
// 100-row chunk. The worker uses a typed channel and Pool goroutines; this
// benchmark is why (see docs/performance.md).
func BenchmarkPool(b *testing.B) {
	var buf bytes.Buffer
	if err := recordtest.WriteProductCSV(&buf, 20_000, 1, false); err != nil {
		b.Fatal(err)
	}
	d, err := record.Detect("bench.csv", buf.Bytes())
	if err != nil {
		b.Fatal(err)
	}
	header, start, row, err := record.Header(bytes.NewReader(buf.Bytes()), d, 1<<20)
	if err != nil {
		b.Fatal(err)
	}
	v, err := profile.Default().Compile()
	if err != nil {
		b.Fatal(err)
	}
	cols, err := v.Header(header)
	if err != nil {
		b.Fatal(err)
	}
	var raws []record.Raw
	sc := record.NewScanner(bytes.NewReader(buf.Bytes()[start:]), d, start, row, 1<<20)
	for sc.Next() {
		r := sc.Raw()
		r.Bytes = bytes.Clone(r.Bytes)
		raws = append(raws, r)
	}
	parsers := sync.Pool{New: func() any { return record.NewParser(d, header) }}
	task := func(rs []record.Raw) {
		p := parsers.Get().(*record.Parser)
		for _, r := range rs {
			row := p.Parse(r)
			if row.Err == nil {
				v.Validate(cols, row.Values)
			}
		}
		parsers.Put(p)
	}
	workers := runtime.GOMAXPROCS(0)
	pools := []struct {
		name string
		run  func(chunks [][]record.Raw)
	}{
		{"channel", func(chunks [][]record.Raw) {
			ch := make(chan []record.Raw, workers)
			var wg sync.WaitGroup
			for range workers {
				wg.Go(func() {
					for c := range ch {
						task(c)
					}
				})
			}
			for _, c := range chunks {
				ch <- c
			}
			close(ch)
			wg.Wait()
		}},
		{"errgroup", func(chunks [][]record.Raw) {
			var g errgroup.Group
			g.SetLimit(workers)
			for _, c := range chunks {
				g.Go(func() error { task(c); return nil })
			}
			g.Wait()
		}},
		{"pond", func(chunks [][]record.Raw) {
			p := pond.NewPool(workers, pond.WithQueueSize(1024))
			for _, c := range chunks {
				p.Submit(func() { task(c) })
			}
			p.StopAndWait()
		}},
		{"ants", func(chunks [][]record.Raw) {
			p, _ := ants.NewPool(workers)
			var wg sync.WaitGroup
			for _, c := range chunks {
				wg.Add(1)
				p.Submit(func() { task(c); wg.Done() })
			}
			wg.Wait()
			p.Release()
		}},
	}
	for _, size := range []int{1, 100} {
		var chunks [][]record.Raw
		for i := 0; i < len(raws); i += size {
			chunks = append(chunks, raws[i:min(i+size, len(raws))])
		}
		for _, p := range pools {
			b.Run(fmt.Sprintf("%s/rows-per-task=%d", p.name, size), func(b *testing.B) {
				for b.Loop() {
					p.run(chunks)
				}
				b.ReportMetric(float64(len(raws))*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			})
		}
	}
}
