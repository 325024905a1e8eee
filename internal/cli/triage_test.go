package cli

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/local/sqlite"
	"github.com/catalog-import/catalog-import/internal/triage"
)

// TestStatusShowsTriageLog: `importctl status BATCH` lists the batch's
// triage log under the shards, and --json carries it as triage_log.
func TestStatusShowsTriageLog(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "t.db")
	_, s := runImport(t, path, filepath.Join("testdata", "input", "gbk-excel.csv"))

	code, out, _ := importctl(t, "status", "--db", path, s.BatchID)
	if code != 0 || strings.Contains(out, "TRIAGE LOG") {
		t.Fatalf("status without triage entries: exit %d\n%s", code, out)
	}

	db, err := sqlite.Open(path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	for _, e := range []triage.Entry{
		{BatchID: s.BatchID, Shard: 0, At: at, Kind: triage.KindError, Layer: failure.LayerInfrastructure, Reason: failure.Throttled,
			Message: "Throttled: slow down", ReceiveCount: 5},
		{BatchID: s.BatchID, Shard: 0, At: at.Add(time.Minute), Kind: triage.KindDecision, Reason: failure.Throttled,
			Message: "transient Throttled: retry 1 of 3 after 30s", Action: triage.Retry, Delay: 30 * time.Second, ReceiveCount: 6, MessageID: "m-1"},
	} {
		if err := db.TriageLog().Append(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	code, out, _ = importctl(t, "status", "--db", path, s.BatchID)
	if code != 0 || !strings.Contains(out, "TRIAGE LOG") || !strings.Contains(out, "retry in 30s") || !strings.Contains(out, "Throttled: slow down") {
		t.Fatalf("status with triage entries: exit %d\n%s", code, out)
	}
	code, out, _ = importctl(t, "status", "--json", "--db", path, s.BatchID)
	var got struct {
		TriageLog []triage.Entry `json:"triage_log"`
	}
	if err := json.Unmarshal([]byte(out), &got); code != 0 || err != nil {
		t.Fatalf("status --json: exit %d %v\n%s", code, err, out)
	}
	if len(got.TriageLog) != 2 || got.TriageLog[1].Action != triage.Retry || got.TriageLog[1].Delay != 30*time.Second || !got.TriageLog[0].At.Equal(at) {
		t.Fatalf("triage_log: %+v", got.TriageLog)
	}
}
