package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/catalog-import/catalog-import/internal/catalog"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/state"
)

// groupFixture is a file database with GroupRows, a batch of one shard
// claimed by lease, and a second connection to the file: what another
// process (or a crash, which keeps only what is committed) sees.
type groupFixture struct {
	db    *DB
	path  string
	lease state.Lease
	other *sql.DB
	row0  int64 // the shard's checkpoint row before any checkpoint
}

func newGroupFixture(t *testing.T, rows int, wait time.Duration) *groupFixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "g.db")
	db := must(Open(path, Options{GroupRows: rows, GroupWait: wait}))
	t.Cleanup(func() { db.Close() })
	b, shards := newBatch("b-g")
	shards[0].Rows, shards[0].End = 1000, 1<<20
	ctx := t.Context()
	if _, _, err := db.CreateBatch(ctx, b, shards); err != nil {
		t.Fatal(err)
	}
	lease, _, err := db.Claim(ctx, "b-g", 0, "w", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	other := must(sql.Open(DefaultDriver, path+"?mode=ro"))
	t.Cleanup(func() { other.Close() })
	f := &groupFixture{db: db, path: path, lease: lease, other: other}
	_, f.row0 = f.committed(t)
	return f
}

// committed reports what another connection sees: products and the
// shard's checkpointed row.
func (f *groupFixture) committed(t *testing.T) (products, nextRow int64) {
	t.Helper()
	if err := f.other.QueryRow(`SELECT (SELECT count(*) FROM products), cp_next_row FROM shards WHERE batch_id = 'b-g'`).Scan(&products, &nextRow); err != nil {
		t.Fatal(err)
	}
	return products, nextRow
}

func (f *groupFixture) write(t *testing.T, from, n int) {
	t.Helper()
	ps := make([]catalog.Product, n)
	for i := range ps {
		ps[i] = catalog.Product{SKU: fmt.Sprintf("G-%05d", from+i),
			Name: "n", Category: "c", Price: "1.00", Currency: "CNY", Status: "active", BatchID: "b-g",
			Source: catalog.Position{Sheet: "-", Row: int64(2 + from + i)}, Order: 1}
	}
	if _, err := f.db.Write(t.Context(), catalog.Upsert, ps); err != nil {
		t.Fatal(err)
	}
}

func (f *groupFixture) checkpoint(t *testing.T, lease state.Lease, rows int64) error {
	t.Helper()
	cp := state.Checkpoint{NextOffset: rows * 100, NextRow: 2 + rows, Counts: state.Counts{Total: rows, Imported: rows}}
	err := f.db.Checkpoint(t.Context(), lease, cp, nil, time.Now().Add(time.Hour))
	return err
}

// TestGroupCommitsProductsWithTheirCheckpoint: with GroupRows, Writes and
// Checkpoints share a transaction until a Checkpoint finds GroupRows
// products in it. Until then another process (or the file after a crash)
// sees neither the products nor the checkpoint, so a checkpoint never
// covers products that are not there (invariant 3); the database's own
// reads see every call that returned.
func TestGroupCommitsProductsWithTheirCheckpoint(t *testing.T) {
	f := newGroupFixture(t, 250, time.Hour)
	f.write(t, 0, 100)
	if err := f.checkpoint(t, f.lease, 100); err != nil {
		t.Fatal(err)
	}
	f.write(t, 100, 100)
	if p, row := f.committed(t); p != 0 || row != f.row0 {
		t.Errorf("another connection sees %d products and checkpoint row %d before the group is full, want 0 and %d", p, row, f.row0)
	}
	f.write(t, 200, 100)
	if err := f.checkpoint(t, f.lease, 300); err != nil { // 300 products >= 250: commits
		t.Fatal(err)
	}
	if p, row := f.committed(t); p != 300 || row != 302 {
		t.Errorf("after the group's last checkpoint another connection sees %d products, checkpoint row %d; want 300 and 302", p, row)
	}
	f.write(t, 300, 10)
	shards, err := f.db.ListShards(t.Context(), "b-g") // a read commits first
	if err != nil || shards[0].Checkpoint.NextRow != 302 {
		t.Fatalf("ListShards: %+v %v", shards, err)
	}
	if p, _ := f.committed(t); p != 310 {
		t.Errorf("a read of the database did not commit the open group: another connection sees %d products, want 310", p)
	}
}

// TestGroupCallThatFailsUndoesOnlyItself: a Checkpoint refused in a group
// (fenced: another owner claimed the shard) leaves the group's earlier
// Writes in it, and they are committed with the group.
func TestGroupCallThatFailsUndoesOnlyItself(t *testing.T) {
	f := newGroupFixture(t, 1000, time.Hour)
	f.write(t, 0, 50)
	stale := f.lease
	stale.Epoch--
	if err := f.checkpoint(t, stale, 50); !errors.Is(err, state.ErrFenced) {
		t.Fatalf("checkpoint with a stale lease: %v, want ErrFenced", err)
	}
	if err := f.db.Close(); err != nil { // Close commits the group
		t.Fatal(err)
	}
	if p, row := f.committed(t); p != 50 || row != f.row0 {
		t.Errorf("after Close another connection sees %d products and checkpoint row %d, want the 50 products and no checkpoint (%d)", p, row, f.row0)
	}
}

// TestGroupExpires: a Write that no Checkpoint follows is committed by the
// checkpointer once the group is GroupWait old, so a stalled worker does
// not hold the write lock.
func TestGroupExpires(t *testing.T) {
	f := newGroupFixture(t, 1000, 50*time.Millisecond)
	f.write(t, 0, 20)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if p, _ := f.committed(t); p == 20 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the open group was never committed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLostGroupFailsLikeACrash: when the group's transaction is gone (SQLite
// rolls a transaction back by itself on an I/O error or a full disk; here
// a call ends it), calls that had returned success are lost: every later
// call fails, and a new Open resumes from what was committed, as after a
// crash.
func TestLostGroupFailsLikeACrash(t *testing.T) {
	f := newGroupFixture(t, 1000, time.Hour)
	f.write(t, 0, 30)
	err := f.db.run(t.Context(), "a call whose transaction dies", writeCall, 0, func(tx *wtx) error {
		if _, err := tx.c.ExecContext(tx.dctx, "ROLLBACK"); err != nil {
			return err
		}
		return failure.New(failure.Internal, "", "disk I/O error")
	})
	if err == nil {
		t.Fatal("the failing call succeeded")
	}
	_, err = f.db.Write(t.Context(), catalog.Upsert, []catalog.Product{{SKU: "after", BatchID: "b-g", Order: 1}})
	if err == nil || !strings.Contains(err.Error(), "was lost") || failure.ReasonOf(err) != failure.Internal {
		t.Fatalf("a call after the lost group: %v, want it to fail saying the transaction was lost", err)
	}
	if _, err := f.db.GetBatch(t.Context(), "b-g"); err == nil {
		t.Error("a read after the lost group succeeded")
	}
	f.db.Close()
	db := must(Open(f.path, Options{}))
	defer db.Close()
	if p, _ := f.committed(t); p != 0 {
		t.Errorf("%d products committed, want 0: the lost group's Write is gone", p)
	}
	if _, err := db.Write(context.Background(), catalog.Upsert, []catalog.Product{{SKU: "again", BatchID: "b-g", Order: 1}}); err != nil {
		t.Errorf("a new Open cannot write: %v", err)
	}
}
