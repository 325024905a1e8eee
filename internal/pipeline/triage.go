package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/catalog-import/catalog-import/internal/queue"
	"github.com/catalog-import/catalog-import/internal/shard"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/state"
	"github.com/catalog-import/catalog-import/internal/text"
	"github.com/catalog-import/catalog-import/internal/triage"
)

// TriageOwner is the lease owner triage claims a shard as to skip or
// escalate it.
const TriageOwner = "triage"

// ParkFor is how long triage hides a dead-lettered message it keeps (an
// escalated one, for `importctl redrive`): it is then reported as a batch
// item failure so it stays in the DLQ (SQS allows at most 12 h), and comes
// back about twice a day rather than every visibility timeout.
const ParkFor = 11 * time.Hour

// triageLease is how long triage holds the shard it skips or escalates
// (two writes).
const triageLease = time.Minute

// Dead is one message that reached the shard DLQ.
type Dead struct {
	Message queue.Message // ID and Receipt always; the manifest when it could be read
	Body    string        // the raw body, quoted when the manifest is unreadable
	// ManifestError says why the manifest could not be read (nil: it was).
	ManifestError error
}

// triaged is what triage knows about one dead-lettered message.
type triaged struct {
	d       Dead
	m       queue.Manifest
	in      triage.Input
	batch   state.Batch // zero when unknown
	shard   state.Shard // zero when unknown
	lastMsg string      // the last error's message
	log     *slog.Logger
	// entries is the batch's triage log as read for the decision (listed
	// says it was read).
	entries []triage.Entry
	listed  bool
	// notified: the message was escalated before, and operators told.
	notified bool
}

// Triage decides on one dead-lettered message and applies the decision. It
// gathers the inputs of the triage table (the manifest, the shard's and
// batch's state, the last error a worker recorded for the shard), decides
// with triage.Decide, writes the decision to the triage log, and applies it:
//
//   - retry: the manifest goes back to the shard queue after the decision's
//     delay with RetryCount+1; the DLQ message is deleted;
//   - skip: triage claims the shard, finishes it SKIPPED (its remaining rows
//     counted skipped), hands the batch's finalization to a shard worker if
//     that was its last shard (handOn), and deletes the message;
//   - escalate: triage claims the shard, finishes it ESCALATED (the batch
//     stays RUNNING), notifies operators (Ports.Notify) and keeps the
//     message, parked for ParkFor, for `importctl redrive`. A message that
//     names no batch (an unreadable body) is escalated the same way, logged
//     under triage.UnknownBatch. Operators are notified once per message: a
//     parked message that comes back (its shard still ESCALATED, or an
//     earlier escalate decision about the same message id in the triage
//     log) is parked again without another notification;
//   - done: the message is deleted (handing the batch's finalization on
//     first if all its shards are finished but it is still running).
//
// Triage never finalizes a batch itself (decision 24): it runs with little
// time and memory, and finalization reads every failure record and writes
// the reports. It sends a manifest of the batch's shard to the shard queue
// instead; the worker that receives it finds the shard finished and the
// batch running, and finalizes (Deliver).
//
// It reports whether the message stays in the DLQ: its inputs cannot be read
// (a state or log read fails), another owner holds its shard, its decision
// cannot be recorded or applied (it is decided again later), or it is
// parked. What happens is logged here.
func (p *Pipeline) Triage(ctx context.Context, dead Dead) (keep bool) {
	msg := dead.Message
	t := &triaged{d: dead, m: msg.Manifest}
	t.in = triage.Input{ReceiveCount: msg.ReceiveCount, RetryCount: t.m.RetryCount}
	t.log = p.log.With("message_id", msg.ID, "receive_count", msg.ReceiveCount, "retry_count", t.m.RetryCount)
	if t.m.TraceID != "" {
		t.log = t.log.With("trace_id", t.m.TraceID)
	}
	batchID, index := triage.UnknownBatch, -1
	if dead.ManifestError != nil {
		t.in.ManifestError = dead.ManifestError.Error()
		t.log = t.log.With("manifest_error", dead.ManifestError.Error(), "body", oneLine(dead.Body, 512))
	}
	if t.m.BatchID != "" {
		batchID, index = t.m.BatchID, t.m.Shard
		t.log = t.log.With("batch_id", batchID, "shard", index)
		if err := p.triageInputs(ctx, t); err != nil {
			t.log.Error("triage inputs not readable; message returned for later", "error", err)
			return true
		}
	}

	d := triage.Decide(t.in, p.o.Triage)
	t.log = t.log.With("action", d.Action, "reason", d.Reason, "why", d.Why)
	if d.Action == triage.Escalate {
		// Before this decision is appended: was this message escalated before?
		t.notified = p.escalatedBefore(ctx, t, batchID)
	}
	if p.o.Metrics != nil {
		p.o.Metrics.TriageDecided(ctx, batchID, index, d)
	}
	if p.p.TriageLog != nil {
		e := triage.Entry{BatchID: batchID, Shard: index, At: p.o.Now().UTC(), Kind: triage.KindDecision,
			Layer: t.in.Layer, Reason: d.Reason, Message: d.Why, Action: d.Action, Delay: d.Delay,
			ReceiveCount: t.in.ReceiveCount, RetryCount: t.in.RetryCount, MessageID: msg.ID}
		if err := p.p.TriageLog.Append(ctx, e); err != nil {
			t.log.Error("triage decision not recorded; message returned for later", "error", err)
			return true
		}
	}
	switch d.Action {
	case triage.Retry:
		next := t.m
		next.RetryCount++
		if err := p.p.Queue.Send(ctx, d.Delay, next); err != nil {
			t.log.Error("triage retry not sent; message returned for later", "error", err)
			return true
		}
		t.log.Warn("triage: shard sent back to the queue", "delay", d.Delay.String())
		return false
	case triage.Skip:
		return p.triageSkip(ctx, t, d)
	case triage.Escalate:
		return p.triageEscalate(ctx, t, d)
	default:
		// A batch fully checked but not decided (decision 20), or with
		// every shard finished but still running: hand it on.
		if err := p.handOn(ctx, t, t.batch, t.shard); err != nil {
			t.log.Error("triage: the batch's next step not handed on; message returned for later", "error", err)
			return true
		}
		t.log.Info("triage: nothing left to do; message dropped")
		return false
	}
}

// handOn leaves what batch b needs after triage's decision to the shard
// workers. A batch whose check phase is complete (decision 20) and within
// its budget gets its write manifests (Decide: a few requests). A batch to
// finalize — every shard finished, or its check over the budget (ABORTED)
// — gets a manifest of shard sh on the shard queue, in the write phase
// when the batch has a check phase: the worker that receives it finds the
// shard finished (or the budget exceeded) and finalizes the batch, with a
// worker's time and memory (decision 24). Triage finalizes nothing itself.
// A finished batch needs nothing.
func (p *Pipeline) handOn(ctx context.Context, t *triaged, b state.Batch, sh state.Shard) error {
	if b.ID == "" || b.Status.Finished() || b.Shards == 0 {
		return nil
	}
	checked := b.Check != nil && b.Check.Done(b.Shards)
	abort := checked && shard.CheckAbort(b, split.MaxErrorRatio(b)) != ""
	if checked && !abort {
		if _, err := p.Decide(ctx, b); err != nil { // sends the write manifests; never finalizes
			return err
		}
	}
	if !abort && b.ShardsDone != b.Shards {
		return nil
	}
	if err := p.sendFinalizer(ctx, b, sh); err != nil {
		return err
	}
	t.log.Info("triage: batch finalization handed on to a shard worker", "shards_done", b.ShardsDone, "shards", b.Shards, "abort", abort)
	return nil
}

// escalatedBefore reports whether the triage log of batchID (the log read
// for the decision, or triage.UnknownBatch's) already has an escalate
// decision about this message: operators were told when it was first
// escalated. A log that cannot be read counts as no (better a second
// notification than none).
func (p *Pipeline) escalatedBefore(ctx context.Context, t *triaged, batchID string) bool {
	if p.p.TriageLog == nil || t.d.Message.ID == "" {
		return false
	}
	es := t.entries
	if !t.listed {
		var err error
		if es, err = p.p.TriageLog.List(ctx, batchID); err != nil {
			t.log.Warn("triage: log not read; an escalation may be notified again", "error", err)
			return false
		}
	}
	for _, e := range es {
		if e.Kind == triage.KindDecision && e.Action == triage.Escalate && e.MessageID == t.d.Message.ID {
			return true
		}
	}
	return false
}

// triageInputs reads the batch, the shard and the shard's last error.
func (p *Pipeline) triageInputs(ctx context.Context, t *triaged) error {
	b, err := p.p.Store.GetBatch(ctx, t.m.BatchID)
	if errors.Is(err, state.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	t.batch, t.in.BatchStatus = b, b.Status
	sh, err := p.shard(ctx, t.m.BatchID, t.m.Shard)
	switch {
	case errors.Is(err, state.ErrNotFound):
	case err != nil:
		return err
	default:
		t.shard, t.in.ShardStatus = sh, sh.Status
	}
	if p.p.TriageLog == nil {
		return nil
	}
	es, err := p.p.TriageLog.List(ctx, t.m.BatchID)
	if err != nil {
		return err
	}
	t.entries, t.listed = es, true
	if e, ok := triage.LastError(es, t.m.Shard); ok {
		t.in.Layer, t.in.Reason, t.lastMsg = e.Layer, e.Reason, e.Message
	}
	return nil
}

// shard reads one shard of a batch.
func (p *Pipeline) shard(ctx context.Context, batchID string, index int) (state.Shard, error) {
	shards, err := p.p.Store.ListShards(ctx, batchID)
	if err != nil {
		return state.Shard{}, err
	}
	for _, s := range shards {
		if s.Index == index {
			return s, nil
		}
	}
	return state.Shard{}, state.ErrNotFound
}

// claim takes the shard for triage. It reports keep (return the message
// for later: another owner holds the shard, or the claim failed) or gone
// (the shard or batch finished meanwhile: nothing to do).
func (p *Pipeline) claim(ctx context.Context, t *triaged) (l state.Lease, sh state.Shard, keep, gone bool) {
	l, sh, err := p.p.Store.Claim(ctx, t.m.BatchID, t.m.Shard, TriageOwner, triageLease, p.o.Now())
	switch {
	case err == nil:
		return l, sh, false, false
	case errors.Is(err, state.ErrLeased):
		t.log.Info("triage: shard is leased by a live worker; message returned for later")
		return l, sh, true, false
	case errors.Is(err, state.ErrShardFinished), errors.Is(err, state.ErrBatchFinished), errors.Is(err, state.ErrBatchSuspended):
		t.log.Info("triage: shard or batch finished (or suspended) meanwhile; message dropped", "error", err)
		return l, sh, false, true
	default:
		t.log.Error("triage: claim failed; message returned for later", "error", err)
		return l, sh, true, false
	}
}

// triageSkip finishes the shard SKIPPED, its remaining rows counted skipped,
// and finalizes the batch if that was its last shard. A shard skipped in
// its batch's check phase (decision 20) is first recorded as checked with
// no row checked, so the check phase can end; it is then decided.
func (p *Pipeline) triageSkip(ctx context.Context, t *triaged, d triage.Decision) bool {
	l, sh, keep, gone := p.claim(ctx, t)
	if keep || gone {
		return keep
	}
	if t.batch.Check != nil && sh.Check == nil {
		if _, err := p.p.Store.RecordCheck(ctx, l, state.Check{}, nil); err != nil {
			t.log.Error("triage: skip not recorded in the check phase; message returned for later", "error", err)
			return true
		}
	}
	cp := sh.Checkpoint
	cp.Counts.Total = sh.Rows
	cp.Counts.Skipped = max(0, sh.Rows-cp.Counts.Imported-cp.Counts.Superseded-cp.Counts.Failed)
	b, err := p.p.Store.FinishShard(ctx, l, state.ShardSkipped, cp, "skipped by triage: "+d.Why)
	if err != nil {
		t.log.Error("triage: skip not recorded; message returned for later", "error", err)
		return true
	}
	t.log.Warn("triage: shard skipped", "rows_skipped", cp.Counts.Skipped)
	sh.Status = state.ShardSkipped
	if err := p.handOn(ctx, t, b, sh); err != nil {
		// The shard is SKIPPED: the message's next delivery is "done",
		// which hands on again.
		t.log.Error("triage: the batch's next step not handed on; message returned for later", "error", err)
		return true
	}
	return false
}

// triageEscalate finishes the shard ESCALATED (when the message names one),
// notifies operators and parks the message in the DLQ.
func (p *Pipeline) triageEscalate(ctx context.Context, t *triaged, d triage.Decision) bool {
	if t.shard.Status == state.ShardEscalated {
		// A parked message back after ParkFor, its shard still escalated:
		// operators were told; park it again.
		t.log.Warn("triage: shard still escalated; message parked again for redrive")
		p.park(ctx, t)
		return true
	}
	if t.shard.BatchID != "" {
		l, sh, keep, gone := p.claim(ctx, t)
		if keep || gone {
			return keep
		}
		if _, err := p.p.Store.FinishShard(ctx, l, state.ShardEscalated, sh.Checkpoint, "escalated by triage: "+d.Why); err != nil {
			t.log.Error("triage: escalation not recorded; message returned for later", "error", err)
			return true
		}
	}
	t.log.Error("triage: shard escalated; message kept for redrive")
	if t.notified {
		t.log.Warn("triage: this message was escalated before and operators notified; parked again")
	} else if p.p.Notify != nil {
		subject, body := p.escalation(t, d)
		if err := p.p.Notify(ctx, subject, body); err != nil {
			t.log.Error("triage: escalation notification failed", "error", err)
		}
	}
	p.park(ctx, t)
	return true
}

// park hides the message in the DLQ for ParkFor.
func (p *Pipeline) park(ctx context.Context, t *triaged) {
	if p.p.DLQ == nil {
		return
	}
	m := queue.Message{ID: t.d.Message.ID, Receipt: t.d.Message.Receipt}
	if err := p.p.DLQ.Retry(ctx, m, ParkFor); err != nil {
		t.log.Warn("triage: message not parked", "error", err)
	}
}

// escalation is the subject and text of an escalation notification.
func (p *Pipeline) escalation(t *triaged, d triage.Decision) (subject, body string) {
	stack := p.o.StackName
	if stack == "" {
		stack = "<stack>"
	}
	reason := string(d.Reason)
	if reason == "" {
		reason = "no error recorded"
	}
	id := t.d.Message.ID
	var b strings.Builder
	if t.m.BatchID == "" {
		subject = "Catalog Import: unreadable shard message escalated"
		fmt.Fprintf(&b, "A message in the shard dead-letter queue names no batch and was escalated.\n\n")
		fmt.Fprintf(&b, "Message id: %s\nWhy: %s\nBody: %s\n", id, d.Why, oneLine(t.d.Body, 512))
	} else {
		subject = fmt.Sprintf("Catalog Import: shard %d of batch %s escalated (%s)", t.m.Shard, t.m.BatchID, reason)
		fmt.Fprintf(&b, "Shard %d of batch %s was escalated by triage; the batch stays RUNNING until it is resolved.\n\n", t.m.Shard, t.m.BatchID)
		fmt.Fprintf(&b, "Batch: %s\nShard: %d\nSource: %s\nReason: %s\nWhy: %s\n", t.m.BatchID, t.m.Shard, t.m.Source.URI, reason, d.Why)
		if t.lastMsg != "" {
			fmt.Fprintf(&b, "Last error: %s\n", oneLine(t.lastMsg, 1024))
		}
		fmt.Fprintf(&b, "Receive count: %d, retry count: %d\n\n", t.in.ReceiveCount, t.in.RetryCount)
		fmt.Fprintf(&b, "Status and triage log: importctl status --stack %s %s\n", stack, t.m.BatchID)
		fmt.Fprintf(&b, "Failed rows:           importctl failures --stack %s %s\n", stack, t.m.BatchID)
	}
	fmt.Fprintf(&b, "The message is kept in the shard DLQ (message id %s); move it back with importctl redrive once the cause is fixed.\n", id)
	return text.Truncate(subject, 100, "..."), b.String()
}

// oneLine folds s's white space into single spaces and cuts it to at most
// n bytes, never inside a character.
func oneLine(s string, n int) string {
	return text.Truncate(strings.Join(strings.Fields(s), " "), n, "...")
}
