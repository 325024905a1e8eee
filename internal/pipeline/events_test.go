package pipeline_test

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

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/local/file"
	"github.com/catalog-import/catalog-import/internal/local/memqueue"
	"github.com/catalog-import/catalog-import/internal/local/sqlite"
	"github.com/catalog-import/catalog-import/internal/pipeline"
	"github.com/catalog-import/catalog-import/internal/shard"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/state"
)

// publisher records the events it is given; refuse makes it fail.
type publisher struct {
	mu     sync.Mutex
	events []pipeline.BatchEvent
	refuse error
}

func (p *publisher) BatchFinished(_ context.Context, e pipeline.BatchEvent) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, e)
	return p.refuse
}

// TestBatchFinishedIsPublished: the batch's last shard publishes one event
// that says what the batch's status says (a local file is `file`, the
// counts add up, failures by reason); a cancelled batch publishes its
// CANCELLED; a refused event leaves the batch finished.
func TestBatchFinishedIsPublished(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cancel bool
		refuse error
		want   state.BatchStatus
	}{
		{"last shard", false, nil, state.BatchCompletedWithErrors},
		{"cancelled", true, nil, state.BatchCancelled},
		{"refused", false, errors.New("AccessDeniedException"), state.BatchCompletedWithErrors},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			db, err := sqlite.Open(":memory:", sqlite.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			q, err := memqueue.New(memqueue.Options{VisibilityTimeout: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			b.WriteString("sku,name,category,price\n")
			for i := range 25 {
				price := fmt.Sprintf("%d.50", i+1)
				if i%10 == 3 {
					price = "cheap" // InvalidNumber
				}
				fmt.Fprintf(&b, "SKU-%03d,Item %d,Home,%s\n", i, i, price)
			}
			path := filepath.Join(dir, "products.csv")
			if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			pub := &publisher{refuse: tc.refuse}
			src := &file.Source{}
			pl := pipeline.New(pipeline.Ports{Source: src, Store: db, Sink: db, Queue: q, Reports: file.Reports{Dir: filepath.Join(dir, "reports")},
				Events: pub}, pipeline.Options{Split: split.Options{ShardRows: 10}, Worker: shard.Options{Owner: "test"}})
			info, err := src.Stat(t.Context(), path)
			if err != nil {
				t.Fatal(err)
			}
			_, out, err := pl.Split(t.Context(), pipeline.SplitRequest{Info: info, ID: func(split.Plan) string { return "b-events" }})
			if err != nil {
				t.Fatal(err)
			}
			msgs, err := q.Receive(t.Context(), 100, 10*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			if tc.cancel {
				if _, err := pl.Cancel(t.Context(), out.Batch.ID, ""); err != nil {
					t.Fatal(err)
				}
			} else {
				for _, m := range msgs {
					if _, err := pl.Deliver(t.Context(), m); err != nil {
						t.Fatal(err)
					}
				}
			}
			final, err := db.GetBatch(t.Context(), out.Batch.ID)
			if err != nil {
				t.Fatal(err)
			}
			if final.Status != tc.want {
				t.Fatalf("batch %s, want %s", final.Status, tc.want)
			}
			if len(pub.events) != 1 {
				t.Fatalf("%d events, want 1", len(pub.events))
			}
			e := pub.events[0]
			c := e.Counts
			if e.Version != pipeline.BatchEventVersion || e.BatchID != final.ID || e.Status != final.Status || e.Source.File != path ||
				e.Source.Bucket != "" || e.Source.Size != info.Size || c.Total != 25 || c.Total != c.Imported+c.Superseded+c.Failed+c.Skipped ||
				c.Failed != final.Counts.Failed || e.FailuresByReason[failure.InvalidNumber] != final.ByReason[failure.InvalidNumber] ||
				e.Report != final.Report || e.FinishedAt.IsZero() {
				t.Errorf("event %+v\nfor batch %+v", e, final)
			}
			if !tc.cancel && (c.Failed != 3 || e.FailuresByReason[failure.InvalidNumber] != 3) {
				t.Errorf("event counts %+v by reason %v, want 3 InvalidNumber", c, e.FailuresByReason)
			}
		})
	}
}

// TestNewBatchEventOfAnUpload: an S3 source is named by bucket, key and
// version, the report by bucket and key.
func TestNewBatchEventOfAnUpload(t *testing.T) {
	e := pipeline.NewBatchEvent(state.Batch{ID: "b-1", Status: state.BatchCompleted,
		Source: state.Source{URI: "s3://shop-imports/incoming/feeds/a b.csv", Version: "v7", Size: 10},
		Report: "s3://shop-imports/reports/b-1/errors.csv"})
	want := pipeline.EventSource{URI: "s3://shop-imports/incoming/feeds/a b.csv", Bucket: "shop-imports", Key: "incoming/feeds/a b.csv", Version: "v7", Size: 10}
	if e.Source != want || e.ReportBucket != "shop-imports" || e.ReportKey != "reports/b-1/errors.csv" || e.FailuresByReason == nil {
		t.Errorf("%+v", e)
	}
}
