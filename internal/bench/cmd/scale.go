package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/catalog-import/catalog-import/internal/aws/awsclient"
	"github.com/catalog-import/catalog-import/internal/aws/awstest"
	"github.com/catalog-import/catalog-import/internal/aws/dynamostate"
	"github.com/catalog-import/catalog-import/internal/aws/eventsource"
	"github.com/catalog-import/catalog-import/internal/aws/faultproxy"
	"github.com/catalog-import/catalog-import/internal/aws/handler"
	"github.com/catalog-import/catalog-import/internal/aws/stack"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/local/file"
	"github.com/catalog-import/catalog-import/internal/profile"
	"github.com/catalog-import/catalog-import/internal/record/recordtest"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/state"
)

// awsLatencies is the latency model of the scale measurements, client side
// within a Region (see docs/scale.md for the sources): DynamoDB's
// "single-digit millisecond" service time plus the network, batches and
// transactions of many items longer; S3's "roughly 100-200 ms" first byte;
// SQS a few tens of milliseconds.
var awsLatencies = map[string]faultproxy.Latency{
	"dynamodb *":                  {Median: 5 * time.Millisecond, P99: 20 * time.Millisecond},
	"dynamodb BatchGetItem":       {Median: 10 * time.Millisecond, P99: 40 * time.Millisecond},
	"dynamodb BatchWriteItem":     {Median: 10 * time.Millisecond, P99: 40 * time.Millisecond},
	"dynamodb Query":              {Median: 8 * time.Millisecond, P99: 30 * time.Millisecond},
	"dynamodb TransactWriteItems": {Median: 15 * time.Millisecond, P99: 60 * time.Millisecond},
	"sqs *":                       {Median: 15 * time.Millisecond, P99: 60 * time.Millisecond},
	"s3 *":                        {Median: 100 * time.Millisecond, P99: 300 * time.Millisecond},
}

// workerRun is one shard imported by one worker behind the latency model.
type workerRun struct {
	pool, every, rows int
	dilate            float64
	wall              time.Duration // at the dilated latencies
	cpu               time.Duration // process CPU (worker and proxy) during the run
	stats             faultproxy.Stats
}

// rate is the worker's rows per second at AWS's (undilated) latencies: the
// run's wall time divided by the dilation (its CPU time is a small part of
// it: see cpuPerRow).
func (w workerRun) rate() float64 { return float64(w.rows) / (w.wall.Seconds() / w.dilate) }

func (w workerRun) cpuPerRow() time.Duration { return w.cpu / time.Duration(w.rows) }

// motoUse is the share of the run moto was busy.
func (w workerRun) motoUse() float64 { return w.stats.MotoBusy.Seconds() / w.wall.Seconds() }

// contentionRun is many workers checkpointing one batch at once.
type contentionRun struct {
	workers       int
	interval      time.Duration // between two checkpoints of one worker (undilated)
	dilate        float64
	checkpoints   int             // that succeeded
	gaveUp        int             // checkpoints that failed after the store's attempts
	writes        int64           // write requests sent (UpdateItem and TransactWriteItems)
	conflicts     int64           // of them refused by a transaction in progress
	latencies     []time.Duration // per successful checkpoint, undilated
	offered, wall float64         // checkpoints per second offered; seconds (undilated)
}

// scaleRuns are the measurements of the scale section.
type scaleRuns struct {
	workers    []workerRun
	contention []contentionRun
	splitMBps  float64
	splitRows  int
	splitMB    float64
}

// measureScale runs the scale measurements: one worker's rows per second
// at each pool size and checkpoint interval, many workers checkpointing one
// batch, and the splitter's single pass.
func measureScale(dir string, rows int, pools, everys, crowds []int) (*scaleRuns, error) {
	out := &scaleRuns{}
	var err error
	if out.splitMBps, out.splitRows, out.splitMB, err = measureSplit(dir, 200_000); err != nil {
		return nil, fmt.Errorf("split: %w", err)
	}
	for _, every := range everys {
		for _, pool := range pools {
			w, err := measureWorker(dir, rows, pool, every)
			if err != nil {
				return nil, fmt.Errorf("worker pool %d, checkpoint every %d: %w", pool, every, err)
			}
			log.Printf("  pool %d, checkpoint every %d: %.0f rows/s (moto busy %.0f%%, %d overruns, CPU %v/row)",
				pool, every, w.rate(), 100*w.motoUse(), w.stats.Overruns, w.cpuPerRow())
			out.workers = append(out.workers, w)
		}
	}
	// The checkpoint interval of a worker at the template's defaults
	// (pool 8, every 1,000 rows), as measured.
	interval := 300 * time.Millisecond
	for _, w := range out.workers {
		if w.pool == 8 && w.every == 1000 {
			interval = time.Duration(float64(time.Second) * float64(w.every) / w.rate())
		}
	}
	for _, n := range crowds {
		c, err := measureContention(n, interval)
		if err != nil {
			return nil, fmt.Errorf("contention, %d workers: %w", n, err)
		}
		log.Printf("  %d workers on one batch: %d checkpoints, %d conflicts in %d write requests, %d gave up", n, c.checkpoints, c.conflicts, c.writes, c.gaveUp)
		out.contention = append(out.contention, c)
	}
	return out, nil
}

// measureSplit times the splitter's planning pass (split.PlanSource, the
// template's shard size, no content hash) over a local file of rows, read
// through the page cache: the CPU side of the single pass.
func measureSplit(dir string, rows int) (float64, int, float64, error) {
	path := filepath.Join(dir, "split.csv")
	if err := generate(path, rows); err != nil {
		return 0, 0, 0, err
	}
	defer os.Remove(path)
	src := &file.Source{}
	ctx := context.Background()
	info, err := src.Stat(ctx, path)
	if err != nil {
		return 0, 0, 0, err
	}
	v, err := profile.Default().Compile()
	if err != nil {
		return 0, 0, 0, err
	}
	var times []time.Duration
	for range 3 {
		t := time.Now()
		plan, err := split.PlanSource(ctx, src, info, v, split.Options{ShardRows: 50_000, ShardBytes: 16 << 20})
		if err != nil || plan.Rejected != nil {
			return 0, 0, 0, fmt.Errorf("plan: %v %v", err, plan.Rejected)
		}
		times = append(times, time.Since(t))
	}
	mb := float64(info.Size) / 1e6
	return mb / median(times).Seconds(), rows, mb, nil
}

// measureWorker imports a file of rows (5% faulty, one shard) with one
// worker invocation whose clients go through a latency-model proxy, dilated
// by the pool size so that moto (one call at a time) stays a small part of
// each call; the sink puts pool products at a time (handler.FromClients).
func measureWorker(dir string, rows, pool, every int) (workerRun, error) {
	ctx := context.Background()
	ep, stop, err := awstest.Start()
	if err != nil {
		return workerRun{}, fmt.Errorf("moto_server: %w", err)
	}
	defer stop()
	lock := &sync.Mutex{}
	plain, err := awsclient.New(ctx, awsclient.Settings{Region: "us-east-1", Endpoint: ep, OneAtATime: lock})
	if err != nil {
		return workerRun{}, err
	}
	dilate := float64(3 * max(4, pool))
	proxy, err := faultproxy.Start(faultproxy.Config{Target: ep, Model: &faultproxy.Model{Latencies: awsLatencies, Dilate: dilate}})
	if err != nil {
		return workerRun{}, err
	}
	defer proxy.Close()
	modeled, err := awsclient.New(ctx, awsclient.Settings{Region: "us-east-1", Endpoint: proxy.URL})
	if err != nil {
		return workerRun{}, err
	}
	s := stack.Defaults()
	res, err := stack.Provision(ctx, plain, "scale", s)
	if err != nil {
		return workerRun{}, err
	}
	path := filepath.Join(dir, "scale.csv")
	f, err := os.Create(path)
	if err != nil {
		return workerRun{}, err
	}
	w := bufio.NewWriter(f)
	if err := recordtest.WriteProductCSV(w, rows, 13, true); err != nil {
		return workerRun{}, err
	}
	w.Flush()
	f.Close()
	defer os.Remove(path)
	in, _ := os.Open(path)
	put, err := plain.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(res.Bucket), Key: aws.String("incoming/scale.csv"), Body: in})
	in.Close()
	if err != nil {
		return workerRun{}, err
	}
	st, _ := os.Stat(path)
	cfg := handler.Config{Bucket: res.Bucket, StateTable: res.StateTable, ProductsTable: res.ProductsTable,
		ShardQueueURL: res.ShardQueueURL, DLQURL: res.DLQURL,
		Options: handler.Options{Split: split.Options{ShardRows: int64(rows)}, Pool: pool, CheckpointEvery: every,
			LeaseTTL: 15 * time.Minute, Log: slog.New(slog.DiscardHandler)}}
	splitter := handler.FromClients(plain, cfg)
	ev := events.S3Event{Records: []events.S3EventRecord{{EventName: "ObjectCreated:Put", EventTime: time.Now().UTC(),
		S3: events.S3Entity{Bucket: events.S3Bucket{Name: res.Bucket}, Object: events.S3Object{Key: "incoming/scale.csv",
			Size: st.Size(), ETag: strings.Trim(aws.ToString(put.ETag), `"`), VersionID: aws.ToString(put.VersionId), Sequencer: "0A1B2C3D4E5F"}}}}}
	if err := splitter.Splitter(ctx, ev); err != nil {
		return workerRun{}, fmt.Errorf("split: %w", err)
	}
	msgs, err := plain.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(res.ShardQueueURL), MaxNumberOfMessages: 10,
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
		MessageAttributeNames:       []string{"All"}})
	if err != nil || len(msgs.Messages) != 1 {
		return workerRun{}, fmt.Errorf("shard manifests: %v, %d messages", err, len(msgs.Messages))
	}
	// The worker as Lambda builds it, on the modeled clients: the pool
	// size (POOL_SIZE) is also the sink's puts in flight.
	cfg.FailureTTL = 30 * 24 * time.Hour
	worker := handler.FromClients(modeled, cfg)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	proxy.Reset()
	cpu0 := cpuTime()
	start := time.Now()
	resp, err := worker.Worker(wctx, eventsource.Event(res.ShardQueueURL, msgs.Messages))
	run := workerRun{pool: pool, every: every, rows: rows, dilate: dilate, wall: time.Since(start), cpu: cpuTime() - cpu0, stats: proxy.Stats()}
	if err != nil || len(resp.BatchItemFailures) > 0 {
		return run, fmt.Errorf("worker: %v %+v", err, resp)
	}
	bs, err := dynamostate.New(plain.DynamoDB, res.StateTable, dynamostate.Options{}).ListBatches(ctx, 1)
	if err != nil || len(bs) != 1 || bs[0].Counts.Done() != int64(rows) {
		return run, fmt.Errorf("the shard did not finish: %v %+v", err, bs)
	}
	return run, nil
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// contentionDilate stretches latencies and intervals of the contention
// runs alike (the conflicts depend on their ratio), so that moto serves the
// checkpoints of 200 workers one at a time without becoming the bottleneck.
const contentionDilate = 40

// contentionRounds is how many checkpoints each worker makes.
const contentionRounds = 4

// measureContention has n workers each claim a shard of one batch and
// checkpoint it every interval (jittered ±20%), through the latency model
// with its transaction conflicts, with the store's own retries
// (dynamostate's defaults). A checkpoint writes only its own shard item
// (decision 30): one conditional UpdateItem, or a TransactWriteItems with
// the chunk's failure records. These checkpoints carry no failure records
// (moto copies the table for each transaction: a state table full of
// records would make moto the bottleneck), so each is one UpdateItem; a
// conflict could only come from another transaction holding the same
// shard item, which no other worker writes.
func measureContention(n int, interval time.Duration) (contentionRun, error) {
	ctx := context.Background()
	ep, stop, err := awstest.Start()
	if err != nil {
		return contentionRun{}, fmt.Errorf("moto_server: %w", err)
	}
	defer stop()
	lock := &sync.Mutex{}
	plain, err := awsclient.New(ctx, awsclient.Settings{Region: "us-east-1", Endpoint: ep, OneAtATime: lock})
	if err != nil {
		return contentionRun{}, err
	}
	table := "contention-state"
	if err := dynamostate.CreateTable(ctx, plain.DynamoDB, table); err != nil {
		return contentionRun{}, err
	}
	proxy, err := faultproxy.Start(faultproxy.Config{Target: ep, Model: &faultproxy.Model{Latencies: awsLatencies, Dilate: contentionDilate}})
	if err != nil {
		return contentionRun{}, err
	}
	defer proxy.Close()
	modeled, err := awsclient.New(ctx, awsclient.Settings{Region: "us-east-1", Endpoint: proxy.URL})
	if err != nil {
		return contentionRun{}, err
	}
	setup := dynamostate.New(plain.DynamoDB, table, dynamostate.Options{})
	shards := make([]state.Shard, n)
	for i := range shards {
		shards[i] = state.Shard{Index: i, Sheet: "-", Start: int64(i) * 1e6, End: int64(i+1) * 1e6, FirstRow: int64(i)*100_000 + 2, Rows: 100_000, Checksum: "crc32c:00000000"}
	}
	b, _, err := setup.CreateBatch(ctx, state.Batch{ID: "b-contention", Source: state.Source{URI: "s3://bench/contention.csv", Size: int64(n) * 1e6},
		Layout: state.Layout{Format: "csv", Header: strings.Split(recordtest.Header, ",")}, Profile: []byte("{}"), Shards: n,
		Counts: state.Counts{Total: int64(n) * 100_000}}, shards)
	if err != nil {
		return contentionRun{}, err
	}
	store := dynamostate.New(modeled.DynamoDB, table, dynamostate.Options{})
	leases := make([]state.Lease, n)
	for i := range leases {
		if leases[i], _, err = setup.Claim(ctx, b.ID, i, fmt.Sprintf("w%d", i), time.Hour, time.Now()); err != nil {
			return contentionRun{}, err
		}
	}
	run := contentionRun{workers: n, interval: interval, dilate: contentionDilate}
	var mu sync.Mutex
	var wg sync.WaitGroup
	proxy.Reset()
	start := time.Now()
	step := time.Duration(float64(interval) * contentionDilate)
	for i := range n {
		wg.Go(func() {
			cp := state.Checkpoint{NextOffset: int64(i) * 1e6, NextRow: int64(i)*100_000 + 2}
			jitter := func() time.Duration {
				return time.Duration(float64(step) * (0.8 + 0.4*float64((i*7919+int(cp.NextRow))%1000)/1000))
			}
			time.Sleep(time.Duration(float64(step) * float64(i%100) / 100)) // spread the first checkpoints
			for range contentionRounds {
				time.Sleep(jitter())
				next := cp
				next.NextOffset += 10_000
				next.NextRow += 1000
				next.Counts = cp.Counts.Add(state.Counts{Total: 1000, Imported: 950, Failed: 50})
				t := time.Now()
				err := store.Checkpoint(ctx, leases[i], next, nil, time.Now().Add(time.Hour))
				d := time.Duration(float64(time.Since(t)) / contentionDilate)
				mu.Lock()
				if err == nil {
					run.checkpoints++
					run.latencies = append(run.latencies, d)
					cp = next
				} else if failure.ReasonOf(err) == failure.Throttled || errors.Is(err, context.DeadlineExceeded) {
					run.gaveUp++
				} else {
					mu.Unlock()
					log.Printf("  checkpoint of worker %d: %v", i, err)
					mu.Lock()
					run.gaveUp++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	run.wall = time.Since(start).Seconds() / contentionDilate
	st := proxy.Stats()
	for _, op := range []string{"dynamodb UpdateItem", "dynamodb TransactWriteItems"} {
		run.writes += st.Calls[op]
		run.conflicts += st.Conflicts[op]
	}
	run.offered = float64(n) / interval.Seconds()
	slices.Sort(run.latencies)
	return run, nil
}

func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return ds[min(len(ds)-1, int(math.Ceil(p*float64(len(ds))))-1)]
}

func (r *scaleRuns) markdown(b *strings.Builder) {
	fmt.Fprintf(b, "\n## AWS at scale: one worker, many workers on one batch, the splitter\n\n")
	fmt.Fprintf(b, "Measured on moto behind `faultproxy` with its latency `Model` (client-side medians / p99: DynamoDB single items 5/20 ms, BatchGetItem and BatchWriteItem 10/40 ms, Query 8/30 ms, TransactWriteItems 15/60 ms, SQS 15/60 ms, S3 100/300 ms; moto's own time subtracted, moto serving one DynamoDB or SQS call at a time behind the latency). Latencies are dilated (multiplied) so that moto stays a small part of each call when many run at once, and rows/s are given back at AWS's latencies (the wall time divided by the dilation). See [scale.md](scale.md) for the sources of the latencies and what the figures mean for 1M-100M rows.\n\n")
	fmt.Fprintf(b, "One worker invocation, one shard of %d rows (5%% faulty), new products; the sink puts `pool` products at a time (`dynamocatalog.Options.InFlight`):\n\n", r.workers[0].rows)
	fmt.Fprintf(b, "| pool | checkpoint every | rows/s | dilation | moto busy | calls over their latency | CPU per row (worker + proxy, this machine) | DynamoDB calls |\n|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, w := range r.workers {
		var calls []string
		for _, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range w.stats.Calls {
				if strings.HasPrefix(k, "dynamodb") && !yield(k) {
					return
				}
			}
		}) {
			calls = append(calls, fmt.Sprintf("%s %d", strings.TrimPrefix(k, "dynamodb "), w.stats.Calls[k]))
		}
		fmt.Fprintf(b, "| %d | %d | %s | %.0fx | %.0f%% | %d | %.0f µs | %s |\n", w.pool, w.every, si(w.rate()), w.dilate, 100*w.motoUse(), w.stats.Overruns,
			float64(w.cpuPerRow())/1e3, strings.Join(calls, ", "))
	}
	fmt.Fprintf(b, "\nMany workers checkpointing one batch: each claims its own shard of one batch and checkpoints it every %.0f ms (jittered ±20%%; the interval of a worker at pool 8 and 1,000 rows a checkpoint, as measured above), %d times, with the state store's own retries; latencies and intervals dilated %dx alike. A checkpoint writes only its own shard item ([decision 30](decisions/0030-per-shard-counters-and-failure-partitions.md)): a BatchGetItem (the shard, and the batch for its status), then one conditional UpdateItem, or a TransactWriteItems with the chunk's failure records (these carry none). No item is written by two workers, so no write meets another's transaction:\n\n",
		float64(r.contention[0].interval)/1e6, contentionRounds, contentionDilate)
	fmt.Fprintf(b, "| workers | checkpoints offered/s | done | checkpoints/s done | gave up | write requests sent | refused by a conflict | checkpoint p50 | p99 |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, c := range r.contention {
		fmt.Fprintf(b, "| %d | %.0f | %d of %d | %.0f | %d | %d | %d (%.0f%%) | %.0f ms | %.0f ms |\n", c.workers, c.offered, c.checkpoints, c.workers*contentionRounds,
			float64(c.checkpoints)/math.Max(c.wall, 1e-9), c.gaveUp, c.writes, c.conflicts, 100*float64(c.conflicts)/math.Max(1, float64(c.writes)),
			float64(pct(c.latencies, 0.5))/1e6, float64(pct(c.latencies, 0.99))/1e6)
	}
	fmt.Fprintf(b, "\nThe splitter's single pass (`split.PlanSource`, shards of 50,000 rows, %d rows, %.0f MB from the page cache, one core, median of 3): **%.0f MB/s**.\n", r.splitRows, r.splitMB, r.splitMBps)
}

// Published limits and prices the projection uses (docs/scale.md cites
// them).
const (
	tableWRUQuota      = 40_000        // on-demand table-level write quota, units/s (default, raisable)
	newTableWRU        = 4_000         // a new on-demand table's writes/s before it scales
	partitionWRU       = 1_000         // one partition (one item at most) per second
	s3StreamMBps       = 87            // one S3 GET stream, MB/s ("85-90 MB/s" per request)
	esmStart           = 5             // SQS event source: concurrent batches at first
	esmRampPerMin      = 300           // ... then up to this many more a minute
	workerGB           = 1.769         // template WorkerMemory
	splitterGB         = 1.024         // template SplitterFunction MemorySize
	splitterVCPU       = 1024.0 / 1769 // Lambda CPU share at 1,024 MB
	priceLambdaGBs     = 0.0000133334  // arm64, per GB-second
	priceLambdaRequest = 0.20 / 1e6    // per invocation
	shardRows          = 50_000        // template ShardRows
	bytesPerRow        = 224           // the bench's product CSV
	shardItemKB        = 3             // a shard item with a full progress history, rounded up (1 write unit per KB in an UpdateItem)
	itemRRU            = 3_000         // one item's reads per second (a partition's read units; the batch item is under 4 KB: 1 unit a consistent read)
	failParts          = 16            // partition keys of a batch's failure records (decision 30)
	unitsPerRecord     = 2             // a failure record (at most 1 KB, raw_gz) in the checkpoint's transaction
	badShare           = 0.05          // faulty rows of the projected files
)

// projection is the model's answer for one file size and concurrency.
type projection struct {
	rows, workers         int
	split, ramp           float64 // seconds
	work, workClean       float64 // seconds: 5% faulty rows, none
	rate, rateClean       float64 // rows/s reached
	bound, boundClean     string  // what bounds the rate
	dynamo, lambda, other float64 // dollars (5% faulty rows)
}

// project applies the model of docs/scale.md: the splitter's single pass,
// then the shards at min(workers x one worker's rate, the table's write
// quota, the checkpoints one batch takes, the failure records' 16
// partitions), with the costs of the per-row units measured by the aws
// section. cpPerSec is the checkpoints a second one batch takes
// (batchCheckpointRate): since decision 30 no checkpoint writes an item
// another shard writes, so what remains is its partition, not an item.
func project(rows, workers int, workerRate, splitMBps, wruPerRow, rruPerRow, cpPerSec float64) projection {
	p := projection{rows: rows, workers: workers}
	shards := math.Ceil(float64(rows) / shardRows)
	mb := float64(rows) * bytesPerRow / 1e6
	p.split = mb / math.Min(s3StreamMBps, splitMBps*splitterVCPU)
	active := math.Min(float64(workers), shards)
	p.ramp = math.Max(0, active-esmStart) / esmRampPerMin * 60 / 2 // half the ramp is lost on average
	type limit struct {
		rate float64
		name string
	}
	bound := func(bad float64) limit {
		limits := []limit{
			{active * workerRate, fmt.Sprintf("%d workers", int(active))},
			{tableWRUQuota / wruPerRow, "table quota"},
			{cpPerSec * 1000, "batch's partition"},
		}
		if bad > 0 {
			limits = append(limits, limit{failParts * partitionWRU / (bad * unitsPerRecord), "failures' 16 partitions"})
		}
		best := limits[0]
		for _, l := range limits[1:] {
			if l.rate < best.rate {
				best = l
			}
		}
		return best
	}
	tail := float64(shardRows) / workerRate / 2 // half a shard of tail on average
	b := bound(badShare)
	p.rate, p.bound, p.work = b.rate, b.name, float64(rows)/b.rate+tail
	b = bound(0)
	p.rateClean, p.boundClean, p.workClean = b.rate, b.name, float64(rows)/b.rate+tail
	p.dynamo = float64(rows) * (wruPerRow*priceWRU + rruPerRow*priceRRU)
	busy := active * (p.work + p.ramp) // workers run (or wait on throttling) the whole time
	p.lambda = busy*workerGB*priceLambdaGBs + p.split*splitterGB*priceLambdaGBs + shards*2*priceLambdaRequest
	p.other = shards*4*priceSQS + (shards*2+3)*priceS3Get + 2*priceS3Put
	return p
}

// batchCheckpointRate is how many checkpoints a second one batch takes:
// the most the contention runs achieved, at most what its partition takes.
// A checkpoint writes only its shard item (decision 30), so no item is
// shared; the shard items share the batch's partition key (1,000 write
// units/s, shardItemKB units a checkpoint, until DynamoDB splits the
// collection for heat, which it can: they are distinct items), and every
// checkpoint reads the batch item (3,000 reads/s, one item: no split
// helps).
func (r *scaleRuns) batchCheckpointRate() float64 {
	best := 0.0
	for _, c := range r.contention {
		best = math.Max(best, float64(c.checkpoints)/c.wall)
	}
	return math.Min(best, math.Min(partitionWRU/shardItemKB, itemRRU))
}

// defaultRate is the measured rate of one worker as the template runs it
// (its PoolSize, which is also the sink's puts in flight, and its
// CheckpointEvery), or the last run's when that was not measured.
func (r *scaleRuns) defaultRate() float64 {
	d := stack.Defaults()
	if w, ok := r.workerRun(d.PoolSize, d.CheckpointEvery); ok {
		return w.rate()
	}
	return r.workers[len(r.workers)-1].rate()
}

// projectionMarkdown writes the model's table for 1M, 10M and 100M rows at
// 10, 50 and 200 workers, from the measured rates and units per row.
func (r *scaleRuns) projectionMarkdown(b *strings.Builder, wruPerRow, rruPerRow float64, measured bool) {
	writeProjection(b, r.defaultRate(), r.splitMBps, r.batchCheckpointRate(), wruPerRow, rruPerRow, measured)
}

func writeProjection(b *strings.Builder, rate, splitMBps, cps, wruPerRow, rruPerRow float64, measured bool) {
	src := "measured by the aws section of this run"
	if !measured {
		src = "given to -project"
	}
	fmt.Fprintf(b, "\n### Projection: 1M-100M rows (the model of [scale.md](scale.md))\n\n")
	fmt.Fprintf(b, "Inputs: one worker %s rows/s (the template's pool of %d puts in flight, a checkpoint every 1,000 rows); the splitter's pass at min(S3's %d MB/s a stream, %.0f MB/s x %.2f vCPU at 1,024 MB); %.3f write and %.3f read units per row (%s; new products, 5%% faulty); one batch takes %.0f checkpoints/s (the most the contention runs achieved, at most its partition's 1,000 write units/s / %d units a shard item, decision 30: a checkpoint writes only its shard item); the failure records' %d partitions %d x 1,000 units/s (%d units a record); the table's default on-demand quota 40,000 write units/s; shards of 50,000 rows; %d bytes a row. Lambda at 1,769 MB (worker) and 1,024 MB (splitter), arm64. Costs are for 5%% faulty rows.\n\n",
		si(rate), stack.Defaults().PoolSize, s3StreamMBps, splitMBps, splitterVCPU, wruPerRow, rruPerRow, src, cps, shardItemKB, failParts, failParts, unitsPerRecord, bytesPerRow)
	fmt.Fprintf(b, "| rows | workers | split | ramp | wall, 5%% faulty | rows/s | bound by | wall, no faulty row | rows/s | bound by | DynamoDB $ | Lambda $ | SQS + S3 $ | total $ |\n|---:|---:|---:|---:|---:|---:|---|---:|---:|---|---:|---:|---:|---:|\n")
	for _, n := range []int{1_000_000, 10_000_000, 100_000_000} {
		for _, w := range []int{10, 50, 200} {
			p := project(n, w, rate, splitMBps, wruPerRow, rruPerRow, cps)
			fmt.Fprintf(b, "| %s | %d | %s | %s | **%s** | %s | %s | %s | %s | %s | %.2f | %.2f | %.3f | %.2f |\n", si(float64(n)), w, dur(p.split), dur(p.ramp),
				dur(p.split+p.ramp+p.work), si(p.rate), p.bound, dur(p.split+p.ramp+p.workClean), si(p.rateClean), p.boundClean,
				p.dynamo, p.lambda, p.other, p.dynamo+p.lambda+p.other)
		}
	}
}

// dur formats seconds as s, min or h.
func dur(s float64) string {
	switch {
	case s >= 3600:
		return fmt.Sprintf("%.1f h", s/3600)
	case s >= 120:
		return fmt.Sprintf("%.0f min", s/60)
	default:
		return fmt.Sprintf("%.0f s", s)
	}
}
