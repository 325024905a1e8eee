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
	before, _, ok := strings.Cut(Schema, "-- triage_log")
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
