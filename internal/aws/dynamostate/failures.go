package dynamostate

import (
	"context"
	"fmt"
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

// This file implements state.Store's failure records: PutFailures,
// Failures, CountFailures and ResolveFailures.

// failureItems validates records and returns their items, one per key (the
// last record of a key wins), each keyed for its batch's layout in known
// (a batch missing from known, or a nil known, gets the shared layout).
func (s *Store) failureItems(records []failure.Record, known map[string]layout) ([]item, error) {
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
		it, err := failureItem(r, known[r.BatchID], expires)
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

// batchLayout reads the layout of batch id (one consistent GetItem of the
// batch item, projected): layoutUnknown when there is no batch item.
func (s *Store) batchLayout(ctx context.Context, id, op string) (layout, error) {
	it, err := s.getItem(ctx, batchKey(id), op, attrPK, attrLayout)
	if err != nil {
		return 0, err
	}
	return layoutOf(it), nil
}

// PutFailures upserts failure records outside any lease (BatchWriteItem, 25
// a call, unprocessed items written again with backoff), after reading the
// layout of each batch they name (one GetItem a batch).
func (s *Store) PutFailures(ctx context.Context, records []failure.Record) error {
	if len(records) == 0 {
		return nil
	}
	op := fmt.Sprintf("put %d failure records", len(records))
	known := map[string]layout{}
	for _, r := range records {
		if _, ok := known[r.BatchID]; ok || r.BatchID == "" {
			continue
		}
		l, err := s.batchLayout(ctx, r.BatchID, op)
		if err != nil {
			return err
		}
		known[r.BatchID] = l
	}
	items, err := s.failureItems(records, known)
	if err != nil {
		return err
	}
	return s.batchWrite(ctx, putRequests(items), op)
}

// failStream is one partition's failure records in sort key order, read a
// page at a time.
type failStream struct {
	in   *dynamodb.QueryInput
	buf  []item
	done bool
}

// fill reads pages until the stream has an item or is exhausted.
func (st *failStream) fill(ctx context.Context, s *Store, op string) error {
	for len(st.buf) == 0 && !st.done {
		out, err := s.db.Query(ctx, st.in)
		if err != nil {
			return awserr.Wrap(err, op+": dynamodb Query")
		}
		st.buf = out.Items
		if len(out.LastEvaluatedKey) == 0 {
			st.done = true
		} else {
			st.in.ExclusiveStartKey = out.LastEvaluatedKey
		}
	}
	return nil
}

func (st *failStream) head() string {
	if len(st.buf) == 0 {
		return ""
	}
	sk, _ := st.buf[0][attrSK].(*types.AttributeValueMemberS)
	if sk == nil {
		return ""
	}
	return sk.Value
}

// mergeFailures reads the failure records of the partitions pks, each with
// the query build makes for it, and calls each for every item in sort key
// order (a k-way merge: (sheet, row) order across partitions) until it
// returns false. The first page of every partition is read at once
// (concurrently); later pages as the merge reaches them, so at most one
// page per partition is held. An item whose key was just merged (the same
// record in two layouts) is passed over.
func (s *Store) mergeFailures(ctx context.Context, pks []string, build func(pk string) *dynamodb.QueryInput, op string, each func(item) (bool, error)) error {
	streams := make([]*failStream, len(pks))
	g, gctx := errgroup.WithContext(ctx)
	for i, pk := range pks {
		in := build(pk)
		in.TableName = aws.String(s.table)
		streams[i] = &failStream{in: in}
		g.Go(func() error { return streams[i].fill(gctx, s, op) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	last := ""
	for {
		best := -1
		for i, st := range streams {
			if len(st.buf) > 0 && (best < 0 || st.head() < streams[best].head()) {
				best = i
			}
		}
		if best < 0 {
			return nil
		}
		st := streams[best]
		it, sk := st.buf[0], st.head()
		st.buf = st.buf[1:]
		if sk == "" || sk != last {
			last = sk
			more, err := each(it)
			if err != nil || !more {
				return err
			}
		}
		// Its next item is needed before the next pick (and only then).
		if err := st.fill(ctx, s, op); err != nil {
			return err
		}
	}
}

// Failures returns the batch's failure records that f selects, in (sheet,
// row) order (sheets compared bytewise). Paging continues after (AfterSheet,
// AfterRow) when either is set. It reads the batch's layout (one GetItem),
// then one consistent Query, paged, per partition that may hold its
// records (failPKs: 17, or 1 for a batch registered before decision 30),
// merged in key order. The filters run here, after the merge has kept one
// copy of a key stored in both layouts (a filter in DynamoDB would read the
// same units, and could drop the copy the merge keeps and let the other
// through); Limit counts the records they select.
func (s *Store) Failures(ctx context.Context, batchID string, f state.FailureFilter) ([]failure.Record, error) {
	op := "list failures of " + batchID
	l, err := s.batchLayout(ctx, batchID, op)
	if err != nil {
		return nil, err
	}
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
	pks := failPKs(batchID, l)
	filtered := len(f.Reasons) > 0 || len(f.Layers) > 0 || f.Shard != nil || f.Unresolved
	build := func(pk string) *dynamodb.QueryInput {
		e := dynamoattr.NewExpr()
		kc := fmt.Sprintf("%s = %s AND %s BETWEEN %s AND %s", e.Name(attrPK), e.Value(dynamoattr.S(pk)), e.Name(attrSK), e.Value(dynamoattr.S(lo)), e.Value(dynamoattr.S(failEnd)))
		in := &dynamodb.QueryInput{KeyConditionExpression: aws.String(kc), ConsistentRead: aws.Bool(true)}
		if f.Limit > 0 {
			// The partitions share the Limit: a page of each holds about
			// its share (twice, for an uneven spread, and the key paged
			// after, which may come first); the merge reads further pages
			// of a partition only when it reaches its end. A page of the
			// whole Limit from each would read 17 times what is returned.
			page := 2*(f.Limit+1)/len(pks) + 2
			if len(pks) == 1 {
				page = f.Limit + 1
			}
			if filtered {
				page = max(page, 100)
			}
			in.Limit = aws.Int32(int32(min(page, 1000)))
		}
		in.ExpressionAttributeNames, in.ExpressionAttributeValues = e.Names(), e.Values()
		return in
	}
	var out []failure.Record
	err = s.mergeFailures(ctx, pks, build, op, func(it item) (bool, error) {
		if skip != "" {
			if sk, ok := it[attrSK].(*types.AttributeValueMemberS); ok && sk.Value == skip {
				return true, nil
			}
		}
		r, err := decodeFailure(it)
		if err != nil {
			return false, failure.Wrap(failure.Internal, "", err, "")
		}
		if f.Selects(r) {
			out = append(out, r)
		}
		return f.Limit <= 0 || len(out) < f.Limit, nil
	})
	return out, err
}

// CountFailures counts the batch's failure records per shard index: the
// batch's layout (one GetItem), then one consistent Query projecting only
// the key and the shard, paged, per partition of its records, merged (so a
// record stored in both layouts counts once).
func (s *Store) CountFailures(ctx context.Context, batchID string) (map[int]int64, error) {
	op := "count failures of " + batchID
	l, err := s.batchLayout(ctx, batchID, op)
	if err != nil {
		return nil, err
	}
	build := func(pk string) *dynamodb.QueryInput {
		e := dynamoattr.NewExpr()
		in := &dynamodb.QueryInput{
			KeyConditionExpression: aws.String(fmt.Sprintf("%s = %s AND begins_with(%s, %s)",
				e.Name(attrPK), e.Value(dynamoattr.S(pk)), e.Name(attrSK), e.Value(dynamoattr.S(failPrefix)))),
			ProjectionExpression: aws.String(e.Name(attrSK) + ", " + e.Name("shard")),
			ConsistentRead:       aws.Bool(true),
		}
		in.ExpressionAttributeNames, in.ExpressionAttributeValues = e.Names(), e.Values()
		return in
	}
	out := map[int]int64{}
	err = s.mergeFailures(ctx, failPKs(batchID, l), build, op, func(it item) (bool, error) {
		d := dynamoattr.NewDecoder(it)
		n := d.N("shard")
		if d.Err() != nil {
			return false, failure.Wrap(failure.Internal, "", d.Err(), "")
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
	l, err := s.batchLayout(ctx, batchID, op)
	if err != nil {
		return 0, err
	}
	if l == layoutUnknown {
		return 0, notFoundBatch(batchID)
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
	pk := func(k failure.Key) string { return failPK(batchID, l, k.Sheet, k.Row) }
	total, missed, err := s.resolve(ctx, batchID, keys, pk, by, at, op)
	if err != nil || l != layoutSpread || len(missed) == 0 {
		return total, err
	}
	// A worker of the code before decision 30 may have written a record of
	// this batch in the batch's own partition during a deploy: keys with
	// no record in their partition are looked for there.
	n, _, err := s.resolve(ctx, batchID, missed, func(failure.Key) string { return batchPK(batchID) }, by, at, op)
	return total + n, err
}

// resolve marks the unresolved records at keys (in the partitions pk gives)
// as resolved by `by`, in transactions of up to 99 records and the batch's
// failures_resolved. It returns how many it marked and the keys that have
// no record there (a record already resolved is passed over).
func (s *Store) resolve(ctx context.Context, batchID string, keys []failure.Key, pk func(failure.Key) string, by string, at time.Time, op string) (int, []failure.Key, error) {
	total := 0
	var missed []failure.Key
	for len(keys) > 0 {
		n := min(len(keys), maxTxnItems-1)
		chunk := append([]failure.Key(nil), keys[:n]...)
		keys = keys[n:]
		for attempt := 0; len(chunk) > 0; attempt++ {
			txn := make([]types.TransactWriteItem, 0, len(chunk)+1)
			for _, k := range chunk {
				e := dynamoattr.NewExpr()
				u := dynamoattr.Update{E: e}
				u.Set("resolved_by", dynamoattr.S(by))
				u.Set("resolved_at", dynamoattr.Time(at))
				txn = append(txn, types.TransactWriteItem{Update: &types.Update{
					TableName:        aws.String(s.table),
					Key:              item{attrPK: dynamoattr.S(pk(k)), attrSK: dynamoattr.S(failSK(k.Sheet, k.Row))},
					UpdateExpression: aws.String(u.String()),
					ConditionExpression: aws.String(fmt.Sprintf("attribute_exists(%s) AND attribute_not_exists(%s)",
						e.Name(attrPK), e.Name("resolved_by"))),
					ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values(),
					ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
				}})
			}
			be := dynamoattr.NewExpr()
			bu := dynamoattr.Update{E: be}
			bu.Add("failures_resolved", int64(len(chunk)))
			bu.Set("updated_at", dynamoattr.Time(at))
			txn = append(txn, types.TransactWriteItem{Update: &types.Update{
				TableName: aws.String(s.table), Key: batchKey(batchID),
				UpdateExpression: aws.String(bu.String()), ConditionExpression: aws.String("attribute_exists(" + be.Name(attrPK) + ")"),
				ExpressionAttributeNames: be.Names(), ExpressionAttributeValues: be.Values(),
			}})
			err := s.transact(ctx, txn)
			if err == nil {
				total += len(chunk)
				break
			}
			if rs, ok := cancelReasons(err); ok && !contended(err) {
				if _, gone := conditionFailed(rs, len(chunk)); gone {
					return total, missed, fmt.Errorf("%s: batch %s: %w", op, batchID, state.ErrNotFound)
				}
				kept := chunk[:0]
				for i, k := range chunk {
					old, failed := conditionFailed(rs, i)
					switch {
					case !failed:
						kept = append(kept, k)
					case len(old) == 0: // no record there (resolved ones stay resolved)
						missed = append(missed, k)
					}
				}
				if len(kept) == len(chunk) {
					return total, missed, awserr.Wrap(err, op+": dynamodb TransactWriteItems")
				}
				chunk = kept
				continue
			}
			if !contended(err) {
				return total, missed, awserr.Wrap(err, op+": dynamodb TransactWriteItems")
			}
			if attempt+1 >= s.opts.MaxAttempts {
				return total, missed, s.exhausted(op, err)
			}
			if err := s.pause(ctx, attempt); err != nil {
				return total, missed, err
			}
		}
	}
	return total, missed, nil
}
