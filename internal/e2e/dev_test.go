package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/catalog-import/catalog-import/internal/aws/awstest"
	"github.com/catalog-import/catalog-import/internal/cli"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/state"
)

// dev runs `importctl dev --until-idle` with args and fails the test, with
// dev's log, if it errs or is not idle within the limit.
func dev(t *testing.T, limit time.Duration, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var out, errb strings.Builder
	code := cli.Main(ctx, cli.Env{Stdout: &out, Stderr: &errb}, append([]string{"dev", "--until-idle"}, args...))
	if code != 0 || ctx.Err() != nil {
		t.Fatalf("importctl dev %v: exit %d after %v (limit %v)\nstdout:\n%s\nlog:\n%s", args, code, limit, ctx.Err(), out.String(), errb.String())
	}
}

// devStack provisions a fresh stack on the shared moto with `importctl dev`
// and returns the flags that select it and its bucket.
func devStack(t *testing.T, extra ...string) (flags []string, bucket string) {
	t.Helper()
	flags = []string{"--endpoint", awstest.Endpoint(t), "--stack", awstest.Name("dev")}
	code, out, errOut := importctl(t, append(append([]string{"dev", "--until-idle", "--log-level", "error"}, flags...), extra...)...)
	if code != 0 {
		t.Fatalf("dev: exit %d\n%s\n%s", code, out, errOut)
	}
	for line := range strings.SplitSeq(out, "\n") {
		if b, ok := strings.CutPrefix(line, "bucket: "); ok {
			bucket = b
		}
	}
	if bucket == "" {
		t.Fatalf("dev printed no bucket:\n%s", out)
	}
	return flags, bucket
}

func upload(t *testing.T, bucket, key, file string) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := awstest.Clients(t).S3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: f}); err != nil {
		t.Fatal(err)
	}
}

// stackBatches lists the stack's batches by the key they import.
func stackBatches(t *testing.T, flags []string) map[string]state.Batch {
	t.Helper()
	code, out, errOut := importctl(t, append([]string{"status", "--json", "--limit", "100"}, flags...)...)
	if code != 0 {
		t.Fatalf("status: exit %d %s", code, errOut)
	}
	var bs []state.Batch
	if err := json.Unmarshal([]byte(out), &bs); err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	m := map[string]state.Batch{}
	for _, b := range bs {
		key := b.Source.URI[strings.Index(b.Source.URI, "/incoming/")+1:]
		if _, dup := m[key]; dup {
			t.Errorf("two batches import %s", key)
		}
		m[key] = b
	}
	return m
}

// stackOutcome is what a user checks of a batch on the stack, in the terms
// runImport gives for `importctl run`.
func stackOutcome(t *testing.T, flags []string, b state.Batch) outcome {
	t.Helper()
	o := outcome{Exit: cli.ExitFor(b.Status), Status: string(b.Status), Message: b.Message,
		Rows: [4]int64{b.Counts.Total, b.Counts.Imported, b.Counts.Failed, b.Counts.Skipped}, ByReason: b.ByReason}
	if b.Counts.Failed > 0 {
		_, fl, ferr := importctl(t, append([]string{"failures", "--format", "jsonl", b.ID}, flags...)...)
		for line := range strings.SplitSeq(strings.TrimSpace(fl), "\n") {
			var r failure.Record
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("failures: %q %s: %v", line, ferr, err)
			}
			o.Failures = append(o.Failures, fmt.Sprintf("row %d %s/%s %s: %s", r.Row, r.Layer, r.Reason, r.Field, r.Message))
		}
	}
	return o
}

// comparable drops the message of DuplicateSKU failures: a later row met
// after its SKU's holder is "already imported from row N", one written first
// and displaced later is "also on row N", depending on the order shards ran
// in. The row, reason and field are what must agree.
func comparable(o outcome) outcome {
	fs := slices.Clone(o.Failures)
	for i, f := range fs {
		if strings.Contains(f, "/DuplicateSKU ") {
			fs[i], _, _ = strings.Cut(f, ":")
		}
	}
	o.Failures = fs
	return o
}

// TestDevImportsLikeRun: files dropped in the bucket of `importctl dev`
// (the real handlers on moto) end exactly as `importctl run` ends them:
// clean, mixed faults, GBK from Excel, JSON Lines, duplicate SKUs across
// shards, a rejected header. (Duplicate events: internal/aws/handler's
// TestSampleEvents.)
func TestDevImportsLikeRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the handlers against moto")
	}
	t.Parallel()
	dir := t.TempDir()
	var dups strings.Builder
	dups.WriteString("sku,name,category,price\n")
	for i := range 1000 {
		fmt.Fprintf(&dups, "D-%02d,Item %d,Home,%d.00\n", (i*7)%50, i, i+1)
	}
	os.WriteFile(filepath.Join(dir, "dups.csv"), []byte(dups.String()), 0o644)
	files := map[string]string{
		"incoming/clean.csv":           "../cli/testdata/input/clean.csv",
		"incoming/demo gbk.csv":        "../../testdata/demo/products-gbk.csv",
		"incoming/excel/gbk-excel.csv": "../cli/testdata/input/gbk-excel.csv",
		"incoming/products.jsonl":      "../cli/testdata/input/products.jsonl",
		"incoming/ragged.csv":          "../cli/testdata/input/ragged.csv",
		"incoming/missing-columns.csv": "../cli/testdata/input/missing-columns.csv",
		"incoming/dups.csv":            filepath.Join(dir, "dups.csv"),
	}
	flags, bucket := devStack(t)
	for key, file := range files {
		upload(t, bucket, key, file)
	}
	dev(t, 8*time.Minute, append([]string{"--log-level", "warn", "--shard-rows", "150", "--checkpoint-every", "50"}, flags...)...)
	batches := stackBatches(t, flags)
	for key, file := range files {
		t.Run(key, func(t *testing.T) {
			b, ok := batches[key]
			if !ok {
				t.Fatalf("no batch for %s", key)
			}
			local, _ := runImport(t, filepath.Join(dir, strings.ReplaceAll(key, "/", "_")+".db"), file)
			if diff := cmp.Diff(comparable(local), comparable(stackOutcome(t, flags, b)), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("(-importctl run +dev on moto):\n%s", diff)
			}
			if b.Counts.Failed > 0 && b.Report != "s3://"+bucket+"/reports/"+b.ID+"/errors.csv" {
				t.Errorf("report at %q", b.Report)
			}
		})
	}

}

// TestDevWorkerCrash: a worker process killed in the middle of a shard
// (kill -9 of importctl dev) leaves the shard message in flight; after the
// visibility timeout (6 s here) it is delivered again, resumes from the
// checkpoint, and the batch ends as a clean `importctl run` of the file
// ends it.
func TestDevWorkerCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("builds importctl and waits out a visibility timeout")
	}
	t.Parallel()
	dir := t.TempDir()
	bin := sharedImportctl(t)
	file := filepath.Join(dir, "products.csv")
	writeProducts(t, file, 2_000, 7)

	opts := []string{"--worker-timeout", "3s", "--visibility-timeout", "6s", "--shard-rows", "500", "--checkpoint-every", "50", "--max-concurrency", "2", "--log-level", "error"}
	flags, bucket := devStack(t, opts...)
	upload(t, bucket, "incoming/products.csv", file)
	cmd := exec.Command(bin, append(append([]string{"dev"}, flags...), opts...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill it once a shard has checkpointed but not finished.
	deadline := time.Now().Add(2 * time.Minute)
	for killed := false; !killed; {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("no shard was caught in the middle")
		}
		time.Sleep(100 * time.Millisecond)
		for _, b := range stackBatches(t, flags) {
			_, out, _ := importctl(t, append([]string{"status", "--json", b.ID}, flags...)...)
			var st struct {
				Shards []state.Shard `json:"shard_list"`
			}
			json.Unmarshal([]byte(out), &st)
			for _, s := range st.Shards {
				if s.Status != state.ShardDone && s.Checkpoint.NextRow > s.FirstRow {
					syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
					cmd.Wait()
					killed = true
				}
			}
		}
	}
	dev(t, 5*time.Minute, append(flags, opts...)...)
	b := stackBatches(t, flags)["incoming/products.csv"]
	_, out, _ := importctl(t, append([]string{"status", "--json", b.ID}, flags...)...)
	var st struct {
		Shards []state.Shard `json:"shard_list"`
	}
	json.Unmarshal([]byte(out), &st)
	claims := 0
	for _, s := range st.Shards {
		claims += s.Attempts
	}
	if claims <= len(st.Shards) {
		t.Errorf("%d claims of %d shards: the killed shard was not claimed again", claims, len(st.Shards))
	}
	local, _ := runImport(t, filepath.Join(dir, "clean.db"), file)
	if diff := cmp.Diff(comparable(local), comparable(stackOutcome(t, flags, b)), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("(-importctl run +dev killed and resumed):\n%s", diff)
	}
}
