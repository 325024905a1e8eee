package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/catalog-import/catalog-import/internal/aws/awstest"
	"github.com/catalog-import/catalog-import/internal/aws/dynamostate"
	"github.com/catalog-import/catalog-import/internal/aws/faultproxy"
	"github.com/catalog-import/catalog-import/internal/aws/s3store"
	"github.com/catalog-import/catalog-import/internal/aws/sqsqueue"
	"github.com/catalog-import/catalog-import/internal/aws/stack"
	"github.com/catalog-import/catalog-import/internal/profile"
	"github.com/catalog-import/catalog-import/internal/queue"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/state"
	"github.com/catalog-import/catalog-import/internal/triage"
)

// chainFlags make a stack whose shard messages reach the DLQ quickly: a 5 s
// worker timeout, a 10 s visibility timeout (the template's is 6x the
// worker timeout: 30 s of waiting per failed delivery) and two deliveries,
// and a 1 s first triage retry; small checkpoints keep healthy shards
// moving within such short invocations on a loaded machine.
var chainFlags = []string{"--worker-timeout", "5s", "--visibility-timeout", "10s", "--retry-delay", "1s", "--max-receive-count", "2", "--shard-rows", "250", "--checkpoint-every", "25", "--log-level", "error"}

// poisonQueue sends the manifest of shard `poison` with a schema version no
// worker reads (as a newer splitter would), and the others as they are.
type poisonQueue struct {
	queue.Queue
	sqs    *sqs.Client
	url    string
	poison int
}

func (q poisonQueue) Send(ctx context.Context, delay time.Duration, ms ...queue.Manifest) error {
	var rest []queue.Manifest
	for _, m := range ms {
		if m.Shard != q.poison {
			rest = append(rest, m)
			continue
		}
		body, err := sqsqueue.Encode(m)
		if err != nil {
			return err
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			return err
		}
		v["v"] = 99
		b, _ := json.Marshal(v)
		if _, err := q.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q.url), MessageBody: aws.String(string(b))}); err != nil {
			return err
		}
	}
	return q.Queue.Send(ctx, delay, rest...)
}

// registerOnStack splits file (uploaded under a key outside incoming/, so
// no notification splits it a second time) into a batch on the stack and
// sends its manifests through wrap(the shard queue). It returns the batch.
func registerOnStack(t *testing.T, flags []string, bucket, key, file string, wrap func(queue.Queue, stack.Resources) queue.Queue) state.Batch {
	t.Helper()
	ctx := t.Context()
	c := awstest.Clients(t)
	res, err := stack.Find(ctx, c, flags[len(flags)-1])
	if err != nil {
		t.Fatal(err)
	}
	upload(t, bucket, key, file)
	src := s3store.New(c.S3)
	info, err := src.Stat(ctx, s3store.URI(bucket, key))
	if err != nil {
		t.Fatal(err)
	}
	v, err := profile.Default().Compile()
	if err != nil {
		t.Fatal(err)
	}
	plan, err := split.PlanSource(ctx, src, info, v, split.Options{ShardRows: 250})
	if err != nil || plan.Rejected != nil || len(plan.Shards) < 2 {
		t.Fatalf("plan of %s: %d shards, rejected %v, %v", file, len(plan.Shards), plan.Rejected, err)
	}
	st := dynamostate.New(c.DynamoDB, res.StateTable, dynamostate.Options{})
	out, err := split.Register(ctx, st, wrap(sqsqueue.New(c.SQS, res.ShardQueueURL), res),
		split.Request{BatchID: awstest.Name("b-chain"), Plan: plan, Profile: profile.Default(), Now: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	return out.Batch
}

// triageActions lists the batch's triage decisions as "shard action reason".
func triageActions(t *testing.T, id string, flags []string) []string {
	t.Helper()
	code, out, errOut := importctl(t, append([]string{"status", "--json", id}, flags...)...)
	if code != 0 {
		t.Fatalf("status: exit %d %s", code, errOut)
	}
	var got struct {
		TriageLog []triage.Entry `json:"triage_log"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	var acts []string
	for _, e := range got.TriageLog {
		if e.Kind == triage.KindDecision {
			acts = append(acts, strings.Join([]string{strconv.Itoa(e.Shard), string(e.Action), string(e.Reason)}, " "))
		}
	}
	return acts
}

// TestDevPoisonManifestIsSkipped: a shard manifest no worker can read (a
// schema version from the future) fails its deliveries, reaches the DLQ, and
// triage skips the shard: its rows count as skipped, the other shards
// import, and the batch reconciles and finishes.
func TestDevPoisonManifestIsSkipped(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the handlers against moto")
	}
	t.Parallel()
	flags, bucket := devStack(t, chainFlags...)
	b := registerOnStack(t, flags, bucket, "chain/poison.csv", "../../testdata/demo/products-gbk.csv", func(q queue.Queue, res stack.Resources) queue.Queue {
		return poisonQueue{Queue: q, sqs: awstest.Clients(t).SQS, url: res.ShardQueueURL, poison: 1}
	})
	dev(t, 4*time.Minute, append(append([]string{}, flags...), chainFlags...)...)

	got := batchJSON(t, b.ID, flags...)
	code, out, _ := importctl(t, append([]string{"status", "--json", b.ID}, flags...)...)
	var shards struct {
		ShardList []state.Shard `json:"shard_list"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &shards) != nil {
		t.Fatalf("status: exit %d\n%s", code, out)
	}
	skipped := shards.ShardList[1]
	if skipped.Status != state.ShardSkipped || got.Counts.Skipped != skipped.Rows || !got.Status.Finished() ||
		got.Counts.Total != got.Counts.Imported+got.Counts.Failed+got.Counts.Skipped {
		t.Errorf("batch %s %+v, shard 1 %s (%d rows); want shard 1 SKIPPED, its rows skipped, the batch finished and reconciled",
			got.Status, got.Counts, skipped.Status, skipped.Rows)
	}
	for _, s := range shards.ShardList {
		if s.Index != 1 && s.Status != state.ShardDone {
			t.Errorf("shard %d %s, want DONE", s.Index, s.Status)
		}
	}
	// Shard 1 is skipped once; on a loaded machine a healthy shard may also
	// reach the DLQ after timing out twice, and is then retried.
	skips := 0
	for _, a := range triageActions(t, b.ID, flags) {
		switch {
		case strings.HasPrefix(a, "1 skip"):
			skips++
		case strings.Contains(a, " retry "):
		default:
			t.Errorf("triage decision %q: only shard 1's skip and retries of healthy shards expected", a)
		}
	}
	if skips != 1 {
		t.Errorf("shard 1 skipped %d times, want once", skips)
	}
}

// TestDevAccessDeniedEscalatedThenRedriven: the workers may not read the
// bucket (every S3 call denied by the proxy), so every shard fails with
// AccessDenied, reaches the DLQ and is escalated (the batch stays RUNNING).
// Once the permission is fixed, `importctl redrive` sends the escalated
// shards back, and the batch completes exactly as `importctl run` imports
// the file.
func TestDevAccessDeniedEscalatedThenRedriven(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the handlers against moto through a fault-injecting proxy")
	}
	t.Parallel()
	flags, bucket := devStack(t, chainFlags...)
	b := registerOnStack(t, flags, bucket, "chain/denied.csv", "../../testdata/demo/products-gbk.csv",
		func(q queue.Queue, _ stack.Resources) queue.Queue { return q })
	p, err := faultproxy.Start(faultproxy.Config{Target: awstest.Endpoint(t), Rate: 1, Faults: []faultproxy.Fault{faultproxy.Denied},
		Services: []string{"s3"}, Seed: 1, Only: func(r *http.Request) bool { return r.Method == http.MethodGet && r.Header.Get("Range") != "" }})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	stackName := flags[len(flags)-1]
	dev(t, 4*time.Minute, append([]string{"--endpoint", p.URL, "--stack", stackName}, chainFlags...)...)

	got := batchJSON(t, b.ID, flags...)
	if got.Status != state.BatchRunning || got.ShardsDone != 0 {
		t.Fatalf("after the denied run: batch %s, %d shards done; want RUNNING, none done", got.Status, got.ShardsDone)
	}
	// Every shard is escalated for AccessDenied, once; on a loaded machine a
	// shard may first time out (NetworkTimeout) and be retried.
	escalated := map[string]int{}
	for _, a := range triageActions(t, b.ID, flags) {
		switch {
		case strings.HasSuffix(a, "escalate AccessDenied"):
			escalated[strings.Fields(a)[0]]++
		case strings.Contains(a, " retry "):
		default:
			t.Errorf("triage decision %q, want escalate AccessDenied (or a retry)", a)
		}
	}
	if len(escalated) != b.Shards {
		t.Fatalf("escalated shards %v, want each of the %d once", escalated, b.Shards)
	}
	for sh, n := range escalated {
		if n != 1 {
			t.Errorf("shard %s escalated %d times, want once", sh, n)
		}
	}

	// The permission is fixed; an operator redrives, and the workers (with
	// a roomy timeout now: nothing is meant to fail) import the batch.
	code, out, errOut := importctl(t, append([]string{"redrive", "--reason", "AccessDenied", "--rate", "100/s"}, flags...)...)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("moved %d,", b.Shards)) {
		t.Fatalf("redrive: exit %d, want %d moved\n%s%s", code, b.Shards, out, errOut)
	}
	dev(t, 4*time.Minute, append(append([]string{}, flags...), "--worker-timeout", "60s", "--max-receive-count", "2", "--log-level", "error")...)

	got = batchJSON(t, b.ID, flags...)
	local, _ := runImport(t, filepath.Join(t.TempDir(), "local.db"), "../../testdata/demo/products-gbk.csv")
	want := [4]int64{local.Rows[0], local.Rows[1], local.Rows[2], local.Rows[3]}
	if have := [4]int64{got.Counts.Total, got.Counts.Imported, got.Counts.Failed, got.Counts.Skipped}; have != want || string(got.Status) != local.Status {
		t.Errorf("after redrive: %s %v, want %s %v (as importctl run)", got.Status, have, local.Status, want)
	}
}

// TestDevRetryFailuresAndFixFile: on a stack, a fix file dropped in the
// bucket and then `importctl retry-failures --stack` (both under a fixed
// profile) are child batches of the parent; the rows the fix file imports
// are resolved in the parent, and the retry takes only what is left.
func TestDevRetryFailuresAndFixFile(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the handlers against moto")
	}
	t.Parallel()
	dir := t.TempDir()
	relaxed := filepath.Join(dir, "relaxed.yaml")
	os.WriteFile(relaxed, []byte(relaxedProfile), 0o644)
	flags, bucket := devStack(t)
	upload(t, bucket, "incoming/demo.csv", "../../testdata/demo/products-gbk.csv")
	dev(t, 4*time.Minute, append(append([]string{}, flags...), "--log-level", "error")...)
	parent := stackBatches(t, flags)["incoming/demo.csv"]
	if parent.Counts.Failed != 50 {
		t.Fatalf("parent %+v", parent)
	}

	// The merchant's fix: the fix file with its bad prices corrected.
	code, fix, errOut := importctl(t, append([]string{"failures", "--format", "fixfile", parent.ID}, flags...)...)
	if code != 0 {
		t.Fatalf("failures --format fixfile: exit %d %s", code, errOut)
	}
	fixed := fixPrices(t, fix, filepath.Join(dir, "fix.csv"))
	upload(t, bucket, "incoming/fix.csv", filepath.Join(dir, "fix.csv"))
	// It runs under the fixed rules (status "deleted" allowed): the fixed
	// prices and the 5 "deleted" rows import.
	dev(t, 4*time.Minute, append(append([]string{}, flags...), "--profile", relaxed, "--log-level", "error")...)
	fixChild := stackBatches(t, flags)["incoming/fix.csv"]
	if fixChild.Parent != parent.ID || fixChild.Counts.Imported != int64(fixed+5) {
		t.Fatalf("fix file batch: parent %q, %+v; want parent %s, %d imported", fixChild.Parent, fixChild.Counts, parent.ID, fixed+5)
	}
	if p := batchJSON(t, parent.ID, flags...); p.Resolved != int64(fixed+5) {
		t.Errorf("parent resolved %d after the fix file, want %d", p.Resolved, fixed+5)
	}

	// The operator retries what is left (unresolved only): nothing of it
	// imports, nothing more is resolved.
	code, out, errOut := importctl(t, append([]string{"retry-failures", parent.ID}, flags...)...)
	if left := 45 - (fixed + 5); code != 0 || !strings.Contains(out, fmt.Sprintf("retrying %d rows", left)) {
		t.Fatalf("retry-failures --stack: exit %d, want retrying %d rows\n%s%s", code, left, out, errOut)
	}
	dev(t, 4*time.Minute, append(append([]string{}, flags...), "--profile", relaxed, "--log-level", "error")...)
	children := 0
	for key, b := range stackBatches(t, flags) {
		switch {
		case b.Parent == parent.ID:
			children++
			if strings.HasPrefix(key, "incoming/retries/"+parent.ID+"/") && (b.Counts.Imported != 0 || b.Status != state.BatchCompletedWithErrors) {
				t.Errorf("retry batch %s: %s %+v, want nothing imported", key, b.Status, b.Counts)
			}
		case key != "incoming/demo.csv":
			t.Errorf("batch of %s has parent %q, want %s", key, b.Parent, parent.ID)
		}
	}
	if children != 2 {
		t.Errorf("%d child batches, want 2 (fix file, retry)", children)
	}
	p := batchJSON(t, parent.ID, flags...)
	if p.Resolved != int64(fixed+5) {
		t.Errorf("parent resolved %d, want %d", p.Resolved, fixed+5)
	}
	if n := unresolvedRows(t, parent.ID, flags...); int64(n) != 50-p.Resolved {
		t.Errorf("%d unresolved failures, want %d", n, 50-p.Resolved)
	}
}
