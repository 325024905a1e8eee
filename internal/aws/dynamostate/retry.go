package dynamostate

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/catalog-import/catalog-import/internal/aws/awserr"
	"github.com/catalog-import/catalog-import/internal/failure"
)

// Limits of the DynamoDB API.
const (
	maxBatchWrite = 25  // items per BatchWriteItem
	maxBatchGet   = 100 // keys per BatchGetItem
	maxTxnItems   = 100 // actions per TransactWriteItems
	// maxTxnBytes bounds the estimated size of one transaction's items
	// (DynamoDB's limit is 4 MB).
	maxTxnBytes = 2 << 20
)

// pause sleeps before attempt number attempt (0 for the first retry):
// exponential backoff from BaseDelay, capped at MaxDelay, with jitter over
// the upper half so that contenders spread out but still make progress.
func (s *Store) pause(ctx context.Context, attempt int) error {
	d := s.opts.BaseDelay << min(attempt, 20)
	if d <= 0 || d > s.opts.MaxDelay {
		d = s.opts.MaxDelay
	}
	d = d/2 + rand.N(d/2+1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// exhausted is the error of an operation that kept losing races or kept
// being throttled for MaxAttempts attempts: transient, so the worker's
// retry policy takes over.
func (s *Store) exhausted(op string, last error) error {
	return failure.Wrap(failure.Throttled, "", last, fmt.Sprintf("%s: gave up after %d attempts: %v", op, s.opts.MaxAttempts, last))
}

// cancelReasons returns the per-action reasons of a cancelled transaction.
func cancelReasons(err error) ([]types.CancellationReason, bool) {
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) {
		return tce.CancellationReasons, true
	}
	return nil, false
}

// reasonCode is the code of action i of a cancelled transaction, "" if none.
func reasonCode(rs []types.CancellationReason, i int) string {
	if i < 0 || i >= len(rs) {
		return ""
	}
	return aws.ToString(rs[i].Code)
}

// conditionFailed reports whether action i failed its condition, and the
// item it saw (nil when the item does not exist).
func conditionFailed(rs []types.CancellationReason, i int) (item, bool) {
	if reasonCode(rs, i) != "ConditionalCheckFailed" {
		return nil, false
	}
	return rs[i].Item, true
}

// contended reports whether err is a lost race or throttling that is worth
// retrying as is: a transaction conflict (on a transaction or on a plain
// write that met one), or a cancellation for conflict or throttling.
func contended(err error) bool {
	switch awserr.Code(err) {
	case "TransactionConflictException", "TransactionInProgressException",
		"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded":
		return true
	}
	rs, _ := cancelReasons(err)
	for i := range rs {
		switch reasonCode(rs, i) {
		case "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded":
			return true
		}
	}
	return false
}

// transact runs one TransactWriteItems. The SDK fills in a client request
// token, which AWS uses to make its own retries idempotent; the conditions
// of every transaction here make a replay harmless as well (moto does not
// deduplicate by token).
func (s *Store) transact(ctx context.Context, items []types.TransactWriteItem) error {
	_, err := s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	return err
}

// batchWrite writes requests with BatchWriteItem, 25 per call, and writes
// again what comes back unprocessed, with backoff, for at most MaxAttempts
// calls per chunk.
func (s *Store) batchWrite(ctx context.Context, reqs []types.WriteRequest, op string) error {
	for len(reqs) > 0 {
		n := min(len(reqs), maxBatchWrite)
		pending := reqs[:n]
		reqs = reqs[n:]
		for attempt := 0; len(pending) > 0; attempt++ {
			if attempt > 0 {
				if attempt >= s.opts.MaxAttempts {
					return s.exhausted(op, fmt.Errorf("%d items still unprocessed", len(pending)))
				}
				if err := s.pause(ctx, attempt-1); err != nil {
					return err
				}
			}
			out, err := s.db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{
				RequestItems: map[string][]types.WriteRequest{s.table: pending},
			})
			if err != nil {
				return awserr.Wrap(err, op+": dynamodb BatchWriteItem")
			}
			pending = out.UnprocessedItems[s.table]
		}
	}
	return nil
}

// batchGet reads keys with consistent reads (BatchGetItem; at most 100
// keys), reading again what comes back unprocessed.
func (s *Store) batchGet(ctx context.Context, keys []item, op string) ([]item, error) {
	var out []item
	pending := &types.KeysAndAttributes{Keys: keys, ConsistentRead: aws.Bool(true)}
	for attempt := 0; pending != nil && len(pending.Keys) > 0; attempt++ {
		if attempt > 0 {
			if attempt >= s.opts.MaxAttempts {
				return nil, s.exhausted(op, fmt.Errorf("%d keys still unprocessed", len(pending.Keys)))
			}
			if err := s.pause(ctx, attempt-1); err != nil {
				return nil, err
			}
		}
		res, err := s.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{
			RequestItems: map[string]types.KeysAndAttributes{s.table: *pending},
		})
		if err != nil {
			return nil, awserr.Wrap(err, op+": dynamodb BatchGetItem")
		}
		out = append(out, res.Responses[s.table]...)
		if u, ok := res.UnprocessedKeys[s.table]; ok {
			pending = &u
		} else {
			pending = nil
		}
	}
	return out, nil
}
