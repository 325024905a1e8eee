package shard_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/queue"
	"github.com/catalog-import/catalog-import/internal/shard"
	"github.com/catalog-import/catalog-import/internal/state"
)

// countingStore counts the checkpoints that carried failure records.
type countingStore struct {
	shard.Store
	mu          sync.Mutex
	withFailure int
}

func (s *countingStore) Checkpoint(ctx context.Context, lease state.Lease, cp state.Checkpoint, fs []failure.Record, until time.Time) error {
	err := s.Store.Checkpoint(ctx, lease, cp, fs, until)
	if err == nil && len(fs) > 0 {
		s.mu.Lock()
		s.withFailure++
		s.mu.Unlock()
	}
	return err
}

// recorder keeps what the worker reports through its ports.
type recorder struct {
	mu          sync.Mutex
	checkpoints []shard.Checkpointed
	processed   []shard.Status
	spans       map[string]int
}

func (r *recorder) Checkpointed(_ context.Context, c shard.Checkpointed) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checkpoints = append(r.checkpoints, c)
}
func (r *recorder) Retried(context.Context, queue.Manifest, string, failure.Reason) {}
func (r *recorder) BreakerChanged(string, string)                                   {}
func (r *recorder) Processed(_ context.Context, _ queue.Manifest, res shard.Result, _ error, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.processed = append(r.processed, res.Status)
}
func (r *recorder) Start(ctx context.Context, name string) (context.Context, func(error)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.spans == nil {
		r.spans = map[string]int{}
	}
	r.spans[name]++
	return ctx, func(error) {}
}

// TestRowFailuresAreLoggedPerCheckpoint: a shard with 1,500 bad rows out of
// 3,000 logs one line per checkpoint that recorded failures (with counts by
// reason, at most SampleFailures sample rows, batch_id, shard and trace_id),
// never one line per row; the metrics port sees every row once.
func TestRowFailuresAreLoggedPerCheckpoint(t *testing.T) {
	t.Parallel()
	const rows = 3000
	b := setup(t, rowsCSV(rows, func(i int) bool { return i%2 == 1 }), nil)
	m := b.m
	m.TraceID = "1-5759e988-bd862e3fe1be46a994272793"
	var logs bytes.Buffer
	store := &countingStore{Store: b.db}
	rec := &recorder{}
	w := shard.New(shard.Deps{Source: b.src, Store: store, Sink: b.db, Tracer: rec, Metrics: rec,
		Log: slog.New(slog.NewJSONHandler(&logs, nil))}, shard.Options{CheckpointEvery: 100, Pool: 2})
	res, err := w.Process(context.Background(), m)
	if err != nil || res.Status != shard.Done {
		t.Fatalf("process: %+v %v", res, err)
	}

	type line struct {
		Msg        string           `json:"msg"`
		BatchID    string           `json:"batch_id"`
		Shard      *int             `json:"shard"`
		TraceID    string           `json:"trace_id"`
		RowsFailed int              `json:"rows_failed"`
		ByReason   map[string]int   `json:"by_reason"`
		Samples    []map[string]any `json:"samples"`
	}
	var failedLines, total, other int
	sc := bufio.NewScanner(&logs)
	for sc.Scan() {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("log line is not JSON: %s", sc.Bytes())
		}
		if l.Msg != "rows failed" {
			other++
			continue
		}
		failedLines++
		total += l.RowsFailed
		if l.BatchID != m.BatchID || l.Shard == nil || *l.Shard != m.Shard || l.TraceID != m.TraceID {
			t.Errorf("line without batch_id, shard and trace_id: %s", sc.Bytes())
		}
		if l.ByReason["InvalidNumber"] != l.RowsFailed || len(l.Samples) == 0 || len(l.Samples) > shard.SampleFailures {
			t.Errorf("line %s: want counts by reason and 1..%d samples", sc.Bytes(), shard.SampleFailures)
		}
		for _, s := range l.Samples {
			if s["row"] == nil || s["reason"] != "InvalidNumber" || s["field"] != "price" {
				t.Errorf("sample %v: want row, reason and field", s)
			}
		}
	}
	if failedLines != store.withFailure || failedLines == 0 || failedLines > rows/100 {
		t.Errorf("%d 'rows failed' lines for %d checkpoints with failures (at most %d checkpoints), want one per checkpoint",
			failedLines, store.withFailure, rows/100)
	}
	if total != rows/2 {
		t.Errorf("the lines count %d failed rows, want %d", total, rows/2)
	}
	if other != 0 {
		t.Errorf("%d other log lines for a healthy shard, want none", other)
	}

	// Metrics: every row once, by reason; one Processed per claimed delivery.
	var imported, failed int64
	for _, c := range rec.checkpoints {
		imported += c.Imported
		failed += c.Failed
		if c.ByReason[failure.InvalidNumber] != c.Failed || c.BatchID != m.BatchID || c.TraceID != m.TraceID || c.Lag <= 0 {
			t.Errorf("checkpoint %+v", c)
		}
	}
	if imported != rows/2 || failed != rows/2 {
		t.Errorf("metrics saw %d imported and %d failed rows, want %d each", imported, failed, rows/2)
	}
	if len(rec.processed) != 1 || rec.processed[0] != shard.Done {
		t.Errorf("processed %v, want [done]", rec.processed)
	}
	// Spans: one claim, one per checkpoint and sink write, one finish.
	cps := len(rec.checkpoints)
	if rec.spans[shard.SpanClaim] != 1 || rec.spans[shard.SpanFinish] != 1 || rec.spans[shard.SpanCheckpoint] != cps || rec.spans[shard.SpanSinkWrite] != cps {
		t.Errorf("spans %v for %d checkpoints", rec.spans, cps)
	}

	// A second delivery is a no-op: it is not a processed shard.
	if res, err := w.Process(context.Background(), m); err != nil || res.Status != shard.AlreadyDone {
		t.Fatalf("second delivery: %+v %v", res, err)
	}
	if len(rec.processed) != 1 {
		t.Errorf("processed %v after a duplicate delivery, want one", rec.processed)
	}
}
