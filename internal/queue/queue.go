// Package queue is the shard queue port and the shard manifest it carries.
// Delivery is at least once: a message may arrive more than once, and the
// worker's lease (internal/state) makes the second delivery harmless.
// Adapters: internal/local/memqueue (in process) and internal/aws/sqsqueue;
// queuetest is the contract suite both pass.
package queue

import (
	"context"
	"time"

	"github.com/catalog-import/catalog-import/internal/state"
)

// ManifestVersion is the schema version of Manifest. A worker refuses a
// manifest with another major version.
const ManifestVersion = 1

// Manifest tells a worker everything it needs to process one shard.
type Manifest struct {
	Version int    `json:"v"`
	BatchID string `json:"batch_id"`
	// Order is the batch's upload order (state.Batch.Order), the stamp of
	// every product field the shard writes. 0 in a manifest sent before
	// batches had one: the worker reads it from the batch.
	Order       int64        `json:"order,omitempty"`
	Shard       int          `json:"shard"`
	Source      state.Source `json:"source"`
	Layout      state.Layout `json:"layout"`
	RuleVersion string       `json:"rule_version"`
	Sheet       string       `json:"sheet"`
	SheetIndex  int          `json:"sheet_index"`
	Start       int64        `json:"byte_start"`
	End         int64        `json:"byte_end"`
	FirstRow    int64        `json:"first_row"`
	Rows        int64        `json:"rows"`
	RetryCount  int          `json:"retry_count"`
	TraceID     string       `json:"trace_id,omitempty"`
}

// Message is one delivery of a manifest.
type Message struct {
	ID           string // unique per send
	Receipt      string // handle for Ack/Retry, unique per delivery
	ReceiveCount int    // 1 on the first delivery
	Manifest     Manifest
}

// Queue carries shard manifests. Implementations must be safe for concurrent use.
type Queue interface {
	// Send enqueues manifests, each visible after delay.
	Send(ctx context.Context, delay time.Duration, manifests ...Manifest) error
	// Receive waits up to wait for at most max messages. A received message is
	// invisible to other receivers for the queue's visibility timeout; if it is
	// not acknowledged by then it is delivered again with ReceiveCount+1.
	Receive(ctx context.Context, max int, wait time.Duration) ([]Message, error)
	// Ack deletes a delivered message.
	Ack(ctx context.Context, m Message) error
	// Retry makes a delivered message visible again after delay.
	Retry(ctx context.Context, m Message, delay time.Duration) error
}
