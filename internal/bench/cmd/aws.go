package main

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"

	"github.com/catalog-import/catalog-import/internal/aws/awsclient"
	"github.com/catalog-import/catalog-import/internal/aws/awstest"
	"github.com/catalog-import/catalog-import/internal/aws/dynamostate"
	"github.com/catalog-import/catalog-import/internal/aws/eventsource"
	"github.com/catalog-import/catalog-import/internal/aws/handler"
	"github.com/catalog-import/catalog-import/internal/aws/stack"
	"github.com/catalog-import/catalog-import/internal/record/recordtest"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/state"
)

// awsRun is one import through the real handlers on moto.
type awsRun struct {
	what                 string
	rows, shards, failed int64
	fileMB               float64
	m                    snapshot
	elapsed              time.Duration
}

// awsRuns are the two imports of the AWS section: a file of new products
// into an empty catalog, then a newer file of the same SKUs.
type awsRuns struct{ fresh, again awsRun }

// measureAWS imports a generated file of rows (5% faulty) through
// `importctl dev`'s event sources and handlers on a moto_server of its own,
// then a newer file of the same SKUs (other values), metering the
// handlers' requests and DynamoDB capacity (the event sources' polling is
// Lambda's on AWS, not the functions').
func measureAWS(dir string, rows int) (awsRuns, error) {
	ctx := context.Background()
	ep, stop, err := awstest.Start()
	if err != nil {
		return awsRuns{}, fmt.Errorf("moto_server: %w", err)
	}
	defer stop()
	lock := &sync.Mutex{} // moto needs one request at a time (awsclient.Settings.OneAtATime)
	plain, err := awsclient.New(ctx, awsclient.Settings{Region: "us-east-1", Endpoint: ep, OneAtATime: lock})
	if err != nil {
		return awsRuns{}, err
	}
	m := newMeter(plain.DynamoDB)
	counted, err := awsclient.New(ctx, awsclient.Settings{Region: "us-east-1", Endpoint: ep, OneAtATime: lock, APIOptions: []func(*middleware.Stack) error{m.option}})
	if err != nil {
		return awsRuns{}, err
	}
	s := stack.Defaults()
	res, err := stack.Provision(ctx, plain, "bench", s)
	if err != nil {
		return awsRuns{}, err
	}
	if err := m.table(ctx, res.ProductsTable, "products", "ProductsTable"); err != nil {
		return awsRuns{}, err
	}
	if err := m.table(ctx, res.StateTable, "state", "StateTable"); err != nil {
		return awsRuns{}, err
	}
	// Template defaults, with shards of rows/4 so that several workers run.
	fns := handler.FromClients(counted, handler.Config{
		Bucket: res.Bucket, StateTable: res.StateTable, ProductsTable: res.ProductsTable,
		ShardQueueURL: res.ShardQueueURL, DLQURL: res.DLQURL,
		Options: handler.Options{Split: split.Options{ShardRows: int64(rows / 4)}, Pool: s.PoolSize,
			CheckpointEvery: s.CheckpointEvery, LeaseTTL: s.WorkerTimeout, Log: slog.New(slog.DiscardHandler)},
	})
	// A warm-up file of other new SKUs first, not metered: the worker's
	// sink has then seen another batch, as a container has on AWS (the
	// first Write call of a batch reads a sample of 100 SKUs).
	warm := filepath.Join(dir, "aws-warm.csv")
	var wb strings.Builder
	wb.WriteString(recordtest.Header + "\r\n")
	for k := range 2000 {
		fmt.Fprintf(&wb, "WARM-%05d,Warm-up product %d,Home/Kitchen,Acme,%d.50,CNY,%d,active,,\r\n", k, k, k%100, k)
	}
	if err := os.WriteFile(warm, []byte(wb.String()), 0o644); err != nil {
		return awsRuns{}, err
	}
	import1 := func(path string, n int) (awsRun, error) {
		st, _ := os.Stat(path)
		in, _ := os.Open(path)
		_, err := plain.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(res.Bucket), Key: aws.String("incoming/products.csv"), Body: in})
		in.Close()
		if err != nil {
			return awsRun{}, err
		}
		before, err := listBatches(ctx, plain, res)
		if err != nil {
			return awsRun{}, err
		}
		m.take()
		start := time.Now()
		if err := eventsource.Run(ctx, eventsource.Config{SQS: plain.SQS, UploadQueueURL: res.UploadQueueURL, ShardQueueURL: res.ShardQueueURL,
			BatchSize: s.BatchSize, MaxConcurrency: 2, WorkerTimeout: s.WorkerTimeout, UntilIdle: true, ShortPoll: true}, fns); err != nil {
			return awsRun{}, err
		}
		run := awsRun{elapsed: time.Since(start), m: m.take(), rows: int64(n), fileMB: float64(st.Size()) / 1e6}
		bs, err := listBatches(ctx, plain, res)
		if err != nil {
			return run, err
		}
		if len(bs) != len(before)+1 || bs[0].Counts.Done() != int64(n) || bs[0].Status != state.BatchCompleted && bs[0].Status != state.BatchCompletedWithErrors {
			return run, fmt.Errorf("import of %s did not finish: %+v", path, bs)
		}
		run.shards, run.failed = int64(bs[0].Shards), bs[0].Counts.Failed
		return run, nil
	}
	if _, err := import1(warm, 2000); err != nil {
		return awsRuns{}, err
	}
	var out awsRuns
	for i, run := range []*awsRun{&out.fresh, &out.again} {
		path := filepath.Join(dir, fmt.Sprintf("aws-%d.csv", i))
		f, err := os.Create(path)
		if err != nil {
			return out, err
		}
		w := bufio.NewWriter(f)
		if err := recordtest.WriteProductCSV(w, rows, int64(11+i), true); err != nil {
			return out, err
		}
		if err := w.Flush(); err != nil {
			return out, err
		}
		f.Close()
		if *run, err = import1(path, rows); err != nil {
			return out, err
		}
		run.what = [...]string{"new products, empty catalog", "the same SKUs again, newer file"}[i]
	}
	return out, nil
}

// Published prices (us-east-1, on demand) used for the cost estimates:
// aws.amazon.com/dynamodb/pricing/on-demand/, aws.amazon.com/sqs/pricing/,
// aws.amazon.com/s3/pricing/ (S3 Standard requests).
const (
	priceWRU      = 0.625 / 1e6  // DynamoDB write request unit
	priceRRU      = 0.125 / 1e6  // DynamoDB read request unit
	priceSQS      = 0.40 / 1e6   // SQS standard request (each 64 KB)
	priceS3Get    = 0.0004 / 1e3 // S3 GET
	priceS3Put    = 0.005 / 1e3  // S3 PUT, COPY, POST, LIST
	priceImportGB = 0.15         // DynamoDB ImportTable, per GB of uncompressed source
)

// cost is the dollars of one run's requests, scaled to a million rows.
type cost struct {
	wru, rru             float64 // units per row
	dynamo, sqs, s3, all float64 // dollars per million rows
}

func (r awsRun) cost() cost {
	var c cost
	for _, u := range r.m.est {
		c.wru += (u.Write + u.Index) / float64(r.rows)
		c.rru += u.Read / float64(r.rows)
	}
	scale := 1e6 / float64(r.rows)
	c.dynamo = 1e6 * (c.wru*priceWRU + c.rru*priceRRU)
	c.sqs = float64(r.m.sum("SQS")) * scale * priceSQS
	c.s3 = float64(r.m.sum("S3", "GetObject", "HeadObject"))*scale*priceS3Get +
		float64(r.m.sum("S3", "PutObject", "UploadPart", "CreateMultipartUpload", "CompleteMultipartUpload", "CopyObject", "ListObjectVersions"))*scale*priceS3Put
	c.all = c.dynamo + c.sqs + c.s3
	return c
}

func (rs awsRuns) markdown(b *strings.Builder) {
	f, a := rs.fresh, rs.again
	fc, ac := f.cost(), a.cost()
	per := func(r awsRun, n int) string { return fmt.Sprintf("%.1f", float64(n)*1000/float64(r.rows)) }
	perRow := func(r awsRun, v float64) string { return fmt.Sprintf("%.3f", v/float64(r.rows)) }
	writes := []string{"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
	reads := []string{"GetItem", "BatchGetItem", "Query", "Scan"}
	fmt.Fprintf(b, "\n## AWS: capacity and cost per row (handlers on moto)\n\n")
	fmt.Fprintf(b, "Two %d-row CSVs (%.1f MB, 5%% faulty rows, %d shards) dropped one after the other in the bucket of `importctl dev` and imported by the real handlers with the template's defaults (checkpoint every 1,000 rows, pool %d): first new products into an empty catalog, then a newer file of the same SKUs with other values (every product exists: the update of a live catalog). A warm-up file of 2,000 other products went first, unmetered, so that the worker's sink has seen another batch, as a warm container has (the first Write call of a batch reads a sample of 100 SKUs, and the rest of the call only when one in ten of them is stored). Metered by SDK middleware on the handlers' clients (the event sources' polling is Lambda's own on AWS). Every DynamoDB request asks for `ReturnConsumedCapacity`; moto answers constants (PutItem 1.0 whatever the size, BatchWriteItem 1.0 a call, TransactWriteItems nothing), so the units below are computed from the sizes of the items each request wrote or read (`dynamoattr.Size`, read back from moto before and after each write) with DynamoDB's documented rules, index writes included (projections as template.yaml declares them). Imports took %.1f s and %.1f s on moto.\n\n",
		f.rows, f.fileMB, f.shards, stack.Defaults().PoolSize, f.elapsed.Seconds(), a.elapsed.Seconds())
	fmt.Fprintf(b, "| per row | %s | %s |\n|---|---:|---:|\n", f.what, a.what)
	for _, t := range []string{"products", "state"} {
		fmt.Fprintf(b, "| %s table write units | %s | %s |\n", t, perRow(f, f.m.est[t].Write), perRow(a, a.m.est[t].Write))
		fmt.Fprintf(b, "| %s index write units | %s | %s |\n", t, perRow(f, f.m.est[t].Index), perRow(a, a.m.est[t].Index))
		fmt.Fprintf(b, "| %s table read units | %s | %s |\n", t, perRow(f, f.m.est[t].Read), perRow(a, a.m.est[t].Read))
	}
	fmt.Fprintf(b, "| (moto's reported units, all tables) | %s | %s |\n", perRow(f, f.m.rep["products"]+f.m.rep["state"]), perRow(a, a.m.rep["products"]+a.m.rep["state"]))
	fmt.Fprintf(b, "| DynamoDB write requests per 1,000 rows | %s | %s |\n", per(f, f.m.sum("DynamoDB", writes...)), per(a, a.m.sum("DynamoDB", writes...)))
	fmt.Fprintf(b, "| DynamoDB read requests per 1,000 rows | %s | %s |\n", per(f, f.m.sum("DynamoDB", reads...)), per(a, a.m.sum("DynamoDB", reads...)))
	fmt.Fprintf(b, "| puts whose condition failed per 1,000 rows | %s | %s |\n", per(f, f.m.events["PutItem condition failed"]), per(a, a.m.events["PutItem condition failed"]))
	fmt.Fprintf(b, "| SQS requests per 1,000 rows | %s | %s |\n", per(f, f.m.sum("SQS")), per(a, a.m.sum("SQS")))
	fmt.Fprintf(b, "| S3 requests (whole import) | %d | %d |\n", f.m.sum("S3"), a.m.sum("S3"))
	fmt.Fprintf(b, "| **$ per million rows**: DynamoDB | **%.3f** | **%.3f** |\n", fc.dynamo, ac.dynamo)
	fmt.Fprintf(b, "| SQS + S3 | %.4f | %.4f |\n", fc.sqs+fc.s3, ac.sqs+ac.s3)
	fmt.Fprintf(b, "| all (Lambda not included: see [scale.md](scale.md)) | %.3f | %.3f |\n\n", fc.all, ac.all)
	for _, r := range []awsRun{f, a} {
		keys := slices.Sorted(maps.Keys(r.m.ops))
		fmt.Fprintf(b, "Requests, %s: ", r.what)
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(b, "%s %d", k, r.m.ops[k])
		}
		if len(r.m.events) > 0 {
			ev := slices.Sorted(maps.Keys(r.m.events))
			b.WriteString("; events: ")
			for i, k := range ev {
				if i > 0 {
					b.WriteString(", ")
				}
				fmt.Fprintf(b, "%s %d", k, r.m.events[k])
			}
		}
		b.WriteString(".\n\n")
	}
	fmt.Fprintf(b, "Writes by kind of item (whole import: writes, average item size, units):")
	for i, r := range []awsRun{f, a} {
		if i > 0 {
			b.WriteString(";")
		}
		fmt.Fprintf(b, " %s:", r.what)
		for j, k := range slices.Sorted(maps.Keys(r.m.kinds)) {
			v := r.m.kinds[k]
			if j > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(b, " %s %d, %.0f B, %.0f", k, v.writes, v.size/float64(v.writes), v.units)
		}
	}
	b.WriteString(".\n\n")
	importGB := f.fileMB * 1e6 / float64(f.rows) / 1000
	fmt.Fprintf(b, "Prices: us-east-1 on demand, $%.3f per million write units, $%.3f per million read units, SQS $%.2f per million requests, S3 $%.4f per 1,000 GETs and $%.3f per 1,000 PUTs. Before decision 29 products were written in transactions (2 units per product) and the `by_batch` index added one more per new product and two per product taken over by a newer batch (the bench did not count it): about $1.9 per million new rows. DynamoDB ImportTable would load 1M such rows (%.0f MB) for $%.3f ($%.2f/GB), but only into a new table, without validation, duplicate-SKU resolution, upserts into a live catalog, or failure records.\n",
		priceWRU*1e6, priceRRU*1e6, priceSQS*1e6, priceS3Get*1e3, priceS3Put*1e3, importGB*1000, importGB*priceImportGB, priceImportGB)
}
func listBatches(ctx context.Context, c *awsclient.Clients, res stack.Resources) ([]state.Batch, error) {
	return dynamostate.New(c.DynamoDB, res.StateTable, dynamostate.Options{}).ListBatches(ctx, 10)
}
