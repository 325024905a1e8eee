package sqlite

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/catalog-import/catalog-import/internal/state"
)

// TestProgressOnAnEarlierDatabase: a database written before progress
// samples existed (no shard_progress table, same user_version) opens, gains
// the table, and its shards start a history with their next checkpoint.
func TestProgressOnAnEarlierDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	before, rest, ok := strings.Cut(Schema, "-- shard_progress")
	_, after, ok2 := strings.Cut(rest, "-- failures")
	if !ok || !ok2 {
		t.Fatal("schema.sql has no shard_progress section before failures")
	}
	raw, err := sql.Open(DefaultDriver, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(before + "-- failures" + after + "PRAGMA user_version = 1;"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := raw.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name = 'shard_progress'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("the old schema has shard_progress (%d, %v)", n, err)
	}
	raw.Close()

	db, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("open a database without shard_progress: %v", err)
	}
	defer db.Close()
	ctx := t.Context()
	now := time.Now()
	b := state.Batch{ID: "b-old", Source: state.Source{URI: "f.csv"}, Counts: state.Counts{Total: 10}}
	if _, _, err := db.CreateBatch(ctx, b, []state.Shard{{Index: 0, Sheet: "-", FirstRow: 2, Rows: 10}}); err != nil {
		t.Fatal(err)
	}
	l, _, err := db.Claim(ctx, b.ID, 0, "w", time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	cp := state.Checkpoint{NextOffset: 100, NextRow: 12, Counts: state.Counts{Total: 10, Imported: 10}}
	if err := db.Checkpoint(ctx, l, cp, nil, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	shards, err := db.ListShards(ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	if p := shards[0].Progress; len(p) != 1 || p[0].Done != 10 {
		t.Errorf("progress after a checkpoint on an earlier database: %+v, want one sample of 10 rows", p)
	}
}
