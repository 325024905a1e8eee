package shard_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/catalog-import/catalog-import/internal/catalog"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/finalize"
	"github.com/catalog-import/catalog-import/internal/local/file"
	"github.com/catalog-import/catalog-import/internal/local/sqlite"
	"github.com/catalog-import/catalog-import/internal/profile"
	"github.com/catalog-import/catalog-import/internal/queue"
	"github.com/catalog-import/catalog-import/internal/shard"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/state"
)

// bundle is one planned batch, ready for workers: m is its first shard's
// manifest, ms every shard's.
type bundle struct {
	db   *sqlite.DB
	src  *file.Source
	path string
	m    queue.Manifest
	ms   []queue.Manifest
}

// rowsCSV returns a header and n valid rows; rows listed in bad get a bad price.
func rowsCSV(n int, bad func(i int) bool) string {
	var b strings.Builder
	b.WriteString("sku,name,category,price\n")
	for i := range n {
		price := fmt.Sprintf("%d.50", i)
		if bad != nil && bad(i) {
			price = "n/a"
		}
		fmt.Fprintf(&b, "S-%05d,Item %d,Home,%s\n", i, i, price)
	}
	return b.String()
}

func setup(t *testing.T, content string, p *profile.Profile) *bundle {
	t.Helper()
	b := setupShards(t, content, p, 1<<30)
	if len(b.ms) != 1 {
		t.Fatalf("%d shards, want 1", len(b.ms))
	}
	return b
}

// setupShards plans content into shards of shardRows rows.
func setupShards(t *testing.T, content string, p *profile.Profile, shardRows int64) *bundle {
	t.Helper()
	if p == nil {
		p = profile.Default()
	}
	path := filepath.Join(t.TempDir(), "p.csv")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(sqlite.Memory, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	src := &file.Source{}
	ctx := context.Background()
	info, err := src.Stat(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := p.Compile()
	plan, err := split.PlanSource(ctx, src, info, v, split.Options{ShardRows: shardRows})
	if err != nil || plan.Rejected != nil || len(plan.Shards) == 0 {
		t.Fatalf("plan: %v %v %d shards", err, plan.Rejected, len(plan.Shards))
	}
	for i := range plan.Shards {
		plan.Shards[i].BatchID = "b-1"
	}
	b, _, err := db.CreateBatch(ctx, state.Batch{ID: "b-1", Status: state.BatchRunning, Source: state.Source{URI: path, Size: info.Size, ETag: info.ETag},
		Layout: plan.Layout, Profile: p.Canonical(), RuleVersion: p.RuleVersion(), Shards: len(plan.Shards), Counts: state.Counts{Total: plan.Rows}},
		plan.Shards)
	if err != nil {
		t.Fatal(err)
	}
	shards, _ := db.ListShards(ctx, "b-1")
	bd := &bundle{db: db, src: src, path: path}
	for _, sh := range shards {
		bd.ms = append(bd.ms, split.Manifest(b, sh, ""))
	}
	bd.m = bd.ms[0]
	return bd
}

func (b *bundle) worker(owner string, now func() time.Time, sink catalog.Sink, o shard.Options) *shard.Worker {
	if sink == nil {
		sink = b.db
	}
	o.Owner = owner
	return shard.New(shard.Deps{Source: b.src, Store: b.db, Sink: sink, Now: now}, o)
}

func (b *bundle) products(t *testing.T) int64 {
	n, err := b.db.CountBatch(context.Background(), "b-1", "-", 0, 1<<62)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestProcessThenDuplicateDeliveryIsANoOp(t *testing.T) {
	t.Parallel()
	b := setup(t, rowsCSV(250, func(i int) bool { return i%10 == 3 }), nil)
	w := b.worker("a", nil, nil, shard.Options{CheckpointEvery: 20})
	res, err := w.Process(context.Background(), b.m)
	if err != nil || res.Status != shard.Done || !res.Last {
		t.Fatalf("first delivery: %+v %v", res, err)
	}
	if want := (state.Counts{Total: 250, Imported: 225, Failed: 25}); res.Counts != want {
		t.Errorf("counts %+v, want %+v", res.Counts, want)
	}
	res, err = w.Process(context.Background(), b.m)
	if err != nil || res.Status != shard.AlreadyDone {
		t.Errorf("second delivery: %+v %v, want already-done", res, err)
	}
	if n := b.products(t); n != 225 {
		t.Errorf("%d products, want 225", n)
	}
}

func TestLeasedShardIsNotTouched(t *testing.T) {
	t.Parallel()
	b := setup(t, rowsCSV(50, nil), nil)
	if _, _, err := b.db.Claim(context.Background(), "b-1", 0, "other", time.Minute, time.Now()); err != nil {
		t.Fatal(err)
	}
	res, err := b.worker("a", nil, nil, shard.Options{}).Process(context.Background(), b.m)
	if err != nil || res.Status != shard.Leased {
		t.Errorf("got %+v %v, want leased", res, err)
	}
	if n := b.products(t); n != 0 {
		t.Errorf("%d products written under another owner's lease", n)
	}
}

// blockingSink stalls the first Write that reaches row stallAt until released.
type blockingSink struct {
	catalog.Sink
	once     sync.Once
	stallAt  int64
	stalled  chan struct{}
	released chan struct{}
}

func (s *blockingSink) Write(ctx context.Context, mode catalog.WriteMode, ps []catalog.Product) ([]catalog.Outcome, error) {
	if len(ps) > 0 && ps[len(ps)-1].Source.Row >= s.stallAt {
		s.once.Do(func() {
			close(s.stalled)
			<-s.released
		})
	}
	return s.Sink.Write(ctx, mode, ps)
}

// TestZombieCannotMoveCheckpoint: worker A stalls mid-shard past its lease;
// B takes the shard over and finishes it; when A wakes, its writes are fenced
// and the shard and batch counts are B's alone (invariant 2).
func TestZombieCannotMoveCheckpoint(t *testing.T) {
	t.Parallel()
	b := setup(t, rowsCSV(300, func(i int) bool { return i%7 == 0 }), nil)
	sink := &blockingSink{Sink: b.db, stallAt: 150, stalled: make(chan struct{}), released: make(chan struct{})}
	a := b.worker("a", nil, sink, shard.Options{CheckpointEvery: 50, LeaseTTL: time.Minute, Pool: 1})
	type result struct {
		res shard.Result
		err error
	}
	aDone := make(chan result, 1)
	go func() {
		res, err := a.Process(context.Background(), b.m)
		aDone <- result{res, err}
	}()
	select { // A is stuck in the write that reaches row 150
	case <-sink.stalled:
	case <-time.After(30 * time.Second):
		t.Fatal("worker A never reached row 150")
	}

	later := func() time.Time { return time.Now().Add(5 * time.Minute) } // A's lease has expired
	resB, err := b.worker("b", later, nil, shard.Options{CheckpointEvery: 50}).Process(context.Background(), b.m)
	if err != nil || resB.Status != shard.Done {
		t.Fatalf("B: %+v %v", resB, err)
	}
	close(sink.released)
	var ra result
	select {
	case ra = <-aDone:
	case <-time.After(30 * time.Second):
		t.Fatal("zombie A never returned")
	}
	if ra.err != nil || ra.res.Status != shard.Fenced {
		t.Errorf("zombie A: %+v %v, want fenced", ra.res, ra.err)
	}
	s, _ := b.db.ListShards(context.Background(), "b-1")
	batch, _ := b.db.GetBatch(context.Background(), "b-1")
	want := state.Counts{Total: 300, Imported: 257, Failed: 43}
	if s[0].Checkpoint.Counts != want || s[0].Owner != "b" || s[0].Status != state.ShardDone {
		t.Errorf("shard after the zombie: %+v, want counts %+v owned by b", s[0], want)
	}
	if batch.Counts.Done() != 300 || batch.Counts.Failed != 43 {
		t.Errorf("batch counters %+v: the zombie counted rows twice", batch.Counts)
	}
}

// TestDeadlineHandsOn: a worker whose deadline is near stops after the chunk
// in hand and reports Partial; the next delivery, to another worker,
// continues from the checkpoint; the shard ends exactly (invariant 8).
func TestDeadlineHandsOn(t *testing.T) {
	t.Parallel()
	b := setup(t, rowsCSV(1000, func(i int) bool { return i%9 == 0 }), nil)
	// Two workers take turns, as two Lambda containers would: each
	// continuation is claimed at once by the other, because the stopped
	// worker ends its lease when it hands the shard on.
	ws := []*shard.Worker{
		b.worker("a", nil, nil, shard.Options{CheckpointEvery: 100, DeadlineMargin: time.Hour, Pool: 1}),
		b.worker("b", nil, nil, shard.Options{CheckpointEvery: 100, DeadlineMargin: time.Hour, Pool: 1}),
	}
	calls := 0
	var res shard.Result
	for res.Status != shard.Done {
		if calls++; calls > 50 {
			t.Fatal("the shard never finished")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute) // within the margin
		var err error
		res, err = ws[calls%2].Process(ctx, b.m)
		cancel()
		if err != nil || (res.Status != shard.Partial && res.Status != shard.Done) {
			t.Fatalf("call %d: %+v %v", calls, res, err)
		}
	}
	if calls < 2 {
		t.Errorf("finished in %d call: the deadline was ignored", calls)
	}
	if want := (state.Counts{Total: 1000, Imported: 888, Failed: 112}); res.Counts != want {
		t.Errorf("after %d calls: %+v, want %+v", calls, res.Counts, want)
	}
	if n := b.products(t); n != 888 {
		t.Errorf("%d products, want 888", n)
	}
}

// TestSourceChanged: a file rewritten after the split is refused with
// SourceChanged, and nothing of the new version is imported (invariant 7).
func TestSourceChanged(t *testing.T) {
	t.Parallel()
	b := setup(t, rowsCSV(100, nil), nil)
	changed := strings.Replace(rowsCSV(100, nil), "Item 5,", "Item X,", 1)
	os.WriteFile(b.path, []byte(changed), 0o644)
	os.Chtimes(b.path, time.Now().Add(time.Hour), time.Now().Add(time.Hour))
	_, err := b.worker("a", nil, nil, shard.Options{}).Process(context.Background(), b.m)
	if failure.ReasonOf(err) != failure.SourceChanged {
		t.Fatalf("got %v, want SourceChanged", err)
	}
	var ie *failure.ImportError
	if !errors.As(err, &ie) || ie.Layer != failure.LayerInfrastructure {
		t.Errorf("error %v is not an infrastructure ImportError", err)
	}
	if n := b.products(t); n != 0 {
		t.Errorf("%d products imported from a changed source", n)
	}
}

// TestMaxErrorRatioAborts: past the profile's max_error_ratio the worker
// stops and asks for the batch to be aborted.
func TestMaxErrorRatioAborts(t *testing.T) {
	t.Parallel()
	p, err := profile.Parse([]byte("name: strict\nmax_error_ratio: 0.1\n"))
	if err != nil {
		t.Fatal(err)
	}
	b := setup(t, rowsCSV(2000, func(i int) bool { return i%2 == 0 }), p)
	res, err := b.worker("a", nil, nil, shard.Options{CheckpointEvery: 50}).Process(context.Background(), b.m)
	if err != nil || res.Abort == "" {
		t.Fatalf("got %+v %v, want an abort", res, err)
	}
	if res.Counts.Done() >= 2000 {
		t.Errorf("processed the whole shard (%+v) before aborting", res.Counts)
	}
}

// TestDisplacedRowIsRecorded: the later shard runs first and imports row 15
// of SKU X; the earlier shard's row 5 then displaces it (invariant 5). Row 15
// becomes a DuplicateSKU record of ITS shard with its original line read back
// from the source, row 18 is a plain duplicate, and the batch reconciles.
func TestDisplacedRowIsRecorded(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("sku,name,category,price\n")
	for row := 2; row <= 21; row++ {
		sku := fmt.Sprintf("S-%d", row)
		if row == 5 || row == 15 || row == 18 {
			sku = "X"
		}
		fmt.Fprintf(&b, "%s,\"Item, row %d\",Home,%d.00\n", sku, row, row)
	}
	bd := setupShards(t, b.String(), nil, 10)
	if len(bd.ms) != 2 {
		t.Fatalf("%d shards, want 2", len(bd.ms))
	}
	ctx := context.Background()
	w := bd.worker("a", nil, nil, shard.Options{CheckpointEvery: 3})
	for _, m := range []queue.Manifest{bd.ms[1], bd.ms[0]} { // later shard first
		if res, err := w.Process(ctx, m); err != nil || res.Status != shard.Done {
			t.Fatalf("shard %d: %+v %v", m.Shard, res, err)
		}
	}
	p, ok, err := bd.db.Get(ctx, "X")
	if err != nil || !ok || p.Source.Row != 5 {
		t.Fatalf("X is held by %+v (%v %v), want row 5", p.Source, ok, err)
	}
	fails, err := bd.db.Failures(ctx, "b-1", state.FailureFilter{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[int64]failure.Record{}
	for _, f := range fails {
		got[f.Row] = f
	}
	r15, r18 := got[15], got[18]
	if len(fails) != 2 || r15.Reason != failure.DuplicateSKU || r18.Reason != failure.DuplicateSKU {
		t.Fatalf("failures %+v, want DuplicateSKU on rows 15 and 18", fails)
	}
	if r15.Shard != 1 || r15.RawLine != `X,"Item, row 15",Home,15.00` || len(r15.Cells) != 4 || r15.Cells[1] != "Item, row 15" {
		t.Errorf("displaced row 15 recorded as %+v, want shard 1 with its original line and cells", r15)
	}
	final, err := finalize.Finalize(ctx, finalize.Deps{Store: bd.db}, "b-1", "")
	if err != nil {
		t.Fatal(err)
	}
	if final.Status != state.BatchCompletedWithErrors || final.Counts != (state.Counts{Total: 20, Imported: 18, Failed: 2}) {
		t.Errorf("batch %s %+v %q, want COMPLETED_WITH_ERRORS with 18 imported and 2 failed", final.Status, final.Counts, final.Message)
	}
}
