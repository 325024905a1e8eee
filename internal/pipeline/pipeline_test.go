package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/finalize"
	"github.com/catalog-import/catalog-import/internal/local/file"
	"github.com/catalog-import/catalog-import/internal/local/memqueue"
	"github.com/catalog-import/catalog-import/internal/local/sqlite"
	"github.com/catalog-import/catalog-import/internal/pipeline"
	"github.com/catalog-import/catalog-import/internal/queue"
	"github.com/catalog-import/catalog-import/internal/shard"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/state"
)

// rig is a pipeline over the local adapters, with a CSV of rows rows split
// into shards of 10.
type rig struct {
	pl      *pipeline.Pipeline
	db      *sqlite.DB
	q       *memqueue.Queue
	reports *flakyReports
	batch   string
	shards  int

	mu      sync.Mutex
	notices []string
}

// flakyReports fails its next fail Puts.
type flakyReports struct {
	file.Reports
	mu   sync.Mutex
	fail int
}

func (r *flakyReports) Put(ctx context.Context, batchID, name string, write func(io.Writer) error) (string, error) {
	r.mu.Lock()
	fail := r.fail > 0
	r.fail--
	r.mu.Unlock()
	if fail {
		return "", errors.New("reports unavailable")
	}
	return r.Reports.Put(ctx, batchID, name, write)
}

var _ finalize.Reports = (*flakyReports)(nil)

func newRig(t *testing.T, rows int) *rig {
	t.Helper()
	dir := t.TempDir()
	db, err := sqlite.Open(":memory:", sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	q, err := memqueue.New(memqueue.Options{VisibilityTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("sku,name,category,price,stock\n")
	for i := range rows {
		fmt.Fprintf(&b, "SKU-%03d,商品 %d,家居,%d.50,%d\n", i, i, i+1, i)
	}
	path := filepath.Join(dir, "products.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &rig{db: db, q: q, reports: &flakyReports{Reports: file.Reports{Dir: filepath.Join(dir, "reports")}}}
	src := &file.Source{}
	r.pl = pipeline.New(pipeline.Ports{Source: src, Store: db, Sink: db, Queue: q, Reports: r.reports,
		TriageLog: db.TriageLog(),
		Notify: func(_ context.Context, subject, message string) error {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.notices = append(r.notices, subject, message)
			return nil
		}},
		pipeline.Options{Split: split.Options{ShardRows: 10}, Worker: shard.Options{Owner: "test"}})
	info, err := src.Stat(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	_, out, err := r.pl.Split(t.Context(), pipeline.SplitRequest{Info: info, ID: func(split.Plan) string { return "b-test" }})
	if err != nil {
		t.Fatal(err)
	}
	if !out.Created || out.Batch.ID != "b-test" || out.Batch.Status != state.BatchRunning || out.Sent != out.Batch.Shards {
		t.Fatalf("split: %+v", out)
	}
	r.batch, r.shards = out.Batch.ID, out.Batch.Shards
	return r
}

// receive takes the manifests on the queue, by shard index.
func (r *rig) receive(t *testing.T) map[int]queue.Message {
	t.Helper()
	msgs, err := r.q.Receive(t.Context(), 100, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	by := map[int]queue.Message{}
	for _, m := range msgs {
		by[m.Manifest.Shard] = m
	}
	return by
}

func (r *rig) batchNow(t *testing.T) state.Batch {
	t.Helper()
	b, err := r.db.GetBatch(t.Context(), r.batch)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDeliverFinalizesAfterTheLastShard(t *testing.T) {
	r := newRig(t, 30)
	msgs := r.receive(t)
	if r.shards != 3 || len(msgs) != 3 {
		t.Fatalf("%d shards, %d manifests; want 3", r.shards, len(msgs))
	}
	for i := range r.shards {
		out, err := r.pl.Deliver(t.Context(), msgs[i])
		if err != nil {
			t.Fatalf("shard %d: %v", i, err)
		}
		want := pipeline.Ack
		if i == r.shards-1 {
			want = pipeline.Finished
		}
		if out.Settle != want || out.Result.Status != shard.Done {
			t.Fatalf("shard %d: %+v, want settle %d", i, out, want)
		}
	}
	if b := r.batchNow(t); b.Status != state.BatchCompleted || b.Counts.Imported != 30 {
		t.Fatalf("batch %s with %+v, want COMPLETED with 30 imported", b.Status, b.Counts)
	}
	// A duplicate delivery of a finished batch's shard: nothing to do.
	out, err := r.pl.Deliver(t.Context(), msgs[0])
	if err != nil || out.Settle != pipeline.Ack {
		t.Fatalf("duplicate delivery: %+v %v, want Ack", out, err)
	}
}

// TestAlreadyDoneFinalizes: a finalization that failed after the last shard
// leaves every shard done and the batch RUNNING; the next delivery of any
// of its shards finalizes it.
func TestAlreadyDoneFinalizes(t *testing.T) {
	r := newRig(t, 20)
	msgs := r.receive(t)
	r.reports.fail = 1
	if _, err := r.pl.Deliver(t.Context(), msgs[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := r.pl.Deliver(t.Context(), msgs[1]); err == nil || !strings.Contains(err.Error(), "reports unavailable") {
		t.Fatalf("last shard with failing reports: %v, want the finalization's error", err)
	}
	if b := r.batchNow(t); b.Status != state.BatchRunning || b.ShardsDone != 2 {
		t.Fatalf("batch %s, %d shards done; want RUNNING with 2", b.Status, b.ShardsDone)
	}
	out, err := r.pl.Deliver(t.Context(), msgs[0])
	if err != nil || out.Settle != pipeline.Finished || out.Result.Status != shard.AlreadyDone {
		t.Fatalf("redelivery: %+v %v, want Finished after AlreadyDone", out, err)
	}
	if b := r.batchNow(t); b.Status != state.BatchCompleted {
		t.Fatalf("batch %s, want COMPLETED", b.Status)
	}
	if done, err := r.pl.FinishIfDone(t.Context(), r.batch); done || err != nil {
		t.Errorf("FinishIfDone of a finished batch: %v %v, want nothing done", done, err)
	}
}

// TestTriageSkipHandsFinalizationOn: triage skips a shard whose source
// changed; it was the batch's last unfinished shard, so triage sends a
// manifest of it to the shard queue instead of finalizing (decision 24):
// the batch is finalized only by the delivery of that manifest, and
// completes with errors naming the skipped rows (never plain COMPLETED).
func TestTriageSkipHandsFinalizationOn(t *testing.T) {
	r := newRig(t, 20)
	msgs := r.receive(t)
	if _, err := r.pl.Deliver(t.Context(), msgs[0]); err != nil {
		t.Fatal(err)
	}
	r.pl.RecordFailure(t.Context(), msgs[1], failure.New(failure.SourceChanged, "", "the file changed"))
	if keep := r.pl.Triage(t.Context(), pipeline.Dead{Message: msgs[1]}); keep {
		t.Fatal("skipped message kept")
	}
	if b := r.batchNow(t); b.Status != state.BatchRunning || b.ShardsDone != 2 {
		t.Fatalf("batch after the skip: %s, %d shards done; want RUNNING with 2 (finalization is the worker's)", b.Status, b.ShardsDone)
	}
	handed := r.receive(t)
	if len(handed) != 1 || handed[1].Manifest.BatchID != r.batch || handed[1].Manifest.Version != queue.ManifestVersion {
		t.Fatalf("messages on the shard queue after the skip: %+v, want shard 1's manifest", handed)
	}
	out, err := r.pl.Deliver(t.Context(), handed[1])
	if err != nil || out.Settle != pipeline.Finished || out.Result.Status != shard.AlreadyDone {
		t.Fatalf("delivery of the handed-on manifest: %+v %v, want Finished after AlreadyDone", out, err)
	}
	b := r.batchNow(t)
	if b.Status != state.BatchCompletedWithErrors || b.Counts != (state.Counts{Total: 20, Imported: 10, Skipped: 10}) ||
		!strings.Contains(b.Message, "10 rows skipped") || !strings.Contains(b.Message, "shard 1 rows 12 to the end") {
		t.Fatalf("batch %s with %+v %q; want COMPLETED_WITH_ERRORS, 10 imported and 10 skipped, the message naming them", b.Status, b.Counts, b.Message)
	}
	data, err := os.ReadFile(b.Report)
	if err != nil {
		t.Fatal(err)
	}
	if want := `12,ShardSkipped,infrastructure,,"rows 12 to the end not imported (10 rows, shard 1): skipped by triage: `; !strings.Contains(string(data), want) {
		t.Errorf("errors.csv:\n%s\nwant a line starting %q", data, want)
	}
	// The DLQ message again: the batch is finished, nothing to hand on.
	if keep := r.pl.Triage(t.Context(), pipeline.Dead{Message: msgs[1]}); keep {
		t.Fatal("message of a finished batch kept")
	}
	if again := r.receive(t); len(again) != 0 {
		t.Errorf("%d messages handed on for a finished batch", len(again))
	}
}

// TestTriageEscalates: the escalation notification cuts a long CJK error at
// a character boundary.
func TestTriageEscalates(t *testing.T) {
	r := newRig(t, 20)
	msgs := r.receive(t)
	long := strings.Repeat("数据库内部错误", 200) // 1024 bytes end inside a character
	r.pl.RecordFailure(t.Context(), msgs[1], failure.New(failure.Internal, "", "%s", long))
	if keep := r.pl.Triage(t.Context(), pipeline.Dead{Message: msgs[1]}); !keep {
		t.Fatal("escalated message dropped")
	}
	shards, err := r.db.ListShards(t.Context(), r.batch)
	if err != nil {
		t.Fatal(err)
	}
	if s := shards[1]; s.Status != state.ShardEscalated {
		t.Fatalf("shard 1 %s, want ESCALATED", s.Status)
	}
	if b := r.batchNow(t); b.Status != state.BatchRunning {
		t.Fatalf("batch %s, want RUNNING", b.Status)
	}
	if len(r.notices) != 2 {
		t.Fatalf("%d notices, want one", len(r.notices)/2)
	}
	subject, body := r.notices[0], r.notices[1]
	if len(subject) > 100 || !utf8.ValidString(subject) || !utf8.ValidString(body) {
		t.Errorf("notification subject %q (%d bytes) or body not valid UTF-8 within limits", subject, len(subject))
	}
	for l := range strings.Lines(body) {
		if strings.HasPrefix(l, "Last error: ") && len(l) > len("Last error: ")+1024+1 {
			t.Errorf("last error line of %d bytes", len(l))
		}
	}
	// Unreadable body with CJK text: escalated under the unknown batch.
	dead := pipeline.Dead{Message: queue.Message{ID: "m-1"}, Body: strings.Repeat("商品", 300), ManifestError: errors.New("not JSON")}
	if keep := r.pl.Triage(t.Context(), dead); !keep {
		t.Fatal("unreadable message dropped")
	}
	if body := r.notices[len(r.notices)-1]; !utf8.ValidString(body) {
		t.Errorf("notification of an unreadable body is not valid UTF-8")
	}
	// Both parked messages come back: kept, and nobody is notified again.
	n := len(r.notices)
	for _, d := range []pipeline.Dead{{Message: msgs[1]}, dead} {
		if keep := r.pl.Triage(t.Context(), d); !keep {
			t.Fatalf("escalated message %q dropped when it came back", d.Message.ID)
		}
	}
	if len(r.notices) != n {
		t.Errorf("%d notifications after the parked messages came back, want none", (len(r.notices)-n)/2)
	}
	// Another unreadable message is another escalation.
	other := pipeline.Dead{Message: queue.Message{ID: "m-2"}, Body: "{", ManifestError: errors.New("not JSON")}
	if keep := r.pl.Triage(t.Context(), other); !keep || len(r.notices) != n+2 {
		t.Errorf("a second unreadable message: kept %v, %d new notifications; want kept and one", keep, (len(r.notices)-n)/2)
	}
}
