package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/catalog-import/catalog-import/internal/aws/awstest"
	"github.com/catalog-import/catalog-import/internal/aws/dynamocatalog"
	"github.com/catalog-import/catalog-import/internal/aws/stack"
	"github.com/catalog-import/catalog-import/internal/state"
)

// devFeedOpts are the `importctl dev` options of the feed tests: small
// shards checkpointed often, two workers at once, a 3 s worker timeout and
// a 6 s visibility timeout (what a killed worker's message waits out; the
// template's 6x the worker timeout would be 18 s).
var devFeedOpts = []string{"--worker-timeout", "3s", "--visibility-timeout", "6s", "--retry-delay", "1s", "--shard-rows", "15", "--checkpoint-every", "5", "--max-concurrency", "2", "--log-level", "error"}

// uploadAtOnce puts every file under incoming/<tag>.csv of bucket at the
// same time (one goroutine each, released together).
func uploadAtOnce(t *testing.T, bucket string, files []feedFile) {
	t.Helper()
	client := awstest.Clients(t).S3
	start := make(chan struct{})
	errs := make([]error, len(files))
	var wg sync.WaitGroup
	for i, f := range files {
		wg.Go(func() {
			<-start
			_, errs[i] = client.PutObject(context.Background(), &s3.PutObjectInput{
				Bucket: aws.String(bucket), Key: aws.String("incoming/" + f.tag + ".csv"), Body: strings.NewReader(f.csv())})
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("upload %s: %v", files[i].tag, err)
		}
	}
}

// devKillMidShard runs the built importctl's `dev` on the stack and
// SIGKILLs it once some shard has checkpointed without finishing and at
// least wait has passed. It reports whether it caught a shard so (false:
// every batch finished first, and dev was killed idle).
func devKillMidShard(t *testing.T, bin string, flags, opts []string, wait time.Duration) bool {
	t.Helper()
	cmd := exec.Command(bin, append(append([]string{"dev"}, flags...), opts...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
	time.Sleep(wait)
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		finished := 0
		batches := stackBatches(t, flags)
		for _, b := range batches {
			if b.Status.Finished() {
				finished++
				continue
			}
			_, out, _ := importctl(t, append([]string{"status", "--json", b.ID}, flags...)...)
			var st struct {
				Shards []state.Shard `json:"shard_list"`
			}
			json.Unmarshal([]byte(out), &st)
			for _, s := range st.Shards {
				if s.Status != state.ShardDone && s.Checkpoint.NextRow > s.FirstRow {
					return true
				}
			}
		}
		if len(batches) > 0 && finished == len(batches) {
			return false
		}
	}
	t.Fatal("dev neither reached the middle of a shard nor finished")
	return false
}

// devFeeds uploads files at the same time to a fresh `importctl dev` stack
// whose profile has write mode mode (a stack has one profile: every file
// must be of that mode), runs dev until idle, after a kill -9 of the dev
// process in the middle of a shard when kill is set, and checks
// that every batch COMPLETED and reconciles and that the catalog (the
// stack's DynamoDB products table, read through dynamocatalog) equals the
// files applied in the upload order each batch reports.
func devFeeds(t *testing.T, mode string, files []feedFile, kill bool, wait time.Duration, log *strings.Builder) {
	t.Helper()
	opts := append([]string{"--profile", writeModeProfiles(t, t.TempDir())[mode]}, devFeedOpts...)
	flags, bucket := devStack(t, opts...)
	uploadAtOnce(t, bucket, files)
	if kill {
		caught := devKillMidShard(t, sharedImportctl(t), flags, opts, wait)
		fmt.Fprintf(log, "dev killed after %v or more, in the middle of a shard: %v\n", wait, caught)
	}
	dev(t, devLimit(5*time.Minute), append(flags, opts...)...)

	batches := stackBatches(t, flags)
	orders := map[string]int64{}
	for _, f := range files {
		b, ok := batches["incoming/"+f.tag+".csv"]
		if !ok {
			t.Fatalf("no batch of %s", f.tag)
		}
		checkFinished(t, f, b)
		orders[f.tag] = b.Order
		t.Logf("%s: order %d, %+v", f.tag, b.Order, b.Counts)
	}
	var name string
	for i, fl := range flags {
		if fl == "--stack" {
			name = flags[i+1]
		}
	}
	sink := dynamocatalog.New(awstest.Clients(t).DynamoDB, stack.DevNames(name, "", "").ProductsTable, dynamocatalog.Options{})
	checkCatalog(t, files, expectedCatalog(files, orders), readProducts(t, sink, allSKUs(files)))
}

// TestDevFeedsMatchUploadOrder is the property test of issue 11 through
// `importctl dev` (the Lambda handlers on moto), smaller than the embedded
// one (TestFeedsMatchUploadOrderAfterKills): per seed, 3 or 4 files of one
// write mode (a stack has one profile: upsert for odd seeds, replace for
// even ones) with the required columns and random others, over overlapping
// SKUs, some with duplicate rows, uploaded at the same time through the S3
// API. The dev process is killed with SIGKILL in the middle of a shard,
// after a random time, and dev is run again until idle. Every batch must
// finish and reconcile with only its duplicate rows failed, and the products
// table must equal the files applied in the upload order the batches report
// (S3 event time, ties by batch id).
func TestDevFeedsMatchUploadOrder(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the handlers against moto and waits out a visibility timeout")
	}
	t.Parallel()
	for _, seed := range feedSeeds(t, 2) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			t.Parallel()
			var log strings.Builder
			onFailure(t, seed, &log)
			r := rand.New(rand.NewSource(seed))
			g := &feedGen{r: r}
			universe := make([]string, 30+r.Intn(30))
			for i := range universe {
				universe[i] = fmt.Sprintf("D-%03d", i)
			}
			mode := []string{"replace", "upsert"}[seed%2]
			var files []feedFile
			for i := range 3 + r.Intn(2) {
				f := g.file(fmt.Sprintf("f%d-%s", i, mode), mode, g.columns(true), g.pick(universe, len(universe)/2+r.Intn(len(universe)/2)))
				if r.Intn(2) == 0 {
					g.duplicate(&f, 1+r.Intn(2))
				}
				files = append(files, f)
				fmt.Fprintf(&log, "%s: %d rows, columns %v\n", f.tag, len(f.rows), f.cols)
			}
			devFeeds(t, mode, files, true, time.Duration(r.Intn(1500))*time.Millisecond, &log)
		})
	}
}

// TestDevUploadsAtTheSameTimeSharingSKUs: two full files that share most of
// their SKUs are uploaded to the bucket of `importctl dev` at the same time.
// Both COMPLETE (neither FAILED in reconciliation because the other wrote
// its SKUs) and the catalog is the two files applied in upload order.
func TestDevUploadsAtTheSameTimeSharingSKUs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the handlers against moto")
	}
	t.Parallel()
	var log strings.Builder
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("batches:\n%s", log.String())
		}
	})
	g := &feedGen{r: rand.New(rand.NewSource(21))}
	skus := numberedSKUs(80)
	files := []feedFile{
		g.file("export-a", "upsert", productFields, skus[:70]),
		g.file("export-b", "upsert", []string{"name", "category", "price", "stock"}, skus[10:]),
	}
	devFeeds(t, "upsert", files, false, 0, &log)
}
