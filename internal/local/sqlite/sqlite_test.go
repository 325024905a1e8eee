package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/catalog-import/catalog-import/internal/catalog"
	"github.com/catalog-import/catalog-import/internal/catalog/catalogtest"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/state"
	"github.com/catalog-import/catalog-import/internal/state/statetest"
)

// drivers are the drivers the tests run on: both, when built with cgo.
func drivers() []string {
	if DefaultDriver == DriverMattn {
		return []string{DriverMattn, DriverModernc}
	}
	return []string{DriverModernc}
}

// open returns a database for the test: in a file of t.TempDir(), or in memory.
func open(t *testing.T, driver string, memory bool) *DB {
	t.Helper()
	path := Memory
	if !memory {
		path = filepath.Join(t.TempDir(), "import.db")
	}
	db, err := Open(path, Options{Driver: driver})
	if err != nil {
		t.Fatalf("Open(%s, %s): %v", path, driver, err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

func forEachDB(t *testing.T, fn func(t *testing.T, newDB func(t *testing.T) *DB)) {
	for _, driver := range drivers() {
		for _, memory := range []bool{false, true} {
			name := driver + "/file"
			if memory {
				name = driver + "/memory"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				fn(t, func(t *testing.T) *DB { return open(t, driver, memory) })
			})
		}
	}
}

func TestStoreContract(t *testing.T) {
	forEachDB(t, func(t *testing.T, newDB func(t *testing.T) *DB) {
		statetest.Run(t, func(t *testing.T) state.Store { return newDB(t) })
	})
}

func TestSinkContract(t *testing.T) {
	forEachDB(t, func(t *testing.T, newDB func(t *testing.T) *DB) {
		catalogtest.Run(t, func(t *testing.T) interface {
			catalog.Sink
			catalog.Reader
		} {
			return newDB(t)
		})
	})
}

// preparedSink writes through Prepare and WritePrepared, as the shard
// worker does: each Write's products are cut into runs of 1-3 products
// (chunks), prepared one by one, and written together.
type preparedSink struct{ *DB }

func (s preparedSink) Write(ctx context.Context, mode catalog.WriteMode, ps []catalog.Product) ([]catalog.Outcome, error) {
	var parts []any
	for i, n := 0, 0; i < len(ps); i += n {
		n = min(len(ps)-i, 1+(i+len(ps))%3)
		parts = append(parts, s.Prepare(mode, ps[i:i+n]))
	}
	return s.WritePrepared(ctx, mode, ps, parts)
}

// TestSinkContractPrepared: WritePrepared with Prepare's parts is Write
// (the whole contract suite, model-based property test included), and so
// is a file database whose Write and Checkpoint calls share transactions
// (Options.GroupRows).
func TestSinkContractPrepared(t *testing.T) {
	for _, driver := range drivers() {
		for _, group := range []int{0, 1, 1000} {
			t.Run(fmt.Sprintf("%s/group-%d", driver, group), func(t *testing.T) {
				t.Parallel()
				catalogtest.Run(t, func(t *testing.T) interface {
					catalog.Sink
					catalog.Reader
				} {
					db, err := Open(filepath.Join(t.TempDir(), "import.db"), Options{Driver: driver, GroupRows: group})
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { db.Close() })
					return preparedSink{db}
				})
			})
		}
	}
}

func newBatch(id string) (state.Batch, []state.Shard) {
	now := time.Date(2031, 1, 2, 3, 4, 5, 6, time.UTC)
	return state.Batch{ID: id, Source: state.Source{URI: "products.csv", Size: 10}, RuleVersion: "rv", CreatedAt: now},
		[]state.Shard{{Index: 0, Sheet: "-", FirstRow: 2, Rows: 5}}
}

func TestReopenKeepsDataAcrossDrivers(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "import.db")
	ds := drivers()
	db, err := Open(path, Options{Driver: ds[0]})
	if err != nil {
		t.Fatal(err)
	}
	b, shards := newBatch("b-1")
	if _, _, err := db.CreateBatch(ctx, b, shards); err != nil {
		t.Fatal(err)
	}
	p := catalog.Product{SKU: "SKU-1", Name: "n", Category: "c", Price: "1.00", Currency: "CNY", Status: "active",
		BatchID: "b-1", Source: catalog.Position{Sheet: "-", Row: 2}, ImageURLs: []string{"https://x/1.jpg"}}
	if _, err := db.Write(ctx, catalog.Upsert, []catalog.Product{p}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for _, driver := range append(ds, ds[0]) { // the schema is applied again, idempotently
		db, err := Open(path, Options{Driver: driver})
		if err != nil {
			t.Fatalf("reopen with %s: %v", driver, err)
		}
		if _, err := db.GetBatch(ctx, "b-1"); err != nil {
			t.Errorf("%s: GetBatch after reopen: %v", driver, err)
		}
		if got, ok, err := db.Get(ctx, "SKU-1"); err != nil || !ok || got.Name != "n" {
			t.Errorf("%s: Get after reopen = %+v, %v, %v", driver, got, ok, err)
		}
		var v int
		if err := db.wc.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil || v != SchemaVersion {
			t.Errorf("%s: user_version = %d, %v; want %d", driver, v, err, SchemaVersion)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestNewerSchemaIsRefused: a database a newer importctl upgraded is not
// opened, and the message says what happened and what to do.
func TestNewerSchemaIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "import.db")
	db := must(Open(path, Options{}))
	if _, err := db.wc.ExecContext(t.Context(), "PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err := Open(path, Options{})
	if err == nil {
		db.Close()
		t.Fatal("Open of a database with schema version 99 succeeded")
	}
	want := fmt.Sprintf("database schema version 99 is newer than this importctl's %d: a newer importctl upgraded it; use that one on it (or another --db)", SchemaVersion)
	if !strings.HasPrefix(err.Error(), "open database "+path+": ") || !strings.Contains(err.Error(), want) {
		t.Errorf("Open: %v\nwant it to say %q", err, want)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestPragmas(t *testing.T) {
	for _, driver := range drivers() {
		db := open(t, driver, false)
		want := map[string]string{"journal_mode": "wal", "synchronous": "1", "foreign_keys": "0", "busy_timeout": "5000"}
		for _, q := range []querier{db.wc, db.rdb, db.cdb} {
			for pragma, v := range want {
				var got string
				if err := q.QueryRowContext(t.Context(), "PRAGMA "+pragma).Scan(&got); err != nil || got != v {
					t.Errorf("%s: PRAGMA %s = %q, %v; want %q", driver, pragma, got, err, v)
				}
			}
		}
	}
}

// A second process holding the write lock longer than BusyTimeout makes
// writes fail with a transient Throttled error.
func TestBusyIsThrottled(t *testing.T) {
	for _, driver := range drivers() {
		t.Run(driver, func(t *testing.T) {
			ctx := t.Context()
			path := filepath.Join(t.TempDir(), "import.db")
			holder := must(Open(path, Options{Driver: driver}))
			defer holder.Close()
			other := must(Open(path, Options{Driver: driver, BusyTimeout: 20 * time.Millisecond}))
			defer other.Close()
			if _, err := holder.wc.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
				t.Fatal(err)
			}
			b, shards := newBatch("b-busy")
			_, _, err := other.CreateBatch(ctx, b, shards)
			ie, ok := failure.As(err)
			if !ok || ie.Reason != failure.Throttled || !ie.Reason.Transient() || ie.Layer != failure.LayerInfrastructure {
				t.Fatalf("CreateBatch while another connection writes: %v, want a Throttled ImportError", err)
			}
			if _, err := holder.wc.ExecContext(ctx, "ROLLBACK"); err != nil {
				t.Fatal(err)
			}
			if _, _, err := other.CreateBatch(ctx, b, shards); err != nil {
				t.Fatalf("CreateBatch once the lock is free: %v", err)
			}
		})
	}
}

func TestCanceledWriteLeavesNoTransaction(t *testing.T) {
	for _, driver := range drivers() {
		db := open(t, driver, false)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		p := catalog.Product{SKU: "S", BatchID: "b", Source: catalog.Position{Row: 2}}
		if _, err := db.Write(ctx, catalog.Upsert, []catalog.Product{p}); !errors.Is(err, context.Canceled) {
			t.Errorf("%s: Write with a canceled context: %v, want context.Canceled", driver, err)
		}
		if _, err := db.Write(t.Context(), catalog.Upsert, []catalog.Product{p}); err != nil {
			t.Errorf("%s: Write after a canceled one: %v", driver, err)
		}
	}
}

func TestMemoryDatabasesAreSeparate(t *testing.T) {
	a, b := open(t, "", true), open(t, "", true)
	batch, shards := newBatch("b-mem")
	if _, _, err := a.CreateBatch(t.Context(), batch, shards); err != nil {
		t.Fatal(err)
	}
	if _, err := b.GetBatch(t.Context(), "b-mem"); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("second :memory: database sees the first's batch: %v", err)
	}
}

func TestOptions(t *testing.T) {
	if _, err := Open(Memory, Options{Driver: "postgres"}); err == nil || !strings.Contains(err.Error(), "Options.Driver") {
		t.Errorf("Open with an unknown driver: %v, want an error naming Options.Driver", err)
	}
	if _, err := Open("a?b.db", Options{}); err == nil {
		t.Errorf("Open of a path with '?' succeeded")
	}
	db := open(t, "", true)
	if db.Driver() != DefaultDriver {
		t.Errorf("Driver() = %q, want the default %q", db.Driver(), DefaultDriver)
	}
}

func TestClosedDatabaseFails(t *testing.T) {
	db := must(Open(Memory, Options{}))
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.GetBatch(t.Context(), "x"); failure.ReasonOf(err) != failure.Internal {
		t.Errorf("GetBatch after Close: %v", err)
	}
	if _, err := db.Write(t.Context(), catalog.Upsert, []catalog.Product{{SKU: "x"}}); err == nil {
		t.Errorf("Write after Close succeeded")
	}
}

// The stored layout is readable with the sqlite3 CLI (skipped without it).
func TestReadableWithSQLite3CLI(t *testing.T) {
	cli, err := exec.LookPath("sqlite3")
	if err != nil {
		t.Skip("sqlite3 CLI not installed (make deps)")
	}
	path := filepath.Join(t.TempDir(), "import.db")
	db := must(Open(path, Options{}))
	ctx := t.Context()
	p := catalog.Product{SKU: "SKU-1", Name: "鼠标", Category: "c", Price: "12.50", Currency: "CNY", Status: "active",
		BatchID: "b-1", Source: catalog.Position{Sheet: "-", Row: 2}, ImageURLs: []string{"https://x/1.jpg", "https://x/2.jpg"}}
	if _, err := db.Write(ctx, catalog.Upsert, []catalog.Product{p}); err != nil {
		t.Fatal(err)
	}
	r := failure.Record{BatchID: "b-1", Sheet: "-", Row: 3, Layer: failure.LayerSemantic, Reason: failure.InvalidNumber,
		Cells: []string{"a", "b"}, FailureAt: time.Date(2031, 1, 2, 3, 4, 5, 600_000_000, time.FixedZone("CST", 8*3600))}
	if err := db.PutFailures(ctx, []failure.Record{r}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	out, err := exec.CommandContext(ctx, cli, path,
		"SELECT sku, price, image_urls FROM products; SELECT row, reason, cells, failure_at FROM failures;").CombinedOutput()
	if err != nil {
		t.Fatalf("sqlite3: %v\n%s", err, out)
	}
	want := "SKU-1|12.50|[\"https://x/1.jpg\",\"https://x/2.jpg\"]\n3|InvalidNumber|[\"a\",\"b\"]|2031-01-01T19:04:05.600000000Z\n"
	if string(out) != want {
		t.Errorf("sqlite3 CLI output:\n%s\nwant:\n%s", out, want)
	}
}

func FuzzStringsArg(f *testing.F) {
	for _, s := range []string{"", "a\x00b", "\"quoted\"\\", "line\nbreak\r\t\x01\x1f", "中文 🖱", "<&>", "\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			t.Skip()
		}
		a := strings.Split(s, "\x00")
		enc, _ := stringsArg(a).(string)
		var got []string
		if err := json.Unmarshal([]byte(enc), &got); err != nil {
			t.Fatalf("stringsArg(%q) = %s: not JSON: %v", a, enc, err)
		}
		if !slices.Equal(got, a) {
			t.Fatalf("stringsArg(%q) = %s, decodes to %q", a, enc, got)
		}
	})
}

// TestUpgradesVersion1Database opens a database written by the first schema
// (before parent batches and resolved failures) and checks that its batch
// and failure records read back and can be resolved.
func TestUpgradesVersion1Database(t *testing.T) {
	if _, err := exec.LookPath("sqlite3"); err != nil {
		t.Skip("sqlite3 CLI not installed (make deps installs it)")
	}
	path := filepath.Join(t.TempDir(), "v1.db")
	cmd := exec.Command("sqlite3", path)
	v1, err := os.ReadFile("testdata/schema-v1.sql")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdin = strings.NewReader(string(v1) + `
PRAGMA user_version = 1;
INSERT INTO batches (batch_id, status, source_uri, source_size, source_etag, source_version, layout, rule_version, shards,
	rows_total, rows_failed, created_at, updated_at)
	VALUES ('b-old', 'COMPLETED_WITH_ERRORS', 'old.csv', 10, 'e', '', '{"format":"csv"}', 'rv', 0, 1, 1,
	'2026-01-02T03:04:05.000000000Z', '2026-01-02T03:04:05.000000000Z');
INSERT INTO batches (batch_id, status, source_uri, source_size, source_etag, source_version, layout, rule_version, shards,
	rows_total, rows_imported, created_at, updated_at)
	VALUES ('b-old2', 'COMPLETED', 'old2.csv', 10, 'e', '', '{"format":"csv"}', 'rv', 0, 1, 1,
	'2026-01-02T03:04:06.000000000Z', '2026-01-02T03:04:06.000000000Z');
INSERT INTO failures (batch_id, sheet, row, layer, reason, shard) VALUES ('b-old', '-', 2, 'semantic', 'InvalidNumber', 0);
INSERT INTO products (sku, name, category, brand, price, currency, stock, status, description, image_urls,
	batch_id, source_row, source_sheet, source_sheet_index, source_offset, source_length)
	VALUES ('SKU-old', 'Old name', 'Old/cat', 'Old brand', '1.00', 'CNY', 5, 'active', '', NULL, 'b-old', 2, '-', 0, 100, 40);
`)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sqlite3: %v\n%s", err, out)
	}
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open of a version 1 database: %v", err)
	}
	defer db.Close()
	ctx := t.Context()
	b, err := db.GetBatch(ctx, "b-old")
	if err != nil || b.Counts.Failed != 1 || b.Parent != "" {
		t.Fatalf("GetBatch after upgrade = %+v, %v", b, err)
	}
	// Upload order (v3): the existing batches are numbered in creation
	// order, and the next batch comes after them.
	b2, err := db.GetBatch(ctx, "b-old2")
	if err != nil || b.Order != 1 || b2.Order != 2 || b2.Counts.Superseded != 0 {
		t.Fatalf("orders after upgrade: %d, %d (%v), want 1, 2", b.Order, b2.Order, err)
	}
	nb, _, err := db.CreateBatch(ctx, state.Batch{ID: "b-new", Layout: state.Layout{Format: "csv"}}, nil)
	if err != nil || nb.Order != 3 {
		t.Fatalf("a batch created after the upgrade: order %d, %v; want 3", nb.Order, err)
	}
	if n, err := db.ResolveFailures(ctx, "b-old", []failure.Key{{Sheet: "-", Row: 2}}, "b-new", time.Time{}); err != nil || n != 1 {
		t.Fatalf("ResolveFailures after upgrade = %d, %v", n, err)
	}
	recs, err := db.Failures(ctx, "b-old", state.FailureFilter{})
	if err != nil || len(recs) != 1 || recs[0].ResolvedBy != "b-new" {
		t.Fatalf("Failures after upgrade = %+v, %v", recs, err)
	}
	// A product of before stamps exists with every stamp 0: an ordered
	// partial write changes its present fields only.
	old := catalog.Product{SKU: "SKU-old", Name: "Old name", Category: "Old/cat", Brand: "Old brand", Price: "1.00", Currency: "CNY",
		Stock: 5, Status: "active", BatchID: "b-old", Source: catalog.Position{Sheet: "-", Row: 2}, Offset: 100, Length: 40}
	if p, ok, err := db.Get(ctx, "SKU-old"); err != nil || !ok || !cmp.Equal(p, old) {
		t.Fatalf("Get after upgrade = %+v, %v, %v; want %+v", p, ok, err, old)
	}
	price, _ := catalog.FieldsOf("price")
	out, err := db.Write(ctx, catalog.Upsert, []catalog.Product{{SKU: "SKU-old", Price: "2.00", Category: "default", BatchID: "b-new",
		Source: catalog.Position{Sheet: "-", Row: 2}, Order: 1, Present: price}})
	if err != nil || out[0].Result != catalog.Written {
		t.Fatalf("Write after upgrade = %+v, %v", out, err)
	}
	want := old
	want.Price, want.BatchID, want.Offset, want.Length, want.Order = "2.00", "b-new", 0, 0, 1
	if p, ok, err := db.Get(ctx, "SKU-old"); err != nil || !ok || !cmp.Equal(p, want) {
		t.Errorf("Get after a partial write = %+v, %v, %v; want %+v", p, ok, err, want)
	}
}
