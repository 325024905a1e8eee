package dynamostate_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/state"
)

// rawItem reads one item of the table as stored.
func rawItem(t *testing.T, c *dynamodb.Client, table, pk, sk string) map[string]types.AttributeValue {
	t.Helper()
	out, err := c.GetItem(t.Context(), &dynamodb.GetItemInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: sk}}})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

// rawText is a number's or a string's text ("" for anything else).
func rawText(v types.AttributeValue) string {
	switch v := v.(type) {
	case *types.AttributeValueMemberN:
		return v.Value
	case *types.AttributeValueMemberS:
		return v.Value
	}
	return ""
}

// TestCountsSummedFromShards (decision 30): checkpoints write only their
// shard item, never the batch item; GetBatch and ListBatches give the
// batch's counts as the sum of its shards' checkpoints, exactly, however
// many workers checkpoint at once; FinishBatch stores the final counts,
// which a finished batch then keeps.
func TestCountsSummedFromShards(t *testing.T) {
	for _, tc := range []struct {
		name           string
		shards, steps  int
		failuresPerCP  int
		finishAtTheEnd bool
	}{
		{"one shard, no failures", 1, 6, 0, false},
		{"8 shards at once, no failures", 8, 5, 0, false},
		{"8 shards at once, with failures", 8, 4, 3, false},
		{"16 shards at once, finished", 16, 3, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, c, table := newStore(t)
			ctx := t.Context()
			b, shards := batchOf(tc.shards, 1000)
			b.CreatedAt = time.Now().Add(-time.Hour).UTC()
			b.UpdatedAt = b.CreatedAt
			if _, _, err := s.CreateBatch(ctx, b, shards); err != nil {
				t.Fatal(err)
			}
			before := rawItem(t, c, table, "BATCH#"+b.ID, "#BATCH")
			var wg sync.WaitGroup
			for i := range tc.shards {
				wg.Go(func() {
					l, _, err := s.Claim(ctx, b.ID, i, fmt.Sprintf("w%d", i), time.Hour, t0)
					if err != nil {
						t.Errorf("claim %d: %v", i, err)
						return
					}
					for k := int64(1); k <= int64(tc.steps); k++ {
						f := int64(tc.failuresPerCP)
						var rs []failure.Record
						for r := range f {
							rs = append(rs, failure.Record{BatchID: b.ID, Sheet: "-", Row: shards[i].FirstRow + 10*(k-1) + r,
								Layer: failure.LayerSemantic, Reason: failure.InvalidNumber, Shard: i})
						}
						cp := state.Checkpoint{NextOffset: shards[i].Start + 10*k, NextRow: shards[i].FirstRow + 10*k,
							Counts: state.Counts{Total: 10 * k, Imported: (9 - f) * k, Superseded: k, Failed: f * k}}
						if err := s.Checkpoint(ctx, l, cp, rs, t0.Add(time.Hour)); err != nil {
							t.Errorf("checkpoint %d/%d: %v", i, k, err)
							return
						}
					}
				})
			}
			wg.Wait()
			n, k, f := int64(tc.shards), int64(tc.steps), int64(tc.failuresPerCP)
			want := state.Counts{Total: n * 1000, Imported: n * (9 - f) * k, Superseded: n * k, Failed: n * f * k}
			got, err := s.GetBatch(ctx, b.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Counts != want {
				t.Errorf("GetBatch counts %+v, want the shards' sum %+v", got.Counts, want)
			}
			if !got.UpdatedAt.After(b.UpdatedAt) {
				t.Errorf("GetBatch UpdatedAt %v: not the latest checkpoint's", got.UpdatedAt)
			}
			ls, err := s.ListBatches(ctx, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, lb := range ls {
				if lb.ID == b.ID && lb.Counts != want {
					t.Errorf("ListBatches counts %+v, want %+v", lb.Counts, want)
				}
			}
			after := rawItem(t, c, table, "BATCH#"+b.ID, "#BATCH")
			for _, name := range []string{"rows_imported", "rows_superseded", "rows_failed", "rows_skipped", "updated_at"} {
				if rawText(before[name]) != rawText(after[name]) {
					t.Errorf("a checkpoint wrote the batch item's %s: %s -> %s", name, rawText(before[name]), rawText(after[name]))
				}
			}
			if counts, err := s.CountFailures(ctx, b.ID); err != nil {
				t.Fatal(err)
			} else {
				for i := range tc.shards {
					if counts[i] != f*k {
						t.Errorf("shard %d: %d failure records, want %d", i, counts[i], f*k)
					}
				}
			}
			if !tc.finishAtTheEnd {
				return
			}
			final := want
			final.Skipped = final.Total - final.Done()
			if _, err := s.FinishBatch(ctx, b.ID, state.Final{Status: state.BatchCancelled, Counts: final}, t0.Add(2*time.Hour)); err != nil {
				t.Fatal(err)
			}
			if got, err := s.GetBatch(ctx, b.ID); err != nil || got.Counts != final {
				t.Errorf("finished batch: counts %+v (%v), want the stored %+v", got.Counts, err, final)
			}
		})
	}
}

// TestZombieCheckpointMovesNoCounter (invariant 2 with decision 30): a
// worker whose lease was taken over checkpoints with no, a few or more
// failure records than fit its transaction: ErrFenced, and neither the
// shard, the batch's counts nor any failure record changes.
func TestZombieCheckpointMovesNoCounter(t *testing.T) {
	for _, records := range []int{0, 5, 150} {
		t.Run(fmt.Sprintf("%d records", records), func(t *testing.T) {
			s, _, _ := newStore(t)
			ctx := t.Context()
			b, shards := batchOf(2, 1000)
			if _, _, err := s.CreateBatch(ctx, b, shards); err != nil {
				t.Fatal(err)
			}
			zombie, _, err := s.Claim(ctx, b.ID, 0, "zombie", time.Minute, t0)
			if err != nil {
				t.Fatal(err)
			}
			first := state.Checkpoint{NextOffset: 10, NextRow: 12, Counts: state.Counts{Total: 10, Imported: 10}}
			if err := s.Checkpoint(ctx, zombie, first, nil, t0.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			// The lease runs out; another worker takes the shard over.
			if _, _, err := s.Claim(ctx, b.ID, 0, "heir", time.Minute, t0.Add(2*time.Minute)); err != nil {
				t.Fatal(err)
			}
			batchBefore, err := s.GetBatch(ctx, b.ID)
			if err != nil {
				t.Fatal(err)
			}
			shardsBefore, err := s.ListShards(ctx, b.ID)
			if err != nil {
				t.Fatal(err)
			}
			var rs []failure.Record
			for r := range int64(records) {
				rs = append(rs, failure.Record{BatchID: b.ID, Sheet: "-", Row: 12 + r, Layer: failure.LayerSyntax, Reason: failure.MalformedRow})
			}
			late := state.Checkpoint{NextOffset: 500, NextRow: 12 + 200, Counts: state.Counts{Total: 200, Imported: 200 - int64(records), Failed: int64(records)}}
			err = s.Checkpoint(ctx, zombie, late, rs, t0.Add(3*time.Minute))
			if !errors.Is(err, state.ErrFenced) {
				t.Fatalf("zombie checkpoint: %v, want ErrFenced", err)
			}
			batchAfter, err := s.GetBatch(ctx, b.ID)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(batchBefore, batchAfter, cmpOpts); d != "" {
				t.Errorf("batch moved by a zombie (-before +after):\n%s", d)
			}
			shardsAfter, err := s.ListShards(ctx, b.ID)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(shardsBefore, shardsAfter, cmpOpts); d != "" {
				t.Errorf("shards moved by a zombie (-before +after):\n%s", d)
			}
			if got, err := s.Failures(ctx, b.ID, state.FailureFilter{}); err != nil || len(got) != 0 {
				t.Errorf("failure records of a zombie: %d (%v)", len(got), err)
			}
		})
	}
}

// TestFailuresInOrderAcrossPartitions (decision 30): a batch's failure
// records are spread over 16 partition keys, and Failures merges them back
// into (sheet, row) order, paged, filtered and limited as before; every
// partition holds some of them.
func TestFailuresInOrderAcrossPartitions(t *testing.T) {
	s, c, table := newStore(t)
	ctx := t.Context()
	b, shards := batchOf(3, 1000)
	if _, _, err := s.CreateBatch(ctx, b, shards); err != nil {
		t.Fatal(err)
	}
	var all []failure.Record
	for i, sheet := range []string{"-", "Sheet", "Sheet 2", "价格表"} {
		for r := int64(2); r < 120; r += 1 + int64(i) {
			reason := failure.InvalidNumber
			if r%3 == 0 {
				reason = failure.MissingField
			}
			rec := failure.Record{BatchID: b.ID, Sheet: sheet, Row: r, Shard: int(r) % 3, FailureAt: t0}
			rec.FromError(failure.New(reason, "price", "row %d", r))
			all = append(all, rec)
		}
	}
	shuffled := slices.Clone(all)
	for i := range shuffled { // written out of order, in chunks of 25
		j := (i * 7919) % len(shuffled)
		shuffled[i], shuffled[j] = shuffled[j], shuffled[i]
	}
	if err := s.PutFailures(ctx, shuffled); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(all, failure.Compare)
	parts := 0
	for p := range 16 {
		out, err := c.Query(ctx, &dynamodb.QueryInput{TableName: aws.String(table), Select: types.SelectCount, ConsistentRead: aws.Bool(true),
			KeyConditionExpression:    aws.String("pk = :pk"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: fmt.Sprintf("BATCH#%s#F%02d", b.ID, p)}}})
		if err != nil {
			t.Fatal(err)
		}
		if out.Count > 0 {
			parts++
		}
	}
	if parts != 16 {
		t.Errorf("records in %d of 16 partitions", parts)
	}
	keys := func(rs []failure.Record) []string {
		out := make([]string, len(rs))
		for i, r := range rs {
			out[i] = fmt.Sprintf("%s/%d", r.Sheet, r.Row)
		}
		return out
	}
	byReason := func(reason failure.Reason) []failure.Record {
		var out []failure.Record
		for _, r := range all {
			if r.Reason == reason {
				out = append(out, r)
			}
		}
		return out
	}
	one := 1
	for _, tc := range []struct {
		name string
		f    state.FailureFilter
		want []failure.Record
	}{
		{"all", state.FailureFilter{}, all},
		{"first 7", state.FailureFilter{Limit: 7}, all[:7]},
		{"after a key", state.FailureFilter{AfterSheet: all[40].Sheet, AfterRow: all[40].Row, Limit: 30}, all[41:71]},
		{"after a sheet's last row", state.FailureFilter{AfterSheet: "Sheet", AfterRow: 1 << 41}, all[slices.IndexFunc(all, func(r failure.Record) bool { return r.Sheet == "Sheet 2" }):]},
		{"one reason", state.FailureFilter{Reasons: []failure.Reason{failure.MissingField}}, byReason(failure.MissingField)},
		{"one reason, limited", state.FailureFilter{Reasons: []failure.Reason{failure.MissingField}, Limit: 5}, byReason(failure.MissingField)[:5]},
		{"one shard", state.FailureFilter{Shard: &one}, slices.DeleteFunc(slices.Clone(all), func(r failure.Record) bool { return r.Shard != 1 })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Failures(ctx, b.ID, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(keys(tc.want), keys(got)); d != "" {
				t.Errorf("Failures (-want +got):\n%s", d)
			}
		})
	}
	// Pages of 10 walk the whole list once, in order.
	var paged []failure.Record
	f := state.FailureFilter{Limit: 10}
	for {
		page, err := s.Failures(ctx, b.ID, f)
		if err != nil {
			t.Fatal(err)
		}
		paged = append(paged, page...)
		if len(page) < 10 {
			break
		}
		f.AfterSheet, f.AfterRow = page[len(page)-1].Sheet, page[len(page)-1].Row
	}
	if d := cmp.Diff(keys(all), keys(paged)); d != "" {
		t.Errorf("paged Failures (-want +got):\n%s", d)
	}
	// Resolve marks find records in any partition.
	var ks []failure.Key
	for _, r := range all[:20] {
		ks = append(ks, failure.Key{Sheet: r.Sheet, Row: r.Row})
	}
	n, err := s.ResolveFailures(ctx, b.ID, ks, "b-fix", t0)
	if err != nil || n != 20 {
		t.Errorf("ResolveFailures = %d, %v; want 20", n, err)
	}
	un, err := s.Failures(ctx, b.ID, state.FailureFilter{Unresolved: true})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(keys(all[20:]), keys(un)); d != "" {
		t.Errorf("unresolved after resolving the first 20 (-want +got):\n%s", d)
	}
}

// setLayout rewrites a batch item's item_layout: "" removes it (a batch
// registered before decision 30), else sets it.
func setLayout(t *testing.T, c *dynamodb.Client, table, batchID, v string) {
	t.Helper()
	in := &dynamodb.UpdateItemInput{TableName: aws.String(table),
		Key:              map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "BATCH#" + batchID}, "sk": &types.AttributeValueMemberS{Value: "#BATCH"}},
		UpdateExpression: aws.String("REMOVE item_layout")}
	if v != "" {
		in.UpdateExpression = aws.String("SET item_layout = :v")
		in.ExpressionAttributeValues = map[string]types.AttributeValue{":v": &types.AttributeValueMemberN{Value: v}}
	}
	if _, err := c.UpdateItem(t.Context(), in); err != nil {
		t.Fatal(err)
	}
}

// TestOldLayoutRecordsStillRead (decision 30): failure records of the layout
// before it (every record under the batch's own partition key) are still
// listed, counted and resolved: all of an old batch's, and those a worker
// of the old code wrote into a new batch during a deploy (a record in both
// layouts counts once).
func TestOldLayoutRecordsStillRead(t *testing.T) {
	rec := func(id string, row int64, shard int) failure.Record {
		return failure.Record{BatchID: id, Sheet: "-", Row: row, Shard: shard, Layer: failure.LayerSemantic, Reason: failure.MissingField, FailureAt: t0}
	}
	rows := func(rs []failure.Record) []int64 {
		out := make([]int64, len(rs))
		for i, r := range rs {
			out[i] = r.Row
		}
		return out
	}
	inOwnPartition := func(t *testing.T, c *dynamodb.Client, table, id string) int32 {
		t.Helper()
		out, err := c.Query(t.Context(), &dynamodb.QueryInput{TableName: aws.String(table), Select: types.SelectCount, ConsistentRead: aws.Bool(true),
			KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :f)"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: "BATCH#" + id},
				":f": &types.AttributeValueMemberS{Value: "FAIL#"}}})
		if err != nil {
			t.Fatal(err)
		}
		return out.Count
	}
	for _, tc := range []struct {
		name        string
		legacy, now []int64 // rows written in the old layout, then in the batch's own
		marked      bool    // the batch item says layout 2
		want        []int64
		wantLegacy  int32 // records under BATCH#<id> at the end
	}{
		{"a batch registered before: all records in its partition", []int64{3, 9}, []int64{5, 7}, false, []int64{3, 5, 7, 9}, 4},
		{"a new batch with records an old worker wrote", []int64{4, 6}, []int64{2, 6, 8}, true, []int64{2, 4, 6, 8}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, c, table := newStore(t)
			ctx := t.Context()
			b, shards := batchOf(1, 100)
			if _, _, err := s.CreateBatch(ctx, b, shards); err != nil {
				t.Fatal(err)
			}
			setLayout(t, c, table, b.ID, "")
			var old []failure.Record
			for _, r := range tc.legacy {
				old = append(old, rec(b.ID, r, 0))
			}
			if err := s.PutFailures(ctx, old); err != nil {
				t.Fatal(err)
			}
			if tc.marked {
				setLayout(t, c, table, b.ID, "2")
			}
			// The rows of the batch's own layout through a checkpoint.
			l, _, err := s.Claim(ctx, b.ID, 0, "w", time.Hour, t0)
			if err != nil {
				t.Fatal(err)
			}
			var cur []failure.Record
			for _, r := range tc.now {
				cur = append(cur, rec(b.ID, r, 0))
			}
			cp := state.Checkpoint{NextOffset: 50, NextRow: 12, Counts: state.Counts{Total: 10, Imported: 10 - int64(len(cur)), Failed: int64(len(cur))}}
			if err := s.Checkpoint(ctx, l, cp, cur, t0.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if n := inOwnPartition(t, c, table, b.ID); n != tc.wantLegacy {
				t.Errorf("%d records under BATCH#<id>, want %d", n, tc.wantLegacy)
			}
			got, err := s.Failures(ctx, b.ID, state.FailureFilter{})
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, rows(got)); d != "" {
				t.Errorf("Failures (-want +got):\n%s", d)
			}
			counts, err := s.CountFailures(ctx, b.ID)
			if err != nil {
				t.Fatal(err)
			}
			if counts[0] != int64(len(tc.want)) {
				t.Errorf("CountFailures = %v, want %d for shard 0", counts, len(tc.want))
			}
			if page, err := s.Failures(ctx, b.ID, state.FailureFilter{AfterSheet: "-", AfterRow: tc.want[0], Limit: 2}); err != nil {
				t.Fatal(err)
			} else if d := cmp.Diff(tc.want[1:3], rows(page)); d != "" {
				t.Errorf("a page after row %d (-want +got):\n%s", tc.want[0], d)
			}
			// A fix file resolves the rows of the batch's own layout: a row
			// stored in both layouts is resolved, the old copy too as far
			// as a listing shows; the rows stored only in the old layout
			// stay unresolved.
			keys := func(rows []int64) []failure.Key {
				out := make([]failure.Key, len(rows))
				for i, r := range rows {
					out[i] = failure.Key{Sheet: "-", Row: r}
				}
				return out
			}
			unresolved := func() []int64 {
				t.Helper()
				got, err := s.Failures(ctx, b.ID, state.FailureFilter{Unresolved: true, Reasons: []failure.Reason{failure.MissingField}})
				if err != nil {
					t.Fatal(err)
				}
				return rows(got)
			}
			n, err := s.ResolveFailures(ctx, b.ID, keys(tc.now), "b-fix", t0)
			if err != nil || n != len(tc.now) {
				t.Errorf("ResolveFailures(%v) = %d, %v; want %d", tc.now, n, err, len(tc.now))
			}
			var rest []int64
			for _, r := range tc.want {
				if !slices.Contains(tc.now, r) {
					rest = append(rest, r)
				}
			}
			if d := cmp.Diff(rest, unresolved(), cmpopts.EquateEmpty()); d != "" {
				t.Errorf("unresolved after resolving %v (-want +got):\n%s", tc.now, d)
			}
			// Then every row: the old layout's are found there; the rows
			// resolved already are passed over (not counted twice).
			n, err = s.ResolveFailures(ctx, b.ID, keys(tc.want), "b-fix2", t0)
			if err != nil || n != len(rest) {
				t.Errorf("ResolveFailures(%v) = %d, %v; want %d (the rows only in the old layout)", tc.want, n, err, len(rest))
			}
			if got := unresolved(); len(got) != 0 {
				t.Errorf("unresolved after resolving every row: %v, want none", got)
			}
		})
	}
}
