package awsclient_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/catalog-import/catalog-import/internal/aws/awsclient"
	"github.com/catalog-import/catalog-import/internal/aws/awstest"
)

// TestConnectionsPerHost: the clients keep MaxIdleConnsPerHost connections
// per endpoint between calls (the SDK's default is 10, under the products
// sink's puts in flight), or as many as Settings.IdleConnsPerHost asks.
func TestConnectionsPerHost(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  int
		want int
	}{
		{"default", 0, awsclient.MaxIdleConnsPerHost},
		{"more for a large pool", 272, 272},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := awsclient.New(t.Context(), awsclient.Settings{Region: "us-east-1", Endpoint: "http://127.0.0.1:1", IdleConnsPerHost: tc.set})
			if err != nil {
				t.Fatal(err)
			}
			bc, ok := c.Config.HTTPClient.(*awshttp.BuildableClient)
			if !ok {
				t.Fatalf("HTTP client %T, want *http.BuildableClient", c.Config.HTTPClient)
			}
			if got := bc.GetTransport().MaxIdleConnsPerHost; got != tc.want || got < 16 {
				t.Errorf("MaxIdleConnsPerHost %d, want %d", got, tc.want)
			}
		})
	}
}

// TestTraceOptionsSkipBulkDynamoDB: TraceOptions reach every client but
// BulkDynamoDB (the products sink's, one request per product); APIOptions
// reach all of them; without TraceOptions BulkDynamoDB is DynamoDB.
func TestTraceOptionsSkipBulkDynamoDB(t *testing.T) {
	endpoint := awstest.Canned(t)
	counter := func(n *int) func(*middleware.Stack) error {
		return func(s *middleware.Stack) error {
			return s.Initialize.Add(middleware.InitializeMiddlewareFunc("count", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				*n++
				return next.HandleInitialize(ctx, in)
			}), middleware.After)
		}
	}
	var all, traced int
	c, err := awsclient.New(t.Context(), awsclient.Settings{Region: "us-east-1", Endpoint: endpoint,
		APIOptions: []func(*middleware.Stack) error{counter(&all)}, TraceOptions: []func(*middleware.Stack) error{counter(&traced)}})
	if err != nil {
		t.Fatal(err)
	}
	in := &dynamodb.GetItemInput{TableName: aws.String("t"), Key: map[string]types.AttributeValue{"k": &types.AttributeValueMemberS{Value: "v"}}}
	for _, tc := range []struct {
		name        string
		client      *dynamodb.Client
		all, traced int
	}{
		{"DynamoDB", c.DynamoDB, 1, 1},
		{"BulkDynamoDB", c.BulkDynamoDB, 2, 1},
	} {
		if _, err := tc.client.GetItem(t.Context(), in); err != nil {
			t.Fatal(err)
		}
		if all != tc.all || traced != tc.traced {
			t.Errorf("after a request of %s: %d requests seen by APIOptions and %d by TraceOptions, want %d and %d", tc.name, all, traced, tc.all, tc.traced)
		}
	}
	plain, err := awsclient.New(t.Context(), awsclient.Settings{Region: "us-east-1", Endpoint: endpoint})
	if err != nil {
		t.Fatal(err)
	}
	if plain.BulkDynamoDB != plain.DynamoDB {
		t.Error("without TraceOptions BulkDynamoDB is another client than DynamoDB")
	}
}
