// Package redrive moves shard manifests back to work: messages from the shard
// dead-letter queue to the shard queue, and the manifests of ESCALATED shards
// (triage gave up on them; they are not finished, so a worker can claim them
// again). It is the engine of `importctl redrive`.
//
// Nothing is lost: a message is sent to the shard queue first and deleted
// from the DLQ only after the send succeeded. A crash between the two leaves
// the manifest in both queues; that duplicate is harmless, since a worker's
// lease makes a second delivery of a manifest a no-op (invariant 2). For the
// same reason re-sending the manifest of an ESCALATED shard twice is harmless.
//
// Without a filter and without a limit, Run asks SQS to move the whole DLQ
// itself (StartMessageMoveTask) and falls back to moving message by message
// where that API is not available (moto answers HTTP 500). A move task moves
// every message, unreadable ones included; those come back to the DLQ after
// maxReceiveCount deliveries, where triage skips them.
//
// Message by message, Run receives up to ten messages at a time and holds
// every message it keeps (one that does not match the filter, an unreadable
// body, one whose send failed, every message of a dry run) invisible until
// the end of the pass, then makes them all visible again at once
// (ChangeMessageVisibilityBatch 0), also when the pass fails or is
// cancelled. Releasing each one as soon as it is seen would let the next
// receive return the same messages again (moto returns the oldest first;
// SQS may), so a pass could never see past the first ten kept messages.
package redrive

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"golang.org/x/time/rate"

	"github.com/catalog-import/catalog-import/internal/aws/awserr"
	"github.com/catalog-import/catalog-import/internal/aws/sqsqueue"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/queue"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/state"
	"github.com/catalog-import/catalog-import/internal/triage"
)

// Where a redriven manifest comes from.
const (
	SourceDLQ       = "dlq"       // a message in the shard DLQ
	SourceEscalated = "escalated" // the manifest of an ESCALATED shard, rebuilt from the state store
	// SourceSuspended: the manifest of an unfinished shard of a SUSPENDED
	// batch named by Filter.BatchID, which the redrive resumes (RUNNING).
	SourceSuspended = "suspended"
)

// What Run did with an item.
const (
	ActionMoved     = "moved"      // sent to the shard queue (and deleted from the DLQ)
	ActionWouldMove = "would-move" // dry run: would have been moved
	ActionKept      = "kept"       // left where it is (see Item.Note)
)

// Defaults of Config.
const (
	DefaultRate       = 10              // messages per second
	DefaultVisibility = 5 * time.Minute // how long a received DLQ message is held
	DefaultWait       = time.Second     // long poll of one receive
	maxTaskRate       = 500             // StartMessageMoveTask's MaxNumberOfMessagesPerSecond limit
	maxReceive        = 10              // messages per ReceiveMessage and per batch request
)

// Filter selects what to redrive. The zero Filter selects everything.
type Filter struct {
	BatchID string // only this batch's manifests
	Shard   *int   // only this shard index
	// Reason is a reason code (failure.ParseReason: in any case) that the
	// shard's last error must have: the reason of the shard's newest entry
	// in the triage log (Config.Log); for a shard with no entry (or without
	// a log), the code the shard's Message in the state store begins with
	// ("AccessDenied: ..." for an escalated shard). The rule of
	// `importctl failures --reason`.
	Reason string
}

// IsZero reports whether f selects everything.
func (f Filter) IsZero() bool { return f.BatchID == "" && f.Shard == nil && f.Reason == "" }

// Config is one redrive.
type Config struct {
	SQS *sqs.Client
	// Store is the stack's state store: ESCALATED shards are listed there,
	// and Filter.Reason is matched against its shards.
	Store state.Store
	// Log is the stack's triage log, where Filter.Reason looks first
	// (optional).
	Log           triage.Log
	DLQURL        string
	ShardQueueURL string
	Filter        Filter
	// Max moves at most this many manifests (both sources); 0: no limit.
	Max int
	// DryRun reports what would move and moves nothing.
	DryRun bool
	// Rate is the most manifests sent per second (default DefaultRate).
	Rate float64
	// Visibility is how long a received DLQ message stays invisible while
	// Run holds it (default DefaultVisibility); whole seconds.
	Visibility time.Duration
	// Wait is the long poll of one receive (default DefaultWait); 0 with
	// ShortPoll polls without waiting (moto answers short polls exactly).
	Wait      time.Duration
	ShortPoll bool
	// Report, when set, is called with every item as it is handled.
	Report func(Item)
}

// Item is one manifest Run handled.
type Item struct {
	Action    string `json:"action"`
	BatchID   string `json:"batch_id"`
	Shard     int    `json:"shard"`
	Source    string `json:"source"`
	MessageID string `json:"message_id,omitempty"`
	Note      string `json:"note,omitempty"`
}

// Result sums up a redrive. Every reported item counts once in Moved,
// WouldMove or Kept.
type Result struct {
	Moved     int `json:"moved"`
	Kept      int `json:"kept"`
	WouldMove int `json:"would_move"`
	// Failed counts sends that failed (the message stayed in the DLQ) and
	// deletes that failed after a send (the manifest is in both queues).
	Failed int `json:"failed"`
	// MoveTask is the handle of the StartMessageMoveTask that moves the DLQ;
	// Moved then counts the DLQ's approximate number of messages.
	MoveTask string `json:"move_task,omitempty"`
	// Fallback says why a move task was wanted but not used.
	Fallback string `json:"fallback,omitempty"`
}

// Run redrives: first the DLQ (a move task, or message by message), then the
// manifests of ESCALATED shards of unfinished batches, skipping a shard whose
// message this run already moved from the DLQ. It returns an error when it
// could not go on (a receive or the state store failed); failed sends and
// deletes are counted in Result.Failed and reported, and Run goes on.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.SQS == nil || cfg.Store == nil || cfg.DLQURL == "" || cfg.ShardQueueURL == "" {
		return Result{}, errors.New("redrive: SQS client, state store, DLQ and shard queue are required")
	}
	if cfg.Max < 0 {
		return Result{}, fmt.Errorf("redrive: max %d < 0", cfg.Max)
	}
	if _, ok := failure.ParseReason(cfg.Filter.Reason); cfg.Filter.Reason != "" && !ok {
		return Result{}, fmt.Errorf("redrive: %q is not a reason code (known: %v)", cfg.Filter.Reason, failure.Reasons())
	}
	if cfg.Rate <= 0 {
		cfg.Rate = DefaultRate
	}
	if cfg.Visibility <= 0 {
		cfg.Visibility = DefaultVisibility
	}
	if cfg.Wait <= 0 && !cfg.ShortPoll {
		cfg.Wait = DefaultWait
	}
	r := &run{cfg: cfg, limiter: rate.NewLimiter(rate.Limit(cfg.Rate), 1), shards: map[string][]state.Shard{}, last: map[string]map[int]failure.Reason{}, fromDLQ: map[shardKey]bool{}}
	if cfg.Filter.IsZero() && cfg.Max == 0 && !cfg.DryRun {
		started, err := r.moveTask(ctx)
		if err != nil {
			return r.res, err
		}
		if started {
			return r.res, r.escalated(ctx)
		}
	}
	if err := r.drain(ctx); err != nil {
		return r.res, err
	}
	return r.res, r.escalated(ctx)
}

type shardKey struct {
	batch string
	shard int
}

type run struct {
	cfg     Config
	limiter *rate.Limiter
	res     Result
	shards  map[string][]state.Shard          // by batch, for Filter.Reason and ESCALATED shards
	last    map[string]map[int]failure.Reason // by batch and shard: the reason of the newest triage log entry
	fromDLQ map[shardKey]bool                 // shards whose manifest this run moved (or would move) from the DLQ
}

func (r *run) report(it Item) {
	switch it.Action {
	case ActionMoved:
		r.res.Moved++
	case ActionWouldMove:
		r.res.WouldMove++
	default:
		r.res.Kept++
	}
	if r.cfg.Report != nil {
		r.cfg.Report(it)
	}
}

// full reports whether Max manifests have been moved (or would have been).
func (r *run) full() bool {
	return r.cfg.Max > 0 && r.res.Moved+r.res.WouldMove >= r.cfg.Max
}

// moveTask starts a StartMessageMoveTask from the DLQ to the shard queue.
// started is false when the API is not available here (the caller falls
// back); other errors are returned.
func (r *run) moveTask(ctx context.Context) (started bool, err error) {
	src, err := r.attrs(ctx, r.cfg.DLQURL, types.QueueAttributeNameQueueArn, types.QueueAttributeNameApproximateNumberOfMessages)
	if err != nil {
		return false, err
	}
	dst, err := r.attrs(ctx, r.cfg.ShardQueueURL, types.QueueAttributeNameQueueArn)
	if err != nil {
		return false, err
	}
	perSecond := int32(min(max(r.cfg.Rate, 1), maxTaskRate))
	out, err := r.cfg.SQS.StartMessageMoveTask(ctx, &sqs.StartMessageMoveTaskInput{
		SourceArn:                    aws.String(src[string(types.QueueAttributeNameQueueArn)]),
		DestinationArn:               aws.String(dst[string(types.QueueAttributeNameQueueArn)]),
		MaxNumberOfMessagesPerSecond: aws.Int32(perSecond),
	}, func(o *sqs.Options) { o.RetryMaxAttempts = 1 }) // an unavailable API answers 500: do not wait out retries
	if err != nil {
		if unavailable(err) {
			r.res.Fallback = fmt.Sprintf("StartMessageMoveTask is not available here (%v); moving message by message", err)
			return false, nil
		}
		return false, awserr.Wrap(err, "start message move task")
	}
	r.res.MoveTask = aws.ToString(out.TaskHandle)
	r.res.Moved, _ = strconv.Atoi(src[string(types.QueueAttributeNameApproximateNumberOfMessages)])
	return true, nil
}

// unavailable reports whether err says StartMessageMoveTask cannot be used
// on this endpoint: a server error (moto: HTTP 500, not implemented) or an
// unknown or unsupported operation.
func unavailable(err error) bool {
	if awserr.Status(err) >= 500 {
		return true
	}
	switch awserr.Code(err) {
	case "UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation", "InvalidAction",
		"UnknownOperationException", "NotImplemented", "InternalFailure", "InternalError":
		return true
	}
	return false
}

func (r *run) attrs(ctx context.Context, url string, names ...types.QueueAttributeName) (map[string]string, error) {
	out, err := r.cfg.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: names})
	if err != nil {
		return nil, awserr.Wrap(err, "get attributes of queue "+url)
	}
	return out.Attributes, nil
}

// drain moves the DLQ message by message (see the package doc).
func (r *run) drain(ctx context.Context) (err error) {
	seen := map[string]bool{}   // message ids met in this pass
	held := map[string]string{} // message id -> latest receipt handle, released at the end
	defer func() {
		if rerr := r.release(ctx, held); err == nil {
			err = rerr
		}
	}()
	for !r.full() {
		out, err := r.cfg.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(r.cfg.DLQURL),
			MaxNumberOfMessages:         maxReceive,
			VisibilityTimeout:           int32((r.cfg.Visibility + time.Second - 1) / time.Second),
			WaitTimeSeconds:             int32((r.cfg.Wait + time.Second - 1) / time.Second),
			MessageAttributeNames:       []string{"All"},
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAWSTraceHeader},
		})
		if err != nil {
			return awserr.Wrap(err, "receive from the DLQ")
		}
		fresh := 0
		for _, msg := range out.Messages {
			id, receipt := aws.ToString(msg.MessageId), aws.ToString(msg.ReceiptHandle)
			if seen[id] {
				// Held past the visibility timeout and received again: keep
				// holding it under its new receipt.
				if _, ok := held[id]; ok {
					held[id] = receipt
				}
				continue
			}
			seen[id] = true
			fresh++
			if r.full() {
				held[id] = receipt // not looked at: released untouched
				continue
			}
			keep, err := r.one(ctx, msg)
			if keep {
				held[id] = receipt
			}
			if err != nil {
				return err
			}
		}
		if fresh == 0 {
			return nil
		}
	}
	return nil
}

// one handles one DLQ message; keep says it stays in the DLQ (to release).
func (r *run) one(ctx context.Context, msg types.Message) (keep bool, err error) {
	id, body := aws.ToString(msg.MessageId), aws.ToString(msg.Body)
	m, derr := sqsqueue.Decode(body)
	it := Item{BatchID: m.BatchID, Shard: m.Shard, Source: SourceDLQ, MessageID: id}
	if derr != nil {
		it.Action, it.Note = ActionKept, derr.Error()
		r.report(it)
		return true, nil
	}
	ok, err := r.match(ctx, m.BatchID, m.Shard)
	if err != nil {
		return true, err
	}
	if !ok {
		it.Action, it.Note = ActionKept, "does not match the filter"
		r.report(it)
		return true, nil
	}
	if r.cfg.DryRun {
		r.fromDLQ[shardKey{m.BatchID, m.Shard}] = true
		it.Action = ActionWouldMove
		r.report(it)
		return true, nil
	}
	if err := r.limiter.Wait(ctx); err != nil {
		return true, err
	}
	in := &sqs.SendMessageInput{QueueUrl: aws.String(r.cfg.ShardQueueURL), MessageBody: aws.String(body), MessageAttributes: msg.MessageAttributes}
	if th := msg.Attributes[string(types.MessageSystemAttributeNameAWSTraceHeader)]; th != "" {
		in.MessageSystemAttributes = map[string]types.MessageSystemAttributeValue{
			string(types.MessageSystemAttributeNameForSendsAWSTraceHeader): {DataType: aws.String("String"), StringValue: aws.String(th)},
		}
	}
	if _, err := r.cfg.SQS.SendMessage(ctx, in); err != nil {
		if ctx.Err() != nil {
			return true, ctx.Err()
		}
		r.res.Failed++
		it.Action, it.Note = ActionKept, "send failed, the message stays in the DLQ: "+awserr.Wrap(err, "send").Error()
		r.report(it)
		return true, nil
	}
	r.fromDLQ[shardKey{m.BatchID, m.Shard}] = true
	it.Action = ActionMoved
	if _, err := r.cfg.SQS.DeleteMessage(context.WithoutCancel(ctx), &sqs.DeleteMessageInput{QueueUrl: aws.String(r.cfg.DLQURL), ReceiptHandle: msg.ReceiptHandle}); err != nil {
		r.res.Failed++
		it.Note = "sent, but not deleted from the DLQ (a duplicate manifest is harmless): " + awserr.Wrap(err, "delete").Error()
	}
	r.report(it)
	return false, nil
}

// release makes the held messages visible again, ten to a request, even
// when ctx is done. A message it fails to release comes back by itself
// after the visibility timeout.
func (r *run) release(ctx context.Context, held map[string]string) error {
	return release(ctx, r.cfg.SQS, r.cfg.DLQURL, held, r.cfg.Visibility)
}

// release makes the held messages of the queue at url visible again (see
// run.release).
func release(ctx context.Context, client *sqs.Client, url string, held map[string]string, visibility time.Duration) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	var entries []types.ChangeMessageVisibilityBatchRequestEntry
	var failed int
	flush := func() {
		if len(entries) == 0 {
			return
		}
		out, err := client.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(url), Entries: entries})
		switch {
		case err != nil:
			failed += len(entries)
		default:
			failed += len(out.Failed)
		}
		entries = entries[:0]
	}
	for _, receipt := range held {
		entries = append(entries, types.ChangeMessageVisibilityBatchRequestEntry{
			Id: aws.String(strconv.Itoa(len(entries))), ReceiptHandle: aws.String(receipt), VisibilityTimeout: 0,
		})
		if len(entries) == maxReceive {
			flush()
		}
	}
	flush()
	if failed > 0 {
		return fmt.Errorf("redrive: %d kept messages could not be made visible again; they will be after the visibility timeout (%v)", failed, visibility)
	}
	return nil
}

// match reports whether the filter selects shard of batch.
func (r *run) match(ctx context.Context, batch string, shard int) (bool, error) {
	f := r.cfg.Filter
	if f.BatchID != "" && f.BatchID != batch || f.Shard != nil && *f.Shard != shard {
		return false, nil
	}
	if f.Reason == "" {
		return true, nil
	}
	last, err := r.lastReasons(ctx, batch)
	if err != nil {
		return false, err
	}
	if reason, ok := last[shard]; ok {
		return sameReason(reason, f.Reason), nil
	}
	shards, err := r.listShards(ctx, batch)
	if err != nil {
		return false, err
	}
	for _, s := range shards {
		if s.Index == shard {
			return matchReason(s, f.Reason), nil
		}
	}
	return false, nil
}

// lastReasons is the reason of each shard's newest triage log entry that
// has one (a worker's failed delivery or a triage decision), read once per
// batch.
func (r *run) lastReasons(ctx context.Context, batch string) (map[int]failure.Reason, error) {
	if m, ok := r.last[batch]; ok {
		return m, nil
	}
	m := map[int]failure.Reason{}
	if r.cfg.Log != nil {
		es, err := r.cfg.Log.List(ctx, batch)
		if err != nil {
			return nil, fmt.Errorf("redrive: triage log of %s: %w", batch, err)
		}
		for _, e := range es { // oldest first: the newest wins
			if e.Reason != "" {
				m[e.Shard] = e.Reason
			}
		}
	}
	r.last[batch] = m
	return m, nil
}

func matchReason(s state.Shard, reason string) bool {
	if reason == "" {
		return true
	}
	r, ok := failure.LeadingReason(s.Message)
	return ok && sameReason(r, reason)
}

// sameReason reports whether code is the reason a filter names (in any case).
func sameReason(code failure.Reason, reason string) bool {
	want, ok := failure.ParseReason(reason)
	return ok && code == want
}

func (r *run) listShards(ctx context.Context, batch string) ([]state.Shard, error) {
	if s, ok := r.shards[batch]; ok {
		return s, nil
	}
	s, err := r.cfg.Store.ListShards(ctx, batch)
	if errors.Is(err, state.ErrNotFound) {
		err = nil
	}
	if err != nil {
		return nil, fmt.Errorf("redrive: shards of batch %s: %w", batch, err)
	}
	r.shards[batch] = s
	return s, nil
}

// escalated re-sends the manifests of the selected ESCALATED shards of
// unfinished batches.
func (r *run) escalated(ctx context.Context) error {
	var batches []state.Batch
	if id := r.cfg.Filter.BatchID; id != "" {
		b, err := r.cfg.Store.GetBatch(ctx, id)
		switch {
		case errors.Is(err, state.ErrNotFound):
		case err != nil:
			return fmt.Errorf("redrive: batch %s: %w", id, err)
		default:
			batches = append(batches, b)
		}
	} else {
		var err error
		if batches, err = r.cfg.Store.ListBatches(ctx, 0); err != nil {
			return fmt.Errorf("redrive: list batches: %w", err)
		}
	}
	for _, b := range batches {
		if b.Status == state.BatchSuspended && b.ID == r.cfg.Filter.BatchID {
			if err := r.resume(ctx, b); err != nil {
				return err
			}
			continue
		}
		shards, err := r.listShards(ctx, b.ID)
		if err != nil {
			return err
		}
		for _, s := range shards {
			if s.Status != state.ShardEscalated || r.full() {
				continue
			}
			ok, err := r.match(ctx, b.ID, s.Index)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			it := Item{BatchID: b.ID, Shard: s.Index, Source: SourceEscalated}
			switch {
			case b.Status.Finished():
				it.Action, it.Note = ActionKept, fmt.Sprintf("batch is %s: no worker can claim its shards", b.Status)
			case r.fromDLQ[shardKey{b.ID, s.Index}]:
				continue // its manifest is on its way from the DLQ
			case r.cfg.DryRun:
				it.Action, it.Note = ActionWouldMove, s.Message
			default:
				if err := r.send(ctx, split.Manifest(b, s, b.TraceID)); err != nil {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					r.res.Failed++
					it.Action, it.Note = ActionKept, "send failed: "+err.Error()
				} else {
					it.Action, it.Note = ActionMoved, s.Message
				}
			}
			r.report(it)
		}
	}
	return nil
}

// resume resumes a SUSPENDED batch that Filter.BatchID names (its source
// changed after the split, e.g. an object overwritten in an unversioned
// bucket, and was restored): the batch is RUNNING again and the manifest
// of every unfinished shard is sent, read under the registered version as
// always. If the object is still not the registered one, the first read
// fails again and the batch is SUSPENDED again; nothing of it is written.
func (r *run) resume(ctx context.Context, b state.Batch) error {
	shards, err := r.listShards(ctx, b.ID)
	if err != nil {
		return err
	}
	if !r.cfg.DryRun {
		if _, err := r.cfg.Store.ResumeBatch(ctx, b.ID, time.Now().UTC()); err != nil {
			return fmt.Errorf("redrive: resume batch %s: %w", b.ID, err)
		}
	}
	for _, s := range shards {
		if s.Status.Finished() || r.full() || r.fromDLQ[shardKey{b.ID, s.Index}] {
			continue
		}
		if ok, err := r.match(ctx, b.ID, s.Index); err != nil || !ok {
			if err != nil {
				return err
			}
			continue
		}
		it := Item{BatchID: b.ID, Shard: s.Index, Source: SourceSuspended}
		switch {
		case r.cfg.DryRun:
			it.Action, it.Note = ActionWouldMove, "resume the SUSPENDED batch: "+b.Message
		default:
			if err := r.send(ctx, split.Manifest(b, s, b.TraceID)); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				r.res.Failed++
				it.Action, it.Note = ActionKept, "send failed: "+err.Error()
			} else {
				it.Action, it.Note = ActionMoved, "resumed the SUSPENDED batch"
			}
		}
		r.report(it)
	}
	return nil
}

func (r *run) send(ctx context.Context, m queue.Manifest) error {
	body, err := sqsqueue.Encode(m)
	if err != nil {
		return err
	}
	if err := r.limiter.Wait(ctx); err != nil {
		return err
	}
	_, err = r.cfg.SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(r.cfg.ShardQueueURL), MessageBody: aws.String(body)})
	return awserr.Wrap(err, "send the manifest")
}
