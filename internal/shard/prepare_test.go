package shard_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/catalog-import/catalog-import/internal/catalog"
	"github.com/catalog-import/catalog-import/internal/shard"
	"github.com/catalog-import/catalog-import/internal/state"
)

// plainSink hides the SQLite sink's Preparer: the worker writes with Write.
type plainSink struct{ catalog.Sink }

// countingPreparer is the SQLite sink with its Preparer, counting the
// products that went through WritePrepared.
type countingPreparer struct {
	catalog.Sink
	p        shard.Preparer
	prepared atomic.Int64
}

func (s *countingPreparer) Prepare(mode catalog.WriteMode, ps []catalog.Product) any {
	return s.p.Prepare(mode, ps)
}

func (s *countingPreparer) WritePrepared(ctx context.Context, mode catalog.WriteMode, ps []catalog.Product, parts []any) ([]catalog.Outcome, error) {
	s.prepared.Add(int64(len(ps)))
	return s.p.WritePrepared(ctx, mode, ps, parts)
}

// TestPreparedWritesMatchPlainWrites (decision 28): a file with bad rows
// and SKUs repeated within a chunk, across chunks and across shards, written
// through the sink's Preparer (the validation pool prepares, the committer
// writes), ends exactly as written with plain Write calls: the same
// products, failure records and counts.
func TestPreparedWritesMatchPlainWrites(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("sku,name,category,price\n")
	for row := 2; row <= 401; row++ {
		sku, price := fmt.Sprintf("S-%d", row), fmt.Sprintf("%d.00", row)
		switch {
		case row%50 == 7:
			sku = "X" // across chunks and shards
		case row%10 == 3:
			sku = fmt.Sprintf("S-%d", row-1) // the row before: same chunk
		case row%37 == 0:
			price = "n/a"
		}
		fmt.Fprintf(&b, "%s,Item %d,Home,%s\n", sku, row, price)
	}
	type result struct {
		counts   []state.Counts
		products map[string]catalog.Product
		failures map[int64]string
	}
	run := func(t *testing.T, wrap func(catalog.Sink) catalog.Sink) result {
		bd := setupShards(t, b.String(), nil, 150)
		w := bd.worker("a", nil, wrap(bd.db), shard.Options{CheckpointEvery: 20})
		var r result
		for i := len(bd.ms) - 1; i >= 0; i-- { // later shards first: displaced rows too
			res, err := w.Process(context.Background(), bd.ms[i])
			if err != nil || res.Status != shard.Done {
				t.Fatalf("shard %d: %+v %v", i, res, err)
			}
			r.counts = append(r.counts, res.Counts)
		}
		r.products = map[string]catalog.Product{}
		for row := 2; row <= 401; row++ {
			for _, sku := range []string{fmt.Sprintf("S-%d", row), "X"} {
				if p, ok, err := bd.db.Get(context.Background(), sku); err != nil {
					t.Fatal(err)
				} else if ok {
					r.products[sku] = p
				}
			}
		}
		fails, err := bd.db.Failures(context.Background(), "b-1", state.FailureFilter{})
		if err != nil {
			t.Fatal(err)
		}
		r.failures = map[int64]string{}
		for _, f := range fails {
			r.failures[f.Row] = string(f.Reason) + " " + f.RawLine
		}
		return r
	}
	var through *countingPreparer
	prepared := run(t, func(s catalog.Sink) catalog.Sink {
		through = &countingPreparer{Sink: s, p: s.(shard.Preparer)}
		return through
	})
	plain := run(t, func(s catalog.Sink) catalog.Sink { return plainSink{s} })
	if through.prepared.Load() == 0 {
		t.Fatal("no product was written through WritePrepared")
	}
	if diff := cmp.Diff(plain, prepared, cmp.AllowUnexported(result{})); diff != "" {
		t.Errorf("prepared writes differ from plain writes (-plain +prepared):\n%s", diff)
	}
	if len(prepared.failures) < 20 || len(prepared.products) < 300 {
		t.Errorf("%d failures and %d products: the file does not exercise what it should", len(prepared.failures), len(prepared.products))
	}
}
