package pipeline

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/state"
)

// Publisher tells the world a batch finished (EventBridge on AWS, so that
// a shop's search indexer can react). The pipeline publishes once per
// finalization: when a batch's last shard ends it, when it is aborted or
// cancelled, and when the splitter registers it REJECTED. A finalization
// repeated after a crash may publish again: consumers key on batch_id.
type Publisher interface {
	BatchFinished(ctx context.Context, e BatchEvent) error
}

// BatchEventVersion is the version of BatchEvent's format. Fields may be
// added within a version; none is renamed, removed or changes meaning
// (docs/events.md).
const BatchEventVersion = 1

// BatchEvent is the "batch finished" event: its JSON is a stable format
// (docs/events.md), the detail of the EventBridge event.
type BatchEvent struct {
	Version int               `json:"version"` // BatchEventVersion
	BatchID string            `json:"batch_id"`
	Status  state.BatchStatus `json:"status"` // a final status
	// Message says why the batch ended as it did (rejection, abort,
	// cancel, failed reconciliation); "" for COMPLETED and
	// COMPLETED_WITH_ERRORS.
	Message     string      `json:"message,omitempty"`
	Source      EventSource `json:"source"`
	Order       int64       `json:"order"`        // upload order: larger is newer
	RuleVersion string      `json:"rule_version"` // the profile's rules the batch ran under
	Parent      string      `json:"parent,omitempty"`
	Counts      EventCounts `json:"counts"`
	// FailuresByReason counts the failed rows by reason ({} when none).
	FailuresByReason map[failure.Reason]int64 `json:"failures_by_reason"`
	// Report is where the error report (errors.csv) is, "" when no row
	// failed: s3://bucket/reports/<batch>/errors.csv on AWS.
	Report string `json:"report,omitempty"`
	// ReportBucket and ReportKey are Report's bucket and key on S3.
	ReportBucket string    `json:"report_bucket,omitempty"`
	ReportKey    string    `json:"report_key,omitempty"`
	TraceID      string    `json:"trace_id,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	FinishedAt   time.Time `json:"finished_at"`
}

// EventSource is the upload a batch imported.
type EventSource struct {
	URI     string `json:"uri"`               // s3://bucket/key, or a file path
	Bucket  string `json:"bucket,omitempty"`  // S3 only
	Key     string `json:"key,omitempty"`     // S3 only
	Version string `json:"version,omitempty"` // the S3 object version, when versioned
	File    string `json:"file,omitempty"`    // a local file (embedded)
	Size    int64  `json:"size"`              // bytes
}

// EventCounts are a finished batch's rows: total = imported + superseded +
// failed + skipped.
type EventCounts struct {
	Total      int64 `json:"rows_total"`
	Imported   int64 `json:"rows_imported"`
	Superseded int64 `json:"rows_superseded"`
	Failed     int64 `json:"rows_failed"`
	Skipped    int64 `json:"rows_skipped"`
}

// NewBatchEvent is the "batch finished" event of finished batch b.
func NewBatchEvent(b state.Batch) BatchEvent {
	e := BatchEvent{Version: BatchEventVersion, BatchID: b.ID, Status: b.Status, Message: b.Message,
		Source: EventSource{URI: b.Source.URI, Version: b.Source.Version, Size: b.Source.Size},
		Order:  b.Order, RuleVersion: b.RuleVersion, Parent: b.Parent,
		Counts: EventCounts{Total: b.Counts.Total, Imported: b.Counts.Imported, Superseded: b.Counts.Superseded,
			Failed: b.Counts.Failed, Skipped: b.Counts.Skipped},
		FailuresByReason: b.ByReason, Report: b.Report, TraceID: b.TraceID, CreatedAt: b.CreatedAt, FinishedAt: b.FinishedAt}
	if e.FailuresByReason == nil {
		e.FailuresByReason = map[failure.Reason]int64{}
	}
	if bucket, key, ok := s3Object(b.Source.URI); ok {
		e.Source.Bucket, e.Source.Key = bucket, key
	} else {
		e.Source.File = b.Source.URI
	}
	e.ReportBucket, e.ReportKey, _ = s3Object(b.Report)
	return e
}

// s3Object splits s3://bucket/key.
func s3Object(uri string) (bucket, key string, ok bool) {
	rest, ok := strings.CutPrefix(uri, "s3://")
	if !ok {
		return "", "", false
	}
	bucket, key, ok = strings.Cut(rest, "/")
	return bucket, key, ok && bucket != "" && key != ""
}

// publish tells Ports.Events that batch b finished. A refusal does not undo
// the finish: it is logged at ERROR with the event's detail, which an
// operator can put on the bus again.
func (p *Pipeline) publish(ctx context.Context, b state.Batch) {
	if p.p.Events == nil || !b.Status.Finished() {
		return
	}
	e := NewBatchEvent(b)
	if err := p.p.Events.BatchFinished(ctx, e); err != nil {
		detail, _ := json.Marshal(e)
		p.log.ErrorContext(ctx, "batch finished event not published", "batch_id", b.ID, "error", err.Error(), "detail", string(detail))
	}
}
