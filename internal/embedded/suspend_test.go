package embedded

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/catalog-import/catalog-import/internal/catalog"
	"github.com/catalog-import/catalog-import/internal/local/sqlite"
	"github.com/catalog-import/catalog-import/internal/pipeline"
	"github.com/catalog-import/catalog-import/internal/profile"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/state"
)

// hookSink calls hook before its n-th Write (1-based), once.
type hookSink struct {
	catalog.Sink
	mu    sync.Mutex
	calls int
	at    int
	hook  func()
}

func (s *hookSink) Write(ctx context.Context, mode catalog.WriteMode, ps []catalog.Product) ([]catalog.Outcome, error) {
	s.mu.Lock()
	s.calls++
	fire := s.calls == s.at
	s.mu.Unlock()
	if fire {
		s.hook()
	}
	return s.Sink.Write(ctx, mode, ps)
}

// cleanCSV is n valid rows, every one with its own price, of more than
// the record scanner's buffer, so that a reader cannot have read its end
// when the first chunk is written.
func cleanCSV(n int) string {
	var b strings.Builder
	b.WriteString("sku,name,category,price\n")
	for i := range n {
		fmt.Fprintf(&b, "S-%05d,Item %d,Home,%d.25\n", i, i, 10000+i)
	}
	return b.String()
}

// editCfg is one shard of blocks of 100 rows (ShardRows/split.MaxBlocks),
// read by one goroutine: the reader is at most a few blocks (and the record
// scanner's 256 KiB buffer) ahead of the first write, far from the end of
// a file of 20,000 rows (600 KB).
func editCfg(dir string) Config {
	return Config{DB: filepath.Join(dir, "importctl.db"), Shards: 1, Pool: 1, Every: 100,
		Split: split.Options{ShardRows: 100 * split.MaxBlocks}}
}

// editAt overwrites, in place and with the same length, the price of row
// (1-based data row) of the file at path with price.
func editAt(t *testing.T, path, content string, row int, price string) {
	t.Helper()
	old := fmt.Sprintf("S-%05d,Item %d,Home,%d.25\n", row-1, row-1, 10000+row-1)
	at := strings.Index(content, old)
	if at < 0 || len(price) != len(fmt.Sprintf("%d.25", 10000+row-1)) {
		t.Fatalf("row %d not found or price %q of another length", row, price)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte(price), int64(at+len(old)-1-len(price))); err != nil {
		t.Fatal(err)
	}
}

func price(t *testing.T, db *sqlite.DB, sku string) (string, bool) {
	t.Helper()
	p, ok, err := db.Get(t.Context(), sku)
	if err != nil {
		t.Fatal(err)
	}
	return p.Price, ok
}

// TestEditedThenRestoredFile (issue 11 item 4): a file edited in place
// during its import (same length, one price changed ahead of the reader)
// stops the batch SUSPENDED with a message a person understands, and no
// edited byte reaches the catalog; restored and run again, the same batch
// resumes and completes with the file's own values. The edited content,
// run as is, is another batch.
func TestEditedThenRestoredFile(t *testing.T) {
	t.Parallel()
	const n, edited = 20000, 19900
	dir := t.TempDir()
	path := filepath.Join(dir, "products.csv")
	content := cleanCSV(n)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := editCfg(dir)
	sink := &hookSink{at: 1, hook: func() { editAt(t, path, content, edited, "99999.99") }}
	cfg.wrapSink = func(s catalog.Sink) catalog.Sink { sink.Sink = s; return sink }
	sum, err := Run(t.Context(), cfg, path)
	if err != nil {
		t.Fatalf("run with the file edited: %v", err)
	}
	b := sum.Batch
	if b.Status != state.BatchSuspended || b.Status.Finished() {
		t.Fatalf("batch %s, want SUSPENDED (not finished)", b.Status)
	}
	for _, want := range []string{"products.csv changed since this import started", "size " + fmt.Sprint(len(content)) + " bytes",
		"run it again", "importctl cancel " + b.ID} {
		if !strings.Contains(b.Message, want) {
			t.Errorf("message %q\ndoes not say %q", b.Message, want)
		}
	}
	if tag := regexp.MustCompile(`[0-9a-f]+-[0-9a-f]{8,}-[0-9a-f]+`).FindString(b.Message); tag != "" {
		t.Errorf("message %q\nshows the version tag %s, which a person cannot read", b.Message, tag)
	}
	if b.Counts.Done() >= n || b.Counts.Imported == 0 {
		t.Errorf("suspended with %+v: want some rows imported, not all", b.Counts)
	}

	db, err := sqlite.Open(cfg.DB, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sku := fmt.Sprintf("S-%05d", edited-1)
	if p, ok := price(t, db, sku); ok {
		t.Errorf("edited row %s in the catalog with price %s: nothing of the edited file may be written", sku, p)
	}
	db.Close()

	// The edited file as it is: new content, a new batch.
	editedContent, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(editedContent)
	if id := BatchID(hex.EncodeToString(h[:]), profile.Default().RuleVersion()); id == b.ID {
		t.Fatalf("edited content maps to the suspended batch %s", id)
	}

	// Restored: the same batch resumes and ends with the file's own values.
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.wrapSink = nil
	sum, err = Run(t.Context(), cfg, path)
	if err != nil {
		t.Fatalf("rerun of the restored file: %v", err)
	}
	if !sum.Resumed || sum.Batch.ID != b.ID || sum.Batch.Status != state.BatchCompleted || sum.Batch.Counts.Imported != n {
		t.Fatalf("rerun: resumed %v, batch %s %s with %+v; want batch %s resumed, COMPLETED, %d imported",
			sum.Resumed, sum.Batch.ID, sum.Batch.Status, sum.Batch.Counts, b.ID, n)
	}
	db, err = sqlite.Open(cfg.DB, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if p, ok := price(t, db, sku); !ok || p != fmt.Sprintf("%d.25", 10000+edited-1) {
		t.Errorf("%s after the restored rerun: price %q (found %v), want the file's own %d.25", sku, p, ok, 10000+edited-1)
	}
}

// TestCancel (issue 11 item 5), table-driven: `importctl cancel` of a batch
// another run is working on (the run stops and reports CANCELLED), of a
// SUSPENDED batch, and of a finished one (refused).
func TestCancel(t *testing.T) {
	t.Parallel()
	const n = 20000
	for _, tc := range []struct {
		name string
		// prepare runs the file to the state to cancel from; cancelled
		// says whether the cancel ran inside that run.
		prepare func(t *testing.T, cfg Config, path, content, id string) state.Batch
		refused bool
	}{
		{"while running", func(t *testing.T, cfg Config, path, content, id string) state.Batch {
			var cancelled state.Batch
			var cerr error
			sink := &hookSink{at: 3, hook: func() { cancelled, cerr = Cancel(context.Background(), cfg, id, "") }}
			cfg.wrapSink = func(s catalog.Sink) catalog.Sink { sink.Sink = s; return sink }
			sum, err := Run(t.Context(), cfg, path)
			if err != nil || cerr != nil {
				t.Fatalf("run: %v; cancel during the run: %v", err, cerr)
			}
			if sum.Batch.Status != state.BatchCancelled {
				t.Fatalf("the run reports %s, want CANCELLED", sum.Batch.Status)
			}
			return cancelled
		}, false},
		{"suspended", func(t *testing.T, cfg Config, path, content, id string) state.Batch {
			sink := &hookSink{at: 1, hook: func() { editAt(t, path, content, n-50, "99999.99") }}
			cfg.wrapSink = func(s catalog.Sink) catalog.Sink { sink.Sink = s; return sink }
			sum, err := Run(t.Context(), cfg, path)
			if err != nil || sum.Batch.Status != state.BatchSuspended {
				t.Fatalf("run: %v, %s; want SUSPENDED", err, sum.Batch.Status)
			}
			b, err := Cancel(t.Context(), cfg, id, "")
			if err != nil {
				t.Fatalf("cancel of a suspended batch: %v", err)
			}
			return b
		}, false},
		{"finished", func(t *testing.T, cfg Config, path, content, id string) state.Batch {
			sum, err := Run(t.Context(), cfg, path)
			if err != nil || sum.Batch.Status != state.BatchCompleted {
				t.Fatalf("run: %v, %s", err, sum.Batch.Status)
			}
			b, err := Cancel(t.Context(), cfg, id, "")
			if !errors.Is(err, pipeline.ErrNotCancellable) || !strings.Contains(err.Error(), "is COMPLETED") {
				t.Fatalf("cancel of a finished batch: %v, want refused naming COMPLETED", err)
			}
			return b
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "products.csv")
			content := cleanCSV(n)
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			h := sha256.Sum256([]byte(content))
			id := BatchID(hex.EncodeToString(h[:]), profile.Default().RuleVersion())
			b := tc.prepare(t, editCfg(dir), path, content, id)
			db, err := sqlite.Open(filepath.Join(dir, "importctl.db"), sqlite.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			stored, err := db.GetBatch(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			if tc.refused {
				if stored.Status != state.BatchCompleted {
					t.Errorf("refused cancel left the batch %s", stored.Status)
				}
				return
			}
			if stored.Status != state.BatchCancelled || b.Status != state.BatchCancelled {
				t.Fatalf("batch %s (cancel returned %s), want CANCELLED", stored.Status, b.Status)
			}
			c := stored.Counts
			if c.Total != n || c.Done() != n || c.Skipped == 0 || c.Imported == 0 {
				t.Errorf("cancelled counts %+v: want %d rows reconciled, some imported, the rest skipped", c, n)
			}
			// Running it again reports the cancelled batch: nothing resumes.
			sum, err := Run(t.Context(), editCfg(dir), path)
			if tc.name == "while running" && (err != nil || !sum.Existing || sum.Batch.Status != state.BatchCancelled) {
				t.Errorf("rerun of a cancelled batch: %v, existing %v, %s", err, sum.Existing, sum.Batch.Status)
			}
		})
	}
}
