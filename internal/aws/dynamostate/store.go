package dynamostate

import (
	"context"
	"fmt"
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

// DefaultFailureTTL is how long failure records are kept when
// Options.FailureTTL is zero.
const DefaultFailureTTL = 30 * 24 * time.Hour

// DefaultBatchTTL is how long a finished batch and triage-log entries are
// kept when Options.BatchTTL is zero.
const DefaultBatchTTL = 90 * 24 * time.Hour

// Options tune a Store. The zero value is ready to use.
type Options struct {
	// BatchTTL is how long a finished batch is kept (the table's TTL
	// attribute expires_at): its batch item and shard items expire BatchTTL
	// after the batch (or the shard) finished, a triage-log entry BatchTTL
	// after its time. Zero means DefaultBatchTTL, a negative value keeps
	// them until the table is deleted.
	BatchTTL time.Duration
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
	if opts.BatchTTL == 0 {
		opts.BatchTTL = DefaultBatchTTL
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

// expiry is the TTL attribute's value for an item finished at t (epoch
// seconds of t + BatchTTL), nil (not set) when items are kept.
func (s *Store) expiry(t time.Time) types.AttributeValue {
	if s.opts.BatchTTL < 0 {
		return nil
	}
	return dynamoattr.N(t.Add(s.opts.BatchTTL).Unix())
}

func invalid(field, format string, args ...any) error {
	return failure.New(failure.Internal, field, "invalid argument: "+format, args...)
}

// getItem reads one item with a consistent read; nil when it does not exist.
func (s *Store) getItem(ctx context.Context, key item, op string, attrs ...string) (item, error) {
	in := &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: key, ConsistentRead: aws.Bool(true)}
	if len(attrs) > 0 {
		e := dynamoattr.NewExpr()
		ps := make([]string, len(attrs))
		for i, a := range attrs {
			ps[i] = e.Name(a)
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
