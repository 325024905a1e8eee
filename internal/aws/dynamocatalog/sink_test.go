package dynamocatalog_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/catalog-import/catalog-import/internal/aws/awstest"
	"github.com/catalog-import/catalog-import/internal/aws/dynamocatalog"
	"github.com/catalog-import/catalog-import/internal/catalog"
	"github.com/catalog-import/catalog-import/internal/catalog/catalogtest"
	"github.com/catalog-import/catalog-import/internal/failure"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// newSink returns a Sink of a products table of its own (the harness's
// clients send one DynamoDB request at a time: moto's transactions are not
// isolated from each other). A table per test also keeps moto fast: it
// copies the table for every transaction.
func newSink(t *testing.T, client *dynamodb.Client) *dynamocatalog.Sink {
	t.Helper()
	return dynamocatalog.New(client, newTable(t, client), dynamocatalog.Options{})
}

// newTable creates a products table of its own for t.
func newTable(t *testing.T, client *dynamodb.Client) string {
	t.Helper()
	name := awstest.Name("products")
	if err := dynamocatalog.CreateTable(t.Context(), client, name); err != nil {
		t.Fatal(err)
	}
	return name
}

func TestContract(t *testing.T) {
	client := awstest.Clients(t).DynamoDB
	// moto copies the table for every transaction: few property cases.
	catalogtest.RunWith(t, func(t *testing.T) interface {
		catalog.Sink
		catalog.Reader
	} {
		return newSink(t, client)
	}, catalogtest.Options{PropertyCases: 24})
}

func TestCreateTableIsIdempotent(t *testing.T) {
	client := awstest.Clients(t).DynamoDB
	name := newTable(t, client)
	if err := dynamocatalog.CreateTable(t.Context(), client, name); err != nil {
		t.Fatalf("CreateTable of an existing table: %v", err)
	}
	out, err := client.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	tb := out.Table
	if tb.BillingModeSummary == nil || tb.BillingModeSummary.BillingMode != types.BillingModePayPerRequest {
		t.Errorf("billing mode: %+v", tb.BillingModeSummary)
	}
	if len(tb.GlobalSecondaryIndexes) != 1 || aws.ToString(tb.GlobalSecondaryIndexes[0].IndexName) != dynamocatalog.ByBatchIndex {
		t.Fatalf("indexes: %+v", tb.GlobalSecondaryIndexes)
	}
	ix := tb.GlobalSecondaryIndexes[0]
	if p := ix.Projection; p == nil || p.ProjectionType != types.ProjectionTypeInclude || !slices.Equal(p.NonKeyAttributes, []string{"sheet"}) {
		t.Errorf("index projection: %+v", p)
	}

	// A table of the same name without the index is refused.
	other := awstest.Name("not-products")
	in := dynamocatalog.TableInput(other)
	in.GlobalSecondaryIndexes = nil
	in.AttributeDefinitions = in.AttributeDefinitions[:1]
	if _, err := client.CreateTable(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	if err := dynamocatalog.CreateTable(t.Context(), client, other); err == nil {
		t.Errorf("CreateTable of a table without %s: no error", dynamocatalog.ByBatchIndex)
	}
}

// requests counts the requests a client sends (every attempt), by
// operation, and the cancelled transactions.
type requests struct {
	mu sync.Mutex
	n  map[string]int
}

func (r *requests) option(stack *middleware.Stack) error {
	return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("countRequests",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			op := awsmiddleware.GetOperationName(ctx)
			out, md, err := next.HandleFinalize(ctx, in)
			var cancelled *types.TransactionCanceledException
			r.mu.Lock()
			r.n[op]++
			if errors.As(err, &cancelled) {
				r.n[op+" cancelled"]++
			}
			r.mu.Unlock()
			return out, md, err
		}), middleware.After)
}

func (r *requests) take() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.n
	r.n = map[string]int{}
	return n
}

var writeOps = []string{"TransactWriteItems", "BatchWriteItem", "PutItem", "UpdateItem", "DeleteItem"}

func product(batch, sku string, sheetIndex int, row int64) catalog.Product {
	sheet := "-"
	if sheetIndex > 0 {
		sheet = fmt.Sprintf("Sheet%d", sheetIndex+1)
	}
	return catalog.Product{
		SKU: sku, Name: "Product " + sku, Category: "电子/鼠标", Price: fmt.Sprintf("%d.%02d", row%1000, row%100),
		Currency: "CNY", Stock: row, Status: "active", Description: fmt.Sprintf("row %d of %s", row, batch),
		ImageURLs: []string{"https://img.example.com/" + sku + ".jpg"},
		BatchID:   batch, Source: catalog.Position{SheetIndex: sheetIndex, Sheet: sheet, Row: row},
		Offset: 100 * row, Length: 90 + row%7,
	}
}

// TestWriteRequests: 1,000 new products in Write calls of 100 cost one
// TransactWriteItems and one BatchGetItem per call (the pipeline's budget is
// 45 write requests per 1,000 rows).
func TestWriteRequests(t *testing.T) {
	count := &requests{n: map[string]int{}}
	client := awstest.Clients(t, count.option).DynamoDB
	s := newSink(t, client)
	batch := awstest.Name("batch")
	var ps []catalog.Product
	for row := int64(2); row < 1002; row++ {
		ps = append(ps, product(batch, fmt.Sprintf("%s-%04d", batch, row), 0, row))
	}
	write := func(ps []catalog.Product) {
		t.Helper()
		for call := range slices.Chunk(ps, 100) {
			out, err := s.Write(t.Context(), catalog.Upsert, call)
			if err != nil {
				t.Fatal(err)
			}
			for i, o := range out {
				if o.Result != catalog.Written || len(o.Displaced) > 0 {
					t.Fatalf("%s: outcome %+v", call[i].SKU, o)
				}
			}
		}
	}
	check := func(what string, calls int) {
		t.Helper()
		n := count.take()
		writes := 0
		for _, op := range writeOps {
			writes += n[op]
		}
		t.Logf("%s: requests by operation: %v", what, n)
		if writes > calls {
			t.Errorf("%s: %d write requests for %d calls of 100 products, want <= %d", what, writes, calls, calls)
		}
		if n["BatchGetItem"] > calls {
			t.Errorf("%s: %d BatchGetItem requests for %d calls of 100 products, want <= %d", what, n["BatchGetItem"], calls, calls)
		}
	}
	count.take()
	write(ps)
	check("1,000 new products", 10)
	write(ps[:100]) // a replay costs the same
	check("replay of 100 products", 1)
	n, err := s.CountBatch(t.Context(), batch, "", 0, 1<<62)
	if err != nil || n != 1000 {
		t.Errorf("CountBatch = %d, %v; want 1000", n, err)
	}
}

// TestConcurrentSameSKUs: two writers store the same SKUs of one batch at
// different positions at the same time, round after round; the lowest
// position always ends stored, and the other row is always reported, either
// as Duplicate (of the lowest) or as Displaced (by the lowest), exactly as it
// was written.
func TestConcurrentSameSKUs(t *testing.T) {
	count := &requests{n: map[string]int{}}
	client := awstest.Clients(t, count.option).DynamoDB
	const rounds, skus = 25, 60
	rng := rand.New(rand.NewPCG(7, 11))
	for round := range rounds {
		s := newSink(t, client) // a small table: moto copies it for every transaction item
		batch := awstest.Name("batch")
		var calls [2][]catalog.Product
		lowest := map[string]catalog.Product{}
		higher := map[string]catalog.Product{}
		for k := range skus {
			sku := fmt.Sprintf("%s-%03d", batch, k)
			// Distinct positions, the lower one on a random side; some
			// pairs differ by sheet only.
			a := product(batch, sku, rng.IntN(2), int64(2+rng.IntN(500)))
			b := product(batch, sku, rng.IntN(2), int64(2+rng.IntN(500)))
			for !a.Source.Less(b.Source) && !b.Source.Less(a.Source) {
				b = product(batch, sku, rng.IntN(2), int64(2+rng.IntN(500)))
			}
			calls[0], calls[1] = append(calls[0], a), append(calls[1], b)
			lo, hi := a, b
			if b.Source.Less(a.Source) {
				lo, hi = b, a
			}
			lowest[sku], higher[sku] = lo, hi
		}
		for w := range calls {
			rng.Shuffle(skus, func(i, j int) { calls[w][i], calls[w][j] = calls[w][j], calls[w][i] })
		}
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			outs  [2][]catalog.Outcome
			errs  [2]error
		)
		for w := range calls {
			// Each writer sends its rows in calls of random sizes.
			sizes := []int{}
			for left := skus; left > 0; {
				n := min(left, 1+rng.IntN(40))
				sizes = append(sizes, n)
				left -= n
			}
			wg.Go(func() {
				<-start
				rest := calls[w]
				for _, n := range sizes {
					out, err := s.Write(t.Context(), catalog.Upsert, rest[:n])
					if err != nil {
						errs[w] = err
						return
					}
					outs[w] = append(outs[w], out...)
					rest = rest[n:]
				}
			})
		}
		close(start)
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		reported := map[string]int{}
		for w := range calls {
			for i, o := range outs[w] {
				p := calls[w][i]
				lo, hi := lowest[p.SKU], higher[p.SKU]
				switch {
				case o.Result == catalog.Duplicate && p.Source == hi.Source && o.Holder == lo.Source:
					reported[p.SKU]++
				case o.Result == catalog.Written && p.Source == hi.Source && len(o.Displaced) == 0:
				case o.Result == catalog.Written && p.Source == lo.Source && len(o.Displaced) == 0:
				case o.Result == catalog.Written && p.Source == lo.Source:
					want := []catalog.Product{{SKU: hi.SKU, BatchID: batch, Source: hi.Source, Offset: hi.Offset, Length: hi.Length}}
					if d := cmp.Diff(want, o.Displaced); d != "" {
						t.Errorf("round %d: %s at %s: displaced (-want +got):\n%s", round, p.SKU, p.Source, d)
					}
					reported[p.SKU]++
				default:
					t.Errorf("round %d: %s at %s (lowest %s): unexpected outcome %+v", round, p.SKU, p.Source, lo.Source, o)
				}
			}
		}
		for sku, lo := range lowest {
			if reported[sku] != 1 {
				t.Errorf("round %d: %s: the higher row %s was reported %d times, want once", round, sku, higher[sku].Source, reported[sku])
			}
			got, ok, err := s.Get(t.Context(), sku)
			if err != nil || !ok {
				t.Fatalf("round %d: Get(%s) = %v, %v", round, sku, ok, err)
			}
			if d := cmp.Diff(lo, got, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("round %d: stored %s (-want +got):\n%s", round, sku, d)
			}
		}
		if n, err := s.CountBatch(t.Context(), batch, "", 0, 1<<62); err != nil || n != skus {
			t.Errorf("round %d: CountBatch = %d, %v; want %d", round, n, err, skus)
		}
		if t.Failed() {
			return
		}
	}
	n := count.take()
	t.Logf("requests by operation: %v", n)
	if n["TransactWriteItems cancelled"] == 0 {
		t.Errorf("no transaction was cancelled in %d rounds: the writers did not race", rounds)
	}
}

// inject makes TransactWriteItems fail as fail says (nil: send it) for the
// call-th request (from 1), without sending it.
type inject struct {
	mu    sync.Mutex
	calls int
	fail  func(call int, in *dynamodb.TransactWriteItemsInput) error
}

func (j *inject) option(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("inject",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			if tx, ok := in.Parameters.(*dynamodb.TransactWriteItemsInput); ok {
				j.mu.Lock()
				j.calls++
				err := j.fail(j.calls, tx)
				j.mu.Unlock()
				if err != nil {
					return middleware.InitializeOutput{}, middleware.Metadata{}, err
				}
			}
			return next.HandleInitialize(ctx, in)
		}), middleware.After)
}

// cancelled returns the cancellation of tx with code for its first item
// (and item, when given) and None for the others.
func cancelled(tx *dynamodb.TransactWriteItemsInput, code string, item map[string]types.AttributeValue) error {
	reasons := make([]types.CancellationReason, len(tx.TransactItems))
	for i := range reasons {
		reasons[i].Code = aws.String("None")
	}
	reasons[0] = types.CancellationReason{Code: aws.String(code), Message: aws.String("injected"), Item: item}
	return &types.TransactionCanceledException{Message: aws.String("injected"), CancellationReasons: reasons}
}

// TestCancellations: a Write recovers from cancelled transactions it is
// told about (conflicts, items changed with or without the current item,
// even a wrong one), and gives up after MaxAttempts conflicts.
func TestCancellations(t *testing.T) {
	// fake claims that a higher row of the batch holds the SKU: the Write
	// then puts its row conditioned on that holder, which fails, and the
	// real item (none) is read again. (A wrong lower holder would make the
	// row a Duplicate without writing, undetectable: DynamoDB returns the
	// real item.)
	fake := map[string]types.AttributeValue{
		"sku": &types.AttributeValueMemberS{Value: ""}, "batch_id": &types.AttributeValueMemberS{Value: ""},
		"sheet": &types.AttributeValueMemberS{Value: "-"}, "sheet_index": &types.AttributeValueMemberN{Value: "0"},
		"row": &types.AttributeValueMemberN{Value: "1000"},
	}
	for _, tc := range []struct {
		name  string
		fails int // requests that fail
		code  string
		item  bool
	}{
		{"TransactionConflict", 3, "TransactionConflict", false},
		{"ThrottlingError", 1, "ThrottlingError", false},
		{"ConditionalCheckFailedWithoutItem", 2, "ConditionalCheckFailed", false},
		{"ConditionalCheckFailedWithAWrongItem", 1, "ConditionalCheckFailed", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			batch := awstest.Name("batch")
			var ps []catalog.Product
			for row := int64(2); row < 12; row++ {
				ps = append(ps, product(batch, fmt.Sprintf("%s-%d", batch, row%5), 0, row))
			}
			j := &inject{fail: func(call int, tx *dynamodb.TransactWriteItemsInput) error {
				if call > tc.fails {
					return nil
				}
				var item map[string]types.AttributeValue
				if tc.item {
					item = maps.Clone(fake)
					item["sku"] = tx.TransactItems[0].Put.Item["sku"]
					item["batch_id"] = &types.AttributeValueMemberS{Value: batch}
				}
				return cancelled(tx, tc.code, item)
			}}
			client := awstest.Clients(t, j.option).DynamoDB
			s := dynamocatalog.New(client, newTable(t, client), dynamocatalog.Options{BaseDelay: time.Millisecond})
			out, err := s.Write(t.Context(), catalog.Upsert, ps)
			if err != nil {
				t.Fatal(err)
			}
			for i, o := range out {
				want := catalog.Outcome{Result: catalog.Written}
				if i >= 5 {
					want = catalog.Outcome{Result: catalog.Duplicate, Holder: ps[i-5].Source}
				}
				if d := cmp.Diff(want, o, cmpopts.EquateEmpty()); d != "" {
					t.Errorf("outcome of %s at %s (-want +got):\n%s", ps[i].SKU, ps[i].Source, d)
				}
			}
			for _, p := range ps[:5] {
				got, ok, err := s.Get(t.Context(), p.SKU)
				if err != nil || !ok {
					t.Fatalf("Get(%s) = %v, %v", p.SKU, ok, err)
				}
				if d := cmp.Diff(p, got, cmpopts.EquateEmpty()); d != "" {
					t.Errorf("stored %s (-want +got):\n%s", p.SKU, d)
				}
			}
			if j.calls != tc.fails+1 && !tc.item {
				t.Errorf("%d TransactWriteItems requests, want %d", j.calls, tc.fails+1)
			}
		})
	}

	t.Run("ConflictsExhaustAttempts", func(t *testing.T) {
		t.Parallel()
		j := &inject{fail: func(_ int, tx *dynamodb.TransactWriteItemsInput) error {
			return cancelled(tx, "TransactionConflict", nil)
		}}
		client := awstest.Clients(t, j.option).DynamoDB
		s := dynamocatalog.New(client, newTable(t, client), dynamocatalog.Options{MaxAttempts: 3, BaseDelay: time.Millisecond})
		batch := awstest.Name("batch")
		_, err := s.Write(t.Context(), catalog.Upsert, []catalog.Product{product(batch, batch+"-1", 0, 2)})
		if r := failure.ReasonOf(err); r != failure.Throttled {
			t.Errorf("error %v: reason %s, want %s", err, r, failure.Throttled)
		}
		if j.calls != 3 {
			t.Errorf("%d TransactWriteItems requests, want 3", j.calls)
		}
	})
}

// TestRetryAfterPartialWrite: a Write whose third transaction fails has
// stored its first two; the retry of the same call reports what a Write that
// never failed reports (a replayed SKU repeats the rows its item displaced).
func TestRetryAfterPartialWrite(t *testing.T) {
	j := &inject{fail: func(int, *dynamodb.TransactWriteItemsInput) error { return nil }}
	client := awstest.Clients(t, j.option).DynamoDB
	s := newSink(t, client)
	batch := awstest.Name("batch")
	var low, high []catalog.Product
	for k := range 250 {
		sku := fmt.Sprintf("%s-%03d", batch, k)
		low = append(low, product(batch, sku, 0, int64(2+k)))
		high = append(high, product(batch, sku, 1, int64(2+k)))
	}
	if _, err := s.Write(t.Context(), catalog.Upsert, high); err != nil {
		t.Fatal(err)
	}
	j.mu.Lock()
	j.calls = 0
	j.fail = func(call int, tx *dynamodb.TransactWriteItemsInput) error {
		if call == 3 {
			return cancelled(tx, "ValidationError", nil)
		}
		return nil
	}
	j.mu.Unlock()
	if _, err := s.Write(t.Context(), catalog.Upsert, low); err == nil {
		t.Fatal("Write with a failing transaction: no error")
	}
	if got, _, _ := s.Get(t.Context(), low[0].SKU); got.Source != low[0].Source {
		t.Fatalf("the first transaction was not stored: %s holds %s", low[0].SKU, got.Source)
	}
	if got, _, _ := s.Get(t.Context(), low[249].SKU); got.Source != high[249].Source {
		t.Fatalf("the third transaction was stored: %s holds %s", low[249].SKU, got.Source)
	}
	out, err := s.Write(t.Context(), catalog.Upsert, low)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range out {
		h := high[i]
		want := catalog.Outcome{Result: catalog.Written, Displaced: []catalog.Product{
			{SKU: h.SKU, BatchID: batch, Source: h.Source, Offset: h.Offset, Length: h.Length}}}
		if d := cmp.Diff(want, o); d != "" {
			t.Fatalf("outcome of %s after the retry (-want +got):\n%s", low[i].SKU, d)
		}
	}
	if n, err := s.CountBatch(t.Context(), batch, "-", 0, 1000); err != nil || n != 250 {
		t.Errorf("CountBatch(sheet -) = %d, %v; want 250", n, err)
	}
	if n, err := s.CountBatch(t.Context(), batch, "Sheet2", 0, 1000); err != nil || n != 0 {
		t.Errorf("CountBatch(Sheet2) = %d, %v; want 0", n, err)
	}
}

// TestItemsBeforeStamps: an item written before stamps and versions (no
// stamps, no version attribute) exists with every stamp 0; an ordered
// partial write changes its present fields only (the condition recognises it
// by its provenance) and gives it stamps and a version.
func TestItemsBeforeStamps(t *testing.T) {
	client := awstest.Clients(t).DynamoDB
	table := newTable(t, client)
	s := dynamocatalog.New(client, table, dynamocatalog.Options{})
	old := catalog.Product{SKU: "SKU-old", Name: "Old name", Category: "Old/cat", Price: "1.00", Currency: "CNY", Stock: 5,
		Status: "active", BatchID: "b-old", Source: catalog.Position{Sheet: "-", Row: 2}, Offset: 100, Length: 40}
	_, err := client.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]types.AttributeValue{
		"sku": &types.AttributeValueMemberS{Value: old.SKU}, "name": &types.AttributeValueMemberS{Value: old.Name},
		"category": &types.AttributeValueMemberS{Value: old.Category}, "price": &types.AttributeValueMemberS{Value: old.Price},
		"currency": &types.AttributeValueMemberS{Value: old.Currency}, "stock": &types.AttributeValueMemberN{Value: "5"},
		"status": &types.AttributeValueMemberS{Value: old.Status}, "batch_id": &types.AttributeValueMemberS{Value: old.BatchID},
		"sheet": &types.AttributeValueMemberS{Value: "-"}, "sheet_index": &types.AttributeValueMemberN{Value: "0"},
		"row": &types.AttributeValueMemberN{Value: "2"}, "offset": &types.AttributeValueMemberN{Value: "100"},
		"length": &types.AttributeValueMemberN{Value: "40"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if p, ok, err := s.Get(t.Context(), old.SKU); err != nil || !ok || !cmp.Equal(p, old, cmpopts.EquateEmpty()) {
		t.Fatalf("Get of an item before stamps = %+v, %v, %v; want %+v", p, ok, err, old)
	}
	price, err := catalog.FieldsOf("price")
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Write(t.Context(), catalog.Upsert, []catalog.Product{{SKU: old.SKU, Price: "2.00", Category: "default",
		BatchID: "b-new", Source: catalog.Position{Sheet: "-", Row: 2}, Order: 7, Present: price}})
	if err != nil || out[0].Result != catalog.Written {
		t.Fatalf("Write = %+v, %v", out, err)
	}
	want := old
	want.Price, want.BatchID, want.Offset, want.Length, want.Order = "2.00", "b-new", 0, 0, 7
	if p, ok, err := s.Get(t.Context(), old.SKU); err != nil || !ok || !cmp.Equal(p, want, cmpopts.EquateEmpty()) {
		t.Errorf("Get after a partial write = %+v, %v, %v; want %+v", p, ok, err, want)
	}
	st, ok, err := s.Stamps(t.Context(), old.SKU)
	if err != nil || !ok || st.Fields[catalog.FieldPrice] != 7 || st.Fields[catalog.FieldName] != 0 || st.Created != 7 {
		t.Errorf("Stamps = %+v, %v, %v", st, ok, err)
	}
}
