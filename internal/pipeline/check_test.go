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

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/local/file"
	"github.com/catalog-import/catalog-import/internal/local/memqueue"
	"github.com/catalog-import/catalog-import/internal/local/sqlite"
	"github.com/catalog-import/catalog-import/internal/pipeline"
	"github.com/catalog-import/catalog-import/internal/profile"
	"github.com/catalog-import/catalog-import/internal/queue"
	"github.com/catalog-import/catalog-import/internal/shard"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/state"
)

// failingQueue fails its next fail Sends.
type failingQueue struct {
	*memqueue.Queue
	mu   sync.Mutex
	fail int
}

func (q *failingQueue) Send(ctx context.Context, delay time.Duration, ms ...queue.Manifest) error {
	q.mu.Lock()
	fail := q.fail > 0
	q.fail--
	q.mu.Unlock()
	if fail {
		return errors.New("queue unavailable")
	}
	return q.Queue.Send(ctx, delay, ms...)
}

// checkRig is a pipeline over the local adapters with a max_error_ratio of
// 10% and a CSV of 30 rows in shards of 10, whose rows bad makes fail.
type checkRig struct {
	pl      *pipeline.Pipeline
	db      *sqlite.DB
	q       *failingQueue
	reports *failingReports
	batch   state.Batch
	// splitter is a second pipeline over the same ports that hands a
	// finalization on (pipeline.Options.HandOnFinalization), as the
	// splitter does on AWS.
	splitter *pipeline.Pipeline
}

// failingReports fails every Put while fail is set: a finalization that
// cannot write its reports leaves the batch unfinished (a crash).
type failingReports struct {
	file.Reports
	fail bool
}

func (r *failingReports) Put(ctx context.Context, batchID, name string, write func(io.Writer) error) (string, error) {
	if r.fail {
		return "", errors.New("reports unavailable")
	}
	return r.Reports.Put(ctx, batchID, name, write)
}

func newCheckRig(t *testing.T, bad func(i int) bool) *checkRig {
	t.Helper()
	dir := t.TempDir()
	db, err := sqlite.Open(":memory:", sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	mq, err := memqueue.New(memqueue.Options{VisibilityTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("sku,name,category,price,stock\n")
	for i := range 30 {
		price := fmt.Sprintf("%d.50", i+1)
		if bad(i) {
			price = "-1"
		}
		fmt.Fprintf(&b, "SKU-%03d,Item %d,Home,%s,%d\n", i, i, price, i)
	}
	path := filepath.Join(dir, "products.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := profile.Parse([]byte("name: strict\nmax_error_ratio: 0.1\n"))
	if err != nil {
		t.Fatal(err)
	}
	r := &checkRig{db: db, q: &failingQueue{Queue: mq}, reports: &failingReports{Reports: file.Reports{Dir: filepath.Join(dir, "reports")}}}
	src := &file.Source{}
	ports := pipeline.Ports{Source: src, Store: db, Sink: db, Queue: r.q, Reports: r.reports, TriageLog: db.TriageLog()}
	opts := pipeline.Options{Profile: p, Split: split.Options{ShardRows: 10}, Worker: shard.Options{Owner: "test"}}
	r.pl = pipeline.New(ports, opts)
	opts.HandOnFinalization = true
	r.splitter = pipeline.New(ports, opts)
	info, err := src.Stat(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	_, out, err := r.pl.Split(t.Context(), pipeline.SplitRequest{Info: info, ID: func(split.Plan) string { return "b-check" }})
	if err != nil {
		t.Fatal(err)
	}
	if out.Batch.Check == nil || out.Batch.Shards != 3 || out.Sent != 3 {
		t.Fatalf("split: %+v, want 3 shards with a check phase", out)
	}
	r.batch = out.Batch
	return r
}

// receive takes the manifests on the queue, by shard index, checking their
// phase.
func (r *checkRig) receive(t *testing.T, phase string) map[int]queue.Message {
	t.Helper()
	msgs, err := r.q.Receive(t.Context(), 100, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	by := map[int]queue.Message{}
	for _, m := range msgs {
		if m.Manifest.Phase != phase {
			t.Fatalf("manifest of shard %d in phase %q, want %q", m.Manifest.Shard, m.Manifest.Phase, phase)
		}
		by[m.Manifest.Shard] = m
	}
	return by
}

func (r *checkRig) get(t *testing.T) state.Batch {
	t.Helper()
	b, err := r.db.GetBatch(t.Context(), r.batch.ID)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCheckPhaseDecides: the delivery that checks the last shard decides.
// Over the budget the batch is ABORTED with nothing written; within it the
// write phase's manifests are sent. A crash between the last check and the
// decision (the send fails) is decided by the next delivery of any check
// manifest, and a write manifest cannot run before the check ends.
func TestCheckPhaseDecides(t *testing.T) {
	t.Run("over the budget", func(t *testing.T) {
		r := newCheckRig(t, func(i int) bool { return i >= 25 }) // 5 of 30, all in the last shard
		msgs := r.receive(t, queue.PhaseCheck)
		for i := 2; i >= 0; i-- { // the last shard first: no early abort either way
			out, err := r.pl.Deliver(t.Context(), msgs[i])
			if err != nil {
				t.Fatalf("check of shard %d: %v", i, err)
			}
			if want := map[bool]pipeline.Settle{true: pipeline.Finished, false: pipeline.Ack}[i == 0]; out.Settle != want || out.Result.Status != shard.Checked {
				t.Fatalf("check of shard %d: %+v, want settle %d", i, out, want)
			}
		}
		b := r.get(t)
		want := "aborted: 5 of 30 rows failed the checks (16.7%), over max_error_ratio 10%: nothing was imported"
		if b.Status != state.BatchAborted || b.Message != want || b.Counts != (state.Counts{Total: 30, Failed: 5, Skipped: 25}) {
			t.Fatalf("batch %s %+v %q, want ABORTED, 5 failed, 25 skipped, %q", b.Status, b.Counts, b.Message, want)
		}
		if n, err := r.db.CountBatch(t.Context(), b.ID, "", 0, 100); err != nil || n != 0 {
			t.Errorf("%d products written (%v)", n, err)
		}
		if got := r.receive(t, queue.PhaseWrite); len(got) != 0 {
			t.Errorf("%d write manifests sent for an aborted batch", len(got))
		}
	})
	t.Run("over the budget, abort lost: the splitter hands it on", func(t *testing.T) {
		r := newCheckRig(t, func(i int) bool { return i >= 25 })
		msgs := r.receive(t, queue.PhaseCheck)
		r.reports.fail = true // the last check's finalization fails: a crash before the batch finished
		for i := range 3 {
			if _, err := r.pl.Deliver(t.Context(), msgs[i]); (err != nil) != (i == 2) {
				t.Fatalf("check of shard %d: %v", i, err)
			}
		}
		r.reports.fail = false
		if b := r.get(t); b.Status != state.BatchRunning || !b.Check.Done(b.Shards) {
			t.Fatalf("batch %s check %+v, want RUNNING and fully checked", b.Status, b.Check)
		}
		// The upload's event again: the splitter finds the batch checked and
		// undecided, and hands the abort to a worker instead of finalizing.
		info, err := (&file.Source{}).Stat(t.Context(), r.batch.Source.URI)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := r.splitter.Split(t.Context(), pipeline.SplitRequest{Info: info, ID: func(split.Plan) string { return r.batch.ID }}); err != nil {
			t.Fatal(err)
		}
		if b := r.get(t); b.Status != state.BatchRunning {
			t.Fatalf("the splitter finalized the batch (%s): finalization is a worker's", b.Status)
		}
		handed := r.receive(t, queue.PhaseWrite)
		if len(handed) != 1 {
			t.Fatalf("%d manifests handed on, want 1", len(handed))
		}
		for _, m := range handed {
			out, err := r.pl.Deliver(t.Context(), m)
			if err != nil || out.Settle != pipeline.Finished {
				t.Fatalf("the worker's delivery: %+v %v, want Finished", out, err)
			}
		}
		if b := r.get(t); b.Status != state.BatchAborted || b.Counts != (state.Counts{Total: 30, Failed: 5, Skipped: 25}) {
			t.Fatalf("batch %s %+v, want ABORTED, 5 failed, 25 skipped", b.Status, b.Counts)
		}
	})
	t.Run("within the budget, decision lost once", func(t *testing.T) {
		r := newCheckRig(t, func(i int) bool { return i == 25 || i == 3 }) // 2 of 30
		checks := r.receive(t, queue.PhaseCheck)
		for i := range 2 {
			if _, err := r.pl.Deliver(t.Context(), checks[i]); err != nil {
				t.Fatal(err)
			}
		}
		// A write manifest ahead of the decision is refused.
		early := checks[0]
		early.Manifest.Phase = queue.PhaseWrite
		if _, err := r.pl.Deliver(t.Context(), early); failure.ReasonOf(err) != failure.Internal {
			t.Fatalf("write before the check ended: %v, want an Internal error", err)
		}
		r.q.fail = 1
		if _, err := r.pl.Deliver(t.Context(), checks[2]); err == nil || !strings.Contains(err.Error(), "queue unavailable") {
			t.Fatalf("last check with a failing queue: %v, want the send's error", err)
		}
		if b := r.get(t); b.Status != state.BatchRunning || b.Check == nil || b.Check.Shards != 3 || b.Check.Failed != 2 {
			t.Fatalf("batch %s check %+v, want RUNNING with 3 shards checked, 2 rows failed", b.Status, b.Check)
		}
		out, err := r.pl.Deliver(t.Context(), checks[1]) // a redelivery decides
		if err != nil || out.Result.Status != shard.AlreadyChecked {
			t.Fatalf("redelivered check: %+v %v", out, err)
		}
		writes := r.receive(t, queue.PhaseWrite)
		if len(writes) != 3 {
			t.Fatalf("%d write manifests, want 3", len(writes))
		}
		for i := range 3 {
			if _, err := r.pl.Deliver(t.Context(), writes[i]); err != nil {
				t.Fatal(err)
			}
		}
		b := r.get(t)
		if b.Status != state.BatchCompletedWithErrors || b.Counts != (state.Counts{Total: 30, Imported: 28, Failed: 2}) {
			t.Fatalf("batch %s %+v %q, want COMPLETED_WITH_ERRORS, 28 imported, 2 failed", b.Status, b.Counts, b.Message)
		}
		recs, err := r.db.Failures(t.Context(), b.ID, state.FailureFilter{})
		if err != nil || len(recs) != 2 {
			t.Errorf("%d failure records (%v), want 2 (the check's, rewritten by the writes)", len(recs), err)
		}
	})
	t.Run("triage skips a shard in the check phase", func(t *testing.T) {
		r := newCheckRig(t, func(i int) bool { return false })
		checks := r.receive(t, queue.PhaseCheck)
		for i := range 2 {
			if _, err := r.pl.Deliver(t.Context(), checks[i]); err != nil {
				t.Fatal(err)
			}
		}
		r.pl.RecordFailure(t.Context(), checks[2], failure.New(failure.SourceChanged, "", "the file changed"))
		if keep := r.pl.Triage(t.Context(), pipeline.Dead{Message: checks[2]}); keep {
			t.Fatal("skipped message kept")
		}
		writes := r.receive(t, queue.PhaseWrite)
		if len(writes) != 2 {
			t.Fatalf("%d write manifests after the skip, want 2 (the skipped shard's rows are skipped)", len(writes))
		}
		for i := range 2 {
			if _, err := r.pl.Deliver(t.Context(), writes[i]); err != nil {
				t.Fatal(err)
			}
		}
		if b := r.get(t); b.Status != state.BatchCompletedWithErrors || b.Counts != (state.Counts{Total: 30, Imported: 20, Skipped: 10}) {
			t.Fatalf("batch %s %+v, want COMPLETED_WITH_ERRORS with 20 imported and 10 skipped", b.Status, b.Counts)
		}
	})
	t.Run("triage's skip ends a check over the budget: the abort is handed on", func(t *testing.T) {
		r := newCheckRig(t, func(i int) bool { return i < 5 }) // 5 of the 20 rows checked
		checks := r.receive(t, queue.PhaseCheck)
		for i := range 2 {
			if _, err := r.pl.Deliver(t.Context(), checks[i]); err != nil {
				t.Fatal(err)
			}
		}
		r.pl.RecordFailure(t.Context(), checks[2], failure.New(failure.SourceChanged, "", "the file changed"))
		if keep := r.pl.Triage(t.Context(), pipeline.Dead{Message: checks[2]}); keep {
			t.Fatal("skipped message kept")
		}
		if b := r.get(t); b.Status != state.BatchRunning {
			t.Fatalf("batch %s after triage, want RUNNING (the abort is a worker's)", b.Status)
		}
		handed := r.receive(t, queue.PhaseWrite)
		if len(handed) != 1 {
			t.Fatalf("%d manifests handed on, want shard 2's", len(handed))
		}
		if out, err := r.pl.Deliver(t.Context(), handed[2]); err != nil || out.Settle != pipeline.Finished {
			t.Fatalf("delivery of the handed-on manifest: %+v %v, want Finished", out, err)
		}
		if b := r.get(t); b.Status != state.BatchAborted || b.Counts.Imported != 0 {
			t.Fatalf("batch %s %+v, want ABORTED with nothing imported", b.Status, b.Counts)
		}
	})
}
