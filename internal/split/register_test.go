package split_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/catalog-import/catalog-import/internal/local/memqueue"
	"github.com/catalog-import/catalog-import/internal/local/sqlite"
	"github.com/catalog-import/catalog-import/internal/profile"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/state"
)

// TestRegisterAgainSendsOnlyUnfinishedShards: registering a batch that
// exists (a duplicate event, a retried split, a rerun) creates nothing and
// sends the manifests of its unfinished shards only: a finished shard's
// manifest would be a wasted delivery at best.
func TestRegisterAgainSendsOnlyUnfinishedShards(t *testing.T) {
	ctx := context.Background()
	var csv strings.Builder
	csv.WriteString("sku,name,category,price\n")
	for i := range 30 {
		fmt.Fprintf(&csv, "S-%03d,Item %d,Home,%d.5\n", i, i, i)
	}
	p := plan(t, "p.csv", []byte(csv.String()), split.Options{ShardRows: 10})
	if len(p.Shards) != 3 {
		t.Fatalf("%d shards, want 3", len(p.Shards))
	}
	db, err := sqlite.Open(sqlite.Memory, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q, err := memqueue.New(memqueue.Options{VisibilityTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	req := split.Request{BatchID: "b-reg", Plan: p, Profile: profile.Default(), Now: time.Now()}
	out, err := split.Register(ctx, db, q, req)
	if err != nil || !out.Created || out.Sent != 3 {
		t.Fatalf("first register: %+v %v", out, err)
	}
	sent := func() []int {
		msgs, err := q.Receive(ctx, 100, 10*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		var idx []int
		for _, m := range msgs {
			idx = append(idx, m.Manifest.Shard)
			if err := q.Ack(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
		slices.Sort(idx)
		return idx
	}
	sent()
	// Shard 1 is finished (done); shard 2 is being worked on.
	l, sh, err := db.Claim(ctx, "b-reg", 1, "w", time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	final := state.Checkpoint{NextOffset: sh.End, NextRow: sh.FirstRow + sh.Rows, Counts: state.Counts{Total: sh.Rows, Imported: sh.Rows}}
	if _, err := db.FinishShard(ctx, l, state.ShardDone, final, ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.Claim(ctx, "b-reg", 2, "w", time.Minute, time.Now()); err != nil {
		t.Fatal(err)
	}
	out, err = split.Register(ctx, db, q, req)
	if err != nil || out.Created || out.Sent != 2 {
		t.Errorf("register again: created %v, %d manifests sent, error %v; want not created and 2 sent", out.Created, out.Sent, err)
	}
	if got := sent(); !slices.Equal(got, []int{0, 2}) {
		t.Errorf("register again sent the manifests of shards %v, want [0 2] (shard 1 is done)", got)
	}
}
