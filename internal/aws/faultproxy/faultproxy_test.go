package faultproxy_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
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
				ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
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
