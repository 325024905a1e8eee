package cli

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/catalog-import/catalog-import/internal/local/sqlite"
	"github.com/catalog-import/catalog-import/internal/record/recordtest"
	"github.com/catalog-import/catalog-import/internal/state"
)

// syncBuffer is a bytes.Buffer that the watch writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestStatusWatch follows a batch while it is being imported: an import is
// interrupted part way (the batch stays RUNNING), `status --watch` starts on
// it, and the import is run again to the end. The watch prints progress
// lines while the batch runs, ends with the batch's final counts, and exits
// as run does for its status.
func TestStatusWatch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db, file := filepath.Join(dir, "t.db"), filepath.Join(dir, "products.csv")
	writeProducts(t, file, 60_000, 5)
	run := []string{"run", "--json", "--quiet", "--db", db, "--shard-rows", "10000", "--checkpoint-every", "100", file}

	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan int, 1)
	go func() { stopped <- Main(ctx, Env{Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}}, run) }()
	waitRows(t, db, 2_000, time.Minute)
	cancel()
	<-stopped
	var b state.Batch
	code, out, stderr := importctl(t, "status", "--json", "--db", db)
	var list []state.Batch
	if err := json.Unmarshal([]byte(out), &list); code != 0 || err != nil || len(list) != 1 {
		t.Fatalf("status: exit %d, %v: %s %s", code, err, out, stderr)
	}
	if b = list[0]; b.Status != state.BatchRunning {
		t.Fatalf("the interrupted import finished (%s, %d of %d rows): nothing left to watch", b.Status, b.Counts.Done(), b.Counts.Total)
	}

	var watchOut syncBuffer
	watched := make(chan int, 1)
	go func() {
		watched <- Main(context.Background(), Env{Stdout: &watchOut, Stderr: &bytes.Buffer{}},
			[]string{"status", "--db", db, "--watch", "--interval", "50ms", b.ID})
	}()
	for deadline := time.Now().Add(time.Minute); !strings.Contains(watchOut.String(), " RUNNING "); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no progress line from the watch:\n%s", watchOut.String())
		}
	}
	final, s := runImport(t, db, file, "--shard-rows", "10000")
	if !s.Resumed {
		t.Errorf("the second run did not resume: %+v", s)
	}
	var exit int
	select {
	case exit = <-watched:
	case <-time.After(time.Minute):
		t.Fatalf("the watch did not end with the batch:\n%s", watchOut.String())
	}

	lines := strings.Split(strings.TrimSpace(watchOut.String()), "\n")
	if exit != final.Exit {
		t.Errorf("watch exit %d, run exit %d", exit, final.Exit)
	}
	first, last := lines[0], lines[len(lines)-1]
	if !strings.Contains(first, fmt.Sprintf("%s RUNNING ", b.ID)) || !strings.Contains(first, "/"+num(b.Counts.Total)+" rows") ||
		!strings.Contains(first, "rows/s") || !strings.Contains(first, "ETA") || !strings.Contains(first, "failed ") {
		t.Errorf("first line is not a progress line of %s (rows done/total, rows/s, ETA, failed by layer):\n%s", b.ID, first)
	}
	want := fmt.Sprintf("%s %s %s rows: %s imported, failed %s (semantic %s, business %s), %s skipped", b.ID, s.Status,
		num(s.RowsTotal), num(s.RowsImported), num(s.RowsFailed),
		num(s.FailuresByReason["MissingField"]+s.FailuresByReason["InvalidNumber"]+s.FailuresByReason["OutOfRange"]+s.FailuresByReason["InvalidValue"]),
		num(s.FailuresByReason["DuplicateSKU"]), num(s.RowsSkipped))
	if !strings.Contains(last, want) {
		t.Errorf("the watch does not end with the final counts\nlast line: %s\nwant:      %s", last, want)
	}
}

// TestWatchBars: on a terminal the watch draws a bar per batch, which ends
// showing the batch's final status (the bars are mpb's; here on a buffer).
func TestWatchBars(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "t.db")
	_, s := runImport(t, db, filepath.Join("testdata", "input", "gbk-excel.csv"))
	store, err := openExisting(db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var out bytes.Buffer
	finals, err := watch(t.Context(), &out, store, watchOptions{batch: s.BatchID, interval: 10 * time.Millisecond, bars: true, now: time.Now})
	if err != nil || len(finals) != 1 || finals[0].Status != s.Status {
		t.Fatalf("watch: %+v, %v", finals, err)
	}
	// Off a terminal mpb cuts lines at 80 columns (and leaves the bar out
	// when the line is too long); a terminal shows it all.
	if got := out.String(); !strings.Contains(got, s.BatchID+"  9/9 rows") || !strings.Contains(got, " "+string(s.Status)+", failed 7") {
		t.Errorf("the bar does not end with the batch's rows and status:\n%q", got)
	}
}

// writeProducts writes a generated product CSV of rows rows, with faults.
func writeProducts(t *testing.T, path string, rows int, seed int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	if err := recordtest.WriteProductCSV(w, rows, seed, true); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// waitRows polls the database (as another process would, through one
// read-only connection) until the batch has at least n rows checkpointed.
func waitRows(t *testing.T, db string, n int64, timeout time.Duration) int64 {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var conn *sql.DB
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	for time.Now().Before(deadline) {
		if conn == nil {
			if _, err := os.Stat(db); err == nil {
				conn, _ = sql.Open(sqlite.DefaultDriver, "file:"+db+"?mode=ro")
			}
		}
		if conn != nil {
			var done int64
			err := conn.QueryRow(`SELECT rows_imported + rows_failed + rows_skipped FROM batches LIMIT 1`).Scan(&done)
			if err == nil && done >= n {
				return done
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("%s never reached %d rows", db, n)
	return 0
}
