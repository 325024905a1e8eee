package cli

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/catalog-import/catalog-import/internal/aws/awstest"
	"github.com/catalog-import/catalog-import/internal/aws/dynamostate"
	"github.com/catalog-import/catalog-import/internal/aws/stack"
	"github.com/catalog-import/catalog-import/internal/local/sqlite"
	"github.com/catalog-import/catalog-import/internal/state"
)

// seedBatches stores three batches of two 10-row shards, 4 rows of shard
// 0 imported: one RUNNING, one SUSPENDED and one COMPLETED; it returns
// their ids by status.
func seedBatches(t *testing.T, st state.Store, prefix string) map[state.BatchStatus]string {
	t.Helper()
	ctx := t.Context()
	ids := map[state.BatchStatus]string{}
	for _, status := range []state.BatchStatus{state.BatchRunning, state.BatchSuspended, state.BatchCompleted} {
		id := prefix + "-" + strings.ToLower(string(status))
		b := state.Batch{ID: id, Source: state.Source{URI: "products.csv", Size: 100}, Counts: state.Counts{Total: 20},
			Layout: state.Layout{Format: "csv", Encoding: "utf-8", Delimiter: ",", Header: []string{"sku", "price"}}}
		shards := []state.Shard{{Index: 0, Sheet: "-", Start: 10, End: 50, FirstRow: 2, Rows: 10}, {Index: 1, Sheet: "-", Start: 50, End: 100, FirstRow: 12, Rows: 10}}
		if _, _, err := st.CreateBatch(ctx, b, shards); err != nil {
			t.Fatal(err)
		}
		l, _, err := st.Claim(ctx, id, 0, "w", time.Minute, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Checkpoint(ctx, l, state.Checkpoint{NextOffset: 30, NextRow: 6, Counts: state.Counts{Total: 4, Imported: 4}}, nil, time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		switch status {
		case state.BatchSuspended:
			_, err = st.SuspendBatch(ctx, id, "products.csv changed since this import started", time.Now())
		case state.BatchCompleted:
			_, err = st.FinishBatch(ctx, id, state.Final{Status: state.BatchCompleted, Counts: state.Counts{Total: 20, Imported: 20}}, time.Now())
		}
		if err != nil {
			t.Fatal(err)
		}
		ids[status] = id
	}
	return ids
}

// checkCancel runs `importctl cancel` with flags on the seeded batches,
// table-driven: a RUNNING and a SUSPENDED batch end CANCELLED with 4 rows
// imported and 16 skipped; a finished one is refused (exit 2) and an
// unknown one is a usage error.
func checkCancel(t *testing.T, flags []string, ids map[state.BatchStatus]string) {
	t.Helper()
	for _, tc := range []struct {
		name, id string
		exit     int
		stderr   string
	}{
		{"running", ids[state.BatchRunning], ExitOK, ""},
		{"suspended", ids[state.BatchSuspended], ExitOK, ""},
		{"finished", ids[state.BatchCompleted], ExitFailed, "batch is COMPLETED, finished already: nothing to cancel"},
		{"cancelled twice", ids[state.BatchRunning], ExitFailed, "batch is CANCELLED, finished already"},
		{"unknown", "b-none", ExitFailed, "no batch b-none"},
	} {
		code, out, errOut := importctl(t, append(append([]string{"cancel", "--json"}, flags...), tc.id)...)
		if code != tc.exit || !strings.Contains(errOut, tc.stderr) {
			t.Errorf("%s: cancel %s: exit %d, stderr %q; want exit %d saying %q", tc.name, tc.id, code, errOut, tc.exit, tc.stderr)
			continue
		}
		if tc.exit != ExitOK {
			continue
		}
		var s RunJSON
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatalf("%s: %q: %v", tc.name, out, err)
		}
		if s.Status != state.BatchCancelled || s.RowsTotal != 20 || s.RowsImported != 4 || s.RowsSkipped != 16 || !strings.Contains(s.Message, "cancel") {
			t.Errorf("%s: cancelled batch %+v; want CANCELLED, 4 imported, 16 skipped, a message", tc.name, s)
		}
	}
}

// TestCancelCommand: `importctl cancel --db` (see checkCancel), and
// `status --watch` of a SUSPENDED batch ends at once, printing why, with
// exit code 3 (ExitSuspended).
func TestCancelCommand(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "t.db")
	db, err := sqlite.Open(path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ids := seedBatches(t, db, "b")
	db.Close()

	done := make(chan struct{})
	var code int
	var out string
	go func() {
		defer close(done)
		code, out, _ = importctl(t, "status", "--db", path, "--watch", "--interval", "20ms", ids[state.BatchSuspended])
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("status --watch of a SUSPENDED batch does not exit")
	}
	if code != ExitSuspended || !strings.Contains(out, "SUSPENDED") || !strings.Contains(out, "products.csv changed since this import started") {
		t.Errorf("watch of a suspended batch: exit %d, output %q; want exit 3 with the status and message", code, out)
	}

	checkCancel(t, []string{"--db", path}, ids)
}

// TestCancelStack: `importctl cancel --stack --endpoint` on moto, as
// checkCancel.
func TestCancelStack(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := awstest.Clients(t)
	name := awstest.Name("cancel")
	res, err := stack.Provision(ctx, c, name, stack.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	st := dynamostate.New(c.DynamoDB, res.StateTable, dynamostate.Options{})
	ids := seedBatches(t, st, "b-"+name)
	checkCancel(t, []string{"--endpoint", awstest.Endpoint(t), "--region", c.Config.Region, "--stack", name}, ids)
}

// TestExitFor: the exit code of each batch status.
func TestExitFor(t *testing.T) {
	for _, tc := range []struct {
		status state.BatchStatus
		want   int
	}{
		{state.BatchCompleted, ExitOK},
		{state.BatchCompletedWithErrors, ExitRowFails},
		{state.BatchRejected, ExitFailed},
		{state.BatchAborted, ExitFailed},
		{state.BatchFailed, ExitFailed},
		{state.BatchCancelled, ExitFailed},
		{state.BatchSuspended, ExitSuspended},
	} {
		if got := ExitFor(tc.status); got != tc.want {
			t.Errorf("ExitFor(%s) = %d, want %d", tc.status, got, tc.want)
		}
	}
}
