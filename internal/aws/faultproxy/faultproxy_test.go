package faultproxy_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/catalog-import/catalog-import/internal/aws/awserr"
	"github.com/catalog-import/catalog-import/internal/aws/awstest"
	"github.com/catalog-import/catalog-import/internal/aws/faultproxy"
	"github.com/catalog-import/catalog-import/internal/failure"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// TestFaultsAreServiceErrors: each injected fault reaches the SDK as that
// service's own error and is classified as the reason the engine acts on.
func TestFaultsAreServiceErrors(t *testing.T) {
	cfg := awstest.Clients(t).Config
	calls := map[string]func(ctx context.Context, ep string) error{
		"dynamodb": func(ctx context.Context, ep string) error {
			_, err := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(ep); o.RetryMaxAttempts = 1 }).
				ListTables(ctx, &dynamodb.ListTablesInput{})
			return err
		},
		"s3": func(ctx context.Context, ep string) error {
			_, err := s3.NewFromConfig(cfg, func(o *s3.Options) { o.BaseEndpoint = aws.String(ep); o.UsePathStyle = true; o.RetryMaxAttempts = 1 }).
				ListBuckets(ctx, &s3.ListBucketsInput{})
			return err
		},
		"sqs": func(ctx context.Context, ep string) error {
			_, err := sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(ep); o.RetryMaxAttempts = 1 }).
				ListQueues(ctx, &sqs.ListQueuesInput{})
			return err
		},
	}
	cases := []struct {
		fault faultproxy.Fault
		want  failure.Reason
	}{
		{faultproxy.Throttle, failure.Throttled},
		{faultproxy.Internal, failure.ServiceUnavailable},
		{faultproxy.Stall, failure.NetworkTimeout},
		{faultproxy.Denied, failure.AccessDenied},
		{"", ""}, // rate 0: forwarded, no error
	}
	for svc, call := range calls {
		for _, c := range cases {
			t.Run(svc+"/"+string(c.fault), func(t *testing.T) {
				rate := 1.0
				if c.fault == "" {
					rate = 0
				}
				p, err := faultproxy.Start(faultproxy.Config{Target: awstest.Endpoint(t), Rate: rate, Faults: []faultproxy.Fault{c.fault}, Stall: 2 * time.Second})
				if err != nil {
					t.Fatal(err)
				}
				defer p.Close()
				// A stall outlasts the caller's 500 ms; anything else answers
				// at once, given time on a loaded machine.
				timeout := 10 * time.Second
				if c.fault == faultproxy.Stall {
					timeout = 500 * time.Millisecond
				}
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				defer cancel()
				err = call(ctx, p.URL)
				if got := awserr.Reason(err); got != c.want {
					t.Errorf("%s: reason %q (%v), want %q", c.fault, got, err, c.want)
				}
				if n, _ := p.Injected(); (n == 1) != (c.fault != "") {
					t.Errorf("%d faults injected", n)
				}
			})
		}
	}
}

// TestModel: behind a Model proxy a call takes at least its modeled
// latency (moto's time included, not added), and DynamoDB transactions
// conflict as on AWS: a transaction, or a plain write, of an item that a
// transaction in progress holds is refused with TransactionConflict; other
// items go through.
func TestModel(t *testing.T) {
	cfg := awstest.Clients(t).Config
	const lat = 300 * time.Millisecond
	p, err := faultproxy.Start(faultproxy.Config{Target: awstest.Endpoint(t), Model: &faultproxy.Model{
		Latencies: map[string]faultproxy.Latency{"dynamodb *": {Median: lat, P99: lat}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	db := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(p.URL); o.RetryMaxAttempts = 1 })
	ctx := t.Context()
	table := awstest.Name("model")
	if _, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{TableName: aws.String(table), BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}}}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := db.ListTables(ctx, &dynamodb.ListTablesInput{}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < lat {
		t.Errorf("a call took %v, under its modeled latency %v", d, lat)
	}

	item := func(pk string) map[string]types.AttributeValue {
		return map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}}
	}
	txn := func(pks ...string) error {
		in := &dynamodb.TransactWriteItemsInput{}
		for _, pk := range pks {
			in.TransactItems = append(in.TransactItems, types.TransactWriteItem{Put: &types.Put{TableName: aws.String(table), Item: item(pk)}})
		}
		_, err := db.TransactWriteItems(ctx, in)
		return err
	}
	held := make(chan error)
	go func() { held <- txn("a", "b") }()
	time.Sleep(lat / 3) // the first transaction is in progress
	err = txn("c", "b")
	var cancelled *types.TransactionCanceledException
	if !errors.As(err, &cancelled) || len(cancelled.CancellationReasons) != 2 ||
		aws.ToString(cancelled.CancellationReasons[0].Code) != "None" || aws.ToString(cancelled.CancellationReasons[1].Code) != "TransactionConflict" {
		t.Errorf("a transaction of a held item: %v, want cancelled with [None, TransactionConflict]", err)
	}
	_, err = db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item("a")})
	if awserr.Code(err) != "TransactionConflictException" {
		t.Errorf("a put of a held item: %v, want TransactionConflictException", err)
	}
	if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item("z")}); err != nil {
		t.Errorf("a put of another item: %v", err)
	}
	if err := <-held; err != nil {
		t.Fatalf("the first transaction: %v", err)
	}
	if err := txn("c", "b"); err != nil {
		t.Errorf("the transaction again, once the first ended: %v", err)
	}
	st := p.Stats()
	if st.Conflicts["dynamodb TransactWriteItems"] != 1 || st.Conflicts["dynamodb PutItem"] != 1 || st.Calls["dynamodb TransactWriteItems"] != 3 {
		t.Errorf("stats %+v", st)
	}
	if st.MotoBusy <= 0 || st.MotoBusy >= st.Wall {
		t.Errorf("moto busy %v of %v", st.MotoBusy, st.Wall)
	}
}
