package triage

import (
	"context"
	"time"

	"github.com/catalog-import/catalog-import/internal/failure"
)

// Entry kinds.
const (
	// KindError is a worker's failed delivery of a shard: the error's layer,
	// reason and message (the "last error" triage decides on).
	KindError = "error"
	// KindDecision is a triage decision with its inputs.
	KindDecision = "decision"
)

// UnknownBatch is the BatchID under which decisions about messages that name
// no batch (unreadable bodies) are logged; their Shard is -1.
const UnknownBatch = "-"

// Entry is one line of a batch's triage log.
type Entry struct {
	BatchID string    `json:"batch_id"`
	Shard   int       `json:"shard"`
	At      time.Time `json:"at"`
	// Kind is KindError or KindDecision.
	Kind    string         `json:"kind"`
	Layer   failure.Layer  `json:"layer,omitempty"`
	Reason  failure.Reason `json:"reason,omitempty"`
	Message string         `json:"message,omitempty"`
	// Action and Delay are the decision's (KindDecision only).
	Action Action        `json:"action,omitempty"`
	Delay  time.Duration `json:"delay_ns,omitempty"`
	// ReceiveCount and RetryCount are the message's receive count and the
	// manifest's retry count when the entry was written.
	ReceiveCount int    `json:"receive_count"`
	RetryCount   int    `json:"retry_count"`
	MessageID    string `json:"message_id,omitempty"`
}

// Log is the triage log port: an append-only list of entries per batch.
// Adapters: internal/local/sqlite ((*DB).TriageLog) and
// internal/aws/dynamostate (NewTriageLog); triagetest is the contract suite
// both pass. Implementations must be safe for concurrent use.
type Log interface {
	// Append adds e to its batch's log. e.BatchID must not be empty; a zero
	// e.At is the time of the call.
	Append(ctx context.Context, e Entry) error
	// List returns the batch's entries, oldest first (entries with equal
	// times in no particular order); none (and no error) for an unknown batch.
	List(ctx context.Context, batchID string) ([]Entry, error)
}

// LastError returns the most recent KindError entry of shard in entries
// (oldest first, as List returns them).
func LastError(entries []Entry, shard int) (Entry, bool) {
	for i := len(entries) - 1; i >= 0; i-- {
		if e := entries[i]; e.Kind == KindError && e.Shard == shard {
			return e, true
		}
	}
	return Entry{}, false
}
