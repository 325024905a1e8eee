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

	"github.com/catalog-import/catalog-import/internal/aws/awserr"
	"github.com/catalog-import/catalog-import/internal/aws/dynamoattr"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/state"
)

// This file implements state.Store's batches and shards: CreateBatch,
// GetBatch, ListBatches, ListShards and FinishBatch.

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
	if b.Order == 0 {
		// No cheap global sequence: the AWS order formula, with the
		// registration time standing in for the upload's event time.
		b.Order = state.OrderAt(b.CreatedAt, b.ID)
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
			if sb, err = s.sumShards(ctx, sb, op); err != nil {
				return state.Batch{}, false, err
			}
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
	e := dynamoattr.NewExpr()
	notExists := "attribute_not_exists(" + e.Name(attrPK) + ")"
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
	e := dynamoattr.NewExpr()
	kc := fmt.Sprintf("%s = %s AND begins_with(%s, %s)", e.Name(attrPK), e.Value(dynamoattr.S(batchPK(batchID))), e.Name(attrSK), e.Value(dynamoattr.S(shardPrefix)))
	in := &dynamodb.QueryInput{KeyConditionExpression: aws.String(kc), ConsistentRead: aws.Bool(true)}
	if len(attrs) > 0 {
		ps := make([]string, len(attrs))
		for i, a := range attrs {
			ps[i] = e.Name(a)
		}
		in.ProjectionExpression = aws.String(strings.Join(ps, ", "))
	}
	in.ExpressionAttributeNames, in.ExpressionAttributeValues = e.Names(), e.Values()
	return in
}

// GetBatch returns the batch or state.ErrNotFound: one GetItem, and for an
// unfinished batch one Query of its shards, whose checkpoints' counts are
// the batch's (decision 30).
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
	return s.sumShards(ctx, b, "get batch "+id)
}

// sumShards sets the counts of an unfinished batch b to what its shards'
// checkpoints hold (decision 30: no checkpoint writes the batch item):
// Total stays the split's row count, the outcomes are the sums of the
// shards' checkpoint counts, and UpdatedAt is the latest of the batch's and
// its shards'. One consistent Query of the batch's shard items (they share
// the batch's partition), projecting the counts; read units are paid for
// the whole items (about 1 KB to 5 KB a shard with its progress history
// and block checksums). A finished batch keeps the counts finalization
// stored.
func (s *Store) sumShards(ctx context.Context, b state.Batch, op string) (state.Batch, error) {
	if b.Status.Finished() {
		return b, nil
	}
	var sum state.Counts
	latest := b.UpdatedAt
	err := s.query(ctx, s.shardQuery(b.ID, "cp_rows_imported", "cp_rows_superseded", "cp_rows_failed", "cp_rows_skipped", "updated_at"), op, func(it item) (bool, error) {
		d := dynamoattr.NewDecoder(it)
		sum = sum.Add(countsOf(d, "cp_rows_"))
		if t := d.Time("updated_at"); t.After(latest) {
			latest = t
		}
		if d.Err() != nil {
			return false, failure.Wrap(failure.Internal, "", d.Err(), "")
		}
		return true, nil
	})
	if err != nil {
		return state.Batch{}, err
	}
	sum.Total = b.Counts.Total
	b.Counts, b.UpdatedAt = sum, latest
	return b, nil
}

// ListBatches returns up to limit batches (all when limit <= 0), the most
// recently created first. It queries the index gsi1, which projects only
// the keys (so that the updates of a batch item, its status and final
// counts, are not written to the index's one partition), then reads the batch items by
// key (BatchGetItem, 100 keys a request, unprocessed keys read again). The
// index is eventually consistent: a batch created a moment ago may be
// missing; a batch deleted (expired) between the two reads is left out.
// The counts of each unfinished batch are summed from its shards (one
// Query a running batch, see GetBatch).
func (s *Store) ListBatches(ctx context.Context, limit int) ([]state.Batch, error) {
	const op = "list batches"
	e := dynamoattr.NewExpr()
	in := &dynamodb.QueryInput{
		IndexName:              aws.String(IndexName),
		KeyConditionExpression: aws.String(e.Name(attrGSI1PK) + " = " + e.Value(dynamoattr.S(batchesGSI))),
		ScanIndexForward:       aws.Bool(false),
	}
	if limit > 0 {
		in.Limit = aws.Int32(int32(min(limit, 1000)))
	}
	in.ExpressionAttributeNames, in.ExpressionAttributeValues = e.Names(), e.Values()
	var keys []item
	err := s.query(ctx, in, op, func(it item) (bool, error) {
		keys = append(keys, item{attrPK: it[attrPK], attrSK: it[attrSK]})
		return limit <= 0 || len(keys) < limit, nil
	})
	if err != nil {
		return nil, err
	}
	byPK := make(map[string]item, len(keys))
	for chunk := range slices.Chunk(keys, maxBatchGet) {
		items, err := s.batchGet(ctx, chunk, op)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			if pk, ok := it[attrPK].(*types.AttributeValueMemberS); ok {
				byPK[pk.Value] = it
			}
		}
	}
	out := make([]state.Batch, 0, len(keys))
	for _, k := range keys {
		pk, _ := k[attrPK].(*types.AttributeValueMemberS)
		it, ok := byPK[pk.Value]
		if pk == nil || !ok {
			continue
		}
		b, err := decodeBatch(it)
		if err != nil {
			return nil, failure.Wrap(failure.Internal, "", err, "")
		}
		if b, err = s.sumShards(ctx, b, op); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
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

// SuspendBatch sets a RUNNING batch SUSPENDED with message; see
// state.Store. One conditional UpdateItem.
func (s *Store) SuspendBatch(ctx context.Context, id, message string, now time.Time) (state.Batch, error) {
	return s.setRunning(ctx, id, state.BatchRunning, state.BatchSuspended, message, now)
}

// ResumeBatch sets a SUSPENDED batch RUNNING again; see state.Store. One
// conditional UpdateItem.
func (s *Store) ResumeBatch(ctx context.Context, id string, now time.Time) (state.Batch, error) {
	return s.setRunning(ctx, id, state.BatchSuspended, state.BatchRunning, "", now)
}

// setRunning moves a batch in status from to status to with message; a
// batch already in status to comes back unchanged (the condition failure
// returns it, ALL_OLD), one in any other status fails ErrBatchFinished.
func (s *Store) setRunning(ctx context.Context, id string, from, to state.BatchStatus, message string, now time.Time) (state.Batch, error) {
	if now.IsZero() {
		now = s.opts.Now()
	}
	op := fmt.Sprintf("set batch %s %s", id, to)
	e := dynamoattr.NewExpr()
	u := dynamoattr.Update{E: e}
	u.Set("status", dynamoattr.S(string(to)))
	u.Set("message", dynamoattr.OptS(message))
	u.Set("updated_at", dynamoattr.Time(now))
	in := &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: batchKey(id),
		UpdateExpression:         aws.String(u.String()),
		ConditionExpression:      aws.String(e.Name("status") + " = " + e.Value(dynamoattr.S(string(from)))),
		ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values(),
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	b, err := s.updateBatch(ctx, id, op, in, to)
	if err != nil {
		return b, err
	}
	return s.sumShards(ctx, b, op)
}

// FinishBatch sets a RUNNING or SUSPENDED batch's final status, counts, message, report
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
	e := dynamoattr.NewExpr()
	u := dynamoattr.Update{E: e}
	u.Set("status", dynamoattr.S(string(f.Status)))
	u.Set("rows_total", dynamoattr.N(f.Counts.Total))
	u.Set("rows_imported", dynamoattr.N(f.Counts.Imported))
	u.Set("rows_superseded", dynamoattr.N(f.Counts.Superseded))
	u.Set("rows_failed", dynamoattr.N(f.Counts.Failed))
	u.Set("rows_skipped", dynamoattr.N(f.Counts.Skipped))
	u.Set("message", dynamoattr.OptS(f.Message))
	u.Set("report", dynamoattr.OptS(f.Report))
	u.Set("by_reason", avByReason(f.ByReason))
	u.Set("finished_at", dynamoattr.Time(now))
	u.Set("updated_at", dynamoattr.Time(now))
	u.Set(TTLAttribute, s.expiry(now))
	in := &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: batchKey(id),
		UpdateExpression: aws.String(u.String()), ConditionExpression: aws.String(unfinishedCond(e)),
		ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values(),
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	b, err := s.updateBatch(ctx, id, op, in, f.Status)
	if err != nil || b.ShardsDone >= b.Shards || s.opts.BatchTTL < 0 {
		return b, err
	}
	// Stopped before every shard finished (ABORTED, CANCELLED, an
	// escalated shard): the shards FinishShard did not give an expiry
	// expire with the batch. Done again when the finish is repeated.
	if err := s.expireShards(ctx, id, b.FinishedAt, op); err != nil {
		return state.Batch{}, err
	}
	return b, nil
}

// expireShards sets expires_at (finished + BatchTTL) on the shard items of
// batch id that have none: one Query and one UpdateItem per such shard.
func (s *Store) expireShards(ctx context.Context, id string, finished time.Time, op string) error {
	var keys []item
	err := s.query(ctx, s.shardQuery(id, attrPK, attrSK, TTLAttribute), op, func(it item) (bool, error) {
		if _, ok := it[TTLAttribute]; !ok {
			keys = append(keys, item{attrPK: it[attrPK], attrSK: it[attrSK]})
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, k := range keys {
		e := dynamoattr.NewExpr()
		u := dynamoattr.Update{E: e}
		u.Set(TTLAttribute, s.expiry(finished))
		_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String(s.table), Key: k, UpdateExpression: aws.String(u.String()),
			ConditionExpression:      aws.String("attribute_exists(" + e.Name(attrPK) + ")"),
			ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values(),
		})
		var ccf *types.ConditionalCheckFailedException
		if err != nil && !errors.As(err, &ccf) {
			return awserr.Wrap(err, op+": expire its shards: dynamodb UpdateItem")
		}
	}
	return nil
}

// updateBatch runs a batch's conditional UpdateItem (ALL_NEW, and ALL_OLD
// on a condition failure), retrying contention: it returns the updated
// batch, or the stored one when the condition failed because the batch is
// in status want already (a repeat); any other stored status fails
// ErrBatchFinished, no item ErrNotFound.
func (s *Store) updateBatch(ctx context.Context, id, op string, in *dynamodb.UpdateItemInput, want state.BatchStatus) (state.Batch, error) {
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
			if b.Status != want {
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
