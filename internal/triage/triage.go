// Package triage decides what happens to a shard manifest that reached the
// shard queue's dead-letter queue (the triage table of docs/invariants.md), and
// declares the triage log port that records every decision with its inputs.
//
// Decide is a pure function: the triage Lambda (internal/aws/handler) only
// gathers the inputs (the message, the shard's and batch's state, the last
// error a worker logged for the shard) and applies the outcome.
//
//	condition                                                  action
//	batch finished, or shard DONE or SKIPPED                   done: drop the message
//	shard unknown (no such batch or shard, or an unreadable
//	  manifest that names none)                                escalate: nothing to skip or retry
//	manifest unreadable (but naming its shard)                 skip
//	last error SourceChanged or (shard-wide) SchemaMismatch    skip
//	last error transient (Throttled, NetworkTimeout,
//	  ServiceUnavailable, CircuitOpen), retry budget left      retry after BaseDelay*2^RetryCount (<= MaxDelay)
//	transient, budget exhausted                                escalate
//	AccessDenied, Internal, no error recorded, anything else   escalate
package triage

import (
	"fmt"
	"time"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/state"
)

// Action is what triage does with a dead-lettered manifest.
type Action string

// The four actions.
const (
	// Retry sends the manifest back to the shard queue after a delay, with
	// its retry count plus one.
	Retry Action = "retry"
	// Skip finishes the shard as SKIPPED: its remaining rows count as
	// skipped. The message is dropped.
	Skip Action = "skip"
	// Escalate finishes the shard as ESCALATED (the batch stays RUNNING),
	// notifies an operator and keeps the message for `importctl redrive`.
	Escalate Action = "escalate"
	// Done drops the message: there is nothing left to do for its shard.
	Done Action = "done"
)

// Input is what a decision depends on.
type Input struct {
	// ManifestError is why the message body is not a readable manifest
	// ("" when it is).
	ManifestError string
	// Layer and Reason are those of the last error a worker recorded for the
	// shard ("" when none was recorded).
	Layer  failure.Layer
	Reason failure.Reason
	// ReceiveCount is the message's receive count (informational);
	// RetryCount is the manifest's count of triage retries so far.
	ReceiveCount, RetryCount int
	// ShardStatus and BatchStatus are the stored states; "" when the shard
	// or batch is unknown.
	ShardStatus state.ShardStatus
	BatchStatus state.BatchStatus
}

// Policy is the retry budget and the backoff of retries.
type Policy struct {
	// MaxRetries is how many times triage sends one manifest back (0 means
	// DefaultMaxRetries; negative means never).
	MaxRetries int
	// BaseDelay is the delay of the first retry, doubled by each retry
	// (0 means DefaultBaseDelay).
	BaseDelay time.Duration
	// MaxDelay caps the delay (0 means DefaultMaxDelay); it is also capped
	// at SQS's largest DelaySeconds, 15 minutes.
	MaxDelay time.Duration
}

// Policy defaults.
const (
	DefaultMaxRetries = 3
	DefaultBaseDelay  = 30 * time.Second
	DefaultMaxDelay   = 15 * time.Minute
	// maxQueueDelay is SQS's largest DelaySeconds.
	maxQueueDelay = 15 * time.Minute
)

// DefaultPolicy returns the default policy: 3 retries, 30s doubling up to 15m.
func DefaultPolicy() Policy {
	return Policy{MaxRetries: DefaultMaxRetries, BaseDelay: DefaultBaseDelay, MaxDelay: DefaultMaxDelay}
}

func (p Policy) withDefaults() Policy {
	if p.MaxRetries == 0 {
		p.MaxRetries = DefaultMaxRetries
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = DefaultBaseDelay
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = DefaultMaxDelay
	}
	p.MaxDelay = min(p.MaxDelay, maxQueueDelay)
	return p
}

// Delay returns the delay of the retry that follows retryCount earlier
// retries: BaseDelay * 2^retryCount, at most MaxDelay.
func (p Policy) Delay(retryCount int) time.Duration {
	p = p.withDefaults()
	d := min(p.BaseDelay, p.MaxDelay)
	for range max(retryCount, 0) {
		if d >= p.MaxDelay/2 {
			return p.MaxDelay
		}
		d *= 2
	}
	return d
}

// Decision is the outcome of Decide.
type Decision struct {
	Action Action
	// Delay is the retry's delay (Retry only).
	Delay time.Duration
	// Reason is the failure reason the decision is about ("" when none).
	Reason failure.Reason
	// Why explains the decision to people (logs, the shard's message, SNS).
	Why string
}

// Decide applies the triage table to in under policy p (zero fields of p
// take the defaults).
func Decide(in Input, p Policy) Decision {
	p = p.withDefaults()
	r := in.Reason
	switch {
	case in.BatchStatus.Finished():
		return Decision{Action: Done, Reason: r, Why: fmt.Sprintf("batch is %s", in.BatchStatus)}
	case in.BatchStatus.Stopped():
		return Decision{Action: Done, Reason: r, Why: fmt.Sprintf("batch is %s: resuming it sends its shards again", in.BatchStatus)}
	case in.ShardStatus.Finished():
		return Decision{Action: Done, Reason: r, Why: fmt.Sprintf("shard is %s", in.ShardStatus)}
	case in.ShardStatus == "" && in.ManifestError != "":
		return Decision{Action: Escalate, Reason: r, Why: "unreadable manifest names no known shard: " + in.ManifestError}
	case in.ShardStatus == "" || in.BatchStatus == "":
		return Decision{Action: Escalate, Reason: r, Why: "the manifest's batch or shard is unknown"}
	case in.ManifestError != "":
		return Decision{Action: Skip, Reason: r, Why: "unreadable manifest: " + in.ManifestError}
	case r == failure.SourceChanged:
		return Decision{Action: Skip, Reason: r, Why: "the source object changed after the split"}
	case r == failure.SchemaMismatch:
		return Decision{Action: Skip, Reason: r, Why: "the shard does not match the file's schema"}
	case r.Transient() && in.RetryCount < p.MaxRetries:
		d := p.Delay(in.RetryCount)
		return Decision{Action: Retry, Delay: d, Reason: r,
			Why: fmt.Sprintf("transient %s: retry %d of %d after %s", r, in.RetryCount+1, p.MaxRetries, d)}
	case r.Transient():
		return Decision{Action: Escalate, Reason: r,
			Why: fmt.Sprintf("transient %s but the retry budget is exhausted (%d of %d retries)", r, in.RetryCount, max(p.MaxRetries, 0))}
	case r == failure.AccessDenied || r == failure.Internal:
		return Decision{Action: Escalate, Reason: r, Why: fmt.Sprintf("%s needs an operator", r)}
	case r == "":
		return Decision{Action: Escalate, Why: "no error was recorded for the shard"}
	default:
		return Decision{Action: Escalate, Reason: r, Why: fmt.Sprintf("unexpected %s error %s", in.Layer, r)}
	}
}
