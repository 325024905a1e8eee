// Package triagetest is the contract suite of the triage log port
// (triage.Log): every adapter runs it with Run.
package triagetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/triage"
)

// Run runs the contract suite; newLog returns an empty log for one subtest.
func Run(t *testing.T, newLog func(t *testing.T) triage.Log) {
	t.Run("RoundTripOldestFirst", func(t *testing.T) { roundTrip(t, newLog(t)) })
	t.Run("BatchesAreSeparate", func(t *testing.T) { separate(t, newLog(t)) })
	t.Run("UnknownBatchIsEmpty", func(t *testing.T) { unknown(t, newLog(t)) })
	t.Run("SameTimeKeepsBoth", func(t *testing.T) { sameTime(t, newLog(t)) })
	t.Run("ZeroTimeIsNow", func(t *testing.T) { zeroTime(t, newLog(t)) })
	t.Run("EmptyBatchRefused", func(t *testing.T) { emptyBatch(t, newLog(t)) })
	t.Run("ConcurrentAppends", func(t *testing.T) { concurrent(t, newLog(t)) })
}

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 123456789, time.UTC)

func entries(batch string) []triage.Entry {
	return []triage.Entry{
		{BatchID: batch, Shard: 2, At: t0, Kind: triage.KindError, Layer: failure.LayerInfrastructure, Reason: failure.Throttled,
			Message: "Throttled: rate exceeded, 商品 \"quoted\"", ReceiveCount: 1, RetryCount: 0, MessageID: "m-1"},
		{BatchID: batch, Shard: 2, At: t0.Add(time.Second), Kind: triage.KindError, Layer: failure.LayerInfrastructure,
			Reason: failure.Throttled, Message: "again", ReceiveCount: 5, MessageID: "m-1"},
		{BatchID: batch, Shard: 2, At: t0.Add(2 * time.Second), Kind: triage.KindDecision, Layer: failure.LayerInfrastructure,
			Reason: failure.Throttled, Message: "transient Throttled: retry 1 of 3", Action: triage.Retry, Delay: 30 * time.Second,
			ReceiveCount: 6, RetryCount: 0, MessageID: "m-1"},
		{BatchID: batch, Shard: 0, At: t0.Add(3 * time.Second), Kind: triage.KindDecision, Action: triage.Escalate,
			Message: "no error was recorded for the shard", ReceiveCount: 6, RetryCount: 3, MessageID: "m-2"},
		{BatchID: batch, Shard: 1000, At: t0.Add(time.Hour + time.Nanosecond), Kind: triage.KindError, Layer: failure.LayerInfrastructure,
			Reason: failure.SourceChanged},
	}
}

func appendAll(t *testing.T, l triage.Log, es []triage.Entry) {
	t.Helper()
	for _, e := range es {
		if err := l.Append(context.Background(), e); err != nil {
			t.Fatalf("Append(%+v): %v", e, err)
		}
	}
}

func list(t *testing.T, l triage.Log, batch string) []triage.Entry {
	t.Helper()
	got, err := l.List(context.Background(), batch)
	if err != nil {
		t.Fatalf("List(%s): %v", batch, err)
	}
	return got
}

func roundTrip(t *testing.T, l triage.Log) {
	want := entries("b-1")
	// Appended out of order, listed by time.
	appendAll(t, l, []triage.Entry{want[3], want[0], want[4], want[2], want[1]})
	if diff := cmp.Diff(want, list(t, l, "b-1")); diff != "" {
		t.Fatalf("List (-want +got):\n%s", diff)
	}
}

func separate(t *testing.T, l triage.Log) {
	a, b := entries("b-a"), entries("b-b")
	appendAll(t, l, a[:2])
	appendAll(t, l, b[2:])
	if diff := cmp.Diff(a[:2], list(t, l, "b-a")); diff != "" {
		t.Errorf("b-a (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(b[2:], list(t, l, "b-b")); diff != "" {
		t.Errorf("b-b (-want +got):\n%s", diff)
	}
	if got := list(t, l, "b-a-"); len(got) != 0 {
		t.Errorf("a batch whose id extends another's lists %d entries", len(got))
	}
}

func unknown(t *testing.T, l triage.Log) {
	if got := list(t, l, "nope"); len(got) != 0 {
		t.Fatalf("unknown batch: %+v", got)
	}
}

func sameTime(t *testing.T, l triage.Log) {
	e := entries("b-1")[0]
	appendAll(t, l, []triage.Entry{e, e})
	e.Shard = 3
	appendAll(t, l, []triage.Entry{e})
	if got := list(t, l, "b-1"); len(got) != 3 {
		t.Fatalf("%d entries after three appends at one time", len(got))
	}
}

func zeroTime(t *testing.T, l triage.Log) {
	before := time.Now()
	appendAll(t, l, []triage.Entry{{BatchID: "b-1", Kind: triage.KindDecision, Action: triage.Done}})
	got := list(t, l, "b-1")
	if len(got) != 1 || got[0].At.Before(before.Add(-time.Second)) || got[0].At.After(time.Now().Add(time.Second)) {
		t.Fatalf("entry appended with a zero time: %+v (now %s)", got, before)
	}
	if got[0].At.Location() != time.UTC {
		t.Errorf("At in %s, want UTC", got[0].At.Location())
	}
}

func emptyBatch(t *testing.T, l triage.Log) {
	if err := l.Append(context.Background(), triage.Entry{Kind: triage.KindError, At: t0}); err == nil {
		t.Fatal("Append without a batch id succeeded")
	}
}

func concurrent(t *testing.T, l triage.Log) {
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			errs <- l.Append(context.Background(), triage.Entry{BatchID: "b-c", Shard: i, At: t0, Kind: triage.KindError,
				Reason: failure.Throttled, Message: fmt.Sprint(i)})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := list(t, l, "b-c"); len(got) != n {
		t.Fatalf("%d entries after %d concurrent appends", len(got), n)
	}
}
