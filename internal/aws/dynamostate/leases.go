package dynamostate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"github.com/catalog-import/catalog-import/internal/aws/awserr"
	"github.com/catalog-import/catalog-import/internal/aws/dynamoattr"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/state"
)

// This file implements state.Store's leases and checkpoints: Claim,
// Checkpoint, FinishShard and ReleaseLeases, each fenced by the lease's
// epoch in the transaction's condition (invariant 2) and never moving a
// checkpoint back (invariant 3).

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
	if err := state.BatchStatus(dynamoattr.NewDecoder(bi).S("status")).WriteErr(); err != nil {
		return state.Lease{}, state.Shard{}, err
	}
	if shard < 0 || shard > maxShardIndex {
		return state.Lease{}, state.Shard{}, fmt.Errorf("shard %d: %w", shard, state.ErrNotFound)
	}
	until := now.Add(ttl).UTC()
	e := dynamoattr.NewExpr()
	u := dynamoattr.Update{E: e}
	u.Set("status", dynamoattr.S(string(state.ShardRunning)))
	u.Set("owner", dynamoattr.S(owner))
	u.Set("lease_until", dynamoattr.Time(until))
	u.Set("updated_at", dynamoattr.Time(now))
	u.Add("epoch", 1)
	u.Add("attempts", 1)
	cond := fmt.Sprintf("attribute_exists(%s) AND %s <> %s AND %s <> %s AND (attribute_not_exists(%s) OR %s <= %s OR %s = %s)",
		e.Name(attrPK), e.Name("status"), e.Value(dynamoattr.S(string(state.ShardDone))), e.Name("status"), e.Value(dynamoattr.S(string(state.ShardSkipped))),
		e.Name("lease_until"), e.Name("lease_until"), e.Value(dynamoattr.S(dynamoattr.FormatTime(now))), e.Name("owner"), e.Value(dynamoattr.S(owner)))
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
// BatchGetItem and checks, in order: ErrNotFound, ErrFenced. It also
// returns the batch's layout (for the keys of its failure records).
func (s *Store) leaseState(ctx context.Context, l state.Lease, op string) (state.Shard, state.Batch, layout, error) {
	if l.Shard < 0 || l.Shard > maxShardIndex {
		return state.Shard{}, state.Batch{}, 0, fmt.Errorf("shard %d: %w", l.Shard, state.ErrNotFound)
	}
	items, err := s.batchGet(ctx, []item{batchKey(l.BatchID), shardKey(l.BatchID, l.Shard)}, op)
	if err != nil {
		return state.Shard{}, state.Batch{}, 0, err
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
		return state.Shard{}, state.Batch{}, 0, notFoundBatch(l.BatchID)
	}
	if si == nil {
		return state.Shard{}, state.Batch{}, 0, fmt.Errorf("shard %d: %w", l.Shard, state.ErrNotFound)
	}
	b, err := decodeBatch(bi)
	if err != nil {
		return state.Shard{}, state.Batch{}, 0, failure.Wrap(failure.Internal, "", err, "")
	}
	sh, err := decodeShard(si)
	if err != nil {
		return state.Shard{}, state.Batch{}, 0, failure.Wrap(failure.Internal, "", err, "")
	}
	return sh, b, layoutOf(bi), fence(sh, l)
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

// shardCond is the condition of every write of a lease: the lease is
// current, the shard is not finished, and its checkpoint is still prev (the
// one the call read and built on, so that the checkpoint and its progress
// sample move exactly once even when a write is replayed).
func shardCond(e *dynamoattr.Expr, l state.Lease, prev state.Checkpoint) string {
	parts := []string{
		e.Name("epoch") + " = " + e.Value(dynamoattr.N(l.Epoch)),
		e.Name("owner") + " = " + e.Value(dynamoattr.S(l.Owner)),
		e.Name("status") + " <> " + e.Value(dynamoattr.S(string(state.ShardDone))),
		e.Name("status") + " <> " + e.Value(dynamoattr.S(string(state.ShardSkipped))),
	}
	attrs := cpAttrs(prev)
	for _, name := range cpNames {
		c := e.Name(name) + " = " + e.Value(attrs[name])
		if name == cpSuperseded && prev.Counts.Superseded == 0 {
			c = "(attribute_not_exists(" + e.Name(name) + ") OR " + c + ")"
		}
		parts = append(parts, c)
	}
	return strings.Join(parts, " AND ")
}

// setCheckpoint sets the checkpoint attributes of a shard to cp.
func setCheckpoint(u *dynamoattr.Update, cp state.Checkpoint) {
	attrs := cpAttrs(cp)
	for _, name := range cpNames {
		u.Set(name, attrs[name])
	}
}

// runningCond is the batch's condition: it is RUNNING (and so exists).
func runningCond(e *dynamoattr.Expr) string {
	return e.Name("status") + " = " + e.Value(dynamoattr.S(string(state.BatchRunning)))
}

// unfinishedCond is the batch's condition: it is RUNNING or SUSPENDED (and
// so exists).
func unfinishedCond(e *dynamoattr.Expr) string {
	return e.Name("status") + " IN (" + e.Value(dynamoattr.S(string(state.BatchRunning))) + ", " + e.Value(dynamoattr.S(string(state.BatchSuspended))) + ")"
}

// shardRefused classifies a failed condition of a lease's write to its
// shard, given the shard item as it is (ALL_OLD; nil: no item). retry is
// true when the checkpoint moved under the call (a replay of this very
// call) and it should read again.
func shardRefused(it item, l state.Lease, status state.ShardStatus) (retry bool, _ error) {
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
	return true, nil
}

// leaseTxnError classifies a cancelled lease transaction whose action 0 is
// the shard and action 1 (if any) the batch. retry is true when the state
// moved under the call (a replay, a concurrent finisher) and it should
// read again.
func leaseTxnError(err error, l state.Lease, status state.ShardStatus) (retry bool, _ error) {
	rs, ok := cancelReasons(err)
	if !ok {
		return false, err
	}
	if it, failed := conditionFailed(rs, 0); failed {
		retry, serr := shardRefused(it, l, status)
		if serr != nil {
			return false, serr
		}
		return retry, err
	}
	if it, failed := conditionFailed(rs, 1); failed {
		if len(it) == 0 {
			return false, notFoundBatch(l.BatchID)
		}
		if err := state.BatchStatus(dynamoattr.NewDecoder(it).S("status")).WriteErr(); err != nil {
			return false, err
		}
		return true, err // shards_done moved (another shard finished)
	}
	return false, err
}

// inlineFailures is how many failure records ride in a checkpoint's
// transaction (beside the shard).
const inlineFailures = maxTxnItems - 1

// Checkpoint upserts failures, moves the shard's checkpoint to cp and
// extends the lease to until; see state.Store and the package
// documentation. It writes the lease's shard item and the failure records,
// never the batch item (decision 30: the batch's counts are the sum of its
// shards' checkpoints until it finishes). Requests: one BatchGetItem (the
// shard, and the batch for its status and layout), then one conditional
// UpdateItem of the shard when there is no failure record, else one
// TransactWriteItems holding the shard update and up to 99 records; more
// records go first in BatchWriteItem calls of 25.
func (s *Store) Checkpoint(ctx context.Context, lease state.Lease, cp state.Checkpoint, failures []failure.Record, until time.Time) error {
	op := fmt.Sprintf("checkpoint shard %s/%d at row %d", lease.BatchID, lease.Shard, cp.NextRow)
	var inline, spill []item
	for attempt := 0; ; attempt++ {
		sh, b, l, err := s.leaseState(ctx, lease, op)
		if err != nil {
			return err
		}
		if sh.Status.Finished() {
			return fmt.Errorf("%w (%s)", state.ErrShardFinished, sh.Status)
		}
		if err := b.Status.WriteErr(); err != nil {
			return err
		}
		if attempt == 0 {
			recs, err := s.failureItems(failures, map[string]layout{lease.BatchID: l})
			if err != nil {
				return err
			}
			inline, spill = splitInline(recs, inlineFailures)
		}
		if len(spill) > 0 {
			// Records that do not fit the transaction are made durable before
			// it, once the lease has been seen current.
			if err := s.batchWrite(ctx, putRequests(spill), op); err != nil {
				return err
			}
			spill = nil
		}
		now := s.opts.Now()
		se := dynamoattr.NewExpr()
		su := dynamoattr.Update{E: se}
		if !state.Behind(cp, sh.Checkpoint) {
			setCheckpoint(&su, cp)
			if p := nextProgress(sh, cp, failures, now); p != nil {
				su.Set("progress", p) // the condition on the checkpoint read makes this an append
			}
		}
		su.Set("lease_until", dynamoattr.Time(until))
		su.Set("updated_at", dynamoattr.Time(now))
		upd := &types.Update{
			TableName: aws.String(s.table), Key: shardKey(lease.BatchID, lease.Shard),
			UpdateExpression: aws.String(su.String()), ConditionExpression: aws.String(shardCond(se, lease, sh.Checkpoint)),
			ExpressionAttributeNames: se.Names(), ExpressionAttributeValues: se.Values(),
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}
		retry, err := s.writeShard(ctx, upd, inline, lease, op)
		if err == nil || !retry {
			return err
		}
		if attempt+1 >= s.opts.MaxAttempts {
			return s.exhausted(op, err)
		}
		if err := s.pause(ctx, attempt); err != nil {
			return err
		}
	}
}

// writeShard writes a lease's shard update upd, with puts in the same
// transaction when there are any (TransactWriteItems), else alone (one
// conditional UpdateItem: one write unit per KB instead of two). A refused
// condition is classified (shardRefused): retry is true when the call
// should read again and retry (the checkpoint moved, or the table was
// contended); otherwise err is the state error (ErrFenced, ...) or the
// SDK's (wrapped, naming op).
func (s *Store) writeShard(ctx context.Context, upd *types.Update, puts []item, lease state.Lease, op string) (retry bool, err error) {
	if len(puts) > 0 {
		err := s.transact(ctx, append([]types.TransactWriteItem{{Update: upd}}, s.putActions(puts)...))
		if err == nil {
			return false, nil
		}
		retry, cerr := leaseTxnError(err, lease, "")
		if retry || contended(err) {
			return true, err
		}
		if cerr == err {
			return false, awserr.Wrap(err, op+": dynamodb TransactWriteItems")
		}
		return false, cerr
	}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: upd.TableName, Key: upd.Key, UpdateExpression: upd.UpdateExpression, ConditionExpression: upd.ConditionExpression,
		ExpressionAttributeNames: upd.ExpressionAttributeNames, ExpressionAttributeValues: upd.ExpressionAttributeValues,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	switch {
	case err == nil:
		return false, nil
	case errors.As(err, &ccf):
		retry, serr := shardRefused(ccf.Item, lease, "")
		if serr != nil {
			return false, serr
		}
		return retry, err
	case contended(err):
		return true, err
	}
	return false, awserr.Wrap(err, op+": dynamodb UpdateItem")
}

// splitInline keeps up to n items (and maxTxnBytes) for a transaction and
// returns the rest to be written before it.
func splitInline(items []item, n int) (inline, spill []item) {
	size := 0
	for i, it := range items {
		size += dynamoattr.Size(it)
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
// caller that made it equal to Shards sees it so. It moves no counter of
// the batch item (decision 30): the batch returned carries the counts the
// batch item holds, not the sum of the shards (GetBatch).
func (s *Store) FinishShard(ctx context.Context, lease state.Lease, status state.ShardStatus, cp state.Checkpoint, message string) (state.Batch, error) {
	if status != state.ShardDone && status != state.ShardSkipped && status != state.ShardEscalated {
		return state.Batch{}, invalid("status", "finish shard %s/%d: status %q is not DONE, SKIPPED or ESCALATED", lease.BatchID, lease.Shard, status)
	}
	op := fmt.Sprintf("finish shard %s/%d as %s", lease.BatchID, lease.Shard, status)
	for attempt := 0; ; attempt++ {
		sh, b, _, err := s.leaseState(ctx, lease, op)
		if err != nil {
			return state.Batch{}, err
		}
		if sh.Status.Finished() {
			if sh.Status != status {
				return state.Batch{}, fmt.Errorf("%w (%s)", state.ErrShardFinished, sh.Status)
			}
			return b, nil
		}
		if err := b.Status.WriteErr(); err != nil {
			return state.Batch{}, err
		}
		final := cp
		if state.Behind(cp, sh.Checkpoint) {
			final = sh.Checkpoint
		}
		done := 0
		if status.Finished() {
			done = 1
		}
		now := s.opts.Now()
		se := dynamoattr.NewExpr()
		su := dynamoattr.Update{E: se}
		setCheckpoint(&su, final)
		if p := nextProgress(sh, final, nil, now); p != nil {
			su.Set("progress", p)
		}
		su.Set("status", dynamoattr.S(string(status)))
		su.Set("message", dynamoattr.OptS(message))
		su.Set("updated_at", dynamoattr.Time(now))
		su.Set("lease_until", nil)
		if status.Finished() { // DONE or SKIPPED: kept as long as its batch will be
			su.Set(TTLAttribute, s.expiry(now))
		}
		be := dynamoattr.NewExpr()
		bu := dynamoattr.Update{E: be}
		bu.Set("updated_at", dynamoattr.Time(now))
		bcond := runningCond(be)
		if done > 0 {
			bu.Set("shards_done", dynamoattr.N(int64(b.ShardsDone+done)))
			bcond += " AND " + be.Name("shards_done") + " = " + be.Value(dynamoattr.N(int64(b.ShardsDone)))
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
	e := dynamoattr.NewExpr()
	u := dynamoattr.Update{E: e}
	u.Set("lease_until", nil)
	cond := fmt.Sprintf("%s = %s AND attribute_exists(%s) AND %s <> %s AND %s <> %s",
		e.Name("epoch"), e.Value(dynamoattr.N(sh.Epoch)), e.Name("lease_until"),
		e.Name("status"), e.Value(dynamoattr.S(string(state.ShardDone))), e.Name("status"), e.Value(dynamoattr.S(string(state.ShardSkipped))))
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

// RecordCheck records the check-phase outcome c of the lease's shard; see
// state.Store. Requests: one BatchGetItem (shard and batch), the failure
// records in BatchWriteItem calls of 25 (upserts, so a replay rewrites
// them), and one TransactWriteItems: the shard update (conditioned on the
// lease and on the shard having no check yet) and the batch update
// (conditioned on the check_shards it read, like FinishShard's
// shards_done, so the batch returned carries exactly the count this call
// made and only the caller that made it equal to Shards sees it so).
func (s *Store) RecordCheck(ctx context.Context, lease state.Lease, c state.Check, failures []failure.Record) (state.Batch, error) {
	op := fmt.Sprintf("record check of shard %s/%d", lease.BatchID, lease.Shard)
	var recs []item
	for attempt := 0; ; attempt++ {
		sh, b, l, err := s.leaseState(ctx, lease, op)
		if err != nil {
			return state.Batch{}, err
		}
		if attempt == 0 {
			if recs, err = s.failureItems(failures, map[string]layout{lease.BatchID: l}); err != nil {
				return state.Batch{}, err
			}
		}
		if b.Status.Finished() {
			return state.Batch{}, fmt.Errorf("%w (%s)", state.ErrBatchFinished, b.Status)
		}
		if b.Check == nil {
			return state.Batch{}, failure.New(failure.Internal, "", "%s: the batch has no check phase", op)
		}
		now := s.opts.Now()
		status := sh.Status
		if status == state.ShardRunning {
			status = state.ShardPending // checked, not yet written
		}
		se := dynamoattr.NewExpr()
		su := dynamoattr.Update{E: se}
		su.Set("status", dynamoattr.S(string(status)))
		su.Set("lease_until", nil)
		su.Set("updated_at", dynamoattr.Time(now))
		fenced := se.Name("epoch") + " = " + se.Value(dynamoattr.N(lease.Epoch)) + " AND " + se.Name("owner") + " = " + se.Value(dynamoattr.S(lease.Owner))
		if sh.Check != nil { // checked before: only end the lease
			_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
				TableName: aws.String(s.table), Key: shardKey(sh.BatchID, sh.Index),
				UpdateExpression: aws.String(su.String()), ConditionExpression: aws.String(fenced),
				ExpressionAttributeNames: se.Names(), ExpressionAttributeValues: se.Values(),
			})
			var ccf *types.ConditionalCheckFailedException
			switch {
			case err == nil:
				return b, nil
			case errors.As(err, &ccf):
				return state.Batch{}, fmt.Errorf("%w: %s: a newer owner holds the shard", state.ErrFenced, op)
			case !contended(err):
				return state.Batch{}, awserr.Wrap(err, op+": dynamodb UpdateItem")
			}
		} else {
			if len(recs) > 0 {
				if err := s.batchWrite(ctx, putRequests(recs), op); err != nil {
					return state.Batch{}, err
				}
				recs = nil
			}
			su.Set("check_rows", dynamoattr.N(c.Rows))
			su.Set("check_failed", dynamoattr.N(c.Failed))
			scond := fenced + " AND attribute_not_exists(" + se.Name("check_rows") + ")"
			be := dynamoattr.NewExpr()
			bu := dynamoattr.Update{E: be}
			bu.Set("check_shards", dynamoattr.N(int64(b.Check.Shards+1)))
			bu.Add("check_rows", c.Rows)
			bu.Add("check_failed", c.Failed)
			bu.Set("updated_at", dynamoattr.Time(now))
			bcond := runningCond(be) + " AND " + be.Name("check_shards") + " = " + be.Value(dynamoattr.N(int64(b.Check.Shards)))
			err = s.transact(ctx, []types.TransactWriteItem{
				{Update: &types.Update{
					TableName: aws.String(s.table), Key: shardKey(lease.BatchID, lease.Shard),
					UpdateExpression: aws.String(su.String()), ConditionExpression: aws.String(scond),
					ExpressionAttributeNames: se.Names(), ExpressionAttributeValues: se.Values(),
				}},
				{Update: &types.Update{
					TableName: aws.String(s.table), Key: batchKey(lease.BatchID),
					UpdateExpression: aws.String(bu.String()), ConditionExpression: aws.String(bcond),
					ExpressionAttributeNames: be.Names(), ExpressionAttributeValues: be.Values(),
				}},
			})
			if err == nil {
				b.Check = &state.BatchCheck{Shards: b.Check.Shards + 1, Rows: b.Check.Rows + c.Rows, Failed: b.Check.Failed + c.Failed}
				b.UpdatedAt = now.UTC()
				return b, nil
			}
			if _, ok := cancelReasons(err); !ok && !contended(err) {
				return state.Batch{}, awserr.Wrap(err, op+": dynamodb TransactWriteItems")
			}
			// A condition failed (the lease, a replay, another shard's check
			// moved check_shards) or the table is contended: read again.
		}
		if attempt+1 >= s.opts.MaxAttempts {
			return state.Batch{}, s.exhausted(op, err)
		}
		if err := s.pause(ctx, attempt); err != nil {
			return state.Batch{}, err
		}
	}
}
