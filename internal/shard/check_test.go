package shard_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/profile"
	"github.com/catalog-import/catalog-import/internal/queue"
	"github.com/catalog-import/catalog-import/internal/shard"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/state"
)

// setupChecked is setup with the batch in its check phase (decision 20).
func setupChecked(t *testing.T, content string) *bundle {
	t.Helper()
	p, err := profile.Parse([]byte("name: strict\nmax_error_ratio: 0.1\n"))
	if err != nil {
		t.Fatal(err)
	}
	b := setup(t, content, p)
	ctx := context.Background()
	old, err := b.db.GetBatch(ctx, "b-1")
	if err != nil {
		t.Fatal(err)
	}
	shards, err := b.db.ListShards(ctx, "b-1")
	if err != nil {
		t.Fatal(err)
	}
	old.ID, old.Check = "b-2", &state.BatchCheck{}
	for i := range shards {
		shards[i].BatchID = "b-2"
	}
	nb, _, err := b.db.CreateBatch(ctx, old, shards)
	if err != nil {
		t.Fatal(err)
	}
	b.m = split.Manifest(nb, shards[0], "")
	return b
}

// TestCheckModeWritesNothing: a check manifest reads and validates the whole
// shard, writes no product, records a failure record per failed row
// (more than one flush's worth, and duplicate SKUs within the shard) and
// the shard's check outcome; a redelivery changes nothing.
func TestCheckModeWritesNothing(t *testing.T) {
	t.Parallel()
	const n = 2600
	var csv strings.Builder
	csv.WriteString("sku,name,category,price\n")
	failed := 0
	for i := range n {
		sku, price := fmt.Sprintf("SKU-%05d", i), fmt.Sprintf("%d.50", i)
		switch {
		case i%2 == 1:
			price = "n/a"
			failed++
		case i%100 == 50:
			sku = "SKU-00000" // a duplicate of row 2 (valid)
			failed++
		}
		fmt.Fprintf(&csv, "%s,Item %d,Home,%s\n", sku, i, price)
	}
	b := setupChecked(t, csv.String())
	if b.m.Phase != queue.PhaseCheck {
		t.Fatalf("manifest phase %q, want check", b.m.Phase)
	}
	w := b.worker("checker", nil, nil, shard.Options{CheckpointEvery: 100})
	ctx := context.Background()
	res, err := w.Process(ctx, b.m)
	if err != nil || res.Status != shard.Checked || !res.Last {
		t.Fatalf("check: %+v %v, want Checked and Last", res, err)
	}
	want := state.BatchCheck{Shards: 1, Rows: n, Failed: int64(failed)}
	if res.Batch.Check == nil || *res.Batch.Check != want {
		t.Fatalf("batch check %+v, want %+v", res.Batch.Check, want)
	}
	if c, err := b.db.CountBatch(ctx, "b-2", "", 0, 1<<62); err != nil || c != 0 {
		t.Errorf("%d products written by a check (%v)", c, err)
	}
	recs, err := b.db.Failures(ctx, "b-2", state.FailureFilter{})
	if err != nil || len(recs) != failed {
		t.Fatalf("%d failure records (%v), want %d", len(recs), err, failed)
	}
	dups := 0
	for _, r := range recs {
		if r.Reason == failure.DuplicateSKU {
			dups++
		}
	}
	if dups != n/100 {
		t.Errorf("%d DuplicateSKU records, want %d", dups, n/100)
	}
	res, err = w.Process(ctx, b.m)
	if err != nil || res.Status != shard.AlreadyChecked || res.Batch.Check == nil || *res.Batch.Check != want {
		t.Fatalf("redelivered check: %+v %v, want AlreadyChecked with the first outcome", res, err)
	}
	if msg := shard.CheckAbort(res.Batch, 0.1); !strings.Contains(msg, fmt.Sprintf("%d of %d rows failed the checks", failed, n)) {
		t.Errorf("abort message %q", msg)
	}
}

// countingBatches counts GetBatch calls.
type countingBatches struct {
	shard.Store
	n atomic.Int64
}

func (s *countingBatches) GetBatch(ctx context.Context, id string) (state.Batch, error) {
	s.n.Add(1)
	return s.Store.GetBatch(ctx, id)
}

// TestWriteManifestsReadTheBatchOnce: a worker reads a batch once to see
// that its check phase passed, then takes it as passed for the batch's
// other write manifests (on DynamoDB GetBatch also sums the batch's shards,
// decision 30); a batch it has not seen pass is read again.
func TestWriteManifestsReadTheBatchOnce(t *testing.T) {
	t.Parallel()
	b := setupChecked(t, rowsCSV(300, nil))
	ctx := context.Background()
	store := &countingBatches{Store: b.db}
	w := shard.New(shard.Deps{Source: b.src, Store: store, Sink: b.db}, shard.Options{Owner: "w", CheckpointEvery: 100})
	if res, err := w.Process(ctx, b.m); err != nil || res.Status != shard.Checked {
		t.Fatalf("check: %+v %v", res, err)
	}
	write := b.m
	write.Phase = queue.PhaseWrite
	for i, tc := range []struct {
		w     *shard.Worker
		want  shard.Status
		reads int64
	}{
		{w, shard.Done, 1},        // reads the batch: the check passed
		{w, shard.AlreadyDone, 0}, // a redelivery: known to have passed
		{w, shard.AlreadyDone, 0},
		{shard.New(shard.Deps{Source: b.src, Store: store, Sink: b.db}, shard.Options{Owner: "w2"}), shard.AlreadyDone, 2}, // another container: its profile and the batch
	} {
		before := store.n.Load()
		res, err := tc.w.Process(ctx, write)
		if err != nil || res.Status != tc.want {
			t.Fatalf("write delivery %d: %+v %v, want %s", i, res, err, tc.want)
		}
		if reads := store.n.Load() - before; reads != tc.reads {
			t.Errorf("write delivery %d read the batch %d times, want %d", i, reads, tc.reads)
		}
	}
}
