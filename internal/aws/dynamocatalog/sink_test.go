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
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/catalog-import/catalog-import/internal/aws/awstest"
	"github.com/catalog-import/catalog-import/internal/aws/dynamoattr"
	"github.com/catalog-import/catalog-import/internal/aws/dynamocatalog"
	"github.com/catalog-import/catalog-import/internal/catalog"
	"github.com/catalog-import/catalog-import/internal/catalog/catalogtest"
	"github.com/catalog-import/catalog-import/internal/failure"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// newSink returns a Sink of a products table of its own (the harness's
// clients send one DynamoDB request at a time: moto applies a conditional
// write atomically only then).
func newSink(t *testing.T, client *dynamodb.Client, o dynamocatalog.Options) *dynamocatalog.Sink {
	t.Helper()
	return dynamocatalog.New(client, newTable(t, client), o)
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

// TestContract runs the sink contract under each read policy: reading every
// SKU first, writing blind first, and the default that switches between them
// by the share of SKUs it finds stored (it reads first, then writes blind
// once a call found nothing).
func TestContract(t *testing.T) {
	client := awstest.Clients(t).DynamoDB
	for _, tc := range []struct {
		name  string
		reads dynamocatalog.Reads
		cases int
	}{
		{"ReadsAuto", dynamocatalog.ReadsAuto, 24},
		{"ReadsAlways", dynamocatalog.ReadsAlways, 12},
		{"ReadsNever", dynamocatalog.ReadsNever, 12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			catalogtest.RunWith(t, func(t *testing.T) interface {
				catalog.Sink
				catalog.Reader
			} {
				return newSink(t, client, dynamocatalog.Options{Reads: tc.reads})
			}, catalogtest.Options{PropertyCases: tc.cases})
		})
	}
}

// TestCreateTableIsIdempotent: the table is keyed by sku alone and has no
// index (decision 29); creating it again changes nothing; a table made
// before, with the by_batch index, is accepted; a table keyed otherwise is
// refused.
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
	if len(tb.GlobalSecondaryIndexes) != 0 {
		t.Errorf("indexes: %+v, want none (each would cost a write unit per product)", tb.GlobalSecondaryIndexes)
	}

	// The table as template.yaml declared it before decision 29.
	old := awstest.Name("products-by-batch")
	in := dynamocatalog.TableInput(old)
	in.AttributeDefinitions = append(in.AttributeDefinitions,
		types.AttributeDefinition{AttributeName: aws.String("batch_id"), AttributeType: types.ScalarAttributeTypeS},
		types.AttributeDefinition{AttributeName: aws.String("row"), AttributeType: types.ScalarAttributeTypeN})
	in.GlobalSecondaryIndexes = []types.GlobalSecondaryIndex{{
		IndexName: aws.String("by_batch"),
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String("batch_id"), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String("row"), KeyType: types.KeyTypeRange},
		},
		Projection: &types.Projection{ProjectionType: types.ProjectionTypeInclude, NonKeyAttributes: []string{"sheet"}},
	}}
	if _, err := client.CreateTable(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	if err := dynamocatalog.CreateTable(t.Context(), client, old); err != nil {
		t.Errorf("CreateTable of a table with the by_batch index: %v", err)
	}

	// A table of the same name keyed otherwise is refused.
	other := awstest.Name("not-products")
	in = dynamocatalog.TableInput(other)
	in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{AttributeName: aws.String("row"), AttributeType: types.ScalarAttributeTypeN})
	in.KeySchema = append(in.KeySchema, types.KeySchemaElement{AttributeName: aws.String("row"), KeyType: types.KeyTypeRange})
	if _, err := client.CreateTable(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	if err := dynamocatalog.CreateTable(t.Context(), client, other); err == nil {
		t.Errorf("CreateTable of a table keyed by sku and row: no error")
	}
}

// requests counts the requests a client sends, by operation, the puts whose condition failed, the reads by consistency, and
// the largest item put.
type requests struct {
	mu      sync.Mutex
	n       map[string]int
	maxItem int
}

func (r *requests) option(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("countRequests",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			op := awsmiddleware.GetOperationName(ctx)
			params := in.Parameters
			out, md, err := next.HandleInitialize(ctx, in)
			var failed *types.ConditionalCheckFailedException
			r.mu.Lock()
			defer r.mu.Unlock()
			r.n[op]++
			if errors.As(err, &failed) {
				r.n[op+" condition failed"]++
			}
			switch p := params.(type) {
			case *dynamodb.BatchGetItemInput:
				for _, ka := range p.RequestItems {
					if aws.ToBool(ka.ConsistentRead) {
						r.n["BatchGetItem consistent"]++
					}
				}
			case *dynamodb.PutItemInput:
				r.maxItem = max(r.maxItem, dynamoattr.Size(p.Item))
			}
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

// TestWriteRequests: what a Write costs in requests and write units under
// the default read policy. 1,000 new products in calls of 100: the first call
// reads (one BatchGetItem, eventually consistent) and finds nothing, the
// others write blind: one PutItem per product and no other write, each item
// under 1 KB (one write unit). A newer batch of the same SKUs: its first call
// reads again (another batch), finds every SKU, and so does every later
// call: one BatchGetItem and one put per product per call, no failed
// condition.
func TestWriteRequests(t *testing.T) {
	count := &requests{n: map[string]int{}}
	client := awstest.Clients(t, count.option).DynamoDB
	s := newSink(t, client, dynamocatalog.Options{})
	batch := awstest.Name("batch")
	var ps []catalog.Product
	for row := int64(2); row < 1002; row++ {
		ps = append(ps, product(batch, fmt.Sprintf("%s-%04d", batch, row), 0, row))
	}
	write := func(ps []catalog.Product, order int64) {
		t.Helper()
		for call := range slices.Chunk(ps, 100) {
			call = slices.Clone(call)
			for i := range call {
				call[i].Order = order
				call[i].BatchID = fmt.Sprintf("%s-%d", batch, order)
			}
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
	check := func(what string, want map[string]int) {
		t.Helper()
		n := count.take()
		t.Logf("%s: requests by operation: %v", what, n)
		// A put the SDK sends again finds its own item and fails its
		// condition (a replay): count the puts that did not fail, and allow
		// a few such retries (a blind newer batch would fail 100).
		n["PutItem"] -= n["PutItem condition failed"]
		for _, op := range append(writeOps, "BatchGetItem", "BatchGetItem consistent") {
			if n[op] != want[op] {
				t.Errorf("%s: %d %s requests, want %d", what, n[op], op, want[op])
			}
		}
		if f := n["PutItem condition failed"]; f > 5 {
			t.Errorf("%s: %d puts failed their condition, want none (but a few retries)", what, f)
		}
	}
	count.take()
	write(ps, 1)
	check("1,000 new products", map[string]int{"BatchGetItem": 1, "PutItem": 1000})
	if count.maxItem > 1024 {
		t.Errorf("largest product item %d bytes: over 1 KB, more than one write unit", count.maxItem)
	}
	write(ps, 2)
	check("the same SKUs from a newer batch", map[string]int{"BatchGetItem": 10, "PutItem": 1000})
	n, err := s.CountBatch(t.Context(), batch+"-2", "", 0, 1<<62)
	if err != nil || n != 1000 {
		t.Errorf("CountBatch = %d, %v; want 1000", n, err)
	}
}

// TestFirstCallOfABatchReadsASample: the first Write call of a batch reads
// 100 of its SKUs (one BatchGetItem) and reads the rest only when one in ten
// or more of the sample is stored, so neither a big first call of new
// products (all read) nor the first call of an update feed after new
// products (all put blind, each failing its condition) costs a unit per
// SKU it need not.
func TestFirstCallOfABatchReadsASample(t *testing.T) {
	count := &requests{n: map[string]int{}}
	client := awstest.Clients(t, count.option).DynamoDB
	s := newSink(t, client, dynamocatalog.Options{})
	base := awstest.Name("batch")
	call := func(batch string, order int64) []catalog.Product {
		var ps []catalog.Product
		for row := int64(2); row < 302; row++ {
			p := product(batch, fmt.Sprintf("%s-%04d", base, row), 0, row)
			p.Order = order
			ps = append(ps, p)
		}
		return ps
	}
	for _, tc := range []struct {
		what  string
		batch string
		order int64
		want  map[string]int
	}{
		{"300 new products, a batch's first call", base + "-a", 1, map[string]int{"BatchGetItem": 1, "PutItem": 300}},
		{"the same 300 SKUs, another batch's first call", base + "-b", 2, map[string]int{"BatchGetItem": 3, "PutItem": 300}},
	} {
		count.take()
		out, err := s.Write(t.Context(), catalog.Upsert, call(tc.batch, tc.order))
		if err != nil {
			t.Fatal(err)
		}
		for i, o := range out {
			if o.Result != catalog.Written {
				t.Fatalf("%s: product %d: outcome %+v", tc.what, i, o)
			}
		}
		// A put the SDK sends again (a response lost or garbled on a loaded
		// machine) finds its own item and fails its condition: a replay,
		// Written. So the puts that did not fail are counted, and failed
		// ones are allowed only as such retries, far from the 300 a blind
		// first call of the second batch would fail.
		n := count.take()
		n["PutItem"] -= n["PutItem condition failed"]
		for _, op := range append(writeOps, "BatchGetItem") {
			if n[op] != tc.want[op] {
				t.Errorf("%s: %d %s requests, want %d", tc.what, n[op], op, tc.want[op])
			}
		}
		if f := n["PutItem condition failed"]; f > 5 {
			t.Errorf("%s: %d puts failed their condition, want none (but a few retries)", tc.what, f)
		}
	}
}

// TestReadsByMode: reads are strongly consistent only where an outcome that
// writes nothing depends on existence now (update, create-only); update
// reads even when told to write blind (a blind update writes nothing that
// could check it).
func TestReadsByMode(t *testing.T) {
	count := &requests{n: map[string]int{}}
	client := awstest.Clients(t, count.option).DynamoDB
	for _, tc := range []struct {
		mode              catalog.WriteMode
		reads             dynamocatalog.Reads
		batchGets, strong int
	}{
		{catalog.Upsert, dynamocatalog.ReadsAlways, 1, 0},
		{catalog.Replace, dynamocatalog.ReadsAlways, 1, 0},
		{catalog.Delete, dynamocatalog.ReadsAlways, 1, 0},
		{catalog.CreateOnly, dynamocatalog.ReadsAlways, 1, 1},
		{catalog.Update, dynamocatalog.ReadsAlways, 1, 1},
		{catalog.Update, dynamocatalog.ReadsNever, 1, 1},
		{catalog.Upsert, dynamocatalog.ReadsNever, 0, 0},
	} {
		s := newSink(t, client, dynamocatalog.Options{Reads: tc.reads})
		batch := awstest.Name("batch")
		count.take()
		out, err := s.Write(t.Context(), tc.mode, []catalog.Product{product(batch, batch+"-1", 0, 2), product(batch, batch+"-2", 0, 3)})
		if err != nil {
			t.Fatal(err)
		}
		want := catalog.Written
		if tc.mode == catalog.Update {
			want = catalog.Unknown
		}
		if out[0].Result != want || out[1].Result != want {
			t.Errorf("%s, reads %d: outcomes %+v, want %s", tc.mode, tc.reads, out, want)
		}
		n := count.take()
		if n["BatchGetItem"] != tc.batchGets || n["BatchGetItem consistent"] != tc.strong {
			t.Errorf("%s, reads %d: %d BatchGetItem (%d consistent), want %d (%d)", tc.mode, tc.reads,
				n["BatchGetItem"], n["BatchGetItem consistent"], tc.batchGets, tc.strong)
		}
	}
}

// TestConcurrentSameSKUs: two writers store the same SKUs of one batch at
// different positions at the same time, round after round; the lowest
// position always ends stored, and the other row is always reported, either
// as Duplicate (of the lowest) or as Displaced (by the lowest), exactly as it
// was written. Rounds alternate between reading first and writing blind.
func TestConcurrentSameSKUs(t *testing.T) {
	count := &requests{n: map[string]int{}}
	client := awstest.Clients(t, count.option).DynamoDB
	const rounds, skus = 24, 60
	rng := rand.New(rand.NewPCG(7, 11))
	for round := range rounds {
		reads := dynamocatalog.ReadsAlways
		if round%2 == 1 {
			reads = dynamocatalog.ReadsNever
		}
		s := newSink(t, client, dynamocatalog.Options{Reads: reads, InFlight: 4})
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
	if n["PutItem condition failed"] == 0 {
		t.Errorf("no put failed its condition in %d rounds: the writers did not race", rounds)
	}
}

// inject makes PutItem fail as fail says (nil: send it) for the call-th
// request (from 1), without sending it.
type inject struct {
	mu    sync.Mutex
	calls int
	fail  func(call int, in *dynamodb.PutItemInput) error
}

func (j *inject) option(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("inject",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			if put, ok := in.Parameters.(*dynamodb.PutItemInput); ok {
				j.mu.Lock()
				j.calls++
				err := j.fail(j.calls, put)
				j.mu.Unlock()
				if err != nil {
					return middleware.InitializeOutput{}, middleware.Metadata{}, err
				}
			}
			return next.HandleInitialize(ctx, in)
		}), middleware.After)
}

// TestPutFailures: a Write recovers from failed puts it is told about
// (throttling, a 5xx, a failed condition with or without the current item,
// even a wrong one), and gives up after MaxAttempts throttled tries.
func TestPutFailures(t *testing.T) {
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
		puts  int // PutItem requests in all
		err   func(in *dynamodb.PutItemInput, batch string) error
	}{
		{"Throttling", 3, 8, func(*dynamodb.PutItemInput, string) error {
			return &smithy.GenericAPIError{Code: "ThrottlingException", Message: "injected"}
		}},
		{"InternalServerError", 2, 7, func(*dynamodb.PutItemInput, string) error {
			return &smithy.GenericAPIError{Code: "InternalServerError", Message: "injected"}
		}},
		{"ConditionalCheckFailedWithoutItem", 2, 7, func(*dynamodb.PutItemInput, string) error {
			return &types.ConditionalCheckFailedException{Message: aws.String("injected")}
		}},
		// The put conditioned on the wrong item fails in moto too.
		{"ConditionalCheckFailedWithAWrongItem", 1, 7, func(in *dynamodb.PutItemInput, batch string) error {
			item := maps.Clone(fake)
			item["sku"] = in.Item["sku"]
			item["batch_id"] = &types.AttributeValueMemberS{Value: batch}
			return &types.ConditionalCheckFailedException{Message: aws.String("injected"), Item: item}
		}},
	} {
		for _, reads := range []dynamocatalog.Reads{dynamocatalog.ReadsAlways, dynamocatalog.ReadsNever} {
			t.Run(fmt.Sprintf("%s/reads=%d", tc.name, reads), func(t *testing.T) {
				t.Parallel()
				batch := awstest.Name("batch")
				var ps []catalog.Product
				for row := int64(2); row < 12; row++ {
					ps = append(ps, product(batch, fmt.Sprintf("%s-%d", batch, row%5), 0, row))
				}
				j := &inject{fail: func(call int, in *dynamodb.PutItemInput) error {
					if call > tc.fails {
						return nil
					}
					return tc.err(in, batch)
				}}
				client := awstest.Clients(t, j.option).DynamoDB
				s := newSink(t, client, dynamocatalog.Options{BaseDelay: time.Millisecond, Reads: reads})
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
				if j.calls != tc.puts {
					t.Errorf("%d PutItem requests, want %d (5 SKUs, %d failed)", j.calls, tc.puts, tc.fails)
				}
			})
		}
	}

	t.Run("ThrottlingExhaustsAttempts", func(t *testing.T) {
		t.Parallel()
		j := &inject{fail: func(int, *dynamodb.PutItemInput) error {
			return &smithy.GenericAPIError{Code: "ProvisionedThroughputExceededException", Message: "injected"}
		}}
		client := awstest.Clients(t, j.option).DynamoDB
		s := newSink(t, client, dynamocatalog.Options{MaxAttempts: 3, BaseDelay: time.Millisecond})
		batch := awstest.Name("batch")
		_, err := s.Write(t.Context(), catalog.Upsert, []catalog.Product{product(batch, batch+"-1", 0, 2)})
		if r := failure.ReasonOf(err); r != failure.Throttled {
			t.Errorf("error %v: reason %s, want %s", err, r, failure.Throttled)
		}
		if j.calls != 3 {
			t.Errorf("%d PutItem requests, want 3", j.calls)
		}
	})
}

// TestRetryAfterPartialWrite: a Write whose 151st put fails (one put in
// flight, so the first 150 SKUs are stored and the rest not) is retried; the
// retry reports what a Write that never failed reports (a replayed SKU
// repeats the rows its item displaced).
func TestRetryAfterPartialWrite(t *testing.T) {
	j := &inject{fail: func(int, *dynamodb.PutItemInput) error { return nil }}
	client := awstest.Clients(t, j.option).DynamoDB
	s := newSink(t, client, dynamocatalog.Options{InFlight: 1})
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
	j.fail = func(call int, _ *dynamodb.PutItemInput) error {
		if call == 151 {
			return &smithy.GenericAPIError{Code: "ValidationException", Message: "injected"}
		}
		return nil
	}
	j.mu.Unlock()
	if _, err := s.Write(t.Context(), catalog.Upsert, low); err == nil {
		t.Fatal("Write with a failing put: no error")
	}
	if got, _, _ := s.Get(t.Context(), low[0].SKU); got.Source != low[0].Source {
		t.Fatalf("the first put was not stored: %s holds %s", low[0].SKU, got.Source)
	}
	if got, _, _ := s.Get(t.Context(), low[249].SKU); got.Source != high[249].Source {
		t.Fatalf("a put after the failed one was stored: %s holds %s", low[249].SKU, got.Source)
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
