package dynamostate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"github.com/catalog-import/catalog-import/internal/aws/awserr"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/state"
)

// DefaultFailureTTL is how long failure records are kept when
// Options.FailureTTL is zero.
const DefaultFailureTTL = 30 * 24 * time.Hour

// Options tune a Store. The zero value is ready to use.
type Options struct {
	// FailureTTL is how long a failure record is kept after its FailureAt
	// (the table's TTL attribute expires_at): zero means DefaultFailureTTL,
	// a negative value keeps records until the table is deleted.
	FailureTTL time.Duration
	// Now is the clock of updated_at and of failure records without a time;
	// default time.Now.
	Now func() time.Time
	// MaxAttempts bounds the calls spent on one write that keeps losing races
	// (transaction conflicts, a concurrent finisher) or keeps coming back
	// unprocessed; then the operation fails with a Throttled error. Default 8.
	MaxAttempts int
	// BaseDelay and MaxDelay shape the exponential backoff between those
	// attempts (defaults 25ms and 2s).
	BaseDelay, MaxDelay time.Duration
}

// Store is the DynamoDB adapter of state.Store: one table (see TableInput)
// holds batches, shards and failure records. It is safe for concurrent use
// by many goroutines and processes: every decision is a conditional write.
type Store struct {
	db    *dynamodb.Client
	table string
	opts  Options
}

var _ state.Store = (*Store)(nil)

// New returns a Store on table through client.
func New(client *dynamodb.Client, table string, opts Options) *Store {
	if opts.FailureTTL == 0 {
		opts.FailureTTL = DefaultFailureTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 8
	}
	if opts.BaseDelay <= 0 {
		opts.BaseDelay = 25 * time.Millisecond
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = 2 * time.Second
	}
	return &Store{db: client, table: table, opts: opts}
}

func invalid(field, format string, args ...any) error {
	return failure.New(failure.Internal, field, "invalid argument: "+format, args...)
}

// getItem reads one item with a consistent read; nil when it does not exist.
func (s *Store) getItem(ctx context.Context, key item, op string, attrs ...string) (item, error) {
	in := &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: key, ConsistentRead: aws.Bool(true)}
	if len(attrs) > 0 {
		e := newExpr()
		ps := make([]string, len(attrs))
		for i, a := range attrs {
			ps[i] = e.n(a)
		}
		in.ProjectionExpression, in.ExpressionAttributeNames = aws.String(strings.Join(ps, ", ")), e.Names()
	}
	out, err := s.db.GetItem(ctx, in)
	if err != nil {
		return nil, awserr.Wrap(err, op+": dynamodb GetItem")
	}
	if len(out.Item) == 0 {
		return nil, nil
	}
	return out.Item, nil
}

func notFoundBatch(id string) error { return fmt.Errorf("batch %s: %w", id, state.ErrNotFound) }

// requireBatch fails with state.ErrNotFound unless batch id exists.
func (s *Store) requireBatch(ctx context.Context, id, op string) error {
	it, err := s.getItem(ctx, batchKey(id), op, attrPK)
	if err != nil {
		return err
	}
	if it == nil {
		return notFoundBatch(id)
	}
	return nil
}

// query runs a paginated query, calling each for every item until it
// returns false.
func (s *Store) query(ctx context.Context, in *dynamodb.QueryInput, op string, each func(item) (bool, error)) error {
	in.TableName = aws.String(s.table)
	for {
		out, err := s.db.Query(ctx, in)
		if err != nil {
			return awserr.Wrap(err, op+": dynamodb Query")
		}
		for _, it := range out.Items {
			more, err := each(it)
			if err != nil || !more {
				return err
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// newCreator returns a random token that marks the CreateBatch call that
// wrote a batch item.
func newCreator() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// errBatchExists: a registration transaction found the batch item written.
var errBatchExists = errors.New("batch item exists")

// CreateBatch stores b and its shards unless a batch with b.ID exists; see
// state.Store. The batch item is written last, in the same transaction as
// the last shards, and every transaction that writes shards is conditioned
// on the batch item not existing yet: a crash part way leaves only shards
// that no other call can see, and a retry overwrites them (and deletes any
// the retry does not have) before it writes the batch item. See the package
// documentation.
func (s *Store) CreateBatch(ctx context.Context, b state.Batch, shards []state.Shard) (state.Batch, bool, error) {
	b, shards, err := state.PrepareBatch(b, shards, s.opts.Now())
	if err != nil {
		return state.Batch{}, false, err
	}
	want := make(map[int]bool, len(shards))
	ops := make([]types.TransactWriteItem, 0, len(shards))
	for _, sh := range shards {
		if sh.Index > maxShardIndex { // the sort key pads to six digits
			return state.Batch{}, false, invalid("shard", "create batch %s: shard index %d outside 0..%d", b.ID, sh.Index, maxShardIndex)
		}
		want[sh.Index] = true
		si, err := shardItem(sh)
		if err != nil {
			return state.Batch{}, false, invalid("staged", "create batch %s: %v", b.ID, err)
		}
		ops = append(ops, types.TransactWriteItem{Put: &types.Put{TableName: aws.String(s.table), Item: si}})
	}
	creator := newCreator()
	bi, err := batchItem(b, creator)
	if err != nil {
		return state.Batch{}, false, invalid("layout", "create batch %s: %v", b.ID, err)
	}
	op := "create batch " + b.ID
	for attempt := 0; ; attempt++ {
		stored, err := s.getItem(ctx, batchKey(b.ID), op)
		if err != nil {
			return state.Batch{}, false, err
		}
		if stored != nil {
			sb, err := decodeBatch(stored)
			if err != nil {
				return state.Batch{}, false, failure.Wrap(failure.Internal, "", err, "")
			}
			// created_by tells a replayed registration (its response lost)
			// from another caller's.
			by, _ := stored["created_by"].(*types.AttributeValueMemberS)
			return sb, by != nil && by.Value == creator, nil
		}
		// Shards left by an earlier attempt that crashed, and that this
		// split does not have, are deleted in the same guarded transactions.
		var stale []types.TransactWriteItem
		err = s.query(ctx, s.shardQuery(b.ID, attrPK, attrSK), op, func(it item) (bool, error) {
			sk, _ := it[attrSK].(*types.AttributeValueMemberS)
			var idx int
			if sk != nil {
				if _, err := fmt.Sscanf(sk.Value, shardPrefix+"%d", &idx); err == nil && want[idx] {
					return true, nil
				}
			}
			stale = append(stale, types.TransactWriteItem{Delete: &types.Delete{TableName: aws.String(s.table),
				Key: item{attrPK: it[attrPK], attrSK: it[attrSK]}}})
			return true, nil
		})
		if err != nil {
			return state.Batch{}, false, err
		}
		err = s.register(ctx, b.ID, slices.Concat(ops, stale), bi)
		switch {
		case err == nil:
			created, err := decodeBatch(bi)
			if err != nil {
				return state.Batch{}, false, failure.Wrap(failure.Internal, "", err, "")
			}
			return created, true, nil
		case errors.Is(err, errBatchExists) && attempt < s.opts.MaxAttempts:
			continue // read it
		case contended(err) && attempt+1 < s.opts.MaxAttempts:
			if err := s.pause(ctx, attempt); err != nil {
				return state.Batch{}, false, err
			}
		case contended(err), errors.Is(err, errBatchExists):
			return state.Batch{}, false, s.exhausted(op, err)
		default:
			return state.Batch{}, false, awserr.Wrap(err, op+": dynamodb TransactWriteItems")
		}
	}
}

// register writes ops (shard puts and deletes) in transactions of up to 99,
// each guarded by "the batch item does not exist", and the batch item with
// the last of them. It returns errBatchExists when a guard fails.
func (s *Store) register(ctx context.Context, batchID string, ops []types.TransactWriteItem, batch item) error {
	e := newExpr()
	notExists := "attribute_not_exists(" + e.n(attrPK) + ")"
	if len(ops) == 0 {
		_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: batch,
			ConditionExpression: aws.String(notExists), ExpressionAttributeNames: e.Names()})
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			return errBatchExists
		}
		return err
	}
	for len(ops) > 0 {
		n := min(len(ops), maxTxnItems-1)
		txn := append(slices.Clone(ops[:n]), types.TransactWriteItem{})
		ops = ops[n:]
		if len(ops) > 0 {
			txn[n].ConditionCheck = &types.ConditionCheck{TableName: aws.String(s.table), Key: batchKey(batchID),
				ConditionExpression: aws.String(notExists), ExpressionAttributeNames: e.Names()}
		} else {
			txn[n].Put = &types.Put{TableName: aws.String(s.table), Item: batch,
				ConditionExpression: aws.String(notExists), ExpressionAttributeNames: e.Names()}
		}
		if err := s.transact(ctx, txn); err != nil {
			if rs, ok := cancelReasons(err); ok {
				if _, failed := conditionFailed(rs, n); failed {
					return errBatchExists
				}
			}
			return err
		}
	}
	return nil
}

// shardQuery selects the shard items of a batch (consistent), projecting
// attrs when given.
func (s *Store) shardQuery(batchID string, attrs ...string) *dynamodb.QueryInput {
	e := newExpr()
	kc := fmt.Sprintf("%s = %s AND begins_with(%s, %s)", e.n(attrPK), e.v(avS(batchPK(batchID))), e.n(attrSK), e.v(avS(shardPrefix)))
	in := &dynamodb.QueryInput{KeyConditionExpression: aws.String(kc), ConsistentRead: aws.Bool(true)}
	if len(attrs) > 0 {
		ps := make([]string, len(attrs))
		for i, a := range attrs {
			ps[i] = e.n(a)
		}
		in.ProjectionExpression = aws.String(strings.Join(ps, ", "))
	}
	in.ExpressionAttributeNames, in.ExpressionAttributeValues = e.Names(), e.Values()
	return in
}

// GetBatch returns the batch or state.ErrNotFound.
func (s *Store) GetBatch(ctx context.Context, id string) (state.Batch, error) {
	it, err := s.getItem(ctx, batchKey(id), "get batch "+id)
	if err != nil {
		return state.Batch{}, err
	}
	if it == nil {
		return state.Batch{}, notFoundBatch(id)
	}
	b, err := decodeBatch(it)
	if err != nil {
		return state.Batch{}, failure.Wrap(failure.Internal, "", err, "")
	}
	return b, nil
}

// ListBatches returns up to limit batches (all when limit <= 0), the most
// recently created first. It reads the index gsi1, which DynamoDB keeps
// eventually consistent: a batch created a moment ago may be missing.
func (s *Store) ListBatches(ctx context.Context, limit int) ([]state.Batch, error) {
	e := newExpr()
	in := &dynamodb.QueryInput{
		IndexName:              aws.String(IndexName),
		KeyConditionExpression: aws.String(e.n(attrGSI1PK) + " = " + e.v(avS(batchesGSI))),
		ScanIndexForward:       aws.Bool(false),
	}
	if limit > 0 {
		in.Limit = aws.Int32(int32(min(limit, 1000)))
	}
	in.ExpressionAttributeNames, in.ExpressionAttributeValues = e.Names(), e.Values()
	var out []state.Batch
	err := s.query(ctx, in, "list batches", func(it item) (bool, error) {
		b, err := decodeBatch(it)
		if err != nil {
			return false, failure.Wrap(failure.Internal, "", err, "")
		}
		out = append(out, b)
		return limit <= 0 || len(out) < limit, nil
	})
	return out, err
}

// ListShards returns the batch's shards by index; state.ErrNotFound if there
// is no such batch (shards of a registration that never finished included).
func (s *Store) ListShards(ctx context.Context, batchID string) ([]state.Shard, error) {
	op := "list shards of " + batchID
	if err := s.requireBatch(ctx, batchID, op); err != nil {
		return nil, err
	}
	var out []state.Shard
	err := s.query(ctx, s.shardQuery(batchID), op, func(it item) (bool, error) {
		sh, err := decodeShard(it)
		if err != nil {
			return false, failure.Wrap(failure.Internal, "", err, "")
		}
		out = append(out, sh)
		return true, nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out, err
}

// Claim takes the shard for owner until now+ttl and bumps its epoch; see
// state.Store. One read (the batch's status) and one conditional UpdateItem.
func (s *Store) Claim(ctx context.Context, batchID string, shard int, owner string, ttl time.Duration, now time.Time) (state.Lease, state.Shard, error) {
	if owner == "" {
		return state.Lease{}, state.Shard{}, invalid("owner", "claim shard %s/%d: empty owner", batchID, shard)
	}
	if ttl <= 0 {
		return state.Lease{}, state.Shard{}, invalid("ttl", "claim shard %s/%d: ttl %v is not positive", batchID, shard, ttl)
	}
	op := fmt.Sprintf("claim shard %s/%d", batchID, shard)
	bi, err := s.getItem(ctx, batchKey(batchID), op, "status")
	if err != nil {
		return state.Lease{}, state.Shard{}, err
	}
	if bi == nil {
		return state.Lease{}, state.Shard{}, notFoundBatch(batchID)
	}
	if bs := state.BatchStatus((&dec{it: bi}).s("status")); bs.Finished() {
		return state.Lease{}, state.Shard{}, fmt.Errorf("%w (%s)", state.ErrBatchFinished, bs)
	}
	if shard < 0 || shard > maxShardIndex {
		return state.Lease{}, state.Shard{}, fmt.Errorf("shard %d: %w", shard, state.ErrNotFound)
	}
	until := now.Add(ttl).UTC()
	e := newExpr()
	u := update{e: e}
	u.set("status", avS(string(state.ShardRunning)))
	u.set("owner", avS(owner))
	u.set("lease_until", avTime(until))
	u.set("updated_at", avTime(now))
	u.add("epoch", 1)
	u.add("attempts", 1)
	cond := fmt.Sprintf("attribute_exists(%s) AND %s <> %s AND %s <> %s AND (attribute_not_exists(%s) OR %s <= %s OR %s = %s)",
		e.n(attrPK), e.n("status"), e.v(avS(string(state.ShardDone))), e.n("status"), e.v(avS(string(state.ShardSkipped))),
		e.n("lease_until"), e.n("lease_until"), e.v(avS(formatTime(now))), e.n("owner"), e.v(avS(owner)))
	in := &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: shardKey(batchID, shard),
		UpdateExpression: aws.String(u.String()), ConditionExpression: aws.String(cond),
		ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values(),
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	for attempt := 0; ; attempt++ {
		out, err := s.db.UpdateItem(ctx, in)
		var ccf *types.ConditionalCheckFailedException
		switch {
		case err == nil:
			sh, err := decodeShard(out.Attributes)
			if err != nil {
				return state.Lease{}, state.Shard{}, failure.Wrap(failure.Internal, "", err, "")
			}
			return state.Lease{BatchID: batchID, Shard: shard, Owner: owner, Epoch: sh.Epoch, Until: until}, sh, nil
		case errors.As(err, &ccf):
			if len(ccf.Item) == 0 {
				return state.Lease{}, state.Shard{}, fmt.Errorf("shard %d: %w", shard, state.ErrNotFound)
			}
			sh, derr := decodeShard(ccf.Item)
			if derr != nil {
				return state.Lease{}, state.Shard{}, failure.Wrap(failure.Internal, "", derr, "")
			}
			if sh.Status.Finished() {
				return state.Lease{}, state.Shard{}, fmt.Errorf("%w (%s)", state.ErrShardFinished, sh.Status)
			}
			return state.Lease{}, state.Shard{}, fmt.Errorf("%w: %q until %s", state.ErrLeased, sh.Owner, sh.LeaseUntil.Format(time.RFC3339Nano))
		case contended(err) && attempt+1 < s.opts.MaxAttempts:
			if err := s.pause(ctx, attempt); err != nil {
				return state.Lease{}, state.Shard{}, err
			}
		case contended(err):
			return state.Lease{}, state.Shard{}, s.exhausted(op, err)
		default:
			return state.Lease{}, state.Shard{}, awserr.Wrap(err, op+": dynamodb UpdateItem")
		}
	}
}

// leaseState reads a lease's shard and its batch in one consistent
// BatchGetItem and checks, in order: ErrNotFound, ErrFenced.
func (s *Store) leaseState(ctx context.Context, l state.Lease, op string) (state.Shard, state.Batch, error) {
	if l.Shard < 0 || l.Shard > maxShardIndex {
		return state.Shard{}, state.Batch{}, fmt.Errorf("shard %d: %w", l.Shard, state.ErrNotFound)
	}
	items, err := s.batchGet(ctx, []item{batchKey(l.BatchID), shardKey(l.BatchID, l.Shard)}, op)
	if err != nil {
		return state.Shard{}, state.Batch{}, err
	}
	var bi, si item
	for _, it := range items {
		if sk, ok := it[attrSK].(*types.AttributeValueMemberS); ok && sk.Value == batchSK {
			bi = it
		} else {
			si = it
		}
	}
	if bi == nil {
		return state.Shard{}, state.Batch{}, notFoundBatch(l.BatchID)
	}
	if si == nil {
		return state.Shard{}, state.Batch{}, fmt.Errorf("shard %d: %w", l.Shard, state.ErrNotFound)
	}
	b, err := decodeBatch(bi)
	if err != nil {
		return state.Shard{}, state.Batch{}, failure.Wrap(failure.Internal, "", err, "")
	}
	sh, err := decodeShard(si)
	if err != nil {
		return state.Shard{}, state.Batch{}, failure.Wrap(failure.Internal, "", err, "")
	}
	return sh, b, fence(sh, l)
}

// fence fails with state.ErrFenced unless l is the shard's current lease:
// its epoch and its owner.
func fence(sh state.Shard, l state.Lease) error {
	if l.Epoch < 1 || sh.Epoch != l.Epoch || sh.Owner != l.Owner {
		return fmt.Errorf("%w: lease of %q at epoch %d, shard now held by %q at epoch %d",
			state.ErrFenced, l.Owner, l.Epoch, sh.Owner, sh.Epoch)
	}
	return nil
}

// behind reports whether cp is before the stored checkpoint in any respect.
func behind(cp, stored state.Checkpoint) bool {
	c, s := cp.Counts, stored.Counts
	return cp.NextRow < stored.NextRow || cp.NextOffset < stored.NextOffset ||
		c.Total < s.Total || c.Imported < s.Imported || c.Failed < s.Failed || c.Skipped < s.Skipped
}

// outcomes is the batch counters' delta of a checkpoint moving from prev to
// cp: the outcomes move, the split's Total does not.
func outcomes(cp, prev state.Counts) state.Counts {
	return state.Counts{Imported: cp.Imported - prev.Imported, Failed: cp.Failed - prev.Failed, Skipped: cp.Skipped - prev.Skipped}
}

// shardCond is the condition of every write of a lease: the lease is
// current, the shard is not finished, and its checkpoint is still prev (the
// one the delta was computed from, so that counters move exactly once even
// when a transaction is replayed).
func shardCond(e *expr, l state.Lease, prev state.Checkpoint) string {
	parts := []string{
		e.n("epoch") + " = " + e.v(avN(l.Epoch)),
		e.n("owner") + " = " + e.v(avS(l.Owner)),
		e.n("status") + " <> " + e.v(avS(string(state.ShardDone))),
		e.n("status") + " <> " + e.v(avS(string(state.ShardSkipped))),
	}
	attrs := cpAttrs(prev)
	for _, name := range cpNames {
		parts = append(parts, e.n(name)+" = "+e.v(attrs[name]))
	}
	return strings.Join(parts, " AND ")
}

// setCheckpoint sets the checkpoint attributes of a shard to cp.
func setCheckpoint(u *update, cp state.Checkpoint) {
	attrs := cpAttrs(cp)
	for _, name := range cpNames {
		u.set(name, attrs[name])
	}
}

// runningCond is the batch's condition: it is RUNNING (and so exists).
func runningCond(e *expr) string {
	return e.n("status") + " = " + e.v(avS(string(state.BatchRunning)))
}

// leaseTxnError classifies a cancelled lease transaction whose action 0 is
// the shard and action 1 the batch. retry is true when the state moved
// under the call (a replay, a concurrent finisher) and it should read again.
func leaseTxnError(err error, l state.Lease, status state.ShardStatus) (retry bool, _ error) {
	rs, ok := cancelReasons(err)
	if !ok {
		return false, err
	}
	if it, failed := conditionFailed(rs, 0); failed {
		if len(it) == 0 {
			return false, fmt.Errorf("shard %d: %w", l.Shard, state.ErrNotFound)
		}
		sh, derr := decodeShard(it)
		if derr != nil {
			return false, failure.Wrap(failure.Internal, "", derr, "")
		}
		if ferr := fence(sh, l); ferr != nil {
			return false, ferr
		}
		if sh.Status.Finished() && sh.Status != status {
			return false, fmt.Errorf("%w (%s)", state.ErrShardFinished, sh.Status)
		}
		return true, err // the checkpoint moved (a replay): read again
	}
	if it, failed := conditionFailed(rs, 1); failed {
		if len(it) == 0 {
			return false, notFoundBatch(l.BatchID)
		}
		if bs := state.BatchStatus((&dec{it: it}).s("status")); bs.Finished() {
			return false, fmt.Errorf("%w (%s)", state.ErrBatchFinished, bs)
		}
		return true, err // shards_done moved (another shard finished)
	}
	return false, err
}

// inlineFailures is how many failure records ride in a checkpoint's
// transaction (beside the shard and the batch).
const inlineFailures = maxTxnItems - 2

// Checkpoint upserts failures, moves the shard's checkpoint to cp, extends
// the lease to until and adds the counts' delta to the batch; see
// state.Store and the package documentation. Requests: one BatchGetItem
// (the shard and the batch) and one TransactWriteItems holding the shard
// update, the batch update and up to 98 failure records; more records go
// first in BatchWriteItem calls of 25.
func (s *Store) Checkpoint(ctx context.Context, lease state.Lease, cp state.Checkpoint, failures []failure.Record, until time.Time) (state.Counts, error) {
	op := fmt.Sprintf("checkpoint shard %s/%d at row %d", lease.BatchID, lease.Shard, cp.NextRow)
	recs, err := s.failureItems(failures)
	if err != nil {
		return state.Counts{}, err
	}
	inline, spill := splitInline(recs, inlineFailures)
	for attempt := 0; ; attempt++ {
		sh, b, err := s.leaseState(ctx, lease, op)
		if err != nil {
			return state.Counts{}, err
		}
		if sh.Status.Finished() {
			return state.Counts{}, fmt.Errorf("%w (%s)", state.ErrShardFinished, sh.Status)
		}
		if b.Status.Finished() {
			return state.Counts{}, fmt.Errorf("%w (%s)", state.ErrBatchFinished, b.Status)
		}
		if len(spill) > 0 {
			// Records that do not fit the transaction are made durable before
			// it, once the lease has been seen current.
			if err := s.batchWrite(ctx, putRequests(spill), op); err != nil {
				return state.Counts{}, err
			}
			spill = nil
		}
		now := s.opts.Now()
		back := behind(cp, sh.Checkpoint)
		se := newExpr()
		su := update{e: se}
		if !back {
			setCheckpoint(&su, cp)
			if p := nextProgress(sh, cp, failures, now); p != nil {
				su.set("progress", p) // the condition on the checkpoint read makes this an append
			}
		}
		su.set("lease_until", avTime(until))
		su.set("updated_at", avTime(now))
		shardUpd := types.TransactWriteItem{Update: &types.Update{
			TableName: aws.String(s.table), Key: shardKey(lease.BatchID, lease.Shard),
			UpdateExpression: aws.String(su.String()), ConditionExpression: aws.String(shardCond(se, lease, sh.Checkpoint)),
			ExpressionAttributeNames: se.Names(), ExpressionAttributeValues: se.Values(),
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}}
		be := newExpr()
		var batchAct types.TransactWriteItem
		d := outcomes(cp.Counts, sh.Checkpoint.Counts)
		if back {
			batchAct.ConditionCheck = &types.ConditionCheck{
				TableName: aws.String(s.table), Key: batchKey(lease.BatchID), ConditionExpression: aws.String(runningCond(be)),
				ExpressionAttributeNames: be.Names(), ExpressionAttributeValues: be.Values(),
				ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
			}
		} else {
			bu := update{e: be}
			bu.add("rows_imported", d.Imported)
			bu.add("rows_failed", d.Failed)
			bu.add("rows_skipped", d.Skipped)
			bu.set("updated_at", avTime(now))
			batchAct.Update = &types.Update{
				TableName: aws.String(s.table), Key: batchKey(lease.BatchID),
				UpdateExpression: aws.String(bu.String()), ConditionExpression: aws.String(runningCond(be)),
				ExpressionAttributeNames: be.Names(), ExpressionAttributeValues: be.Values(),
				ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
			}
		}
		txn := append([]types.TransactWriteItem{shardUpd, batchAct}, s.putActions(inline)...)
		err = s.transact(ctx, txn)
		if err == nil {
			if back {
				return b.Counts, nil
			}
			return b.Counts.Add(d), nil
		}
		retry, cerr := leaseTxnError(err, lease, "")
		if !retry && !contended(err) {
			if cerr == err {
				return state.Counts{}, awserr.Wrap(err, op+": dynamodb TransactWriteItems")
			}
			return state.Counts{}, cerr
		}
		if attempt+1 >= s.opts.MaxAttempts {
			return state.Counts{}, s.exhausted(op, err)
		}
		if err := s.pause(ctx, attempt); err != nil {
			return state.Counts{}, err
		}
	}
}

// splitInline keeps up to n items (and maxTxnBytes) for a transaction and
// returns the rest to be written before it.
func splitInline(items []item, n int) (inline, spill []item) {
	size := 0
	for i, it := range items {
		size += itemSize(it)
		if i >= n || size > maxTxnBytes {
			return items[:i], items[i:]
		}
	}
	return items, nil
}

func (s *Store) putActions(items []item) []types.TransactWriteItem {
	out := make([]types.TransactWriteItem, len(items))
	for i, it := range items {
		out[i] = types.TransactWriteItem{Put: &types.Put{TableName: aws.String(s.table), Item: it}}
	}
	return out
}

func putRequests(items []item) []types.WriteRequest {
	out := make([]types.WriteRequest, len(items))
	for i, it := range items {
		out[i] = types.WriteRequest{PutRequest: &types.PutRequest{Item: it}}
	}
	return out
}

// FinishShard sets the lease's shard to status with a final checkpoint and
// message; see state.Store and the package documentation. Requests: one
// BatchGetItem and one TransactWriteItems (shard and batch); the batch
// update is conditioned on the ShardsDone it read, so the batch returned
// carries exactly the ShardsDone this call's update made, and only the
// caller that made it equal to Shards sees it so.
func (s *Store) FinishShard(ctx context.Context, lease state.Lease, status state.ShardStatus, cp state.Checkpoint, message string) (state.Batch, error) {
	if status != state.ShardDone && status != state.ShardSkipped && status != state.ShardEscalated {
		return state.Batch{}, invalid("status", "finish shard %s/%d: status %q is not DONE, SKIPPED or ESCALATED", lease.BatchID, lease.Shard, status)
	}
	op := fmt.Sprintf("finish shard %s/%d as %s", lease.BatchID, lease.Shard, status)
	for attempt := 0; ; attempt++ {
		sh, b, err := s.leaseState(ctx, lease, op)
		if err != nil {
			return state.Batch{}, err
		}
		if sh.Status.Finished() {
			if sh.Status != status {
				return state.Batch{}, fmt.Errorf("%w (%s)", state.ErrShardFinished, sh.Status)
			}
			return b, nil
		}
		if b.Status.Finished() {
			return state.Batch{}, fmt.Errorf("%w (%s)", state.ErrBatchFinished, b.Status)
		}
		final, d := cp, state.Counts{}
		if behind(cp, sh.Checkpoint) {
			final = sh.Checkpoint
		} else {
			d = outcomes(cp.Counts, sh.Checkpoint.Counts)
		}
		done := 0
		if status.Finished() {
			done = 1
		}
		now := s.opts.Now()
		se := newExpr()
		su := update{e: se}
		setCheckpoint(&su, final)
		if p := nextProgress(sh, final, nil, now); p != nil {
			su.set("progress", p)
		}
		su.set("status", avS(string(status)))
		su.set("message", avOptS(message))
		su.set("updated_at", avTime(now))
		su.set("lease_until", nil)
		be := newExpr()
		bu := update{e: be}
		bu.add("rows_imported", d.Imported)
		bu.add("rows_failed", d.Failed)
		bu.add("rows_skipped", d.Skipped)
		bu.set("updated_at", avTime(now))
		bcond := runningCond(be)
		if done > 0 {
			bu.set("shards_done", avN(int64(b.ShardsDone+done)))
			bcond += " AND " + be.n("shards_done") + " = " + be.v(avN(int64(b.ShardsDone)))
		}
		txn := []types.TransactWriteItem{
			{Update: &types.Update{
				TableName: aws.String(s.table), Key: shardKey(lease.BatchID, lease.Shard),
				UpdateExpression: aws.String(su.String()), ConditionExpression: aws.String(shardCond(se, lease, sh.Checkpoint)),
				ExpressionAttributeNames: se.Names(), ExpressionAttributeValues: se.Values(),
				ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
			}},
			{Update: &types.Update{
				TableName: aws.String(s.table), Key: batchKey(lease.BatchID),
				UpdateExpression: aws.String(bu.String()), ConditionExpression: aws.String(bcond),
				ExpressionAttributeNames: be.Names(), ExpressionAttributeValues: be.Values(),
				ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
			}},
		}
		err = s.transact(ctx, txn)
		if err == nil {
			b.Counts = b.Counts.Add(d)
			b.ShardsDone += done
			b.UpdatedAt = now.UTC()
			return b, nil
		}
		retry, cerr := leaseTxnError(err, lease, status)
		if !retry && !contended(err) {
			if cerr == err {
				return state.Batch{}, awserr.Wrap(err, op+": dynamodb TransactWriteItems")
			}
			return state.Batch{}, cerr
		}
		if attempt+1 >= s.opts.MaxAttempts {
			return state.Batch{}, s.exhausted(op, err)
		}
		if err := s.pause(ctx, attempt); err != nil {
			return state.Batch{}, err
		}
	}
}

// releaseWorkers bounds the concurrent UpdateItem calls of ReleaseLeases.
const releaseWorkers = 8

// ReleaseLeases ends the live leases of the batch's unfinished shards without
// bumping epochs; state.ErrNotFound if there is no such batch. Requests: a
// read of the batch, a query of its shards and one conditional UpdateItem per
// leased shard (conditioned on the epoch it saw, so a claim made meanwhile
// keeps its lease).
func (s *Store) ReleaseLeases(ctx context.Context, batchID string) error {
	op := "release leases of " + batchID
	if err := s.requireBatch(ctx, batchID, op); err != nil {
		return err
	}
	var leased []state.Shard
	err := s.query(ctx, s.shardQuery(batchID, "shard", "status", "epoch", "lease_until", "batch_id"), op, func(it item) (bool, error) {
		sh, err := decodeShard(it)
		if err != nil {
			return false, failure.Wrap(failure.Internal, "", err, "")
		}
		if !sh.Status.Finished() && !sh.LeaseUntil.IsZero() {
			leased = append(leased, sh)
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(releaseWorkers)
	for _, sh := range leased {
		g.Go(func() error { return s.release(gctx, sh, op) })
	}
	return g.Wait()
}

func (s *Store) release(ctx context.Context, sh state.Shard, op string) error {
	e := newExpr()
	u := update{e: e}
	u.set("lease_until", nil)
	cond := fmt.Sprintf("%s = %s AND attribute_exists(%s) AND %s <> %s AND %s <> %s",
		e.n("epoch"), e.v(avN(sh.Epoch)), e.n("lease_until"),
		e.n("status"), e.v(avS(string(state.ShardDone))), e.n("status"), e.v(avS(string(state.ShardSkipped))))
	in := &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: shardKey(sh.BatchID, sh.Index),
		UpdateExpression: aws.String(u.String()), ConditionExpression: aws.String(cond),
		ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values(),
	}
	for attempt := 0; ; attempt++ {
		_, err := s.db.UpdateItem(ctx, in)
		var ccf *types.ConditionalCheckFailedException
		switch {
		case err == nil, errors.As(err, &ccf):
			return nil // released, or claimed or finished meanwhile
		case contended(err) && attempt+1 < s.opts.MaxAttempts:
			if err := s.pause(ctx, attempt); err != nil {
				return err
			}
		case contended(err):
			return s.exhausted(op, err)
		default:
			return awserr.Wrap(err, fmt.Sprintf("%s: shard %d: dynamodb UpdateItem", op, sh.Index))
		}
	}
}

// FinishBatch sets a RUNNING batch's final status, counts, message, report
// and ByReason; see state.Store. One conditional UpdateItem: a batch that is
// already finished comes back with the condition failure (ALL_OLD), so a
// second finish the same way returns it unchanged.
func (s *Store) FinishBatch(ctx context.Context, id string, f state.Final, now time.Time) (state.Batch, error) {
	if !f.Status.Finished() {
		return state.Batch{}, invalid("status", "finish batch %s: status %q is not a final status", id, f.Status)
	}
	if now.IsZero() {
		now = s.opts.Now()
	}
	op := fmt.Sprintf("finish batch %s as %s", id, f.Status)
	e := newExpr()
	u := update{e: e}
	u.set("status", avS(string(f.Status)))
	u.set("rows_total", avN(f.Counts.Total))
	u.set("rows_imported", avN(f.Counts.Imported))
	u.set("rows_failed", avN(f.Counts.Failed))
	u.set("rows_skipped", avN(f.Counts.Skipped))
	u.set("message", avOptS(f.Message))
	u.set("report", avOptS(f.Report))
	u.set("by_reason", avByReason(f.ByReason))
	u.set("finished_at", avTime(now))
	u.set("updated_at", avTime(now))
	in := &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: batchKey(id),
		UpdateExpression: aws.String(u.String()), ConditionExpression: aws.String(runningCond(e)),
		ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values(),
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	for attempt := 0; ; attempt++ {
		out, err := s.db.UpdateItem(ctx, in)
		var ccf *types.ConditionalCheckFailedException
		switch {
		case err == nil:
			b, err := decodeBatch(out.Attributes)
			if err != nil {
				return state.Batch{}, failure.Wrap(failure.Internal, "", err, "")
			}
			return b, nil
		case errors.As(err, &ccf):
			if len(ccf.Item) == 0 {
				return state.Batch{}, notFoundBatch(id)
			}
			b, derr := decodeBatch(ccf.Item)
			if derr != nil {
				return state.Batch{}, failure.Wrap(failure.Internal, "", derr, "")
			}
			if b.Status != f.Status {
				return state.Batch{}, fmt.Errorf("%w (%s)", state.ErrBatchFinished, b.Status)
			}
			return b, nil
		case contended(err) && attempt+1 < s.opts.MaxAttempts:
			if err := s.pause(ctx, attempt); err != nil {
				return state.Batch{}, err
			}
		case contended(err):
			return state.Batch{}, s.exhausted(op, err)
		default:
			return state.Batch{}, awserr.Wrap(err, op+": dynamodb UpdateItem")
		}
	}
}

// failureItems validates records and returns their items, one per key (the
// last record of a key wins).
func (s *Store) failureItems(records []failure.Record) ([]item, error) {
	type key struct {
		batch, sheet string
		row          int64
	}
	at := make(map[key]int, len(records))
	out := make([]item, 0, len(records))
	for _, r := range records {
		if r.BatchID == "" {
			return nil, invalid("batch_id", "failure record of row %d: empty batch id", r.Row)
		}
		if r.Row < 0 || r.Row > maxRow {
			return nil, invalid("row", "failure record of batch %s: row %d outside 0..%d", r.BatchID, r.Row, int64(maxRow))
		}
		var expires int64
		if s.opts.FailureTTL > 0 {
			t := r.FailureAt
			if t.IsZero() {
				t = s.opts.Now()
			}
			expires = t.Add(s.opts.FailureTTL).Unix()
		}
		it, err := failureItem(r, expires)
		if err != nil {
			return nil, invalid("failure", "failure record %s/%s/%d: %v", r.BatchID, r.Sheet, r.Row, err)
		}
		k := key{r.BatchID, r.Sheet, r.Row}
		if i, ok := at[k]; ok {
			out[i] = it
			continue
		}
		at[k] = len(out)
		out = append(out, it)
	}
	return out, nil
}

// PutFailures upserts failure records outside any lease (BatchWriteItem, 25
// a call, unprocessed items written again with backoff).
func (s *Store) PutFailures(ctx context.Context, records []failure.Record) error {
	if len(records) == 0 {
		return nil
	}
	items, err := s.failureItems(records)
	if err != nil {
		return err
	}
	return s.batchWrite(ctx, putRequests(items), fmt.Sprintf("put %d failure records", len(items)))
}

// Failures returns the batch's failure records that f selects, in (sheet,
// row) order (sheets compared bytewise). Paging continues after (AfterSheet,
// AfterRow) when either is set. One consistent Query, paged; the filters run
// in DynamoDB and Limit counts the records after them.
func (s *Store) Failures(ctx context.Context, batchID string, f state.FailureFilter) ([]failure.Record, error) {
	lo, skip := failPrefix, ""
	if f.AfterSheet != "" || f.AfterRow != 0 {
		switch {
		case f.AfterRow < 0:
			lo = failSheetPrefix(f.AfterSheet) // every row of the sheet is after
		case f.AfterRow >= maxRow:
			lo = failPrefix + escapeSheet(f.AfterSheet) + "$" // no row of the sheet is after
		default:
			lo = failSK(f.AfterSheet, f.AfterRow)
			skip = lo
		}
	}
	e := newExpr()
	kc := fmt.Sprintf("%s = %s AND %s BETWEEN %s AND %s", e.n(attrPK), e.v(avS(batchPK(batchID))), e.n(attrSK), e.v(avS(lo)), e.v(avS(failEnd)))
	var filters []string
	inList := func(attr string, vals []string) {
		ps := make([]string, len(vals))
		for i, v := range vals {
			ps[i] = e.v(avS(v))
		}
		filters = append(filters, fmt.Sprintf("%s IN (%s)", e.n(attr), strings.Join(ps, ", ")))
	}
	if len(f.Reasons) > 0 {
		vals := make([]string, len(f.Reasons))
		for i, r := range f.Reasons {
			vals[i] = string(r)
		}
		inList("reason", vals)
	}
	if len(f.Layers) > 0 {
		vals := make([]string, len(f.Layers))
		for i, l := range f.Layers {
			vals[i] = string(l)
		}
		inList("layer", vals)
	}
	if f.Shard != nil {
		filters = append(filters, e.n("shard")+" = "+e.v(avN(int64(*f.Shard))))
	}
	if f.Unresolved {
		filters = append(filters, "attribute_not_exists("+e.n("resolved_by")+")")
	}
	in := &dynamodb.QueryInput{KeyConditionExpression: aws.String(kc), ConsistentRead: aws.Bool(true)}
	if len(filters) > 0 {
		in.FilterExpression = aws.String(strings.Join(filters, " AND "))
	}
	if f.Limit > 0 {
		page := f.Limit + 1 // the key paged after may come first
		if len(filters) > 0 {
			page = max(page, 100)
		}
		in.Limit = aws.Int32(int32(min(page, 1000)))
	}
	in.ExpressionAttributeNames, in.ExpressionAttributeValues = e.Names(), e.Values()
	var out []failure.Record
	err := s.query(ctx, in, "list failures of "+batchID, func(it item) (bool, error) {
		if skip != "" {
			if sk, ok := it[attrSK].(*types.AttributeValueMemberS); ok && sk.Value == skip {
				return true, nil
			}
		}
		r, err := decodeFailure(it)
		if err != nil {
			return false, failure.Wrap(failure.Internal, "", err, "")
		}
		out = append(out, r)
		return f.Limit <= 0 || len(out) < f.Limit, nil
	})
	return out, err
}

// CountFailures counts the batch's failure records per shard index (one
// consistent Query projecting only the shard, paged).
func (s *Store) CountFailures(ctx context.Context, batchID string) (map[int]int64, error) {
	e := newExpr()
	in := &dynamodb.QueryInput{
		KeyConditionExpression: aws.String(fmt.Sprintf("%s = %s AND begins_with(%s, %s)",
			e.n(attrPK), e.v(avS(batchPK(batchID))), e.n(attrSK), e.v(avS(failPrefix)))),
		ProjectionExpression: aws.String(e.n("shard")),
		ConsistentRead:       aws.Bool(true),
	}
	in.ExpressionAttributeNames, in.ExpressionAttributeValues = e.Names(), e.Values()
	out := map[int]int64{}
	err := s.query(ctx, in, "count failures of "+batchID, func(it item) (bool, error) {
		d := dec{it: it}
		n := d.n("shard")
		if d.err != nil {
			return false, failure.Wrap(failure.Internal, "", d.err, "")
		}
		out[int(n)]++
		return true, nil
	})
	return out, err
}

// ResolveFailures marks unresolved failure records at keys as resolved by
// `by`; see state.Store. Each TransactWriteItems updates up to 99 records
// (condition: the record exists and is unresolved) and adds their number to
// the batch's failures_resolved. Records whose condition fails are dropped
// from the chunk (the cancellation reasons name them) and the rest is sent
// again, so the counter only ever counts records this call marked.
func (s *Store) ResolveFailures(ctx context.Context, batchID string, keys []failure.Key, by string, at time.Time) (int, error) {
	if by == "" {
		return 0, invalid("resolved_by", "resolve failures of %s: empty resolving batch", batchID)
	}
	if at.IsZero() {
		at = s.opts.Now()
	}
	op := "resolve failures of " + batchID
	if err := s.requireBatch(ctx, batchID, op); err != nil {
		return 0, err
	}
	seen := make(map[failure.Key]bool, len(keys))
	uniq := make([]failure.Key, 0, len(keys))
	for _, k := range keys { // a transaction may not name an item twice
		if !seen[k] {
			seen[k] = true
			uniq = append(uniq, k)
		}
	}
	keys = uniq
	total := 0
	for len(keys) > 0 {
		n := min(len(keys), maxTxnItems-1)
		chunk := append([]failure.Key(nil), keys[:n]...)
		keys = keys[n:]
		for attempt := 0; len(chunk) > 0; attempt++ {
			txn := make([]types.TransactWriteItem, 0, len(chunk)+1)
			for _, k := range chunk {
				e := newExpr()
				u := update{e: e}
				u.set("resolved_by", avS(by))
				u.set("resolved_at", avTime(at))
				txn = append(txn, types.TransactWriteItem{Update: &types.Update{
					TableName:        aws.String(s.table),
					Key:              item{attrPK: avS(batchPK(batchID)), attrSK: avS(failSK(k.Sheet, k.Row))},
					UpdateExpression: aws.String(u.String()),
					ConditionExpression: aws.String(fmt.Sprintf("attribute_exists(%s) AND attribute_not_exists(%s)",
						e.n(attrPK), e.n("resolved_by"))),
					ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values(),
				}})
			}
			be := newExpr()
			bu := update{e: be}
			bu.add("failures_resolved", int64(len(chunk)))
			bu.set("updated_at", avTime(at))
			txn = append(txn, types.TransactWriteItem{Update: &types.Update{
				TableName: aws.String(s.table), Key: batchKey(batchID),
				UpdateExpression: aws.String(bu.String()), ConditionExpression: aws.String("attribute_exists(" + be.n(attrPK) + ")"),
				ExpressionAttributeNames: be.Names(), ExpressionAttributeValues: be.Values(),
			}})
			err := s.transact(ctx, txn)
			if err == nil {
				total += len(chunk)
				break
			}
			if rs, ok := cancelReasons(err); ok && !contended(err) {
				if _, gone := conditionFailed(rs, len(chunk)); gone {
					return total, fmt.Errorf("%s: batch %s: %w", op, batchID, state.ErrNotFound)
				}
				kept := chunk[:0]
				for i, k := range chunk {
					if _, failed := conditionFailed(rs, i); !failed {
						kept = append(kept, k)
					}
				}
				if len(kept) == len(chunk) {
					return total, awserr.Wrap(err, op+": dynamodb TransactWriteItems")
				}
				chunk = kept
				continue
			}
			if !contended(err) {
				return total, awserr.Wrap(err, op+": dynamodb TransactWriteItems")
			}
			if attempt+1 >= s.opts.MaxAttempts {
				return total, s.exhausted(op, err)
			}
			if err := s.pause(ctx, attempt); err != nil {
				return total, err
			}
		}
	}
	return total, nil
}
