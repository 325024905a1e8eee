package cli

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/catalog-import/catalog-import/internal/aws/awstest"
	"github.com/catalog-import/catalog-import/internal/aws/dynamostate"
	"github.com/catalog-import/catalog-import/internal/aws/redrive"
	"github.com/catalog-import/catalog-import/internal/aws/sqsqueue"
	"github.com/catalog-import/catalog-import/internal/aws/stack"
	"github.com/catalog-import/catalog-import/internal/queue"
	"github.com/catalog-import/catalog-import/internal/state"
)

// TestMain stops the shared moto server (awstest) that TestRedrive starts.
// With IMPORTCTL_TEST_MAIN=1 the test binary is importctl itself
// (importctlIn runs it in a mount namespace of its own).
func TestMain(m *testing.M) {
	if os.Getenv("IMPORTCTL_TEST_MAIN") == "1" {
		os.Exit(Main(context.Background(), ProcessEnv(), os.Args[1:]))
	}
	awstest.Main(m)
}

// TestRedrive runs `importctl redrive` end to end on moto: a dry run lists
// both sources and moves nothing, a filtered run moves one message, and a
// run without filters (StartMessageMoveTask refused by moto, so message by
// message) moves the rest and re-sends the ESCALATED shard's manifest;
// nothing is lost or duplicated and the unreadable body stays.
func TestRedrive(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := awstest.Clients(t)
	name := awstest.Name("redrive")
	res, err := stack.Provision(ctx, c, name, stack.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	flags := []string{"--endpoint", awstest.Endpoint(t), "--region", c.Config.Region, "--stack", name, "--rate", "200/s"}

	// An ESCALATED shard of a running batch.
	st := dynamostate.New(c.DynamoDB, res.StateTable, dynamostate.Options{})
	b := state.Batch{ID: "b-esc", Status: state.BatchRunning, Shards: 1, Source: state.Source{URI: "s3://x/incoming/a.csv"},
		Layout: state.Layout{Format: "csv", Encoding: "utf-8", Delimiter: ","}, CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if _, _, err := st.CreateBatch(ctx, b, []state.Shard{{BatchID: b.ID, Sheet: "-", End: 10, FirstRow: 2, Rows: 1, Status: state.ShardPending}}); err != nil {
		t.Fatal(err)
	}
	lease, sh, err := st.Claim(ctx, b.ID, 0, "w", time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.FinishShard(ctx, lease, state.ShardEscalated, sh.Checkpoint, "AccessDenied"); err != nil {
		t.Fatal(err)
	}
	// The DLQ: three manifests and an unreadable body.
	var dlq []string
	for _, m := range []queue.Manifest{{BatchID: "b-x", Shard: 0}, {BatchID: "b-x", Shard: 1}, {BatchID: "b-y", Shard: 0}} {
		m.Source.URI, m.RetryCount = "s3://x/incoming/"+m.BatchID, 5
		body, err := sqsqueue.Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		dlq = append(dlq, body)
	}
	dlq = append(dlq, "garbage")
	for _, body := range dlq {
		if _, err := c.SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(res.DLQURL), MessageBody: aws.String(body)}); err != nil {
			t.Fatal(err)
		}
	}

	code, out, errOut := importctl(t, append([]string{"redrive", "--dry-run", "--json"}, flags...)...)
	if code != 0 {
		t.Fatalf("redrive --dry-run: exit %d\n%s%s", code, out, errOut)
	}
	var would []string
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for _, line := range lines[:len(lines)-1] {
		var it redrive.Item
		if err := json.Unmarshal([]byte(line), &it); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if it.Action == redrive.ActionWouldMove {
			would = append(would, it.BatchID+"/"+it.Source)
		}
	}
	slices.Sort(would)
	if want := []string{"b-esc/escalated", "b-x/dlq", "b-x/dlq", "b-y/dlq"}; !slices.Equal(would, want) {
		t.Errorf("dry run would move %v, want %v\n%s", would, want, out)
	}
	var sum struct{ Summary redrive.Result }
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil || sum.Summary.Moved != 0 || sum.Summary.WouldMove != 4 || sum.Summary.Kept != 1 {
		t.Errorf("dry run summary %s: %+v %v", lines[len(lines)-1], sum, err)
	}

	code, out, errOut = importctl(t, append([]string{"redrive", "--batch", "b-x", "--shard", "1"}, flags...)...)
	if code != 0 || !strings.Contains(out, "moved 1, kept 3\n") || !hasRow(out, "moved", "b-x", "1", "dlq") {
		t.Errorf("redrive --batch b-x --shard 1: exit %d\n%s%s", code, out, errOut)
	}

	code, out, errOut = importctl(t, append([]string{"redrive"}, flags...)...)
	if code != 0 || !strings.Contains(out, "moved 3, kept 1\n") || !strings.Contains(errOut, "StartMessageMoveTask is not available") ||
		!hasRow(out, "moved", "b-esc", "0", "escalated") || !hasRow(out, "kept", "-", "-", "dlq") {
		t.Errorf("redrive: exit %d\n%s%s", code, out, errOut)
	}

	shardQ, left := receiveAll(t, c.SQS, res.ShardQueueURL), receiveAll(t, c.SQS, res.DLQURL)
	if len(shardQ) != 4 || !slices.Equal(left, []string{"garbage"}) {
		t.Errorf("shard queue has %d messages (want 3 from the DLQ, 1 escalated), DLQ %q", len(shardQ), left)
	}
	for _, body := range dlq[:3] {
		if !slices.Contains(shardQ, body) {
			t.Errorf("lost: %s", body)
		}
	}

	if code, _, errOut := importctl(t, append([]string{"redrive", "--rate", "fast"}, flags[:len(flags)-2]...)...); code != ExitFailed || !strings.Contains(errOut, "--rate") {
		t.Errorf("--rate fast: exit %d %s", code, errOut)
	}
}

// hasRow reports whether a table row of out starts with fields.
func hasRow(out string, fields ...string) bool {
	for line := range strings.SplitSeq(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= len(fields) && slices.Equal(f[:len(fields)], fields) {
			return true
		}
	}
	return false
}

// receiveAll receives (and hides) every visible message of the queue.
func receiveAll(t *testing.T, c *sqs.Client, url string) []string {
	t.Helper()
	var bodies []string
	for {
		r, err := c.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, VisibilityTimeout: 600})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Messages) == 0 {
			return bodies
		}
		for _, m := range r.Messages {
			bodies = append(bodies, aws.ToString(m.Body))
		}
	}
}
