package triage_test

import (
	"testing"
	"time"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/state"
	"github.com/catalog-import/catalog-import/internal/triage"
)

func TestDecide(t *testing.T) {
	running := func(r failure.Reason, retries int) triage.Input {
		return triage.Input{Layer: r.Layer(), Reason: r, ReceiveCount: 6, RetryCount: retries,
			ShardStatus: state.ShardRunning, BatchStatus: state.BatchRunning}
	}
	with := func(in triage.Input, f func(*triage.Input)) triage.Input { f(&in); return in }
	def := triage.Policy{}
	tests := []struct {
		name   string
		in     triage.Input
		p      triage.Policy
		action triage.Action
		delay  time.Duration
	}{
		// Row 1: transient infrastructure errors with budget left are retried
		// with exponential delay.
		{"throttled first retry", running(failure.Throttled, 0), def, triage.Retry, 30 * time.Second},
		{"network timeout second retry", running(failure.NetworkTimeout, 1), def, triage.Retry, time.Minute},
		{"service unavailable third retry", running(failure.ServiceUnavailable, 2), def, triage.Retry, 2 * time.Minute},
		{"circuit open", running(failure.CircuitOpen, 0), def, triage.Retry, 30 * time.Second},
		{"pending shard retried too", with(running(failure.Throttled, 0), func(in *triage.Input) { in.ShardStatus = state.ShardPending }), def, triage.Retry, 30 * time.Second},
		{"escalated shard back in the DLQ is decided again", with(running(failure.Throttled, 0), func(in *triage.Input) { in.ShardStatus = state.ShardEscalated }), def, triage.Retry, 30 * time.Second},
		{"delay capped at MaxDelay", running(failure.Throttled, 9), triage.Policy{MaxRetries: 20}, triage.Retry, 15 * time.Minute},
		{"delay capped by a custom MaxDelay", running(failure.Throttled, 3), triage.Policy{BaseDelay: time.Second, MaxDelay: 5 * time.Second, MaxRetries: 10}, triage.Retry, 5 * time.Second},
		{"MaxDelay above SQS's limit is capped at 15m", running(failure.Throttled, 40), triage.Policy{MaxRetries: 50, MaxDelay: time.Hour}, triage.Retry, 15 * time.Minute},
		// Row 1, budget exhausted: escalate.
		{"budget exhausted", running(failure.Throttled, 3), def, triage.Escalate, 0},
		{"budget exhausted beyond", running(failure.NetworkTimeout, 7), def, triage.Escalate, 0},
		{"no retries allowed", running(failure.Throttled, 0), triage.Policy{MaxRetries: -1}, triage.Escalate, 0},
		{"custom budget left", running(failure.Throttled, 4), triage.Policy{MaxRetries: 5}, triage.Retry, 8 * time.Minute},
		// Row 2: skip.
		{"unreadable manifest naming its shard", with(triage.Input{ManifestError: "unreadable manifest: schema version 9"}, func(in *triage.Input) {
			in.ShardStatus, in.BatchStatus = state.ShardPending, state.BatchRunning
		}), def, triage.Skip, 0},
		{"source changed", running(failure.SourceChanged, 0), def, triage.Skip, 0},
		{"source changed, budget spent", running(failure.SourceChanged, 5), def, triage.Skip, 0},
		{"shard-wide schema mismatch", running(failure.SchemaMismatch, 0), def, triage.Skip, 0},
		// Row 3: escalate.
		{"access denied", running(failure.AccessDenied, 0), def, triage.Escalate, 0},
		{"internal", running(failure.Internal, 0), def, triage.Escalate, 0},
		{"no error recorded", running("", 0), def, triage.Escalate, 0},
		{"unknown reason", running("DiskOnFire", 0), def, triage.Escalate, 0},
		{"row-level reason as a delivery error", running(failure.MissingField, 0), def, triage.Escalate, 0},
		{"unreadable manifest naming no shard", triage.Input{ManifestError: "not JSON"}, def, triage.Escalate, 0},
		{"unknown batch", with(running(failure.Throttled, 0), func(in *triage.Input) { in.ShardStatus, in.BatchStatus = "", "" }), def, triage.Escalate, 0},
		{"unknown shard of a running batch", with(running(failure.Throttled, 0), func(in *triage.Input) { in.ShardStatus = "" }), def, triage.Escalate, 0},
		// Nothing left to do: done.
		{"shard done", with(running(failure.Throttled, 0), func(in *triage.Input) { in.ShardStatus = state.ShardDone }), def, triage.Done, 0},
		{"shard skipped", with(running(failure.AccessDenied, 0), func(in *triage.Input) { in.ShardStatus = state.ShardSkipped }), def, triage.Done, 0},
		{"batch completed", with(running(failure.AccessDenied, 0), func(in *triage.Input) { in.BatchStatus = state.BatchCompleted }), def, triage.Done, 0},
		{"batch aborted, shard running", with(running(failure.Throttled, 0), func(in *triage.Input) { in.BatchStatus = state.BatchAborted }), def, triage.Done, 0},
		{"batch cancelled", with(running(failure.Throttled, 0), func(in *triage.Input) { in.BatchStatus = state.BatchCancelled }), def, triage.Done, 0},
		{"batch suspended: a resume sends the shard again", with(running(failure.SourceChanged, 0), func(in *triage.Input) { in.BatchStatus = state.BatchSuspended }), def, triage.Done, 0},
		{"batch failed, shard unknown", triage.Input{BatchStatus: state.BatchFailed, ManifestError: "x"}, def, triage.Done, 0},
		{"batch rejected", triage.Input{BatchStatus: state.BatchRejected}, def, triage.Done, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := triage.Decide(tt.in, tt.p)
			if d.Action != tt.action || d.Delay != tt.delay {
				t.Fatalf("Decide(%+v) = %+v, want %s after %s", tt.in, d, tt.action, tt.delay)
			}
			if d.Why == "" {
				t.Error("no Why")
			}
			if d.Reason != tt.in.Reason {
				t.Errorf("Reason %q, want the input's %q", d.Reason, tt.in.Reason)
			}
		})
	}
}

func TestDelayNeverOverflows(t *testing.T) {
	p := triage.DefaultPolicy()
	prev := time.Duration(0)
	for n := range 200 {
		d := p.Delay(n)
		if d <= 0 || d > 15*time.Minute || d < prev {
			t.Fatalf("Delay(%d) = %s after %s", n, d, prev)
		}
		prev = d
	}
	if got := p.Delay(-1); got != 30*time.Second {
		t.Errorf("Delay(-1) = %s", got)
	}
}

func TestLastError(t *testing.T) {
	es := []triage.Entry{
		{Shard: 1, Kind: triage.KindError, Reason: failure.Throttled},
		{Shard: 2, Kind: triage.KindError, Reason: failure.AccessDenied},
		{Shard: 1, Kind: triage.KindError, Reason: failure.SourceChanged},
		{Shard: 1, Kind: triage.KindDecision, Reason: failure.SourceChanged, Action: triage.Skip},
	}
	if e, ok := triage.LastError(es, 1); !ok || e.Reason != failure.SourceChanged {
		t.Errorf("shard 1: %+v %v", e, ok)
	}
	if e, ok := triage.LastError(es, 2); !ok || e.Reason != failure.AccessDenied {
		t.Errorf("shard 2: %+v %v", e, ok)
	}
	if _, ok := triage.LastError(es, 3); ok {
		t.Error("shard 3 has no error")
	}
}
