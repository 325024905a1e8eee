package emf_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/catalog-import/catalog-import/internal/aws/emf"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/queue"
	"github.com/catalog-import/catalog-import/internal/shard"
	"github.com/catalog-import/catalog-import/internal/triage"
)

// line is one parsed EMF line: its metrics with their dimension sets and
// units, and its members.
type line struct {
	Metrics map[string]string // name -> unit
	Dims    [][]string
	Members map[string]any
}

func parse(t *testing.T, out *bytes.Buffer) []line {
	t.Helper()
	var lines []line
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if err := emf.Validate(sc.Bytes()); err != nil {
			t.Fatalf("invalid EMF line %s: %v", sc.Bytes(), err)
		}
		var l line
		var raw struct {
			AWS struct {
				CloudWatchMetrics []struct {
					Namespace  string
					Dimensions [][]string
					Metrics    []struct{ Name, Unit string }
				}
			} `json:"_aws"`
		}
		if err := json.Unmarshal(sc.Bytes(), &raw); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(sc.Bytes(), &l.Members); err != nil {
			t.Fatal(err)
		}
		delete(l.Members, "_aws")
		d := raw.AWS.CloudWatchMetrics
		if len(d) != 1 || d[0].Namespace != emf.Namespace {
			t.Fatalf("line %s: want one directive in namespace %s", sc.Bytes(), emf.Namespace)
		}
		l.Dims, l.Metrics = d[0].Dimensions, map[string]string{}
		for _, m := range d[0].Metrics {
			l.Metrics[m.Name] = m.Unit
		}
		lines = append(lines, l)
	}
	return lines
}

// TestLines drives every method of the Writer and checks the lines it
// writes: valid EMF, the metric names, units and dimension sets the
// template's dashboard and alarms use, values, and the batch id as a plain
// property (never a dimension).
func TestLines(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := queue.Manifest{BatchID: "b-1", Shard: 3, TraceID: "1-5759e988-bd862e3fe1be46a994272793"}
	fn := [][]string{{emf.DimFunction}}
	tests := []struct {
		name string
		call func(w *emf.Writer)
		want []line
	}{{
		name: "checkpoint with failures of two reasons",
		call: func(w *emf.Writer) {
			w.Checkpointed(ctx, shard.Checkpointed{BatchID: "b-1", Shard: 3, TraceID: m.TraceID, Imported: 90, Failed: 10,
				ByReason: map[failure.Reason]int64{failure.InvalidNumber: 7, failure.DuplicateSKU: 3}, Lag: 1500 * time.Millisecond, NextRow: 102})
		},
		want: []line{
			{Metrics: map[string]string{"RowsImported": "Count", "RowsFailed": "Count", "CheckpointLag": "Milliseconds"}, Dims: fn,
				Members: map[string]any{"FunctionName": "fn", "RowsImported": 90.0, "RowsFailed": 10.0, "CheckpointLag": 1500.0,
					"batch_id": "b-1", "shard": 3.0, "trace_id": m.TraceID, "next_row": 102.0}},
			{Metrics: map[string]string{"RowsFailed": "Count"}, Dims: [][]string{{"FunctionName"}, {"FunctionName", "Layer"}, {"FunctionName", "Reason"}},
				Members: map[string]any{"FunctionName": "fn", "RowsFailed": 3.0, "Layer": "business", "Reason": "DuplicateSKU",
					"batch_id": "b-1", "shard": 3.0, "trace_id": m.TraceID, "next_row": 102.0}},
			{Metrics: map[string]string{"RowsFailed": "Count"}, Dims: [][]string{{"FunctionName"}, {"FunctionName", "Layer"}, {"FunctionName", "Reason"}},
				Members: map[string]any{"FunctionName": "fn", "RowsFailed": 7.0, "Layer": "semantic", "Reason": "InvalidNumber",
					"batch_id": "b-1", "shard": 3.0, "trace_id": m.TraceID, "next_row": 102.0}},
		},
	}, {
		name: "retry",
		call: func(w *emf.Writer) { w.Retried(ctx, m, "write", failure.Throttled) },
		want: []line{{Metrics: map[string]string{"Retries": "Count"}, Dims: [][]string{{"FunctionName"}, {"FunctionName", "Reason"}},
			Members: map[string]any{"FunctionName": "fn", "Retries": 1.0, "Reason": "Throttled", "op": "write", "batch_id": "b-1", "shard": 3.0}}},
	}, {
		name: "breaker opens",
		call: func(w *emf.Writer) { w.BreakerChanged("closed", "open") },
		want: []line{{Metrics: map[string]string{"BreakerStateChanges": "Count"}, Dims: [][]string{{"FunctionName"}, {"FunctionName", "BreakerState"}},
			Members: map[string]any{"FunctionName": "fn", "BreakerStateChanges": 1.0, "BreakerState": "open", "from": "closed"}}},
	}, {
		name: "shard delivery that failed",
		call: func(w *emf.Writer) {
			w.Processed(ctx, m, shard.Result{Status: shard.Partial, Retries: 2}, failure.New(failure.Throttled, "", "x"), 2*time.Second)
		},
		want: []line{{Metrics: map[string]string{"ShardDuration": "Milliseconds"}, Dims: fn,
			Members: map[string]any{"FunctionName": "fn", "ShardDuration": 2000.0, "batch_id": "b-1", "shard": 3.0, "trace_id": m.TraceID,
				"status": "partial", "retries": 2.0, "reason": "Throttled"}}},
	}, {
		name: "triage decision",
		call: func(w *emf.Writer) {
			w.TriageDecided(ctx, "b-1", 3, triage.Decision{Action: triage.Escalate, Reason: failure.AccessDenied})
		},
		want: []line{{Metrics: map[string]string{"TriageDecisions": "Count"}, Dims: [][]string{{"FunctionName"}, {"FunctionName", "Action"}},
			Members: map[string]any{"FunctionName": "fn", "TriageDecisions": 1.0, "Action": "escalate", "reason": "AccessDenied", "batch_id": "b-1", "shard": 3.0}}},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			tc.call(emf.New(&out, "fn"))
			got := parse(t, &out)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("lines (-want +got):\n%s", diff)
			}
			for _, l := range got {
				for _, set := range l.Dims {
					for _, d := range set {
						if d == "batch_id" || d == "shard" || d == "trace_id" {
							t.Errorf("%s is a dimension: unbounded cardinality", d)
						}
					}
				}
			}
		})
	}
}

// TestValidateRejects: Validate refuses what CloudWatch would not turn into
// metrics.
func TestValidateRejects(t *testing.T) {
	t.Parallel()
	directive := func(dims, metrics string) string {
		return `{"_aws":{"Timestamp":1700000000000,"CloudWatchMetrics":[{"Namespace":"CatalogImport","Dimensions":` + dims + `,"Metrics":` + metrics + `}]},"FunctionName":"fn","N":1,"S":"x"}`
	}
	many := func(n int, f func(i int) string) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = f(i)
		}
		return strings.Join(parts, ",")
	}
	tests := []struct {
		name, line string
		ok         bool
	}{
		{"valid", directive(`[["FunctionName"]]`, `[{"Name":"N","Unit":"Count"}]`), true},
		{"valid without unit or dimensions", directive(`[]`, `[{"Name":"N"}]`), true},
		{"array value", strings.Replace(directive(`[]`, `[{"Name":"N"}]`), `"N":1`, `"N":[1,2]`, 1), true},
		{"not JSON", `{"_aws":`, false},
		{"no _aws", `{"N":1}`, false},
		{"no timestamp", `{"_aws":{"CloudWatchMetrics":[{"Namespace":"a","Dimensions":[],"Metrics":[{"Name":"N"}]}]},"N":1}`, false},
		{"no directive", `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[]}}`, false},
		{"no namespace", strings.Replace(directive(`[]`, `[{"Name":"N"}]`), `"CatalogImport"`, `""`, 1), false},
		{"metric without member", directive(`[]`, `[{"Name":"Missing"}]`), false},
		{"metric is a string", directive(`[]`, `[{"Name":"S"}]`), false},
		{"bad unit", directive(`[]`, `[{"Name":"N","Unit":"Rows"}]`), false},
		{"bad resolution", directive(`[]`, `[{"Name":"N","StorageResolution":5}]`), false},
		{"dimension missing", directive(`[["Layer"]]`, `[{"Name":"N"}]`), false},
		{"dimension is a number", directive(`[["N"]]`, `[{"Name":"N"}]`), false},
		{"101 metrics", directive(`[]`, "["+many(101, func(int) string { return `{"Name":"N"}` })+"]"), false},
		{"31 dimensions", directive("[["+many(31, func(int) string { return `"S"` })+"]]", `[{"Name":"N"}]`), false},
		{"100 metrics", directive(`[]`, "["+many(100, func(int) string { return `{"Name":"N"}` })+"]"), true},
		{"30 dimensions", directive("[["+many(30, func(int) string { return `"S"` })+"]]", `[{"Name":"N"}]`), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := emf.Validate([]byte(tc.line))
			if (err == nil) != tc.ok {
				t.Errorf("Validate(%s) = %v, want ok=%v", tc.line, err, tc.ok)
			}
		})
	}
}

// TestConcurrentLinesStayWhole: lines written from many goroutines are
// never interleaved.
func TestConcurrentLinesStayWhole(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	w := emf.New(&out, "fn")
	done := make(chan struct{})
	for g := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 50 {
				w.Retried(context.Background(), queue.Manifest{BatchID: fmt.Sprintf("b-%d-%d", g, i)}, "write", failure.Throttled)
			}
		}()
	}
	for range 8 {
		<-done
	}
	if n := len(parse(t, &out)); n != 400 {
		t.Errorf("%d lines, want 400", n)
	}
}
