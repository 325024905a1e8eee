package handler_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/go-cmp/cmp"
	"github.com/xuri/excelize/v2"

	"github.com/catalog-import/catalog-import/internal/aws/awstest"
	"github.com/catalog-import/catalog-import/internal/aws/dynamostate"
	"github.com/catalog-import/catalog-import/internal/aws/eventsource"
	"github.com/catalog-import/catalog-import/internal/aws/handler"
	"github.com/catalog-import/catalog-import/internal/aws/s3store"
	"github.com/catalog-import/catalog-import/internal/aws/stack"
	"github.com/catalog-import/catalog-import/internal/embedded"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/state"
)

// workbook returns an .xlsx of two sheets with 40 rows each, some failing,
// and a hidden sheet of lists.
func workbook(t *testing.T) []byte {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	for s, name := range []string{"商品", "Sheet 2"} {
		if s == 0 {
			if err := f.SetSheetName("Sheet1", name); err != nil {
				t.Fatal(err)
			}
		} else if _, err := f.NewSheet(name); err != nil {
			t.Fatal(err)
		}
		if err := f.SetSheetRow(name, "A1", &[]any{"商品编码", "商品名称", "类目", "价格", "库存"}); err != nil {
			t.Fatal(err)
		}
		for i := range 40 {
			price := any(float64(i) + 0.5)
			if i%9 == 4 {
				price = "n/a"
			}
			row := []any{fmt.Sprintf("S%d-%03d", s, i), fmt.Sprintf("商品 %d", i), "家居", price, i}
			if err := f.SetSheetRow(name, fmt.Sprintf("A%d", i+2+i/10), &row); err != nil { // a blank row every 10
				t.Fatal(err)
			}
		}
	}
	if _, err := f.NewSheet("lists"); err != nil {
		t.Fatal(err)
	}
	if err := f.SetCellValue("lists", "A1", "家居"); err != nil {
		t.Fatal(err)
	}
	if err := f.SetSheetVisible("lists", false); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// stagedKeys lists every version of every object under staging/<batch>/.
func stagedKeys(t *testing.T, c *s3.Client, bucket, batchID string) []string {
	t.Helper()
	out, err := c.ListObjectVersions(t.Context(), &s3.ListObjectVersionsInput{Bucket: &bucket, Prefix: aws.String(s3store.StagingPrefix + batchID + "/")})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, v := range out.Versions {
		keys = append(keys, aws.ToString(v.Key))
	}
	for _, m := range out.DeleteMarkers {
		keys = append(keys, "deleted:"+aws.ToString(m.Key))
	}
	return keys
}

// TestWorkbookOnS3: the splitter stages an uploaded workbook's sheets under
// staging/<batch>/ in the bucket and the shards point at them; the workers
// import them; finalization removes the staging (every version); the batch
// ends as importctl run ends the same workbook, with the same warnings (the
// hidden sheet left out).
func TestWorkbookOnS3(t *testing.T) {
	ctx := t.Context()
	clients := awstest.Clients(t)
	res, err := stack.Provision(ctx, clients, "xlsx-handler", stack.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	data := workbook(t)
	key := "incoming/供应商 products.xlsx"
	out, err := clients.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(res.Bucket), Key: aws.String(key), Body: bytes.NewReader(data)})
	if err != nil {
		t.Fatal(err)
	}
	fns := handler.FromClients(clients, handler.Config{
		Bucket: res.Bucket, StateTable: res.StateTable, ProductsTable: res.ProductsTable,
		ShardQueueURL: res.ShardQueueURL, DLQURL: res.DLQURL,
		Options: handler.Options{Split: split.Options{ShardRows: 15}, CheckpointEvery: 10, LeaseTTL: time.Minute,
			Owner: "test", Log: testLogger(t)},
	})
	var ev events.S3Event
	ev.Records = append(ev.Records, events.S3EventRecord{EventName: "ObjectCreated:Put"})
	ev.Records[0].S3.Bucket.Name = res.Bucket
	ev.Records[0].S3.Object.Key = strings.ReplaceAll(key, " ", "+")
	ev.Records[0].S3.Object.VersionID = aws.ToString(out.VersionId)
	for range 2 { // a duplicated event stages nothing more
		if err := fns.Splitter(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	id := handler.BatchID(res.Bucket, key, aws.ToString(out.VersionId), "", "")
	store := dynamostate.New(clients.DynamoDB, res.StateTable, dynamostate.Options{})
	shards, err := store.ListShards(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	staged := stagedKeys(t, clients.S3, res.Bucket, id)
	if len(shards) != 6 || len(staged) != 6 {
		t.Fatalf("%d shards and %d staged objects (%q), want 3 per sheet", len(shards), len(staged), staged)
	}
	for _, sh := range shards {
		bucket, k, err := s3store.ParseURI(sh.Staged.URI)
		if err != nil || bucket != res.Bucket || !strings.HasPrefix(k, "staging/"+id+"/") {
			t.Errorf("shard %d (sheet %q, rows from %d) staged at %q", sh.Index, sh.Sheet, sh.FirstRow, sh.Staged.URI)
		}
	}

	msgs := drain(t, clients.SQS, res.ShardQueueURL)
	resp, err := fns.Worker(ctx, eventsource.Event(res.ShardQueueURL, msgs))
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("worker: %+v %v", resp, err)
	}
	b, err := store.GetBatch(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if keys := stagedKeys(t, clients.S3, res.Bucket, id); len(keys) != 0 {
		t.Errorf("staging after the batch finished: %q", keys)
	}
	path := filepath.Join(t.TempDir(), "products.xlsx")
	writeBytes(t, path, data)
	local, err := embedded.Run(context.Background(), embedded.Config{DB: filepath.Join(t.TempDir(), "x.db")}, path)
	if err != nil {
		t.Fatal(err)
	}
	if b.Status != state.BatchCompletedWithErrors || b.Status != local.Batch.Status || b.Counts != local.Batch.Counts || !cmp.Equal(b.ByReason, local.Batch.ByReason) {
		t.Errorf("on AWS: %s %+v %v\nimportctl run: %s %+v %v", b.Status, b.Counts, b.ByReason, local.Batch.Status, local.Batch.Counts, local.Batch.ByReason)
	}
	if b.Counts.Total != 80 {
		t.Errorf("%d rows, want 80", b.Counts.Total)
	}
	if len(b.Warnings) != 1 || !strings.Contains(b.Warnings[0], `sheet "lists" is hidden`) || !cmp.Equal(b.Warnings, local.Batch.Warnings) {
		t.Errorf("warnings on AWS %q, importctl run %q; want the hidden sheet named by both", b.Warnings, local.Batch.Warnings)
	}
}
