package emf_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/catalog-import/catalog-import/internal/aws/emf"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/queue"
	"github.com/catalog-import/catalog-import/internal/shard"
	"github.com/catalog-import/catalog-import/internal/triage"
)

// FuzzLines: whatever strings and numbers reach the Writer (batch ids,
// reasons, operations, states, counts), every line it writes is valid EMF
// and keeps the batch id as written; Validate never panics on the lines,
// nor on their corruptions.
func FuzzLines(f *testing.F) {
	f.Add("b-1", "write", "Throttled", "open", int64(7), int64(1500))
	f.Add("", "", "", "", int64(0), int64(0))
	f.Add("b-\"\n\u2028", "op\x00", "不明", "half-open", int64(-1), int64(1<<62))
	f.Fuzz(func(t *testing.T, batchID, op, reason, state string, n, ms int64) {
		var out bytes.Buffer
		w := emf.New(&out, "fn")
		ctx := context.Background()
		m := queue.Manifest{BatchID: batchID, Shard: int(n % 1000), TraceID: op}
		w.Checkpointed(ctx, shard.Checkpointed{BatchID: batchID, Imported: n, Failed: n, Lag: time.Duration(ms),
			ByReason: map[failure.Reason]int64{failure.Reason(reason): n}})
		w.Retried(ctx, m, op, failure.Reason(reason))
		w.BreakerChanged(state, state)
		w.Processed(ctx, m, shard.Result{Status: shard.Status(state)}, nil, time.Duration(ms))
		w.TriageDecided(ctx, batchID, 1, triage.Decision{Action: triage.Action(state), Reason: failure.Reason(reason)})
		sc := bufio.NewScanner(&out)
		sc.Buffer(nil, 1<<20)
		lines := 0
		for sc.Scan() {
			lines++
			if err := emf.Validate(sc.Bytes()); err != nil {
				t.Fatalf("line %s: %v", sc.Bytes(), err)
			}
			var l struct {
				BatchID *string `json:"batch_id"`
			}
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Fatal(err)
			}
			if l.BatchID != nil && utf8.ValidString(batchID) && *l.BatchID != batchID {
				t.Fatalf("batch_id %q, want %q", *l.BatchID, batchID)
			}
			b := sc.Bytes()
			for _, cut := range []int{1, len(b) / 3, len(b) / 2, len(b) - 2} { // refuse or accept, never panic
				if cut > 0 && cut < len(b) {
					_ = emf.Validate(b[:cut])
				}
			}
		}
		if lines != 6 {
			t.Fatalf("%d lines, want 6", lines)
		}
	})
}
