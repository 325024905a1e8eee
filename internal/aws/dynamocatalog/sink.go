package dynamocatalog

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/catalog-import/catalog-import/internal/aws/awserr"
	"github.com/catalog-import/catalog-import/internal/aws/dynamoattr"
	"github.com/catalog-import/catalog-import/internal/catalog"
	"github.com/catalog-import/catalog-import/internal/failure"
)

// Request limits of DynamoDB.
const (
	// maxGetKeys is the most keys one BatchGetItem carries.
	maxGetKeys = 100
	// maxTransactItems is the most actions one TransactWriteItems carries
	// (AWS and moto 5.2 both accept 100).
	maxTransactItems = 100
	// maxTransactBytes caps the estimated size of the items of one
	// transaction, below the 4 MB aggregate limit with room for the
	// estimate's error.
	maxTransactBytes = 3_500_000
	// maxItemBytes is DynamoDB's item size limit (400 KB).
	maxItemBytes = 400 * 1024
)

// Options tune a Sink. The zero value is the defaults.
type Options struct {
	// MaxAttempts bounds the tries of one request that fails transiently:
	// a transaction cancelled by a TransactionConflict or throttling, a
	// throttled request (after the SDK's own retries), BatchGetItem keys left
	// unprocessed. Default 8.
	MaxAttempts int
	// BaseDelay is the first backoff delay; each retry doubles it, up to
	// MaxDelay, and sleeps a random time up to it (full jitter). Defaults
	// 20ms and 2s.
	BaseDelay, MaxDelay time.Duration
	// MaxRedecisions bounds how many times one transaction is decided again
	// because a product item changed between the read and the write (a
	// ConditionalCheckFailed); each time means another writer made progress
	// on one of its SKUs. Default 100.
	MaxRedecisions int
	// OnThrottle, when set, is called for every attempt of a Write's
	// requests that DynamoDB throttles (ProvisionedThroughputExceeded,
	// ThrottlingException, a transaction cancelled for throttling,
	// BatchGetItem keys left unprocessed), as it happens: before the SDK's
	// retries and the sink's own hide it. The worker's adaptive rate
	// limiter listens (shard.AdaptiveLimiter.Throttled).
	OnThrottle func()
}

func (o Options) withDefaults() Options {
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 8
	}
	if o.BaseDelay <= 0 {
		o.BaseDelay = 20 * time.Millisecond
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = 2 * time.Second
	}
	if o.MaxDelay < o.BaseDelay {
		o.MaxDelay = o.BaseDelay
	}
	if o.MaxRedecisions <= 0 {
		o.MaxRedecisions = 100
	}
	return o
}

// Sink is the DynamoDB products table as a catalog.Sink and catalog.Reader.
// It is safe for concurrent use: it keeps no state between calls, and
// concurrent writers of one SKU (in this process or another) are ordered by
// the conditions of their writes.
type Sink struct {
	client *dynamodb.Client
	table  string
	opts   Options
	call   []func(*dynamodb.Options) // per-call options of Write's requests
}

var (
	_ catalog.Sink   = (*Sink)(nil)
	_ catalog.Reader = (*Sink)(nil)
)

// New returns the Sink of the products table named table (see TableInput).
func New(client *dynamodb.Client, table string, opts Options) *Sink {
	s := &Sink{client: client, table: table, opts: opts.withDefaults()}
	if on := s.opts.OnThrottle; on != nil {
		s.call = []func(*dynamodb.Options){func(o *dynamodb.Options) {
			o.APIOptions = append(o.APIOptions, throttleObserver(on))
		}}
	}
	return s
}

// throttleObserver calls on for every attempt of a request that DynamoDB
// throttles. It sits in the Deserialize step, inside the SDK's retry loop
// (Finalize step), so it sees each attempt's error decoded.
func throttleObserver(on func()) func(*middleware.Stack) error {
	return func(st *middleware.Stack) error {
		return st.Deserialize.Add(middleware.DeserializeMiddlewareFunc("ObserveThrottles",
			func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleDeserialize(ctx, in)
				if err != nil && throttled(err) {
					on()
				}
				return out, md, err
			}), middleware.Before)
	}
}

// throttled reports whether err is DynamoDB refusing a request for its rate:
// a throttling error, or a transaction cancelled because an item was
// throttled.
func throttled(err error) bool {
	var cancelled *types.TransactionCanceledException
	if errors.As(err, &cancelled) {
		for _, r := range cancelled.CancellationReasons {
			switch aws.ToString(r.Code) {
			case "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded":
				return true
			}
		}
		return false
	}
	switch awserr.Code(err) {
	case "TransactionInProgressException", "TransactionConflictException":
		return false // contention, not rate
	}
	return awserr.Reason(err) == failure.Throttled
}

// skuState is what one Write call knows and decided about one SKU.
type skuState struct {
	sku  string
	idx  []int         // products of the call with this SKU, in slice order
	held bool          // an item was stored when last read
	read catalog.State // that item's state (when held)
	ver  int64         // that item's version (0: none, or an item older than versions)
	put  item          // the item to write, nil when the stored one stays
	size int           // dynamoattr.Size(put)
}

// Write applies products in slice order under the catalog.Sink rules: it
// reads the items of the call's SKUs (BatchGetItem, consistent), decides
// every product in memory with catalog.Decide against the SKU's state at its
// point of the slice, and writes the SKUs' new states with
// TransactWriteItems, each Put conditioned on the item still being the
// version that was read. A cancelled transaction is decided
// again from the items it returns; see the package documentation.
func (s *Sink) Write(ctx context.Context, mode catalog.WriteMode, products []catalog.Product) ([]catalog.Outcome, error) {
	mode, err := catalog.SinkMode(mode)
	if err != nil {
		return nil, err
	}
	out := make([]catalog.Outcome, len(products))
	if len(products) == 0 {
		return out, nil
	}
	states := make(map[string]*skuState, len(products))
	var order []*skuState // SKUs in the order of their first product
	for i := range products {
		sku := products[i].SKU
		if sku == "" {
			return nil, invalid("sku", "write products: product %d (%s) has no SKU", i, products[i].Source)
		}
		st := states[sku]
		if st == nil {
			st = &skuState{sku: sku}
			states[sku] = st
			order = append(order, st)
		}
		st.idx = append(st.idx, i)
	}
	if err := s.readHolders(ctx, order); err != nil {
		return nil, err
	}
	for _, st := range order {
		if err := s.decide(mode, products, out, st); err != nil {
			return nil, err
		}
	}
	// Write the winners, in transactions of at most maxTransactItems items
	// and maxTransactBytes bytes.
	var chunk []*skuState
	size := 0
	for _, st := range order {
		if st.put == nil {
			continue
		}
		if len(chunk) == maxTransactItems || (len(chunk) > 0 && size+st.size > maxTransactBytes) {
			if err := s.transact(ctx, mode, products, out, chunk); err != nil {
				return nil, err
			}
			chunk, size = chunk[:0], 0
		}
		chunk = append(chunk, st)
		size += st.size
	}
	if len(chunk) > 0 {
		if err := s.transact(ctx, mode, products, out, chunk); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// decide sets the outcomes of st's products against the state last read,
// and st.put to the item that must be written (nil when none).
func (s *Sink) decide(mode catalog.WriteMode, products []catalog.Product, out []catalog.Outcome, st *skuState) error {
	cur, dirty := st.read, false
	for _, i := range st.idx {
		var next catalog.State
		out[i], next = catalog.Decide(mode, &products[i], cur)
		if out[i].Result == catalog.Written {
			cur, dirty = next, true
		}
	}
	st.put, st.size = nil, 0
	if !dirty {
		return nil
	}
	it, err := encode(&cur, st.ver+1)
	if err != nil {
		return failure.Wrap(failure.Internal, "", err, fmt.Sprintf("encode product %s: %v", st.sku, err))
	}
	st.put, st.size = it, dynamoattr.Size(it)
	if st.size > maxItemBytes {
		return failure.New(failure.Internal, "", "product %s at %s: its item would be about %d bytes (%d displaced rows), over DynamoDB's 400 KB item limit",
			st.sku, cur.Holders[0].Source, st.size, len(cur.Holders[0].Displaced))
	}
	return nil
}

// condition returns the condition of st's Put: the item is still the
// version read, or still absent. An item written before versions is
// recognised by its provenance (batch and position), as then.
func (st *skuState) condition() (string, map[string]string, map[string]types.AttributeValue) {
	e := dynamoattr.NewExpr()
	if !st.held {
		return "attribute_not_exists(" + e.Name(AttrSKU) + ")", e.Names(), e.Values()
	}
	if st.ver > 0 {
		return e.Name(AttrVersion) + " = " + e.Value(dynamoattr.N(st.ver)), e.Names(), e.Values()
	}
	h := &st.read.Holders[0]
	cond := "attribute_not_exists(" + e.Name(AttrVersion) + ")" +
		" AND " + e.Name(AttrSheetIndex) + " = " + e.Value(dynamoattr.N(int64(h.Source.SheetIndex))) +
		" AND " + e.Name(AttrRow) + " = " + e.Value(dynamoattr.N(h.Source.Row))
	if h.BatchID == "" {
		cond += " AND attribute_not_exists(" + e.Name(AttrBatchID) + ")"
	} else {
		cond += " AND " + e.Name(AttrBatchID) + " = " + e.Value(dynamoattr.S(h.BatchID))
	}
	return cond, e.Names(), e.Values()
}

// transact writes the puts of chunk in one transaction. When some of its
// conditions fail, it decides those SKUs again against the items DynamoDB
// returns and writes what remains; conflicts and throttling are retried
// with backoff.
func (s *Sink) transact(ctx context.Context, mode catalog.WriteMode, products []catalog.Product, out []catalog.Outcome, chunk []*skuState) error {
	attempts, redecisions := 0, 0
	for len(chunk) > 0 {
		in := &dynamodb.TransactWriteItemsInput{TransactItems: make([]types.TransactWriteItem, len(chunk))}
		for i, st := range chunk {
			cond, names, values := st.condition()
			in.TransactItems[i] = types.TransactWriteItem{Put: &types.Put{
				TableName: aws.String(s.table), Item: st.put, ConditionExpression: aws.String(cond),
				ExpressionAttributeNames: names, ExpressionAttributeValues: values,
				ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
			}}
		}
		_, err := s.client.TransactWriteItems(ctx, in, s.call...)
		if err == nil {
			return nil
		}
		var cancelled *types.TransactionCanceledException
		if !errors.As(err, &cancelled) {
			if awserr.Reason(err) != failure.Throttled || ctx.Err() != nil {
				return awserr.Wrap(err, "TransactWriteItems")
			}
			if attempts++; attempts >= s.opts.MaxAttempts {
				return awserr.Wrap(err, fmt.Sprintf("TransactWriteItems (%d attempts)", attempts))
			}
			if err := s.backoff(ctx, attempts); err != nil {
				return err
			}
			continue
		}
		reasons := cancelled.CancellationReasons
		if len(reasons) != len(chunk) {
			return awserr.Wrap(err, fmt.Sprintf("TransactWriteItems: %d cancellation reasons for %d items", len(reasons), len(chunk)))
		}
		var changed, reread []*skuState
		transient := false
		for i, r := range reasons {
			st := chunk[i]
			switch code := aws.ToString(r.Code); code {
			case "", "None":
			case "ConditionalCheckFailed":
				if len(r.Item) == 0 {
					// Absent (deleted), or not returned: read it again.
					reread = append(reread, st)
				} else if err := st.setRead(r.Item); err != nil {
					return err
				}
				changed = append(changed, st)
			case "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded":
				transient = true
			default:
				return awserr.Wrap(err, fmt.Sprintf("TransactWriteItems: product %s: %s %s", st.sku, code, aws.ToString(r.Message)))
			}
		}
		if len(changed) > 0 {
			if redecisions++; redecisions > s.opts.MaxRedecisions {
				return failure.Wrap(failure.Throttled, "", err, fmt.Sprintf(
					"TransactWriteItems: products changed under %d attempts to write them (contention on SKU %s)", redecisions, changed[0].sku))
			}
			if err := s.readHolders(ctx, reread); err != nil {
				return err
			}
			for _, st := range changed {
				if err := s.decide(mode, products, out, st); err != nil {
					return err
				}
			}
			chunk = slices.DeleteFunc(chunk, func(st *skuState) bool { return st.put == nil })
			continue
		}
		if !transient {
			return awserr.Wrap(err, "TransactWriteItems: cancelled without a reason")
		}
		if attempts++; attempts >= s.opts.MaxAttempts {
			return failure.Wrap(failure.Throttled, "", err, fmt.Sprintf("TransactWriteItems: %d attempts: %v", attempts, err))
		}
		if err := s.backoff(ctx, attempts); err != nil {
			return err
		}
	}
	return nil
}

// setRead records it as the item that holds st's SKU now.
func (st *skuState) setRead(it item) error {
	state, ver, err := decodeState(it)
	if err != nil {
		return failure.Wrap(failure.Internal, "", err, err.Error())
	}
	if state.Product.SKU != st.sku {
		return failure.New(failure.Internal, "", "read product %s for SKU %s", state.Product.SKU, st.sku)
	}
	st.held, st.read, st.ver = true, state, ver
	return nil
}

// readHolders reads the current items of the SKUs of states (strongly
// consistent BatchGetItem, maxGetKeys per request, unprocessed keys retried)
// into their read states: values, stamps and holders in the same read.
func (s *Sink) readHolders(ctx context.Context, states []*skuState) error {
	for chunk := range slices.Chunk(states, maxGetKeys) {
		bySKU := make(map[string]*skuState, len(chunk))
		keys := make([]item, len(chunk))
		for i, st := range chunk {
			st.held, st.read, st.ver = false, catalog.State{}, 0
			bySKU[st.sku] = st
			keys[i] = item{AttrSKU: dynamoattr.S(st.sku)}
		}
		req := map[string]types.KeysAndAttributes{s.table: {Keys: keys, ConsistentRead: aws.Bool(true)}}
		for attempts := 0; ; {
			res, err := s.client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req}, s.call...)
			if err != nil {
				if awserr.Reason(err) != failure.Throttled || ctx.Err() != nil {
					return awserr.Wrap(err, "BatchGetItem")
				}
				if attempts++; attempts >= s.opts.MaxAttempts {
					return awserr.Wrap(err, fmt.Sprintf("BatchGetItem (%d attempts)", attempts))
				}
				if err := s.backoff(ctx, attempts); err != nil {
					return err
				}
				continue
			}
			for _, it := range res.Responses[s.table] {
				var st *skuState
				if sku, ok := it[AttrSKU].(*types.AttributeValueMemberS); ok {
					st = bySKU[sku.Value]
				}
				if st == nil {
					return failure.New(failure.Internal, "", "BatchGetItem returned a product item which was not asked for")
				}
				if err := st.setRead(it); err != nil {
					return err
				}
			}
			rest, ok := res.UnprocessedKeys[s.table]
			if !ok || len(rest.Keys) == 0 {
				break
			}
			if s.opts.OnThrottle != nil {
				s.opts.OnThrottle() // keys left unprocessed: the table's throughput
			}
			if attempts++; attempts >= s.opts.MaxAttempts {
				return failure.New(failure.Throttled, "", "BatchGetItem: %d keys still unprocessed after %d attempts", len(rest.Keys), attempts)
			}
			req = map[string]types.KeysAndAttributes{s.table: rest}
			if err := s.backoff(ctx, attempts); err != nil {
				return err
			}
		}
	}
	return nil
}

// backoff sleeps before retry number attempt (1, 2, ...): a random time up
// to BaseDelay * 2^(attempt-1), capped at MaxDelay (full jitter).
func (s *Sink) backoff(ctx context.Context, attempt int) error {
	d := s.opts.MaxDelay
	if attempt-1 < 30 {
		d = min(d, s.opts.BaseDelay<<(attempt-1))
	}
	t := time.NewTimer(rand.N(d) + 1)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return awserr.Wrap(ctx.Err(), "DynamoDB retry backoff")
	case <-t.C:
		return nil
	}
}

func invalid(field, format string, args ...any) error {
	return failure.New(failure.Internal, field, "invalid argument: "+format, args...)
}
