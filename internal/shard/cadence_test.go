package shard_test

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/object"
	"github.com/catalog-import/catalog-import/internal/shard"
	"github.com/catalog-import/catalog-import/internal/state"
)

// cadenceStore records the rows each checkpoint moved the shard by.
type cadenceStore struct {
	shard.Store
	mu    sync.Mutex
	last  int64
	steps []int64
}

func (s *cadenceStore) Checkpoint(ctx context.Context, lease state.Lease, cp state.Checkpoint, fs []failure.Record, until time.Time) error {
	err := s.Store.Checkpoint(ctx, lease, cp, fs, until)
	if err == nil {
		s.mu.Lock()
		s.steps = append(s.steps, cp.Counts.Total-s.last)
		s.last = cp.Counts.Total
		s.mu.Unlock()
	}
	return err
}

// slowSource reads at most 256 bytes per Read, a millisecond each: rows
// arrive slower than the worker commits them, so no chunks are ready to be
// committed together.
type slowSource struct{ object.Source }

func (s slowSource) Open(ctx context.Context, want object.Info, start, end int64) (io.ReadCloser, error) {
	rc, err := s.Source.Open(ctx, want, start, end)
	if err != nil {
		return nil, err
	}
	return slowReader{rc}, nil
}

type slowReader struct{ io.ReadCloser }

func (r slowReader) Read(p []byte) (int, error) {
	time.Sleep(time.Millisecond)
	return r.ReadCloser.Read(p[:min(len(p), 256)])
}

// TestCheckpointEveryChunkWhenRowsArriveSlowly: when rows arrive slower
// than the worker commits them, a 1,000-row shard with CheckpointEvery 100
// makes exactly 10 checkpoints of 100 rows.
func TestCheckpointEveryChunkWhenRowsArriveSlowly(t *testing.T) {
	t.Parallel()
	b := setup(t, rowsCSV(1000, nil), nil)
	st := &cadenceStore{Store: b.db}
	w := shard.New(shard.Deps{Source: slowSource{b.src}, Store: st, Sink: b.db}, shard.Options{Owner: "a", CheckpointEvery: 100, Pool: 2})
	res, err := w.Process(context.Background(), b.m)
	if err != nil || res.Status != shard.Done {
		t.Fatalf("%+v %v", res, err)
	}
	if len(st.steps) != 10 {
		t.Errorf("%d checkpoints %v, want 10 of 100 rows", len(st.steps), st.steps)
	}
	for _, step := range st.steps {
		if step != 100 {
			t.Errorf("checkpoints %v, want 10 of 100 rows", st.steps)
			break
		}
	}
}

// TestCheckpointCadence: a 1,000-row shard checkpoints after every
// CheckpointEvery rows — each checkpoint covers whole chunks of that many
// rows (group commit may join up to 8 chunks that were ready at once, never
// more) and the last one covers the shard's end: about 1,000/CheckpointEvery
// checkpoints, not one per row and not one at the end only.
func TestCheckpointCadence(t *testing.T) {
	t.Parallel()
	for _, every := range []int64{100, 250} {
		b := setup(t, rowsCSV(1000, nil), nil)
		st := &cadenceStore{Store: b.db}
		w := shard.New(shard.Deps{Source: b.src, Store: st, Sink: b.db}, shard.Options{Owner: "a", CheckpointEvery: int(every), Pool: 2})
		res, err := w.Process(context.Background(), b.m)
		if err != nil || res.Status != shard.Done {
			t.Fatalf("every %d: %+v %v", every, res, err)
		}
		want := 1000 / every
		if n := int64(len(st.steps)); n < (want+7)/8 || n > want {
			t.Errorf("every %d: %d checkpoints (%v), want between %d and %d", every, n, st.steps, (want+7)/8, want)
		}
		for _, step := range st.steps {
			if step%every != 0 || step > 8*every {
				t.Errorf("every %d: a checkpoint covered %d rows (%v), want whole chunks of %d", every, step, st.steps, every)
				break
			}
		}
		if st.last != 1000 {
			t.Errorf("every %d: the last checkpoint covers %d rows, want 1000", every, st.last)
		}
	}
}
