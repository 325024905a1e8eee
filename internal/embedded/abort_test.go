package embedded

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/catalog-import/catalog-import/internal/catalog"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/profile"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/state"
)

// This file tests decision 20 on the embedded engine: with max_error_ratio
// the whole file is checked before the first write; over the ratio the batch
// is ABORTED and changes nothing in the catalog.

// checkedCSV is n rows SKU-0000...; bad(i) makes row i fail the checks
// (a negative price), dup(i) gives row i the SKU of row i-1 (a duplicate
// within its shard when both are in it).
func checkedCSV(n int, tag string, bad, dup func(i int) bool) string {
	var b strings.Builder
	b.WriteString("sku,name,category,price,stock\n")
	for i := range n {
		sku, price := fmt.Sprintf("SKU-%04d", i), fmt.Sprintf("%d.50", i+1)
		if bad != nil && bad(i) {
			price = "-1"
		}
		if dup != nil && dup(i) {
			sku = fmt.Sprintf("SKU-%04d", i-1)
		}
		fmt.Fprintf(&b, "%s,Item %d %s,Home,%s,%d\n", sku, i, tag, price, i)
	}
	return b.String()
}

// TestMaxErrorRatioChecksBeforeWriting: files over the budget (errors spread
// out, all in the last shard, or duplicate SKUs) end ABORTED before the
// first write, with a failure record for every failed row and a summary
// that says so; pre-existing products keep their values and stamps. A file
// under the budget imports as without a ratio.
func TestMaxErrorRatioChecksBeforeWriting(t *testing.T) {
	t.Parallel()
	const n, shardRows = 1000, 100
	tests := []struct {
		name     string
		bad, dup func(i int) bool
		failed   int64 // rows failing the checks
		reason   failure.Reason
		status   state.BatchStatus
		message  string // part of the batch's message
	}{
		{"spread over the file", func(i int) bool { return i%10 == 3 }, nil, 100, failure.OutOfRange, state.BatchAborted,
			"aborted: 100 of 1000 rows failed the checks (10.0%), over max_error_ratio 5%: nothing was imported"},
		{"all in the last shard", func(i int) bool { return i >= n-60 }, nil, 60, failure.OutOfRange, state.BatchAborted,
			"aborted: 60 of 1000 rows failed the checks (6.0%), over max_error_ratio 5%: nothing was imported"},
		{"duplicate SKUs in the file", nil, func(i int) bool { return i%16 == 1 }, 63, failure.DuplicateSKU, state.BatchAborted,
			"aborted: 63 of 1000 rows failed the checks (6.3%), over max_error_ratio 5%"},
		{"under the budget", func(i int) bool { return i%50 == 7 }, nil, 20, failure.OutOfRange, state.BatchCompletedWithErrors, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFeeds(t)
			p, err := profile.Parse([]byte("name: strict\nmax_error_ratio: 0.05\n"))
			if err != nil {
				t.Fatal(err)
			}
			var writes atomic.Int64
			cfg := Config{DB: f.db, Profile: p, Every: 50, Shards: 3, Pool: 2, Split: split.Options{ShardRows: shardRows},
				wrapSink: func(s catalog.Sink) catalog.Sink {
					return sinkFunc(func(ctx context.Context, m catalog.WriteMode, ps []catalog.Product) ([]catalog.Outcome, error) {
						writes.Add(int64(len(ps)))
						return s.Write(ctx, m, ps)
					})
				}}
			run := func(path string) state.Batch {
				t.Helper()
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				sum, err := Run(ctx, cfg, path)
				if err != nil {
					t.Fatalf("run %s: %v", filepath.Base(path), err)
				}
				return sum.Batch
			}
			// The catalog holds SKU-0000..0099 from an earlier clean file.
			before := run(f.file(checkedCSV(100, "old", nil, nil)))
			if before.Status != state.BatchCompleted || before.Counts.Imported != 100 {
				t.Fatalf("earlier file: %s %+v", before.Status, before.Counts)
			}
			all := make([]string, n)
			for i := range all {
				all[i] = fmt.Sprintf("SKU-%04d", i)
			}
			old := f.products(all...)
			oldStamps := stampsOf(t, f, all[:100])
			writes.Store(0)

			path := f.file(checkedCSV(n, "new", tc.bad, tc.dup))
			b := run(path)
			reconciled(t, b)
			if b.Status != tc.status || !strings.Contains(b.Message, tc.message) {
				t.Fatalf("batch %s %q, want %s %q", b.Status, b.Message, tc.status, tc.message)
			}
			db := f.open()
			recs, err := db.Failures(context.Background(), b.ID, state.FailureFilter{})
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(recs)) != tc.failed || b.Counts.Failed != tc.failed || b.ByReason[tc.reason] != tc.failed {
				t.Errorf("%d failure records, %d failed, by reason %v; want %d %s", len(recs), b.Counts.Failed, b.ByReason, tc.failed, tc.reason)
			}
			for _, r := range recs {
				i := int(r.Row - 2) // the header is row 1
				if (tc.bad != nil && !tc.bad(i)) || (tc.dup != nil && !tc.dup(i)) || r.Reason != tc.reason {
					t.Errorf("failure record of row %d (%s): that row is good", r.Row, r.Reason)
				}
			}
			if tc.status != state.BatchAborted {
				if want := (state.Counts{Total: n, Imported: n - tc.failed, Failed: tc.failed}); b.Counts != want {
					t.Errorf("counts %+v, want %+v", b.Counts, want)
				}
				return
			}
			if want := (state.Counts{Total: n, Failed: tc.failed, Skipped: n - tc.failed}); b.Counts != want {
				t.Errorf("counts %+v, want %+v (nothing imported, the rest skipped)", b.Counts, want)
			}
			if w := writes.Load(); w != 0 {
				t.Errorf("the aborted batch wrote %d products to the sink", w)
			}
			if c, err := db.CountBatch(context.Background(), b.ID, "", 0, n+1); err != nil || c != 0 {
				t.Errorf("%d products of the aborted batch (%v)", c, err)
			}
			now := f.products(all...)
			if len(now) != len(old) {
				t.Errorf("%d products after the aborted batch, %d before", len(now), len(old))
			}
			for sku, p := range old {
				if !productEqual(now[sku], p) {
					t.Errorf("%s changed: %+v, was %+v", sku, now[sku], p)
				}
			}
			for sku, s := range stampsOf(t, f, all[:100]) {
				if s != oldStamps[sku] {
					t.Errorf("%s stamps changed: %+v, were %+v", sku, s, oldStamps[sku])
				}
			}
		})
	}
}

// productEqual compares two products field by field.
func productEqual(a, b catalog.Product) bool {
	return fmt.Sprintf("%+v", a) == fmt.Sprintf("%+v", b)
}

// stampsOf returns the stored stamps of skus.
func stampsOf(t *testing.T, f *feeds, skus []string) map[string]catalog.FieldStamps {
	t.Helper()
	db := f.open()
	defer db.Close()
	out := map[string]catalog.FieldStamps{}
	for _, sku := range skus {
		s, ok, err := db.Stamps(context.Background(), sku)
		if err != nil || !ok {
			t.Fatalf("stamps of %s: %v %v", sku, ok, err)
		}
		out[sku] = s
	}
	return out
}

// TestCheckedRunStoppedThenResumed: a run with max_error_ratio stopped at
// its first product write (every shard checked, the write phase begun)
// resumes on the next run with the write phase only, and ends as an
// uninterrupted run does; an aborted file run again reports the finished
// batch and writes nothing.
func TestCheckedRunStoppedThenResumed(t *testing.T) {
	t.Parallel()
	f := newFeeds(t)
	p, err := profile.Parse([]byte("name: strict\nmax_error_ratio: 0.05\n"))
	if err != nil {
		t.Fatal(err)
	}
	var writes atomic.Int64
	stopAt := int64(-1) // stop before this write (-1: never)
	cfg := func(cancel context.CancelFunc) Config {
		return Config{DB: f.db, Profile: p, Every: 50, Shards: 2, Pool: 2, Split: split.Options{ShardRows: 100},
			wrapSink: func(s catalog.Sink) catalog.Sink {
				return sinkFunc(func(ctx context.Context, m catalog.WriteMode, ps []catalog.Product) ([]catalog.Outcome, error) {
					if n := writes.Add(1); n-1 == stopAt {
						cancel()
						return nil, ctx.Err()
					}
					return s.Write(ctx, m, ps)
				})
			}}
	}
	run := func(path string) (Summary, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return Run(ctx, cfg(cancel), path)
	}

	good := f.file(checkedCSV(500, "good", func(i int) bool { return i%100 == 42 }, nil)) // 5 of 500: 1%
	stopAt = 0
	if _, err := run(good); err == nil {
		t.Fatal("stopped run: no error")
	}
	db := f.open()
	bs, err := db.ListBatches(context.Background(), 1)
	if err != nil || len(bs) != 1 {
		t.Fatal(bs, err)
	}
	if b := bs[0]; b.Status != state.BatchRunning || b.Check == nil || b.Check.Shards != 5 || b.Check.Failed != 5 {
		t.Fatalf("stopped batch %s with check %+v, want RUNNING with 5 shards checked, 5 failed", b.Status, b.Check)
	}
	db.Close()
	stopAt = -1
	sum, err := run(good)
	if err != nil {
		t.Fatal(err)
	}
	reconciled(t, sum.Batch)
	if b := sum.Batch; !sum.Resumed || b.Status != state.BatchCompletedWithErrors || b.Counts != (state.Counts{Total: 500, Imported: 495, Failed: 5}) {
		t.Fatalf("resumed batch %s %+v (resumed %v), want COMPLETED_WITH_ERRORS with 495 imported, 5 failed", b.Status, b.Counts, sum.Resumed)
	}

	bad := f.file(checkedCSV(500, "bad", func(i int) bool { return i%10 == 0 }, nil))
	first, err := run(bad)
	if err != nil || first.Batch.Status != state.BatchAborted {
		t.Fatalf("bad file: %+v %v", first.Batch, err)
	}
	writes.Store(0)
	again, err := run(bad)
	if err != nil || !again.Existing || again.Batch.Status != state.BatchAborted || writes.Load() != 0 {
		t.Fatalf("bad file again: existing %v, %s, %d writes, %v", again.Existing, again.Batch.Status, writes.Load(), err)
	}
}
