// Package memqueue is the in-process adapter of the shard queue port
// (internal/queue), used by embedded runs (`importctl run FILE`).
//
// It reproduces the SQS semantics the engine relies on, so the same worker
// code meets the same situations locally: at-least-once delivery with a
// visibility timeout, per-message delays (Send) and retry delays (Retry), a
// ReceiveCount per message and a new receipt per delivery. A message leaves
// the queue only when the current delivery is acknowledged, so no manifest is
// silently lost (invariant 6), and a redelivery reaches the worker exactly as
// it would on AWS, where the shard lease makes it harmless (invariant 2).
// Len and InFlight tell the embedded runner when all work is done.
//
// Manifests are stored JSON-encoded, as SQS carries them: the receiver never
// shares memory with the sender, and a manifest that does not survive JSON
// fails here as it would on AWS.
//
// Differences from SQS, chosen for determinism: visible messages are
// delivered in the order they became visible; a Receive returns every
// visible message up to max (no sampling, no limit of 10); delays have no
// 15-minute cap; and Ack or Retry with a stale receipt is an error
// (ErrStaleReceipt) where SQS may accept it.
package memqueue

import (
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/catalog-import/catalog-import/internal/queue"
)

// DefaultVisibilityTimeout is the visibility timeout of a zero Options, as on SQS.
const DefaultVisibilityTimeout = 30 * time.Second

// ErrStaleReceipt is returned by Ack and Retry when the message has been
// delivered again since the receipt was issued: the receipt's holder no
// longer owns the message, and the message is left as it is.
var ErrStaleReceipt = errors.New("memqueue: stale receipt: the message was delivered again")

// ErrNotInQueue is returned by Retry for a message that is no longer in the
// queue (it was acknowledged).
var ErrNotInQueue = errors.New("memqueue: message not in queue")

// Options configures a Queue.
type Options struct {
	// VisibilityTimeout is how long a received message stays invisible
	// before it is delivered again. Zero means DefaultVisibilityTimeout.
	VisibilityTimeout time.Duration
	// Clock returns the current time; nil means time.Now. Visibility and
	// delays are measured with it, while Receive's wait is real time, so a
	// test with a fake clock advances the clock and then calls Receive
	// (with a wait of 0 or a short one).
	Clock func() time.Time
}

func (o *Options) setDefaults() {
	if o.VisibilityTimeout == 0 {
		o.VisibilityTimeout = DefaultVisibilityTimeout
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
}

// Validate reports the first field of o that is not acceptable.
func (o Options) Validate() error {
	if o.VisibilityTimeout < 0 {
		return fmt.Errorf("memqueue: VisibilityTimeout %v is negative", o.VisibilityTimeout)
	}
	return nil
}

// Queue is an in-process shard queue. It is safe for concurrent use; its
// zero value is not usable, use New.
type Queue struct {
	opts Options

	mu      sync.Mutex
	byID    map[string]*entry
	order   entries       // every message in the queue, by visibility time
	changed chan struct{} // closed (and replaced) when a waiting Receive should look again
	seq     uint64        // messages sent so far
}

var _ queue.Queue = (*Queue)(nil)

// entry is one message in the queue.
type entry struct {
	id        string
	seq       uint64
	body      []byte    // JSON of the manifest
	visibleAt time.Time // when it may be delivered (again)
	count     int       // deliveries so far
	receipt   string    // receipt of the latest delivery, "" before the first
	inFlight  bool      // delivered, neither acknowledged nor retried since
	index     int       // position in the heap
}

// New returns an empty queue configured by opts.
func New(opts Options) (*Queue, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.setDefaults()
	return &Queue{opts: opts, byID: map[string]*entry{}, changed: make(chan struct{})}, nil
}

// Send enqueues manifests, each visible after delay. Either all of them are
// enqueued or, when one cannot be encoded or delay is negative, none.
func (q *Queue) Send(ctx context.Context, delay time.Duration, manifests ...queue.Manifest) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if delay < 0 {
		return fmt.Errorf("memqueue: send: negative delay %v", delay)
	}
	bodies := make([][]byte, len(manifests))
	for i, m := range manifests {
		b, err := json.Marshal(m)
		if err != nil {
			return fmt.Errorf("memqueue: encode manifest of batch %s shard %d: %w", m.BatchID, m.Shard, err)
		}
		bodies[i] = b
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	at := q.opts.Clock().Add(delay)
	for _, b := range bodies {
		q.seq++
		e := &entry{id: "m" + strconv.FormatUint(q.seq, 10), seq: q.seq, body: b, visibleAt: at}
		q.byID[e.id] = e
		heap.Push(&q.order, e)
	}
	q.wake()
	return nil
}

// Receive waits up to wait for at least one visible message and returns at
// most max of them, oldest visible first. It returns as soon as one message
// is visible; with none, when wait has passed (no messages, no error) or when
// ctx ends (ctx's error). Each returned message is invisible for the
// visibility timeout, has ReceiveCount one higher than its last delivery and
// a receipt of its own. max must be at least 1.
func (q *Queue) Receive(ctx context.Context, max int, wait time.Duration) ([]queue.Message, error) {
	if max < 1 {
		return nil, fmt.Errorf("memqueue: receive: max %d, want at least 1", max)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var waitDone <-chan time.Time
	if wait > 0 {
		tm := time.NewTimer(wait)
		defer tm.Stop()
		waitDone = tm.C
	}
	for {
		q.mu.Lock()
		now := q.opts.Clock()
		msgs, err := q.take(now, max)
		next, hasNext := q.nextVisible()
		changed := q.changed
		q.mu.Unlock()
		if err != nil || len(msgs) > 0 || waitDone == nil {
			return msgs, err
		}

		var nextC <-chan time.Time
		var nextTimer *time.Timer
		if hasNext {
			nextTimer = time.NewTimer(max0(next.Sub(now)))
			nextC = nextTimer.C
		}
		select {
		case <-ctx.Done():
			stop(nextTimer)
			return nil, ctx.Err()
		case <-waitDone:
			stop(nextTimer)
			return nil, nil
		case <-changed:
		case <-nextC:
		}
		stop(nextTimer)
	}
}

// Ack deletes the message m is a delivery of. Acknowledging a message that is
// no longer in the queue is a no-op (as deleting twice is on SQS). A receipt
// of an earlier delivery fails with ErrStaleReceipt and leaves the message.
func (q *Queue) Ack(ctx context.Context, m queue.Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	e, ok := q.byID[m.ID]
	if !ok {
		return nil
	}
	if e.receipt != m.Receipt {
		return fmt.Errorf("ack %s: %w", m.ID, ErrStaleReceipt)
	}
	delete(q.byID, e.id)
	heap.Remove(&q.order, e.index)
	return nil
}

// Retry makes the message m is a delivery of visible again after delay
// (0: at once). Its next delivery has the next ReceiveCount; Manifest's own
// RetryCount is the caller's business. A receipt of an earlier delivery fails
// with ErrStaleReceipt, a message no longer in the queue with ErrNotInQueue.
func (q *Queue) Retry(ctx context.Context, m queue.Message, delay time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if delay < 0 {
		return fmt.Errorf("memqueue: retry %s: negative delay %v", m.ID, delay)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	e, ok := q.byID[m.ID]
	if !ok {
		return fmt.Errorf("retry %s: %w", m.ID, ErrNotInQueue)
	}
	if e.receipt != m.Receipt {
		return fmt.Errorf("retry %s: %w", m.ID, ErrStaleReceipt)
	}
	e.visibleAt = q.opts.Clock().Add(delay)
	e.inFlight = false
	heap.Fix(&q.order, e.index)
	q.wake()
	return nil
}

// Len returns the number of messages in the queue: visible, delayed and in
// flight. It is 0 when every message sent has been acknowledged.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.byID)
}

// InFlight returns the number of messages delivered and still within their
// visibility timeout: neither acknowledged, nor retried, nor timed out.
func (q *Queue) InFlight() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.opts.Clock()
	n := 0
	for _, e := range q.order {
		if e.inFlight && e.visibleAt.After(now) {
			n++
		}
	}
	return n
}

// take delivers up to max messages visible at now. Called with q.mu held.
func (q *Queue) take(now time.Time, max int) ([]queue.Message, error) {
	var out []queue.Message
	for len(out) < max && len(q.order) > 0 && !q.order[0].visibleAt.After(now) {
		e := q.order[0]
		var m queue.Manifest
		if err := json.Unmarshal(e.body, &m); err != nil {
			// Cannot happen for bodies Send encoded; leave the message be.
			return out, fmt.Errorf("memqueue: decode message %s: %w", e.id, err)
		}
		e.count++
		e.receipt = e.id + "." + strconv.Itoa(e.count)
		e.inFlight = true
		e.visibleAt = now.Add(q.opts.VisibilityTimeout)
		heap.Fix(&q.order, 0)
		out = append(out, queue.Message{ID: e.id, Receipt: e.receipt, ReceiveCount: e.count, Manifest: m})
	}
	return out, nil
}

// nextVisible returns when the next message becomes visible. Called with
// q.mu held.
func (q *Queue) nextVisible() (time.Time, bool) {
	if len(q.order) == 0 {
		return time.Time{}, false
	}
	return q.order[0].visibleAt, true
}

// wake tells waiting Receives to look again. Called with q.mu held.
func (q *Queue) wake() {
	close(q.changed)
	q.changed = make(chan struct{})
}

func max0(d time.Duration) time.Duration {
	if d < 0 {
		return 0
	}
	return d
}

func stop(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}

// entries is a min-heap of messages by visibility time, then send order.
type entries []*entry

func (h entries) Len() int { return len(h) }
func (h entries) Less(i, j int) bool {
	if !h[i].visibleAt.Equal(h[j].visibleAt) {
		return h[i].visibleAt.Before(h[j].visibleAt)
	}
	return h[i].seq < h[j].seq
}
func (h entries) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *entries) Push(x any) {
	e := x.(*entry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *entries) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.index = -1
	return e
}
