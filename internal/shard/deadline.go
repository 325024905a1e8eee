package shard

import (
	"context"
	"time"
)

// This file keeps the worker ahead of its invocation's deadline
// (invariant 8): the pace of commits, when to stop reading, how many chunks
// one commit may take.

// nearDeadline reports whether the reader must stop taking chunks: the time
// left no longer covers the margin plus committing the chunks already read
// (at the pace commits have been going), so that what is read can still be
// made durable before the invocation ends.
//
// A check (check.go) never stops early: it keeps no checkpoint, and it is
// far quicker than writing the shard.
func (r *run) nearDeadline(ctx context.Context) bool {
	d, ok := ctx.Deadline()
	if !ok || r.checking != nil {
		return false
	}
	backlog := time.Duration(r.pending.Load() * r.perChunk.Load())
	return time.Until(d) < r.w.opt.DeadlineMargin+backlog
}

// groupLimit is how many chunks one commit may take: maxGroup, fewer when
// the deadline is close, so that a commit ends before the margin. Under a
// deadline the first commit takes one chunk, which gives the pace: a sink
// slower than the invocation's time left (many requests a chunk, each
// stalled or retried) would otherwise take maxGroup chunks into a commit
// that cannot end before the deadline, in every invocation again.
func (r *run) groupLimit(ctx context.Context) int {
	d, ok := ctx.Deadline()
	per := time.Duration(r.perChunk.Load())
	if !ok {
		return maxGroup
	}
	if per <= 0 {
		return 1
	}
	n := int((time.Until(d) - r.w.opt.DeadlineMargin) / per)
	return max(1, min(maxGroup, n))
}

// paced records that committing n chunks took d.
func (r *run) paced(n int, d time.Duration) {
	r.pending.Add(-int64(n))
	per := int64(d) / int64(n)
	if old := r.perChunk.Load(); old > 0 {
		per = (3*old + per) / 4
	}
	r.perChunk.Store(per)
}
