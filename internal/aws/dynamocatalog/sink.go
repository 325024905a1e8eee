package dynamocatalog

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
	"golang.org/x/sync/errgroup"

	"github.com/catalog-import/catalog-import/internal/aws/awserr"
	"github.com/catalog-import/catalog-import/internal/aws/dynamoattr"
	"github.com/catalog-import/catalog-import/internal/catalog"
	"github.com/catalog-import/catalog-import/internal/failure"
)

// Request limits of DynamoDB.
const (
	// maxGetKeys is the most keys one BatchGetItem carries.
	maxGetKeys = 100
	// maxItemBytes is DynamoDB's item size limit (400 KB).
	maxItemBytes = 400 * 1024
)

// Reads says whether a Write reads the current items of its SKUs before it
// writes them (see the package documentation, "Reads before writes").
type Reads int

// Read policies.
const (
	// ReadsAuto reads first while many SKUs are found stored, and writes
	// blind (each put conditioned on the item being absent) while few are:
	// the share found by the Sink's recent Write calls of the same batch
	// decides (BlindBelow); the first call of a batch reads a sample of its
	// SKUs first. Mode update always reads.
	ReadsAuto Reads = iota
	// ReadsAlways reads every SKU before writing it.
	ReadsAlways
	// ReadsNever writes blind first (mode update still reads).
	ReadsNever
)

// BlindBelow is the share of SKUs found stored under which ReadsAuto writes
// blind. A blind put that finds an item costs one write unit ($0.625 per
// million on demand) and returns the item; reading first costs half a read
// unit per SKU ($0.0625 per million, eventually consistent): blind writes
// are cheaper while fewer than one SKU in ten is stored.
const BlindBelow = 0.1

// Options tune a Sink. The zero value is the defaults.
type Options struct {
	// MaxAttempts bounds the tries of one request that fails transiently:
	// a put or read throttled, answered with a 5xx or timed out (after the
	// SDK's own retries), BatchGetItem keys left unprocessed. Default 8.
	MaxAttempts int
	// BaseDelay is the first backoff delay; each retry doubles it, up to
	// MaxDelay, and sleeps a random time up to it (full jitter). Defaults
	// 20ms and 2s.
	BaseDelay, MaxDelay time.Duration
	// MaxRedecisions bounds how many times one SKU is decided again because
	// its item changed between the read and the write (a failed condition);
	// each time means another writer made progress on it. Default 100.
	MaxRedecisions int
	// OnThrottle, when set, is called for every attempt of a Write's
	// requests that DynamoDB throttles (ProvisionedThroughputExceeded,
	// ThrottlingException, a transaction cancelled for throttling,
	// BatchGetItem keys left unprocessed), as it happens: before the SDK's
	// retries and the sink's own hide it. The worker's adaptive rate
	// limiter listens (shard.AdaptiveLimiter.Throttled).
	OnThrottle func()
	// InFlight bounds the requests one Write call has in flight: the
	// conditional puts, one per SKU, and the reads of 100 SKUs. Default 16.
	InFlight int
	// Reads is the read policy (default ReadsAuto).
	Reads Reads
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
	if o.InFlight <= 0 {
		o.InFlight = 16
	}
	return o
}

// Sink is the DynamoDB products table as a catalog.Sink and catalog.Reader.
// It is safe for concurrent use: concurrent writers of one SKU (in this
// process or another) are ordered by the conditions of their writes. The
// only state it keeps between calls is the share of SKUs recent calls of
// the last batch written found stored (for ReadsAuto).
type Sink struct {
	client *dynamodb.Client
	table  string
	opts   Options
	call   []func(*dynamodb.Options) // per-call options of Write's requests
	found  atomic.Pointer[found]     // the share found stored by recent calls; nil: none seen yet
}

// found is the share of SKUs a batch's recent Write calls found stored.
type found struct {
	batch string
	share float64
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
	sku      string
	idx      []int         // products of the call with this SKU, in slice order
	known    bool          // the stored item was read, or returned by a failed condition
	held     bool          // an item was stored when last seen
	read     catalog.State // that item's state (when held)
	ver      int64         // that item's version (0: none, or an item older than versions)
	put      item          // the item to write, nil when the stored one stays
	redecide int           // times decided again after a failed condition
}

// Write applies products in slice order under the catalog.Sink rules: it
// learns the current item of each SKU (a BatchGetItem, or the item a blind
// put's failed condition returns), decides every product in memory with
// catalog.Decide against the SKU's state at its point of the slice, and
// writes each SKU's new state with one PutItem conditioned on the item
// still being the one decided against, InFlight at a time. A failed
// condition returns the current item and the SKU is decided again; see the
// package documentation.
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
	batch := products[0].BatchID
	switch s.reads(mode, batch) {
	case readAll:
		if err := s.readItems(ctx, order, consistent(mode)); err != nil {
			return nil, err
		}
	case readSample:
		n := min(sampleSKUs, len(order))
		if err := s.readItems(ctx, order[:n], consistent(mode)); err != nil {
			return nil, err
		}
		if share(order[:n]) >= BlindBelow {
			if err := s.readItems(ctx, order[n:], consistent(mode)); err != nil {
				return nil, err
			}
		}
	}
	var unknown []*skuState
	for _, st := range order {
		if err := s.decide(mode, products, out, st); err != nil {
			return nil, err
		}
		if st.put == nil && !st.known {
			unknown = append(unknown, st)
		}
	}
	if len(unknown) > 0 {
		// Written blind, these SKUs would write nothing (nothing does
		// against an absent item but update, which always reads): an
		// outcome that writes nothing must come from a read.
		if err := s.readItems(ctx, unknown, true); err != nil {
			return nil, err
		}
		for _, st := range unknown {
			if err := s.decide(mode, products, out, st); err != nil {
				return nil, err
			}
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.opts.InFlight)
	for _, st := range order {
		if st.put != nil {
			g.Go(func() error { return s.store(gctx, mode, products, out, st) })
		}
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	s.observe(batch, share(order))
	return out, nil
}

// sampleSKUs is how many SKUs the first Write call of a batch reads to
// learn whether the batch's SKUs are stored (one BatchGetItem).
const sampleSKUs = maxGetKeys

// share is the share of sts found stored.
func share(sts []*skuState) float64 {
	if len(sts) == 0 {
		return 0
	}
	found := 0
	for _, st := range sts {
		if st.held {
			found++
		}
	}
	return float64(found) / float64(len(sts))
}

// readPlan is what a Write reads before it writes.
type readPlan int

const (
	readNone   readPlan = iota // put blind
	readAll                    // read every SKU first
	readSample                 // read sampleSKUs first, the rest too if enough were stored
)

// reads decides what a Write of batch reads first. Under ReadsAuto the
// first call of a batch reads a sample: a container that imported new
// products and then takes a shard of an update feed would otherwise pay a
// failed put (a write unit) for every SKU of its first call, while reading
// all of a new file's first call would cost a read per SKU of it.
func (s *Sink) reads(mode catalog.WriteMode, batch string) readPlan {
	if mode == catalog.Update {
		return readAll // Unknown must be read: a blind put of an update writes nothing to check
	}
	switch s.opts.Reads {
	case ReadsAlways:
		return readAll
	case ReadsNever:
		return readNone
	}
	f := s.found.Load()
	switch {
	case f == nil || f.batch != batch:
		return readSample
	case f.share < BlindBelow:
		return readNone
	}
	return readAll
}

// observe folds the share of SKUs a Write of batch found stored into the
// Sink's estimate: an exponentially weighted average over the batch's
// calls, each call half the weight; a call of another batch starts anew.
func (s *Sink) observe(batch string, share float64) {
	for {
		old := s.found.Load()
		next := &found{batch: batch, share: share}
		if old != nil && old.batch == batch {
			next.share = (old.share + share) / 2
		}
		if s.found.CompareAndSwap(old, next) {
			return
		}
	}
}

// consistent reports whether a read for mode must be strongly consistent:
// only for the modes whose outcomes that write nothing are not monotone
// (Exists and Unknown depend on whether the product exists now). For
// upsert, replace and delete an outcome that writes nothing stays true of
// every later state, so an eventually consistent read (half a read unit)
// is enough; a stale item that leads to a write fails its condition.
func consistent(mode catalog.WriteMode) bool {
	return mode == catalog.Update || mode == catalog.CreateOnly
}

// decide sets the outcomes of st's products against the state last seen
// (absent when none was), and st.put to the item that must be written (nil
// when none).
func (s *Sink) decide(mode catalog.WriteMode, products []catalog.Product, out []catalog.Outcome, st *skuState) error {
	cur, dirty := st.read, false
	for _, i := range st.idx {
		var next catalog.State
		out[i], next = catalog.Decide(mode, &products[i], cur)
		if out[i].Result == catalog.Written {
			cur, dirty = next, true
		}
	}
	st.put = nil
	if !dirty {
		return nil
	}
	it, err := encode(&cur, st.ver+1)
	if err != nil {
		return failure.Wrap(failure.Internal, "", err, fmt.Sprintf("encode product %s: %v", st.sku, err))
	}
	if size := dynamoattr.Size(it); size > maxItemBytes {
		return failure.New(failure.Internal, "", "product %s at %s: its item would be about %d bytes (%d displaced rows), over DynamoDB's 400 KB item limit",
			st.sku, cur.Holders[0].Source, size, len(cur.Holders[0].Displaced))
	}
	st.put = it
	return nil
}

// condition returns the condition of st's put: the item is still the
// version seen, or still absent. An item written before versions is
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

// store writes st.put with one conditional PutItem. When the condition
// fails, DynamoDB returns the current item (ALL_OLD): the SKU is decided
// again against it and what remains to write is put again. Throttling is
// retried with backoff.
func (s *Sink) store(ctx context.Context, mode catalog.WriteMode, products []catalog.Product, out []catalog.Outcome, st *skuState) error {
	attempts := 0
	for st.put != nil {
		cond, names, values := st.condition()
		_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: aws.String(s.table), Item: st.put, ConditionExpression: aws.String(cond),
			ExpressionAttributeNames: names, ExpressionAttributeValues: values,
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}, s.call...)
		if err == nil {
			return nil
		}
		var failed *types.ConditionalCheckFailedException
		switch {
		case errors.As(err, &failed):
			if st.redecide++; st.redecide > s.opts.MaxRedecisions {
				return failure.Wrap(failure.Throttled, "", err, fmt.Sprintf(
					"PutItem product %s: it changed under %d attempts to write it (contention)", st.sku, st.redecide))
			}
			if len(failed.Item) == 0 {
				// Absent, or not returned: read it again.
				if err := s.readItems(ctx, []*skuState{st}, true); err != nil {
					return err
				}
			} else if err := st.setRead(failed.Item); err != nil {
				return err
			}
			if err := s.decide(mode, products, out, st); err != nil {
				return err
			}
		case transient(err) && ctx.Err() == nil:
			if attempts++; attempts >= s.opts.MaxAttempts {
				return awserr.Wrap(err, fmt.Sprintf("PutItem product %s (%d attempts)", st.sku, attempts))
			}
			if err := s.backoff(ctx, attempts); err != nil {
				return err
			}
		default:
			return awserr.Wrap(err, "PutItem product "+st.sku)
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
	st.known, st.held, st.read, st.ver = true, true, state, ver
	return nil
}

// readItems reads the current items of the SKUs of states (BatchGetItem,
// maxGetKeys per request, InFlight requests at a time, unprocessed keys
// retried) into their read states: values, stamps and holders in the same
// read. consistent asks for strongly consistent reads.
func (s *Sink) readItems(ctx context.Context, states []*skuState, consistent bool) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.opts.InFlight)
	for chunk := range slices.Chunk(states, maxGetKeys) {
		g.Go(func() error { return s.readChunk(gctx, chunk, consistent) })
	}
	return g.Wait()
}

func (s *Sink) readChunk(ctx context.Context, chunk []*skuState, consistent bool) error {
	bySKU := make(map[string]*skuState, len(chunk))
	keys := make([]item, len(chunk))
	for i, st := range chunk {
		st.known, st.held, st.read, st.ver = true, false, catalog.State{}, 0
		bySKU[st.sku] = st
		keys[i] = item{AttrSKU: dynamoattr.S(st.sku)}
	}
	req := map[string]types.KeysAndAttributes{s.table: {Keys: keys, ConsistentRead: aws.Bool(consistent)}}
	for attempts := 0; ; {
		res, err := s.client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req}, s.call...)
		if err != nil {
			if !transient(err) || ctx.Err() != nil {
				return awserr.Wrap(err, "BatchGetItem")
			}
			if s.opts.OnThrottle != nil {
				s.opts.OnThrottle() // keys left unprocessed: the table's throughput
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
			return nil
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

// transient reports whether a request that failed with err is worth
// sending again after a pause: throttled, a 5xx, a timeout (after the SDK's
// own retries, whose quota runs out when many requests fail at once). A
// put is safe to resend: if the first one was applied, the second fails
// its condition and the SKU is decided as a replay.
func transient(err error) bool {
	switch awserr.Reason(err) {
	case failure.Throttled, failure.ServiceUnavailable, failure.NetworkTimeout:
		return true
	}
	return false
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
