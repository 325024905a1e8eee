package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/local/file"
	"github.com/catalog-import/catalog-import/internal/local/memqueue"
	"github.com/catalog-import/catalog-import/internal/local/sqlite"
	"github.com/catalog-import/catalog-import/internal/pipeline"
	"github.com/catalog-import/catalog-import/internal/queue"
	"github.com/catalog-import/catalog-import/internal/report"
	"github.com/catalog-import/catalog-import/internal/shard"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/state"
)

// TestStatusShowsSkippedRows: a batch whose last shard triage skipped
// (finalized by the delivery triage hands on) is COMPLETED_WITH_ERRORS;
// `importctl status` lists its skipped rows in the batch table, the
// summary (count and message), the shard table and a SKIPPED ROWS section,
// and --json carries counts.rows_skipped and skipped_rows.
func TestStatusShowsSkippedRows(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	path := filepath.Join(dir, "s.db")
	db, err := sqlite.Open(path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	q, err := memqueue.New(memqueue.Options{VisibilityTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var csv strings.Builder
	csv.WriteString("sku,name,category,price,stock\n")
	for i := range 25 {
		fmt.Fprintf(&csv, "S-%03d,Lamp %d,Home,%d.50,%d\n", i, i, i+1, i)
	}
	src := filepath.Join(dir, "products.csv")
	if err := os.WriteFile(src, []byte(csv.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	fs := &file.Source{}
	pl := pipeline.New(pipeline.Ports{Source: fs, Store: db, Sink: db, Queue: q, Reports: file.Reports{Dir: filepath.Join(dir, "reports")},
		TriageLog: db.TriageLog()}, pipeline.Options{Split: split.Options{ShardRows: 10}, Worker: shard.Options{Owner: "t"}})
	info, err := fs.Stat(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := pl.Split(ctx, pipeline.SplitRequest{Info: info, ID: func(split.Plan) string { return "b-skip" }}); err != nil {
		t.Fatal(err)
	}
	receive := func() map[int]queue.Message {
		msgs, err := q.Receive(ctx, 10, 10*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		by := map[int]queue.Message{}
		for _, m := range msgs {
			by[m.Manifest.Shard] = m
		}
		return by
	}
	msgs := receive()
	for i := range 2 {
		if _, err := pl.Deliver(ctx, msgs[i]); err != nil {
			t.Fatal(err)
		}
	}
	pl.RecordFailure(ctx, msgs[2], failure.New(failure.SchemaMismatch, "", "the shard's rows do not match the header"))
	if keep := pl.Triage(ctx, pipeline.Dead{Message: msgs[2]}); keep {
		t.Fatal("skipped message kept")
	}
	if out, err := pl.Deliver(ctx, receive()[2]); err != nil || out.Settle != pipeline.Finished {
		t.Fatalf("the handed-on delivery: %+v %v", out, err)
	}
	db.Close()

	code, out, _ := importctl(t, "status", "--db", path)
	if code != 0 || !strings.Contains(out, "SKIPPED") || !regexp.MustCompile(`b-skip\s+\d+\s+COMPLETED_WITH_ERRORS\s+25\s+20\s+0\s+0\s+5\s`).MatchString(out) {
		t.Errorf("status list: exit %d, want b-skip COMPLETED_WITH_ERRORS with 5 skipped\n%s", code, out)
	}
	code, out, _ = importctl(t, "status", "--db", path, "b-skip")
	for _, want := range []string{"status    COMPLETED_WITH_ERRORS", "5 skipped", "message   5 rows skipped, not imported (shard 2 rows 22 to the end: skipped by triage",
		"SKIPPED ROWS", "rows 22 to the end  2      5     skipped by triage: the shard does not match the file's schema"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("status b-skip: exit %d, want 0 and %q in\n%s", code, want, out)
		}
	}
	code, out, _ = importctl(t, "status", "--json", "--db", path, "b-skip")
	var got struct {
		Status      state.BatchStatus `json:"status"`
		Counts      state.Counts      `json:"counts"`
		SkippedRows []report.Skip     `json:"skipped_rows"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("status --json: exit %d %v\n%s", code, err, out)
	}
	if got.Status != state.BatchCompletedWithErrors || got.Counts != (state.Counts{Total: 25, Imported: 20, Skipped: 5}) ||
		len(got.SkippedRows) != 1 || got.SkippedRows[0].First != 22 || got.SkippedRows[0].Rows != 5 || got.SkippedRows[0].Shard != 2 {
		t.Errorf("status --json: %s %+v %+v", got.Status, got.Counts, got.SkippedRows)
	}
}
