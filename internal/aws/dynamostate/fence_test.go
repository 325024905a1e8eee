package dynamostate_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/state"
)

// TestShardConditionFencesClaimBetweenReadAndWrite: Checkpoint and
// FinishShard read the shard (BatchGetItem), then write it in a
// TransactWriteItems (or, for a checkpoint without failure records, one
// UpdateItem) whose condition is the only atomic fence between the two. A Claim made in between — by another owner after the lease ran out,
// or by the same owner coming back (which the owner term alone cannot
// tell from the holder) — must make the write ErrFenced and change
// nothing: not the shard, not the batch's counters, no failure record.
func TestShardConditionFencesClaimBetweenReadAndWrite(t *testing.T) {
	for _, tc := range []struct{ call, owner string }{
		{"Checkpoint", "w"}, {"Checkpoint", "other"}, {"FinishShard", "w"}, {"FinishShard", "other"},
		// Without failure records a checkpoint is one conditional
		// UpdateItem of the shard (decision 30), fenced the same way.
		{"CheckpointAlone", "w"}, {"CheckpointAlone", "other"},
	} {
		t.Run(tc.call+"/ClaimBy_"+tc.owner, func(t *testing.T) {
			var in injector
			s, _, _ := newStore(t, in.option)
			ctx := t.Context()
			b, shards := batchOf(1, 10)
			if _, _, err := s.CreateBatch(ctx, b, shards); err != nil {
				t.Fatal(err)
			}
			l, _, err := s.Claim(ctx, b.ID, 0, "w", time.Minute, t0)
			if err != nil {
				t.Fatal(err)
			}
			var (
				shardAfterClaim state.Shard
				batchAfterClaim state.Batch
				hookErr         error
			)
			write := "TransactWriteItems"
			if tc.call == "CheckpointAlone" {
				write = "UpdateItem"
			}
			in.armBefore(write, 1, func(hctx context.Context) {
				hctx = context.WithoutCancel(hctx)
				if _, _, err := s.Claim(hctx, b.ID, 0, tc.owner, time.Minute, t0.Add(2*time.Minute)); err != nil {
					hookErr = err
					return
				}
				sh, err := s.ListShards(hctx, b.ID)
				if err != nil {
					hookErr = err
					return
				}
				shardAfterClaim = sh[0]
				batchAfterClaim, hookErr = s.GetBatch(hctx, b.ID)
			})
			cp := state.Checkpoint{NextOffset: 500, NextRow: 7, Counts: state.Counts{Total: 5, Imported: 4, Failed: 1}}
			switch tc.call {
			case "Checkpoint":
				err = s.Checkpoint(ctx, l, cp, []failure.Record{{BatchID: b.ID, Sheet: "-", Row: 3, Layer: failure.LayerSemantic, Reason: failure.MissingField}}, t0.Add(time.Minute))
			case "CheckpointAlone":
				err = s.Checkpoint(ctx, l, cp, nil, t0.Add(time.Minute))
			case "FinishShard":
				cp = state.Checkpoint{NextOffset: 1000, NextRow: 12, Counts: state.Counts{Total: 10, Imported: 10}}
				_, err = s.FinishShard(ctx, l, state.ShardDone, cp, "done")
			}
			if hookErr != nil {
				t.Fatalf("claim between read and write: %v", hookErr)
			}
			if shardAfterClaim.Epoch != l.Epoch+1 {
				t.Fatalf("the claim between read and write did not happen: shard %+v", shardAfterClaim)
			}
			if !errors.Is(err, state.ErrFenced) {
				t.Errorf("%s with the lease claimed again between its read and its write: %v, want ErrFenced", tc.call, err)
			}
			sh, lerr := s.ListShards(ctx, b.ID)
			if lerr != nil {
				t.Fatal(lerr)
			}
			if d := cmp.Diff(shardAfterClaim, sh[0], cmpOpts); d != "" {
				t.Errorf("shard changed by the fenced %s (-before +after):\n%s", tc.call, d)
			}
			gb, gerr := s.GetBatch(ctx, b.ID)
			if gerr != nil {
				t.Fatal(gerr)
			}
			if d := cmp.Diff(batchAfterClaim, gb, cmpOpts); d != "" {
				t.Errorf("batch changed by the fenced %s (-before +after):\n%s", tc.call, d)
			}
			recs, ferr := s.Failures(ctx, b.ID, state.FailureFilter{})
			if ferr != nil {
				t.Fatal(ferr)
			}
			if len(recs) != 0 {
				t.Errorf("failure records written by the fenced %s: %v", tc.call, recs)
			}
		})
	}
}
