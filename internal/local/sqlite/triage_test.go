package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/catalog-import/catalog-import/internal/state"
	"github.com/catalog-import/catalog-import/internal/triage"
	"github.com/catalog-import/catalog-import/internal/triage/triagetest"
)

func TestTriageLogContract(t *testing.T) {
	forEachDB(t, func(t *testing.T, newDB func(t *testing.T) *DB) {
		triagetest.Run(t, func(t *testing.T) triage.Log { return newDB(t).TriageLog() })
	})
}

// TestTriageLogOnAnEarlierDatabase: a database written before the triage log
// existed (no triage_log table, same user_version) gains the table when
// opened, keeping its data.
func TestTriageLogOnAnEarlierDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	before, _, ok := strings.Cut(schemaV1(t), "-- triage_log")
	if !ok {
		t.Fatal("schema.sql has no triage_log section")
	}
	raw, err := sql.Open(DefaultDriver, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(before + "PRAGMA user_version = 1;"); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	old, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("open a database without triage_log: %v", err)
	}
	defer old.Close()
	if err := old.TriageLog().Append(context.Background(), triage.Entry{BatchID: "b", Kind: triage.KindDecision}); err != nil {
		t.Fatal(err)
	}
	if _, err := old.GetBatch(context.Background(), "b"); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("GetBatch: %v", err)
	}
	if es, err := old.TriageLog().List(context.Background(), "b"); err != nil || len(es) != 1 {
		t.Fatalf("%+v %v", es, err)
	}
}

// schemaV1 is Schema as version 1 had it: without shards.staged.
func schemaV1(t *testing.T) string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(Schema, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "staged ") {
			out = append(out, l)
		}
	}
	if len(out) != strings.Count(Schema, "\n") {
		t.Fatal("schema.sql has no shards.staged column")
	}
	return strings.Join(out, "\n")
}

// TestUpgradeFromVersion1: a version 1 database (no shards.staged) opens,
// keeps its shards, and stores staged shards from then on.
func TestUpgradeFromVersion1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v1.db")
	raw, err := sql.Open(DefaultDriver, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(schemaV1(t) + `PRAGMA user_version = 1;
		INSERT INTO batches (batch_id, status, source_uri, source_size, source_etag, source_version, layout, profile, rule_version, shards, created_at, updated_at)
		VALUES ('old', 'RUNNING', 'a.csv', 10, 'e', '', '{}', '', 'r', 1, '2030-01-01T00:00:00Z', '2030-01-01T00:00:00Z');
		INSERT INTO shards (batch_id, shard, sheet, sheet_index, byte_start, byte_end, first_row, rows, checksum, status,
			cp_next_offset, cp_next_row, cp_rows_total, cp_rows_imported, cp_rows_failed, cp_rows_skipped, updated_at)
		VALUES ('old', 0, '-', 0, 5, 10, 2, 1, 'c', 'PENDING', 5, 2, 0, 0, 0, 0, '2030-01-01T00:00:00Z');`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("open a version 1 database: %v", err)
	}
	defer db.Close()
	ctx := context.Background()
	old, err := db.ListShards(ctx, "old")
	if err != nil || len(old) != 1 || old[0].Staged != nil || old[0].End != 10 {
		t.Fatalf("shards of the version 1 batch: %+v, %v", old, err)
	}
	staged := &state.Staged{URI: "staging/new/s.csv", Size: 9, ETag: "t", Header: []string{"sku"}}
	if _, _, err := db.CreateBatch(ctx, state.Batch{ID: "new"}, []state.Shard{{Index: 0, Sheet: "S", Staged: staged}}); err != nil {
		t.Fatal(err)
	}
	got, err := db.ListShards(ctx, "new")
	if err != nil || len(got) != 1 || got[0].Staged == nil || got[0].Staged.URI != staged.URI {
		t.Fatalf("staged shard after the upgrade: %+v, %v", got, err)
	}
}
