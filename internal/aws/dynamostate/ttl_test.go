package dynamostate_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/catalog-import/catalog-import/internal/aws/dynamostate"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/state"
	"github.com/catalog-import/catalog-import/internal/triage"
)

// TestFinishedItemsExpire: a finished batch's items carry the table's TTL
// attribute, BatchTTL after they finished (the batch item, a shard
// FinishShard ended, a shard the batch was stopped before), a triage-log
// entry BatchTTL after its time; a running batch's items carry none, and a
// negative BatchTTL keeps everything.
func TestFinishedItemsExpire(t *testing.T) {
	c, table := newTable(t)
	ctx := t.Context()
	clock := t0.Add(time.Hour)
	ttl := 7 * 24 * time.Hour
	s := dynamostate.New(c, table, dynamostate.Options{BatchTTL: ttl, Now: func() time.Time { return clock }})
	raw := func(pk, sk string) map[string]types.AttributeValue {
		t.Helper()
		out, err := c.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true),
			Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: sk}}})
		if err != nil || out.Item == nil {
			t.Fatalf("item %s %s: %v", pk, sk, err)
		}
		return out.Item
	}
	expires := func(it map[string]types.AttributeValue) int64 {
		v, ok := it[dynamostate.TTLAttribute].(*types.AttributeValueMemberN)
		if !ok {
			return 0
		}
		n, _ := strconv.ParseInt(v.Value, 10, 64)
		return n
	}

	b, shards := batchOf(2, 10)
	if _, _, err := s.CreateBatch(ctx, b, shards); err != nil {
		t.Fatal(err)
	}
	pk := "BATCH#" + b.ID
	l, _, err := s.Claim(ctx, b.ID, 0, "w", time.Minute, clock)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.FinishShard(ctx, l, state.ShardDone, state.Checkpoint{NextOffset: 1000, NextRow: 12, Counts: state.Counts{Total: 10, Imported: 10}}, ""); err != nil {
		t.Fatal(err)
	}
	at := clock.Add(time.Minute)
	if err := s.TriageLog().Append(ctx, triage.Entry{BatchID: b.ID, Shard: 1, At: at, Kind: triage.KindError, Reason: failure.Throttled}); err != nil {
		t.Fatal(err)
	}
	if n := expires(raw(pk, "#BATCH")); n != 0 {
		t.Errorf("running batch expires at %d, want no expiry", n)
	}
	if n, want := expires(raw(pk, "SHARD#000000")), clock.Add(ttl).Unix(); n != want {
		t.Errorf("finished shard 0 expires at %d, want %d", n, want)
	}
	if n := expires(raw(pk, "SHARD#000001")); n != 0 {
		t.Errorf("unfinished shard 1 expires at %d, want no expiry", n)
	}
	finished := clock.Add(2 * time.Hour)
	if _, err := s.FinishBatch(ctx, b.ID, state.Final{Status: state.BatchCancelled, Counts: state.Counts{Total: 20, Imported: 10, Skipped: 10}}, finished); err != nil {
		t.Fatal(err)
	}
	want := finished.Add(ttl).Unix()
	if n := expires(raw(pk, "#BATCH")); n != want {
		t.Errorf("finished batch expires at %d, want %d", n, want)
	}
	if n := expires(raw(pk, "SHARD#000001")); n != want {
		t.Errorf("shard 1, unfinished when the batch was cancelled, expires at %d, want %d (with the batch)", n, want)
	}
	if n := expires(raw(pk, "SHARD#000000")); n != clock.Add(ttl).Unix() {
		t.Errorf("shard 0's expiry moved to %d", n)
	}
	out, err := c.Query(ctx, &dynamodb.QueryInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true),
		KeyConditionExpression:    aws.String("pk = :pk AND begins_with(sk, :t)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: pk}, ":t": &types.AttributeValueMemberS{Value: "TRIAGE#"}}})
	if err != nil || len(out.Items) != 1 {
		t.Fatalf("triage entries: %d %v", len(out.Items), err)
	}
	if n := expires(out.Items[0]); n != at.Add(ttl).Unix() {
		t.Errorf("triage entry expires at %d, want %d", n, at.Add(ttl).Unix())
	}

	// BatchTTL < 0: nothing expires.
	keep := dynamostate.New(c, table, dynamostate.Options{BatchTTL: -1})
	b2, shards2 := batchOf(1, 10)
	if _, _, err := keep.CreateBatch(ctx, b2, shards2); err != nil {
		t.Fatal(err)
	}
	if _, err := keep.FinishBatch(ctx, b2.ID, state.Final{Status: state.BatchCancelled, Counts: state.Counts{Total: 10, Skipped: 10}}, finished); err != nil {
		t.Fatal(err)
	}
	for _, sk := range []string{"#BATCH", "SHARD#000000"} {
		if n := expires(raw("BATCH#"+b2.ID, sk)); n != 0 {
			t.Errorf("%s with BatchTTL < 0 expires at %d, want never", sk, n)
		}
	}
}
