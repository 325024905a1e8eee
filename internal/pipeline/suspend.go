package pipeline

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/state"
	"github.com/catalog-import/catalog-import/internal/text"
)

// This file stops batches that must not go on: Suspend (the source changed
// after the split: SUSPENDED, resumable) and Cancel (`importctl cancel`:
// CANCELLED, for good).

// Suspend sets batch id SUSPENDED because its source changed after the
// split (cause, a SourceChanged error), with a message a person can act on:
// which file, how its size and modification time moved, and what to do. A
// batch already suspended or finished is left as it is. Workers stop at
// their next claim or checkpoint (state.ErrBatchSuspended); queued
// manifests are acknowledged as no-ops, and a resume sends them again.
func (p *Pipeline) Suspend(ctx context.Context, id string, cause error) (state.Batch, error) {
	b, err := p.p.Store.GetBatch(ctx, id)
	if err != nil {
		return b, err // the store names the batch
	}
	if b.Status != state.BatchRunning {
		return b, nil
	}
	msg := p.changedMessage(ctx, b, cause)
	b, err = p.p.Store.SuspendBatch(ctx, id, msg, p.o.Now().UTC())
	if errors.Is(err, state.ErrBatchFinished) {
		return p.p.Store.GetBatch(ctx, id)
	}
	if err != nil {
		return b, err
	}
	p.log.Warn("batch suspended: its source changed", "batch_id", id, "trace_id", b.TraceID, "message", msg, "error", cause)
	return b, nil
}

// changedMessage says what changed and what a person can do about it, e.g.
// "products.csv changed since this import started (size 1234 -> 1240
// bytes, modified 10:02:11 -> 10:05:40): run it again to import the new
// content as a new batch, or `importctl cancel b-...` this one".
func (p *Pipeline) changedMessage(ctx context.Context, b state.Batch, cause error) string {
	name := path.Base(b.Source.URI)
	var what []string
	seen := false // what shows the change: the cause's message would repeat it
	if cur, err := p.p.Source.Stat(ctx, b.Source.URI); err != nil {
		what = append(what, "it can no longer be read: "+err.Error())
	} else {
		if cur.Size != b.Source.Size {
			what = append(what, fmt.Sprintf("size %d -> %d bytes", b.Source.Size, cur.Size))
			seen = true
		} else {
			what = append(what, fmt.Sprintf("size %d bytes", cur.Size))
		}
		if !cur.ModTime.IsZero() && !b.Source.ModTime.IsZero() && !cur.ModTime.Equal(b.Source.ModTime) {
			was, is := text.Moments(b.Source.ModTime, cur.ModTime)
			what = append(what, "modified "+was+" -> "+is)
			seen = true
		}
	}
	hint := fmt.Sprintf("run it again to import the new content as a new batch (restored to its content at the start, running it again resumes this batch), or `importctl cancel %s` this one", b.ID)
	if strings.HasPrefix(b.Source.URI, "s3://") {
		hint = fmt.Sprintf("upload it again to import the new content as a new batch; to finish this batch, restore the object to the version it had and `importctl redrive --stack STACK --batch %s`, or `importctl cancel --stack STACK %s`", b.ID, b.ID)
	}
	msg := fmt.Sprintf("%s changed since this import started (%s): %s", name, strings.Join(what, ", "), hint)
	if ie, ok := failure.As(cause); ok && ie.Message != "" && !seen {
		msg += " [" + ie.Message + "]"
	}
	return msg
}

// ErrNotCancellable is the error of a cancel of a batch that is finished
// already (test with errors.Is).
var ErrNotCancellable = errors.New("batch is finished: nothing to cancel")

// Cancel ends batch id for good: CANCELLED, with what was imported before
// the cancel (rows not reached count as skipped, as for ABORTED) and
// message (who or why; a default when empty). It works on a RUNNING or a
// SUSPENDED batch; a finished one fails with an ImportError wrapping
// ErrNotCancellable that names its status. Workers of the batch stop at
// their next checkpoint (state.ErrBatchFinished), and queued manifests are
// acknowledged as no-ops. Cancel writes only through the ports (the store,
// the reports), so it may run beside another process working on the batch.
func (p *Pipeline) Cancel(ctx context.Context, id, message string) (state.Batch, error) {
	b, err := p.p.Store.GetBatch(ctx, id)
	if err != nil {
		return b, err // the store names the batch
	}
	if b.Status.Finished() {
		return b, fmt.Errorf("cancel batch %s: %w", id, failure.Wrap(failure.Internal, "", ErrNotCancellable,
			fmt.Sprintf("batch %s is %s (finished %s): nothing to cancel", id, b.Status, b.FinishedAt.Format(time.DateTime))))
	}
	if message == "" {
		message = "cancelled with `importctl cancel`"
		if b.Status == state.BatchSuspended {
			message += " while suspended: " + b.Message
		}
	}
	fb, err := p.stop(ctx, id, state.BatchCancelled, message)
	if errors.Is(err, state.ErrBatchFinished) {
		// Finished meanwhile (its last shard, or another cancel).
		cur, gerr := p.p.Store.GetBatch(ctx, id)
		if gerr == nil && cur.Status == state.BatchCancelled {
			return cur, nil
		}
		return cur, fmt.Errorf("cancel batch %s: %w", id, failure.Wrap(failure.Internal, "", ErrNotCancellable,
			fmt.Sprintf("batch %s finished as %s before the cancel", id, cur.Status)))
	}
	return fb, err
}
