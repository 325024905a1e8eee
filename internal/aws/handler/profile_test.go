package handler_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/catalog-import/catalog-import/internal/aws/awstest"
	"github.com/catalog-import/catalog-import/internal/aws/dynamostate"
	"github.com/catalog-import/catalog-import/internal/aws/eventsource"
	"github.com/catalog-import/catalog-import/internal/aws/handler"
	"github.com/catalog-import/catalog-import/internal/aws/s3store"
	"github.com/catalog-import/catalog-import/internal/aws/stack"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/pipeline/profilestest"
	"github.com/catalog-import/catalog-import/internal/profile"
	"github.com/catalog-import/catalog-import/internal/state"
)

// stockFeed is a stock feed (sku and stock only): under the stock profile
// two rows fail; under the default profile, which wants name, price and
// more, the file is rejected.
const stockFeed = "sku,stock\nA-1,5\nA-2,-3\nA-3,x\nA-4,7\n"

// TestProfilePerUpload: uploads pick their profile from the bucket's
// profiles/ (pushed first, as importctl profile push does), by their
// x-amz-meta-profile metadata or else their folder under incoming/; the
// batch and its failure records carry the chosen profile's rule version.
// A folder that names no profile, and incoming/retries/, use the
// function's profile; metadata naming no profile rejects the upload,
// naming it and the command that fixes it.
func TestProfilePerUpload(t *testing.T) {
	ctx := t.Context()
	clients := awstest.Clients(t)
	res, err := stack.Provision(ctx, clients, "profiles-handler", stack.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	store := s3store.NewProfiles(clients.S3, res.Bucket)
	stock, _, err := store.Put(ctx, "stock", []byte(profilestest.Stock))
	if err != nil {
		t.Fatal(err)
	}
	lenient, _, err := store.Put(ctx, "lenient", []byte(strings.Replace(profilestest.Stock, "name: stock", "name: lenient", 1)+"max_error_ratio: 0.9\n"))
	if err != nil {
		t.Fatal(err)
	}
	def := profile.Default().RuleVersion()
	fns := handler.FromClients(clients, handler.Config{
		Bucket: res.Bucket, StateTable: res.StateTable, ProductsTable: res.ProductsTable,
		ShardQueueURL: res.ShardQueueURL, DLQURL: res.DLQURL,
		Options: handler.Options{CheckpointEvery: 10, LeaseTTL: time.Minute, Owner: "test",
			StackName: "profiles-handler", Log: testLogger(t)},
	})
	states := dynamostate.New(clients.DynamoDB, res.StateTable, dynamostate.Options{})

	type want struct {
		rules   string
		status  state.BatchStatus
		failed  int64
		message string
	}
	tests := []struct {
		name string
		key  string
		meta map[string]string
		want want
	}{
		{"folder names a stored profile", "incoming/stock/feed.csv", nil,
			want{rules: stock.RuleVersion(), status: state.BatchCompletedWithErrors, failed: 2}},
		{"metadata names a stored profile", "incoming/feed.csv", map[string]string{"profile": "stock"},
			want{rules: stock.RuleVersion(), status: state.BatchCompletedWithErrors, failed: 2}},
		{"metadata wins over the folder", "incoming/stock/feed-2.csv", map[string]string{"profile": "lenient"},
			want{rules: lenient.RuleVersion(), status: state.BatchCompletedWithErrors, failed: 2}},
		{"metadata naming no profile is rejected", "incoming/stock/feed-3.csv", map[string]string{"profile": "price"},
			want{rules: def, status: state.BatchRejected,
				message: `profile "price" not found: upload it with importctl profile push price FILE --stack profiles-handler`}},
		{"folder naming no profile uses the function's", "incoming/supplier-a/feed.csv", nil,
			want{rules: def, status: state.BatchRejected, message: "SchemaMismatch"}},
		{"retries folder uses the function's", "incoming/retries/b-0123/retry.csv", nil,
			want{rules: def, status: state.BatchRejected, message: "SchemaMismatch"}},
		{"file directly under incoming uses the function's", "incoming/feed-4.csv", nil,
			want{rules: def, status: state.BatchRejected, message: "SchemaMismatch"}},
	}
	ids := make([]string, len(tests))
	for i, tc := range tests {
		out, err := clients.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(res.Bucket), Key: aws.String(tc.key),
			Body: bytes.NewReader([]byte(stockFeed)), Metadata: tc.meta})
		if err != nil {
			t.Fatal(err)
		}
		var ev events.S3Event
		ev.Records = append(ev.Records, events.S3EventRecord{EventName: "ObjectCreated:Put"})
		ev.Records[0].S3.Bucket.Name = res.Bucket
		ev.Records[0].S3.Object.Key = tc.key
		ev.Records[0].S3.Object.VersionID = aws.ToString(out.VersionId)
		if err := fns.Splitter(ctx, ev); err != nil {
			t.Fatalf("%s: splitter: %v", tc.name, err)
		}
		ids[i] = handler.BatchID(res.Bucket, tc.key, aws.ToString(out.VersionId), "", "")
	}
	// Until the queue is empty: the lenient profile sets max_error_ratio, so
	// its batch is checked first and its write manifests come after the
	// check (decision 20).
	for msgs := drain(t, clients.SQS, res.ShardQueueURL); len(msgs) > 0; msgs = drain(t, clients.SQS, res.ShardQueueURL) {
		resp, err := fns.Worker(ctx, eventsource.Event(res.ShardQueueURL, msgs))
		if err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("worker: %+v %v", resp, err)
		}
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := states.GetBatch(ctx, ids[i])
			if err != nil {
				t.Fatal(err)
			}
			w := tc.want
			if b.RuleVersion != w.rules || b.Status != w.status || b.Counts.Failed != w.failed || !strings.Contains(b.Message, w.message) {
				t.Fatalf("batch of %s: rules %s, %s, %d failed, message %q\nwant rules %s, %s, %d failed, message with %q",
					tc.key, b.RuleVersion, b.Status, b.Counts.Failed, b.Message, w.rules, w.status, w.failed, w.message)
			}
			recs, err := states.Failures(ctx, b.ID, state.FailureFilter{})
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(recs)) != w.failed {
				t.Fatalf("%d failure records, want %d", len(recs), w.failed)
			}
			reasons := map[failure.Reason]bool{}
			for _, r := range recs {
				if r.RuleVersion != w.rules {
					t.Errorf("failure record of row %d: rule version %s, want %s (the chosen profile's)", r.Row, r.RuleVersion, w.rules)
				}
				reasons[r.Reason] = true
			}
			if w.failed > 0 && (!reasons[failure.OutOfRange] || !reasons[failure.InvalidNumber]) {
				t.Errorf("failure reasons %v, want OutOfRange and InvalidNumber (stock -3 and x)", reasons)
			}
		})
	}
}
