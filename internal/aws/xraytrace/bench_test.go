package xraytrace_test

import (
	"context"
	"fmt"
	"net"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/catalog-import/catalog-import/internal/aws/awsclient"
	"github.com/catalog-import/catalog-import/internal/aws/awstest"
	"github.com/catalog-import/catalog-import/internal/aws/xraytrace"
)

// BenchmarkPutItem: the worker's CPU for one product's PutItem (the SDK
// serializing, signing and sending it, and decoding the answer), against
// a loopback server that answers at once (awstest.Canned), with the clients as the worker
// builds them: plain, and instrumented by X-Ray inside a delivery's
// segment (a subsegment per request, streamed to a daemon on loopback).
// ns/op is per request and includes the server's share.
func BenchmarkPutItem(b *testing.B) {
	endpoint := awstest.Canned(b)
	daemon, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer daemon.Close()
	go func() { // the daemon reads and drops
		buf := make([]byte, 1<<16)
		for {
			if _, err := daemon.Read(buf); err != nil {
				return
			}
		}
	}()
	tr, err := xraytrace.New(daemon.LocalAddr().String(), nil)
	if err != nil {
		b.Fatal(err)
	}
	item := map[string]types.AttributeValue{}
	for _, k := range []string{"sku", "name", "category", "price", "currency", "stock", "status", "description", "image_urls", "batch_id", "pos", "stamps"} {
		item[k] = &types.AttributeValueMemberS{Value: "value of " + k + " 电子/鼠标 0123456789012345678901234567890123456789"}
	}
	for _, traced := range []bool{false, true} {
		b.Run(fmt.Sprintf("xray=%v", traced), func(b *testing.B) {
			var opts []func(*middleware.Stack) error
			if traced {
				tr.Instrument(&opts)
			}
			c, err := awsclient.New(context.Background(), awsclient.Settings{Region: "us-east-1", Endpoint: endpoint, APIOptions: opts})
			if err != nil {
				b.Fatal(err)
			}
			ctx, end := tr.Continue(context.Background(), "shard-worker", "Root=1-6743a1c0-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1", nil)
			defer end(nil)
			in := &dynamodb.PutItemInput{TableName: aws.String("products"), Item: item, ConditionExpression: aws.String("attribute_not_exists(sku)"),
				ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld}
			b.ReportAllocs()
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := c.DynamoDB.PutItem(ctx, in); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
