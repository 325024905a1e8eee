package embedded

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/catalog-import/catalog-import/internal/catalog"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/state"
)

// flakySink fails the Write calls that fail picks with a transient reason.
type flakySink struct {
	catalog.Sink
	mu     sync.Mutex
	calls  int
	failed int
	fail   func(call int) failure.Reason
}

func (s *flakySink) Write(ctx context.Context, mode catalog.WriteMode, ps []catalog.Product) ([]catalog.Outcome, error) {
	s.mu.Lock()
	s.calls++
	reason := s.fail(s.calls)
	if reason != "" {
		s.failed++
	}
	s.mu.Unlock()
	if reason != "" {
		return nil, failure.New(reason, "", "injected %s", reason)
	}
	return s.Sink.Write(ctx, mode, ps)
}

func productsCSV(n int) string {
	var b strings.Builder
	b.WriteString("sku,name,category,price\n")
	for i := range n {
		price := fmt.Sprintf("%d.25", i)
		if i%17 == 5 {
			price = "-1"
		}
		fmt.Fprintf(&b, "S-%05d,Item %d,Home,%s\n", i, i, price)
	}
	return b.String()
}

// TestRunCompletesUnderTransientSinkFailures: a sink that fails at a steady
// rate (retried in-process) or in a sustained burst (the breaker opens, the
// shard is delivered again after a delay) still imports the file exactly.
func TestRunCompletesUnderTransientSinkFailures(t *testing.T) {
	t.Parallel()
	const n = 3000
	path := filepath.Join(t.TempDir(), "p.csv")
	if err := os.WriteFile(path, []byte(productsCSV(n)), 0o644); err != nil {
		t.Fatal(err)
	}
	want := state.Counts{Total: n}
	for i := range n {
		if i%17 == 5 {
			want.Failed++
		} else {
			want.Imported++
		}
	}
	tests := []struct {
		name string
		fail func(call int) failure.Reason
	}{
		{"clean", func(int) failure.Reason { return "" }},
		{"every third write throttled", func(call int) failure.Reason {
			if call%3 == 0 {
				return failure.Throttled
			}
			return ""
		}},
		{"every fourth write unavailable", func(call int) failure.Reason {
			if call%4 == 0 {
				return failure.ServiceUnavailable
			}
			return ""
		}},
		{"outage opens the breaker", func(call int) failure.Reason {
			if call >= 5 && call < 15 {
				return failure.ServiceUnavailable
			}
			return ""
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sink := &flakySink{fail: tc.fail}
			cfg := Config{
				DB: filepath.Join(t.TempDir(), "i.db"), Every: 100, Shards: 2, Pool: 2,
				Split:          split.Options{ShardRows: 700},
				wrapSink:       func(s catalog.Sink) catalog.Sink { sink.Sink = s; return sink },
				breakerTimeout: 50 * time.Millisecond,
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			sum, err := Run(ctx, cfg, path)
			if err != nil {
				t.Fatalf("run: %v (sink failed %d of %d calls)", err, sink.failed, sink.calls)
			}
			if sum.Batch.Status != state.BatchCompletedWithErrors || sum.Batch.Counts != want {
				t.Errorf("batch %s %+v %q, want COMPLETED_WITH_ERRORS %+v", sum.Batch.Status, sum.Batch.Counts, sum.Batch.Message, want)
			}
			for reason := range sum.Batch.ByReason {
				if failure.Reason(reason).Layer() == failure.LayerInfrastructure {
					t.Errorf("infrastructure failures recorded for rows: %v", sum.Batch.ByReason)
				}
			}
			if tc.name != "clean" && sink.failed == 0 {
				t.Error("no failure was injected")
			}
		})
	}
}
