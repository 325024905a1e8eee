package main

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"

	"github.com/catalog-import/catalog-import/internal/aws/awsclient"
	"github.com/catalog-import/catalog-import/internal/aws/awstest"
	"github.com/catalog-import/catalog-import/internal/aws/dynamoattr"
	"github.com/catalog-import/catalog-import/internal/aws/dynamostate"
	"github.com/catalog-import/catalog-import/internal/aws/eventsource"
	"github.com/catalog-import/catalog-import/internal/aws/handler"
	"github.com/catalog-import/catalog-import/internal/aws/stack"
	"github.com/catalog-import/catalog-import/internal/record/recordtest"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/state"
)

// requests counts the AWS requests the handlers make, by service and
// operation, and the DynamoDB write request units they consume (items
// rounded up to 1 KB each; transactional writes count twice).
type requests struct {
	mu  sync.Mutex
	ops map[string]int
	wru float64
	rru float64
}

func (c *requests) option(s *middleware.Stack) error {
	return s.Initialize.Add(middleware.InitializeMiddlewareFunc("CountRequests", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		svc, op := awsmiddleware.GetServiceID(ctx), awsmiddleware.GetOperationName(ctx)
		c.mu.Lock()
		c.ops[svc+" "+op]++
		c.wru += writeUnits(in.Parameters)
		c.rru += readUnits(in.Parameters)
		c.mu.Unlock()
		return next.HandleInitialize(ctx, in)
	}), middleware.After)
}

func writeUnits(params any) float64 {
	units := func(item map[string]ddbtypes.AttributeValue) float64 {
		return float64((dynamoattr.Size(item) + 1023) / 1024)
	}
	var u float64
	switch in := params.(type) {
	case *dynamodb.PutItemInput:
		u = units(in.Item)
	case *dynamodb.UpdateItemInput:
		u = 1
	case *dynamodb.BatchWriteItemInput:
		for _, reqs := range in.RequestItems {
			for _, r := range reqs {
				if r.PutRequest != nil {
					u += units(r.PutRequest.Item)
				} else {
					u++
				}
			}
		}
	case *dynamodb.TransactWriteItemsInput:
		for _, it := range in.TransactItems {
			if it.Put != nil {
				u += 2 * units(it.Put.Item)
			} else if it.Update != nil || it.Delete != nil {
				u += 2
			}
		}
	}
	return u
}

// readUnits counts strongly consistent reads of items under 4 KB: one unit
// per item read (a query counts one; the handlers' queries are rare).
func readUnits(params any) float64 {
	switch in := params.(type) {
	case *dynamodb.GetItemInput, *dynamodb.QueryInput, *dynamodb.ScanInput:
		return 1
	case *dynamodb.BatchGetItemInput:
		n := 0
		for _, ka := range in.RequestItems {
			n += len(ka.Keys)
		}
		return float64(n)
	}
	return 0
}

// awsRun is one import through the real handlers on moto.
type awsRun struct {
	rows, shards, failed int64
	fileMB               float64
	ops                  map[string]int
	wru, rru             float64
	elapsed              time.Duration
}

// measureAWS imports a generated file of rows (5% faulty) through
// `importctl dev`'s event sources and handlers on a moto_server of its own,
// counting the handlers' requests (the event sources' polling is Lambda's on
// AWS, not the functions').
func measureAWS(dir string, rows int) (awsRun, error) {
	ctx := context.Background()
	ep, stop, err := awstest.Start()
	if err != nil {
		return awsRun{}, fmt.Errorf("moto_server: %w", err)
	}
	defer stop()
	lock := &sync.Mutex{} // moto needs one request at a time (awsclient.Settings.OneAtATime)
	plain, err := awsclient.New(ctx, awsclient.Settings{Region: "us-east-1", Endpoint: ep, OneAtATime: lock})
	if err != nil {
		return awsRun{}, err
	}
	count := &requests{ops: map[string]int{}}
	counted, err := awsclient.New(ctx, awsclient.Settings{Region: "us-east-1", Endpoint: ep, OneAtATime: lock, APIOptions: []func(*middleware.Stack) error{count.option}})
	if err != nil {
		return awsRun{}, err
	}
	s := stack.Defaults()
	res, err := stack.Provision(ctx, plain, "bench", s)
	if err != nil {
		return awsRun{}, err
	}
	path := filepath.Join(dir, "aws.csv")
	f, err := os.Create(path)
	if err != nil {
		return awsRun{}, err
	}
	w := bufio.NewWriter(f)
	if err := recordtest.WriteProductCSV(w, rows, 11, true); err != nil {
		return awsRun{}, err
	}
	if err := w.Flush(); err != nil {
		return awsRun{}, err
	}
	f.Close()
	st, _ := os.Stat(path)
	in, _ := os.Open(path)
	defer in.Close()
	if _, err := plain.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(res.Bucket), Key: aws.String("incoming/products.csv"), Body: in}); err != nil {
		return awsRun{}, err
	}
	// Template defaults, with shards of rows/4 so that several workers run.
	fns := handler.FromClients(counted, handler.Config{
		Bucket: res.Bucket, StateTable: res.StateTable, ProductsTable: res.ProductsTable,
		ShardQueueURL: res.ShardQueueURL, DLQURL: res.DLQURL,
		Options: handler.Options{Split: split.Options{ShardRows: int64(rows / 4)}, Pool: s.PoolSize,
			CheckpointEvery: s.CheckpointEvery, LeaseTTL: s.WorkerTimeout, Log: slog.New(slog.DiscardHandler)},
	})
	start := time.Now()
	if err := eventsource.Run(ctx, eventsource.Config{SQS: plain.SQS, UploadQueueURL: res.UploadQueueURL, ShardQueueURL: res.ShardQueueURL,
		BatchSize: s.BatchSize, MaxConcurrency: 2, WorkerTimeout: s.WorkerTimeout, UntilIdle: true, ShortPoll: true}, fns); err != nil {
		return awsRun{}, err
	}
	elapsed := time.Since(start)
	r := awsRun{rows: int64(rows), fileMB: float64(st.Size()) / 1e6, ops: count.ops, wru: count.wru, rru: count.rru, elapsed: elapsed}
	bs, err := listBatches(ctx, plain, res)
	if err != nil {
		return r, err
	}
	if len(bs) != 1 || bs[0].Counts.Done() != int64(rows) {
		return r, fmt.Errorf("the import did not finish: %+v", bs)
	}
	r.shards, r.failed = int64(bs[0].Shards), bs[0].Counts.Failed
	return r, nil
}

// Published prices (us-east-1, on demand) used for the cost estimate.
const (
	priceWRU      = 0.625 / 1e6  // DynamoDB write request unit
	priceRRU      = 0.125 / 1e6  // DynamoDB read request unit
	priceSQS      = 0.40 / 1e6   // SQS standard request
	priceS3Get    = 0.0004 / 1e3 // S3 GET
	priceS3Put    = 0.005 / 1e3  // S3 PUT
	priceImportGB = 0.15         // DynamoDB ImportTable, per GB of source
)

func (r awsRun) markdown(b *strings.Builder) {
	per := func(n int) float64 { return float64(n) * 1000 / float64(r.rows) }
	sum := func(svc string, ops ...string) int {
		n := 0
		for k, v := range r.ops {
			s, op, _ := strings.Cut(k, " ")
			if s == svc && (len(ops) == 0 || slices.Contains(ops, op)) {
				n += v
			}
		}
		return n
	}
	ddbWrites := sum("DynamoDB", "PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")
	ddbReads := sum("DynamoDB", "GetItem", "BatchGetItem", "Query", "Scan")
	sqsReqs := sum("SQS")
	gets := sum("S3", "GetObject")
	fmt.Fprintf(b, "\n## AWS requests per 1,000 rows (handlers on moto)\n\n")
	fmt.Fprintf(b, "One %d-row CSV (%.1f MB, 5%% faulty rows, %d shards) dropped in the bucket of `importctl dev` and imported by the real handlers with the template's defaults (checkpoint every 1,000 rows, pool 8), counted by SDK middleware on the handlers' clients (the event sources' polling is Lambda's own on AWS). Import took %.1f s on moto.\n\n",
		r.rows, r.fileMB, r.shards, r.elapsed.Seconds())
	fmt.Fprintf(b, "| requests per 1,000 rows | measured | target |\n|---|---:|---:|\n")
	fmt.Fprintf(b, "| DynamoDB write requests | %.1f | <= 45 |\n", per(ddbWrites))
	fmt.Fprintf(b, "| DynamoDB read requests | %.1f | |\n", per(ddbReads))
	fmt.Fprintf(b, "| SQS requests | %.2f | <= 1 |\n", per(sqsReqs))
	fmt.Fprintf(b, "| S3 GETs (whole import) | %d | 1 per shard (%d) + resumes; the split adds 2 (sniff the head, stream the object) |\n\n", gets, r.shards)
	var keys []string
	for k := range r.ops {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	fmt.Fprintf(b, "By operation (whole import): ")
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(b, "%s %d", k, r.ops[k])
	}
	scale := 1e6 / float64(r.rows)
	wru := r.wru * scale
	cost := wru*priceWRU + r.rru*scale*priceRRU + float64(sqsReqs)*scale*priceSQS +
		float64(gets)*scale*priceS3Get + float64(sum("S3", "PutObject", "UploadPart", "CreateMultipartUpload"))*scale*priceS3Put
	importGB := r.fileMB * scale / 1000
	fmt.Fprintf(b, ".\n\nCost of importing 1M such rows from these counts and us-east-1 on-demand list prices: %.2f M write request units (products are conditional transactional writes, 2 units per item; failure records 1) = $%.2f, reads, SQS and S3 add $%.2f: **about $%.2f**, Lambda compute not included. DynamoDB ImportTable would load the same %.0f MB for $%.3f (%s/GB), but only into a new table, without validation, duplicate-SKU resolution, upserts into a live catalog, or failure records.\n",
		wru/1e6, wru*priceWRU, cost-wru*priceWRU, cost, importGB*1000, importGB*priceImportGB, fmt.Sprintf("$%.2f", priceImportGB))
}

func listBatches(ctx context.Context, c *awsclient.Clients, res stack.Resources) ([]state.Batch, error) {
	return dynamostate.New(c.DynamoDB, res.StateTable, dynamostate.Options{}).ListBatches(ctx, 10)
}
