// Package emf writes the functions' metrics as CloudWatch Embedded Metric
// Format (EMF) lines: one JSON object per line on a writer (stdout in
// Lambda), which CloudWatch Logs turns into metrics asynchronously. Nothing
// here calls an API, so recording a metric costs a JSON encoding and one
// write, never a network round trip in the hot path.
//
// Every line names the namespace CatalogImport and small dimension sets:
// [FunctionName] for totals, and [FunctionName, Layer], [FunctionName,
// Reason], [FunctionName, Action] or [FunctionName, BreakerState] for the
// breakdowns. The batch id, shard and trace id are plain properties of the
// line (searchable in CloudWatch Logs Insights), never dimensions: one
// metric per batch would be unbounded cardinality.
//
// Writer implements shard.Metrics and the handler's metrics port; Validate
// checks a line against the EMF specification (the tests use it).
package emf

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/queue"
	"github.com/catalog-import/catalog-import/internal/shard"
	"github.com/catalog-import/catalog-import/internal/triage"
)

// Namespace is the CloudWatch namespace of every metric.
const Namespace = "CatalogImport"

// Metric names (template.yaml's dashboard and alarms use them).
const (
	RowsImported        = "RowsImported"        // Count: rows imported, per checkpoint
	RowsFailed          = "RowsFailed"          // Count: rows failed, per checkpoint (and by Layer, by Reason)
	CheckpointLag       = "CheckpointLag"       // Milliseconds between two durable checkpoints of a shard
	ShardDuration       = "ShardDuration"       // Milliseconds of one shard delivery that claimed its shard
	Retries             = "Retries"             // Count: in-process retries of transient errors (and by Reason)
	BreakerStateChanges = "BreakerStateChanges" // Count: circuit breaker transitions (and by the new BreakerState)
	TriageDecisions     = "TriageDecisions"     // Count: triage decisions (and by Action)
)

// Dimension names.
const (
	DimFunction     = "FunctionName"
	DimLayer        = "Layer"
	DimReason       = "Reason"
	DimAction       = "Action"
	DimBreakerState = "BreakerState"
)

// Units used here (Validate knows every unit CloudWatch accepts).
const (
	Count        = "Count"
	Milliseconds = "Milliseconds"
)

// Writer writes EMF lines to one writer. It is safe for concurrent use:
// each line is written with a single Write call under a lock.
type Writer struct {
	mu       sync.Mutex
	w        io.Writer
	function string
	now      func() time.Time
}

var _ shard.Metrics = (*Writer)(nil)

// New returns a Writer to w (os.Stdout in Lambda) whose lines carry
// function as the FunctionName dimension (AWS_LAMBDA_FUNCTION_NAME).
func New(w io.Writer, function string) *Writer {
	return &Writer{w: w, function: function, now: time.Now}
}

// metric is one value of a line.
type metric struct {
	name  string
	unit  string
	value float64
}

// emit writes one line: metrics under every dimension set of dims (each set
// implicitly starts with FunctionName), members as dimension values and
// plain properties.
func (e *Writer) emit(dims [][]string, members map[string]any, ms ...metric) {
	sets := make([][]string, 0, len(dims)+1)
	sets = append(sets, []string{DimFunction})
	for _, d := range dims {
		sets = append(sets, append([]string{DimFunction}, d...))
	}
	defs := make([]map[string]string, len(ms))
	line := make(map[string]any, len(members)+len(ms)+2)
	maps.Copy(line, members)
	line[DimFunction] = e.function
	for i, m := range ms {
		defs[i] = map[string]string{"Name": m.name, "Unit": m.unit}
		line[m.name] = m.value
	}
	line["_aws"] = map[string]any{
		"Timestamp": e.now().UnixMilli(),
		"CloudWatchMetrics": []map[string]any{{
			"Namespace": Namespace, "Dimensions": sets, "Metrics": defs,
		}},
	}
	b, err := json.Marshal(line)
	if err != nil {
		return // only plain strings and numbers go in: cannot happen
	}
	b = append(b, '\n')
	e.mu.Lock()
	defer e.mu.Unlock()
	_, _ = e.w.Write(b) // stdout: nothing to do about a failed write
}

// Checkpointed writes the rows of one checkpoint: imported, failed and the
// checkpoint lag under [FunctionName], then one line per failure reason of
// the checkpoint with RowsFailed under [FunctionName, Layer] and
// [FunctionName, Reason].
func (e *Writer) Checkpointed(_ context.Context, c shard.Checkpointed) {
	props := map[string]any{"batch_id": c.BatchID, "shard": c.Shard, "next_row": c.NextRow}
	if c.TraceID != "" {
		props["trace_id"] = c.TraceID
	}
	e.emit(nil, props,
		metric{RowsImported, Count, float64(c.Imported)},
		metric{RowsFailed, Count, float64(c.Failed)},
		metric{CheckpointLag, Milliseconds, millis(c.Lag)})
	for _, reason := range slices.Sorted(maps.Keys(c.ByReason)) {
		m := maps.Clone(props)
		m[DimLayer], m[DimReason] = string(reason.Layer()), string(reason)
		e.emit([][]string{{DimLayer}, {DimReason}}, m, metric{RowsFailed, Count, float64(c.ByReason[reason])})
	}
}

// Retried counts one in-process retry, by the error's reason.
func (e *Writer) Retried(_ context.Context, m queue.Manifest, op string, reason failure.Reason) {
	e.emit([][]string{{DimReason}}, map[string]any{"batch_id": m.BatchID, "shard": m.Shard, "op": op, DimReason: string(reason)},
		metric{Retries, Count, 1})
}

// BreakerChanged counts one circuit breaker transition, by the new state.
func (e *Writer) BreakerChanged(from, to string) {
	e.emit([][]string{{DimBreakerState}}, map[string]any{"from": from, DimBreakerState: to},
		metric{BreakerStateChanges, Count, 1})
}

// Processed records how long one shard delivery took.
func (e *Writer) Processed(_ context.Context, m queue.Manifest, res shard.Result, err error, took time.Duration) {
	props := map[string]any{"batch_id": m.BatchID, "shard": m.Shard, "status": string(res.Status), "retries": res.Retries}
	if m.TraceID != "" {
		props["trace_id"] = m.TraceID
	}
	if err != nil {
		props["reason"] = string(failure.ReasonOf(err))
	}
	e.emit(nil, props, metric{ShardDuration, Milliseconds, millis(took)})
}

// TriageDecided counts one triage decision, by action.
func (e *Writer) TriageDecided(_ context.Context, batchID string, shard int, d triage.Decision) {
	e.emit([][]string{{DimAction}}, map[string]any{"batch_id": batchID, "shard": shard, DimAction: string(d.Action), "reason": string(d.Reason)},
		metric{TriageDecisions, Count, 1})
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
