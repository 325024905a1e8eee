package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/queue"
	"github.com/catalog-import/catalog-import/internal/shard"
	"github.com/catalog-import/catalog-import/internal/triage"
)

// Settle is what the caller does with a delivered message.
type Settle int

const (
	// Ack: the delivery is settled; delete the message.
	Ack Settle = iota
	// Retry: return the message for later (Outcome.Err says why: ErrLeased,
	// or ErrBackoff).
	Retry
	// HandOn: the shard stopped early (the deadline); deliver its manifest
	// again to continue from the checkpoint, and delete this message.
	HandOn
	// Finished: the delivery finalized the batch; delete the message.
	Finished
)

// Outcome is what Deliver did with one shard manifest.
type Outcome struct {
	Settle Settle
	Result shard.Result // what the worker reported
	Err    error        // for Retry: why the message comes back
}

// ErrLeased returns a delivery whose shard another live worker holds: the
// message comes back after the visibility timeout, when that worker has
// finished (the delivery is then a no-op) or died (its lease has expired).
var ErrLeased = errors.New("shard is leased by a live worker; delivery returned for later")

// ErrBackoff returns a delivery whose worker backed off because the product
// store keeps failing (the circuit breaker is open). It is a CircuitOpen
// ImportError, so the triage log records that reason.
var ErrBackoff error = failure.New(failure.CircuitOpen, "", "the product store keeps failing (circuit open); delivery returned for later")

// Deliver processes one delivery of a shard manifest and finalizes the
// batch when the shard's end leaves nothing else to do: it was the last
// shard, the batch is aborted, or a redelivery finds every shard done but
// the batch still running. A check-phase delivery (decision 20) that finds
// every shard checked decides the batch (Decide). The error is a failed delivery (the worker's,
// a state read's or finalization's, wrapped with %w; failure.ReasonOf
// classifies it): the caller decides between a retry and giving up. With
// an error, Outcome.Result is zero when the worker failed, and the worker's
// result when what failed came after it (finalization).
func (p *Pipeline) Deliver(ctx context.Context, msg queue.Message) (Outcome, error) {
	m := msg.Manifest
	res, err := p.worker.Process(ctx, m)
	if err != nil && failure.ReasonOf(err) == failure.SourceChanged {
		// The source is not the one registered: stop the batch in a state
		// that says so (SUSPENDED), not RUNNING with nothing working on it.
		// The message is settled: a resume sends the shard's manifest again.
		if _, serr := p.Suspend(ctx, m.BatchID, err); serr != nil {
			return Outcome{}, fmt.Errorf("%w (suspending the batch failed: %w)", namedShard(m, err), serr)
		}
		return Outcome{Settle: Ack, Result: shard.Result{Status: shard.BatchFinished, Counts: res.Counts}}, nil
	}
	if err != nil {
		return Outcome{}, namedShard(m, err)
	}
	out := Outcome{Result: res}
	switch {
	case res.Abort != "":
		return p.finish(ctx, out, m.BatchID, res.Abort)
	case res.Status == shard.Leased:
		out.Settle, out.Err = Retry, ErrLeased
	case res.Status == shard.Backoff:
		// The sink keeps failing: nothing was turned into failures.
		out.Settle, out.Err = Retry, ErrBackoff
	case res.Status == shard.Partial:
		out.Settle = HandOn
	case res.Status == shard.Checked || res.Status == shard.AlreadyChecked:
		if !res.Last {
			break
		}
		done, err := p.Decide(ctx, res.Batch)
		if err != nil {
			return out, err
		}
		if done {
			out.Settle = Finished
		}
	case res.Status == shard.Done && res.Last:
		return p.finish(ctx, out, m.BatchID, "")
	case res.Status == shard.AlreadyDone:
		// A redelivery after a crash between the last FinishShard and
		// finalization: the batch has every shard done but is still running.
		b, err := p.p.Store.GetBatch(ctx, m.BatchID)
		if err != nil {
			return out, err // the store names the batch
		}
		done, err := p.finishIfDone(ctx, b)
		if err != nil {
			return out, err
		}
		if done {
			out.Settle = Finished
		}
	}
	return out, nil
}

// finish finalizes the batch of a delivery.
func (p *Pipeline) finish(ctx context.Context, out Outcome, id, abort string) (Outcome, error) {
	if _, err := p.Finalize(ctx, id, abort); err != nil {
		return out, err
	}
	out.Settle = Finished
	return out, nil
}

// FinishIfDone finalizes the batch when every shard of it is finished but it
// is still running (a run stopped between its last shard and
// finalization), and reports whether it did.
func (p *Pipeline) FinishIfDone(ctx context.Context, id string) (bool, error) {
	b, err := p.p.Store.GetBatch(ctx, id)
	if err != nil {
		return false, err
	}
	return p.finishIfDone(ctx, b)
}

// recordTimeout bounds the triage log write of a failed delivery when the
// delivery's context is already done.
const recordTimeout = time.Second

// RecordFailure appends a failed delivery of msg to the triage log (if
// any): the "last error" triage decides on if the message reaches the
// DLQ. A failure to record is logged, not returned.
func (p *Pipeline) RecordFailure(ctx context.Context, msg queue.Message, err error) {
	if p.p.TriageLog == nil {
		return
	}
	ie, ok := failure.As(err)
	if !ok {
		ie = failure.Wrap(failure.Internal, "", err, "")
	}
	m := msg.Manifest
	e := triage.Entry{BatchID: m.BatchID, Shard: m.Shard, At: p.o.Now().UTC(), Kind: triage.KindError,
		Layer: ie.Layer, Reason: ie.Reason, Message: err.Error(), ReceiveCount: msg.ReceiveCount,
		RetryCount: m.RetryCount, MessageID: msg.ID}
	if ctx.Err() != nil {
		// The delivery's context is done (deadline): record anyway, briefly.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
		defer cancel()
	}
	if lerr := p.p.TriageLog.Append(ctx, e); lerr != nil {
		p.log.Warn("failed delivery not recorded in the triage log", "batch_id", m.BatchID, "shard", m.Shard, "error", lerr)
	}
}

// namedShard is the worker's error err naming manifest m's shard once: the
// state stores name it in theirs ("checkpoint shard <batch>/3 at row 1178:
// ..."), and so do the worker's own failures; an error from elsewhere (the
// source, the sink) gets "shard 3 of <batch>: " in front. The test is on
// the text only to avoid saying the name twice, never to decide anything.
func namedShard(m queue.Manifest, err error) error {
	if strings.Contains(err.Error(), m.BatchID) {
		return err
	}
	return fmt.Errorf("shard %d of %s: %w", m.Shard, m.BatchID, err)
}
