package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/catalog-import/catalog-import/internal/aws/awstest"
	"github.com/catalog-import/catalog-import/internal/aws/dynamostate"
	"github.com/catalog-import/catalog-import/internal/aws/faultproxy"
	"github.com/catalog-import/catalog-import/internal/aws/handler"
	"github.com/catalog-import/catalog-import/internal/aws/sqsqueue"
	"github.com/catalog-import/catalog-import/internal/aws/stack"
	"github.com/catalog-import/catalog-import/internal/queue"
	"github.com/catalog-import/catalog-import/internal/state"
	"github.com/catalog-import/catalog-import/internal/triage"
)

// TestInvokeSampleEvents runs every events/*.json through its function's
// real Lambda binary with `importctl invoke` against moto, on the stack
// importctl dev provisions, as the README's steps do: the splitter
// registers the upload of events/s3-put.json (in the shards events/env.json
// asks for) and queues manifests that carry the invocation's trace; the
// worker imports the shard of events/sqs-shard.json and reports no failed
// message; triage decides "done" for events/sqs-dlq.json, whose shard is
// done. A function whose environment lacks BUCKET fails its init (exit 2,
// the reason shown), and one whose DynamoDB never answers times out.
func TestInvokeSampleEvents(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := awstest.Clients(t)
	ep := awstest.Endpoint(t)
	res, err := stack.Provision(ctx, c, defaultInvokeStack, stack.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	var put events.S3Event
	readJSON(t, "../../events/s3-put.json", &put)
	obj := put.Records[0].S3
	data, err := os.ReadFile("../../testdata/demo/products-gbk.csv")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(obj.Bucket.Name), Key: aws.String(obj.Object.Key), Body: bytes.NewReader(data)}); err != nil {
		t.Fatal(err)
	}
	build := t.TempDir()
	invoke := func(t *testing.T, endpoint string, args ...string) (code int, stdout, stderr string) {
		t.Helper()
		return importctl(t, append([]string{"invoke", "--endpoint", endpoint, "--region", "us-east-1",
			"--template", "../../template.yaml", "--build-dir", build}, args...)...)
	}
	store := dynamostate.New(c.DynamoDB, res.StateTable, dynamostate.Options{})
	id := handler.BatchID(obj.Bucket.Name, obj.Object.Key, obj.Object.VersionID, obj.Object.Sequencer, obj.Object.ETag)

	t.Run("splitter", func(t *testing.T) {
		code, out, errs := invoke(t, ep, "SplitterFunction", "--event", "../../events/s3-put.json", "--env-vars", "../../events/env.json")
		if code != 0 || out != "null\n" {
			t.Fatalf("exit %d, stdout %q, want 0 and the splitter's null response; stderr:\n%s", code, out, errs)
		}
		b, err := store.GetBatch(ctx, id)
		if err != nil {
			t.Fatalf("batch %s: %v; stderr:\n%s", id, err, errs)
		}
		if b.Status != state.BatchRunning || b.Shards != 3 || b.Counts.Total != 1000 {
			t.Errorf("batch %s %s, %d shards, %d rows: want RUNNING, 1000 rows in the 3 shards of SHARD_ROWS=400 (events/env.json)", id, b.Status, b.Shards, b.Counts.Total)
		}
		// The manifests carry the trace of the invocation (Lambda-Runtime-Trace-Id).
		m := regexp.MustCompile(`XRAY TraceId: (\S+)`).FindStringSubmatch(errs)
		if m == nil {
			t.Fatalf("no XRAY line in the logs:\n%s", errs)
		}
		manifests := receiveManifests(t, c.SQS, res.ShardQueueURL)
		if len(manifests) != 3 {
			t.Fatalf("%d manifests on the shard queue, want 3", len(manifests))
		}
		for _, man := range manifests {
			if man.BatchID != id || man.TraceID != m[1] {
				t.Errorf("manifest of shard %d: batch %s, trace %q; want %s and the invocation's trace %s", man.Shard, man.BatchID, man.TraceID, id, m[1])
			}
		}
		for _, line := range []string{"START RequestId: ", "END RequestId: ", "REPORT RequestId: ", "Memory Size: 1024 MB", `"msg":"batch registered"`} {
			if !strings.Contains(errs, line) {
				t.Errorf("stderr lacks %q:\n%s", line, errs)
			}
		}
	})

	t.Run("worker", func(t *testing.T) {
		code, out, errs := invoke(t, ep, "ShardWorkerFunction", "--event", "../../events/sqs-shard.json", "--env-vars", "../../events/env.json",
			"--parameter-overrides", "WorkerMemory=2048 PoolSize=4")
		var resp events.SQSEventResponse
		if code != 0 || json.Unmarshal([]byte(out), &resp) != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("exit %d, stdout %q: want 0 and a response without batchItemFailures; stderr:\n%s", code, out, errs)
		}
		shards, err := store.ListShards(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if s := shards[1]; s.Status != state.ShardDone || s.Checkpoint.Counts.Total != 400 || s.Checkpoint.Counts.Imported == 0 {
			t.Errorf("shard 1: %s with %+v, want DONE with its 400 rows; stderr:\n%s", s.Status, s.Checkpoint.Counts, errs)
		}
		// The overridden WorkerMemory is the function's memory.
		if !strings.Contains(errs, "Memory Size: 2048 MB") {
			t.Errorf("no REPORT line with the overridden WorkerMemory of 2048 MB:\n%s", errs)
		}
		// In Lambda (AWS_LAMBDA_FUNCTION_NAME) metrics are EMF lines.
		if !strings.Contains(errs, `"FunctionName":"ShardWorkerFunction"`) {
			t.Errorf("no EMF metrics of ShardWorkerFunction in the logs:\n%s", errs)
		}
	})

	t.Run("triage", func(t *testing.T) {
		// Without --env-vars: every name comes from template.yaml, resolved
		// to the stack's resources.
		code, out, errs := invoke(t, ep, "TriageFunction", "--event", "../../events/sqs-dlq.json")
		var resp events.SQSEventResponse
		if code != 0 || json.Unmarshal([]byte(out), &resp) != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("exit %d, stdout %q: want 0 and the message dropped; stderr:\n%s", code, out, errs)
		}
		entries, err := dynamostate.NewTriageLog(c.DynamoDB, res.StateTable).List(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(entries); n == 0 || entries[n-1].Kind != triage.KindDecision || entries[n-1].Action != triage.Done ||
			entries[n-1].Shard != 1 || entries[n-1].ReceiveCount != 6 {
			t.Errorf("triage log: %+v, want the decision done for shard 1; stderr:\n%s", entries, errs)
		}
		if !strings.Contains(errs, "note: ESCALATION_TOPIC_ARN is empty: !Ref EscalationTopic cannot be resolved") {
			t.Errorf("no note on the unresolved escalation topic:\n%s", errs)
		}
	})

	t.Run("init error", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "env.json")
		if err := os.WriteFile(bad, []byte(`{"SplitterFunction": {"BUCKET": ""}}`), 0o644); err != nil {
			t.Fatal(err)
		}
		code, out, errs := invoke(t, ep, "SplitterFunction", "--event", "../../events/s3-put.json", "--env-vars", bad)
		var doc struct{ ErrorType, ErrorMessage string }
		_ = json.Unmarshal([]byte(out), &doc)
		if code != ExitFailed || doc.ErrorType != "Runtime.ExitError" || !strings.Contains(doc.ErrorMessage, "Runtime exited with error: exit status 1") {
			t.Errorf("exit %d, stdout %q: want %d and Lambda's Runtime.ExitError", code, out, ExitFailed)
		}
		for _, line := range []string{"environment variable BUCKET is not set", "Status: error\tError Type: Runtime.ExitError", "function 'SplitterFunction' failed to initialize"} {
			if !strings.Contains(errs, line) {
				t.Errorf("stderr lacks %q:\n%s", line, errs)
			}
		}
	})

	t.Run("timeout", func(t *testing.T) {
		// DynamoDB never answers (every request stalls): the splitter
		// cannot register the batch within its 2 seconds.
		p, err := faultproxy.Start(faultproxy.Config{Target: ep, Rate: 1, Faults: []faultproxy.Fault{faultproxy.Stall},
			Stall: time.Minute, Services: []string{"dynamodb"}})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		code, out, errs := invoke(t, p.URL, "SplitterFunction", "--event", "../../events/s3-put.json", "--timeout", "2")
		var doc struct{ ErrorType, ErrorMessage string }
		_ = json.Unmarshal([]byte(out), &doc)
		if code != ExitFailed || doc.ErrorType != "Sandbox.Timedout" || !strings.HasSuffix(doc.ErrorMessage, "Error: Task timed out after 2.00 seconds") {
			t.Errorf("exit %d, stdout %q: want %d and Lambda's Sandbox.Timedout after 2.00 seconds; stderr:\n%s", code, out, ExitFailed, errs)
		}
		if !strings.Contains(errs, "function 'SplitterFunction' timed out after 2 seconds") {
			t.Errorf("stderr lacks the timeout:\n%s", errs)
		}
		if faults, _ := p.Injected(); faults == 0 {
			t.Errorf("the splitter made no DynamoDB request through the proxy")
		}
	})
}

// TestInvokeUsage: what is wrong with the command line is said before
// anything is built.
func TestInvokeUsage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"invoke", "NoSuchFunction", "--template", "../../template.yaml"}, "has no function NoSuchFunction (it has ShardWorkerFunction, SplitterFunction, TriageFunction)"},
		{[]string{"invoke", "SplitterFunction", "--template", "../../template.yaml", "--event", "../../README.md"}, "event ../../README.md is not JSON"},
		{[]string{"invoke", "SplitterFunction", "--template", "../../template.yaml", "--env-vars", "../../README.md"}, "../../README.md: env vars: want"},
		{[]string{"invoke", "SplitterFunction", "--template", "nope.yaml"}, "template: open nope.yaml"},
		{[]string{"invoke", "ShardWorkerFunction", "--template", "../../template.yaml", "--parameter-overrides", "PoolSize=0"}, `--parameter-overrides: parameter PoolSize="0": want at least 1 (MinValue)`},
		{[]string{"invoke", "ShardWorkerFunction", "--template", "../../template.yaml", "--parameter-overrides", "Pool=4"}, "--parameter-overrides: the template has no parameter Pool (it has"},
		{[]string{"invoke"}, "accepts 1 arg"},
	} {
		code, _, errs := importctl(t, tc.args...)
		if code != ExitFailed || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, errs, ExitFailed, tc.want)
		}
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// receiveManifests receives every manifest on the queue (they stay in flight).
func receiveManifests(t *testing.T, c *sqs.Client, url string) []queue.Manifest {
	t.Helper()
	var all []queue.Manifest
	for {
		out, err := c.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, VisibilityTimeout: 60})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			return all
		}
		for _, m := range out.Messages {
			man, err := sqsqueue.Decode(aws.ToString(m.Body))
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, man)
		}
	}
}
