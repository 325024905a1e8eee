// Package failure defines the one typed error of Catalog Import (ImportError),
// the stable layer and reason codes of docs/invariants.md, and the failure
// record that is kept for every row that did not import.
//
// Code branches on Reason codes (checked with errors.As), never on messages.
// A failure record is keyed by (batch, sheet, row): writing it twice stores it
// once, which is what makes replays idempotent (invariant 4).
package failure

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Layer is one of the four validation layers.
type Layer string

// The four layers, in the order rows are checked.
const (
	LayerSyntax         Layer = "syntax"
	LayerSemantic       Layer = "semantic"
	LayerBusiness       Layer = "business"
	LayerInfrastructure Layer = "infrastructure"
)

// Reason is a stable failure code. Its layer is implied by the code.
type Reason string

// Syntax reasons: the bytes of the row could not be read as a record.
const (
	MalformedRow    Reason = "MalformedRow"
	SchemaMismatch  Reason = "SchemaMismatch"
	InvalidEncoding Reason = "InvalidEncoding"
	RowTooLarge     Reason = "RowTooLarge"
)

// Semantic reasons: a field's value is not acceptable.
const (
	MissingField  Reason = "MissingField"
	InvalidNumber Reason = "InvalidNumber"
	OutOfRange    Reason = "OutOfRange"
	InvalidValue  Reason = "InvalidValue"
)

// Business reasons: the row conflicts with other rows or with the catalog.
const (
	DuplicateSKU   Reason = "DuplicateSKU"
	BannedCategory Reason = "BannedCategory"
	SKUExists      Reason = "SKUExists"
	// UnknownSKU: an update-mode row whose SKU is not in the catalog (update
	// changes existing products only).
	UnknownSKU Reason = "UnknownSKU"
)

// Infrastructure reasons: something other than the row went wrong.
const (
	NetworkTimeout     Reason = "NetworkTimeout"
	Throttled          Reason = "Throttled"
	ServiceUnavailable Reason = "ServiceUnavailable"
	AccessDenied       Reason = "AccessDenied"
	SourceChanged      Reason = "SourceChanged"
	CircuitOpen        Reason = "CircuitOpen"
	Internal           Reason = "Internal"
)

// ShardSkipped names, in a batch's error report (errors.csv) and batch
// report, a range of rows that triage skipped with the rest of its shard
// (decision 24). It is no failure record's reason: the rows are counted
// skipped, not failed, so it is not one of Reasons() and `importctl
// failures --reason` does not take it. Its layer is infrastructure.
const ShardSkipped Reason = "ShardSkipped"

var layers = map[Reason]Layer{
	MalformedRow: LayerSyntax, SchemaMismatch: LayerSyntax, InvalidEncoding: LayerSyntax, RowTooLarge: LayerSyntax,
	MissingField: LayerSemantic, InvalidNumber: LayerSemantic, OutOfRange: LayerSemantic, InvalidValue: LayerSemantic,
	DuplicateSKU: LayerBusiness, BannedCategory: LayerBusiness, SKUExists: LayerBusiness, UnknownSKU: LayerBusiness,
	NetworkTimeout: LayerInfrastructure, Throttled: LayerInfrastructure, ServiceUnavailable: LayerInfrastructure,
	AccessDenied: LayerInfrastructure, SourceChanged: LayerInfrastructure, CircuitOpen: LayerInfrastructure,
	Internal: LayerInfrastructure,
}

// Reasons lists every known reason code, in the order of docs/invariants.md.
func Reasons() []Reason {
	return []Reason{MalformedRow, SchemaMismatch, InvalidEncoding, RowTooLarge,
		MissingField, InvalidNumber, OutOfRange, InvalidValue,
		DuplicateSKU, BannedCategory, SKUExists, UnknownSKU,
		NetworkTimeout, Throttled, ServiceUnavailable, AccessDenied, SourceChanged, CircuitOpen, Internal}
}

// Layer returns the layer the reason belongs to; unknown codes are
// infrastructure problems.
func (r Reason) Layer() Layer {
	if l, ok := layers[r]; ok {
		return l
	}
	return LayerInfrastructure
}

// Known reports whether r is one of the stable codes.
func (r Reason) Known() bool { _, ok := layers[r]; return ok }

// ParseReason returns the known reason code s names, in any case
// ("duplicatesku" is DuplicateSKU): the one rule of every --reason flag.
func ParseReason(s string) (Reason, bool) {
	for _, r := range Reasons() {
		if strings.EqualFold(string(r), s) {
			return r, true
		}
	}
	return "", false
}

// LeadingReason returns the reason code an error message begins with, as
// an ImportError's text does ("AccessDenied: ..."), if it begins with one.
func LeadingReason(msg string) (Reason, bool) {
	code, _, ok := strings.Cut(msg, ":")
	if !ok {
		return "", false
	}
	if r := Reason(strings.TrimSpace(code)); r.Known() {
		return r, true
	}
	return "", false
}

// Transient reports whether an error with this reason may succeed when tried
// again unchanged (the triage table's "infrastructure-transient").
func (r Reason) Transient() bool {
	switch r {
	case Throttled, NetworkTimeout, ServiceUnavailable, CircuitOpen:
		return true
	}
	return false
}

// ImportError is the one error type of the import engine. Every layer returns
// it (wrapped with %w as it travels up); callers find it with errors.As.
type ImportError struct {
	Layer   Layer
	Reason  Reason
	Field   string // product field (or source column) concerned, "" if none
	Message string // for people; never parsed
	Err     error  // wrapped cause, may be nil
}

// New returns an ImportError for reason on field with a formatted message.
func New(reason Reason, field, format string, args ...any) *ImportError {
	return &ImportError{Layer: reason.Layer(), Reason: reason, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an ImportError for reason that wraps cause; the message is the
// cause's text unless msg is given.
func Wrap(reason Reason, field string, cause error, msg string) *ImportError {
	if msg == "" && cause != nil {
		msg = cause.Error()
	}
	return &ImportError{Layer: reason.Layer(), Reason: reason, Field: field, Message: msg, Err: cause}
}

// Error formats as "Reason: field: message".
func (e *ImportError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", e.Reason, e.Field, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Reason, e.Message)
}

// Unwrap returns the cause.
func (e *ImportError) Unwrap() error { return e.Err }

// As returns the first ImportError in err's chain.
func As(err error) (*ImportError, bool) {
	var ie *ImportError
	if errors.As(err, &ie) {
		return ie, true
	}
	return nil, false
}

// ReasonOf returns the reason code of err, or Internal when err carries none.
func ReasonOf(err error) Reason {
	if ie, ok := As(err); ok {
		return ie.Reason
	}
	return Internal
}

// NoSheet is the sheet name of records that come from a file without sheets.
const NoSheet = "-"

// Record is the structured, re-importable record of one failed row.
// (BatchID, Sheet, Row) is its key: exactly one record per failed row.
type Record struct {
	BatchID      string            `json:"batch_id"`
	Sheet        string            `json:"sheet"`
	Row          int64             `json:"row"`
	Layer        Layer             `json:"layer"`
	Reason       Reason            `json:"reason"`
	Field        string            `json:"field,omitempty"`
	Message      string            `json:"message"`
	RawLine      string            `json:"raw_line"`
	Cells        []string          `json:"cells,omitempty"`         // original cells in file order, when the row could be split
	FieldMapping map[string]string `json:"field_mapping,omitempty"` // source column -> product field
	RuleVersion  string            `json:"rule_version"`
	RetryCount   int               `json:"retry_count"`
	FailureAt    time.Time         `json:"failure_at"`
	TraceID      string            `json:"trace_id,omitempty"`
	Shard        int               `json:"shard"`
	// ResolvedBy is the batch that later imported this row (a retry or a
	// fix-file import; see `importctl retry-failures`), "" while unresolved.
	ResolvedBy string    `json:"resolved_by,omitempty"`
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
}

// Key is where a failed row is in its batch's source: (Sheet, Row).
type Key struct {
	Sheet string `json:"sheet"`
	Row   int64  `json:"row"`
}

// Compare orders records as state.Store.Failures lists them: by sheet
// (bytewise), then by row; -1, 0 or +1, as slices.SortFunc wants.
func Compare(a, b Record) int {
	return cmp.Or(strings.Compare(a.Sheet, b.Sheet), cmp.Compare(a.Row, b.Row))
}

// FromError fills the layer, reason, field and message of r from err.
func (r *Record) FromError(err error) {
	ie, ok := As(err)
	if !ok {
		ie = Wrap(Internal, "", err, "")
	}
	r.Layer, r.Reason, r.Field, r.Message = ie.Layer, ie.Reason, ie.Field, ie.Message
}
