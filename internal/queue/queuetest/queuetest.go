// Package queuetest is the contract suite of the shard queue port
// (internal/queue). Every adapter (internal/local/memqueue, internal/aws/sqsqueue)
// calls Run from its own test, in the manner of watermill's tests.TestPubSub
// and go-cloud's drivertest.
//
// The suite pins the at-least-once delivery the engine is built on: a
// manifest is delivered until it is acknowledged (nothing is silently lost,
// invariant 6), a delivery that is not acknowledged within the visibility
// timeout comes back with a higher ReceiveCount and a new receipt (which the
// shard lease of invariant 2 makes harmless), and delays hold messages back
// (retries with backoff, hand-offs of invariant 8).
//
// It is written to hold against real SQS semantics: no FIFO order is
// assumed, a Receive may return fewer messages than are available (so
// messages are always collected in a loop with long polls), delays and
// timeouts are whole seconds, and timing checks have generous slack on the
// late side and a small one on the early side.
package queuetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/catalog-import/catalog-import/internal/queue"
	"github.com/catalog-import/catalog-import/internal/state"
)

// Config is what a subtest asks of the queue it gets.
type Config struct {
	// VisibilityTimeout is how long a received message stays invisible to
	// other receivers. The suite uses whole seconds (1 to 5 s).
	VisibilityTimeout time.Duration
}

// Timing slack. early is how much sooner than asked a message may show up
// (clock and rounding differences); late bounds how much later it must.
const (
	early = 200 * time.Millisecond
	late  = 4 * time.Second
	// poll is the long-poll wait of collecting Receives: a whole second, as
	// SQS counts WaitTimeSeconds.
	poll = time.Second
)

// Run runs the contract suite. newQueue must return a new, empty queue with
// the configuration given; it is called once per subtest, from subtests that
// run in parallel, and the adapter should remove the queue in t.Cleanup.
func Run(t *testing.T, newQueue func(t *testing.T, cfg Config) queue.Queue) {
	t.Helper()
	subtests := []struct {
		name string
		cfg  Config
		fn   func(t *testing.T, q queue.Queue, cfg Config)
	}{
		{"RoundTrip", Config{VisibilityTimeout: 5 * time.Second}, testRoundTrip},
		{"ReceiveEmptyWaits", Config{VisibilityTimeout: 2 * time.Second}, testReceiveEmpty},
		{"AckDeletes", Config{VisibilityTimeout: time.Second}, testAckDeletes},
		{"RedeliveryAfterVisibilityTimeout", Config{VisibilityTimeout: 2 * time.Second}, testRedelivery},
		{"RetryDelay", Config{VisibilityTimeout: 5 * time.Second}, testRetryDelay},
		{"RetryNoDelay", Config{VisibilityTimeout: 5 * time.Second}, testRetryNoDelay},
		{"SendDelay", Config{VisibilityTimeout: 2 * time.Second}, testSendDelay},
		{"ConcurrentReceiversExactlyOnce", Config{VisibilityTimeout: 3 * time.Second}, testConcurrentReceivers},
		{"ReceiveRespectsMax", Config{VisibilityTimeout: 5 * time.Second}, testReceiveMax},
		{"ContextCancelEndsReceive", Config{VisibilityTimeout: 2 * time.Second}, testContextCancel},
	}
	for _, st := range subtests {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			st.fn(t, newQueue(t, st.cfg), st.cfg)
		})
	}
}

// Manifest returns a manifest for shard with every field set, for tests of
// adapters and of code that moves manifests around.
func Manifest(shard int) queue.Manifest {
	return queue.Manifest{
		Version: queue.ManifestVersion,
		BatchID: "b-01J9ZQ6V3K",
		Shard:   shard,
		Source: state.Source{
			URI:     "s3://incoming/商品/supplier A/products 2024.csv",
			Size:    10_485_760_123,
			ETag:    `"9b2cf535f27731c974343645a3985328-3"`,
			Version: "3HL4kqtJlcpXroDTDmjVBH40Nrjfkd",
			ModTime: time.Date(2024, 6, 1, 8, 30, 15, 123456789, time.UTC),
		},
		Layout: state.Layout{
			Format:    "csv",
			Encoding:  "gb18030",
			Delimiter: ",",
			Header:    []string{"商品编码", "名称", "price", `quoted "col"`, "multi\nline"},
			DataStart: 97,
		},
		RuleVersion: "sha256:4f1c0e",
		Sheet:       "-",
		SheetIndex:  2,
		Start:       int64(shard) * 1_048_576,
		End:         int64(shard+1) * 1_048_576,
		FirstRow:    int64(shard)*10_000 + 2,
		Rows:        10_000,
		RetryCount:  3,
		TraceID:     "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
	}
}

func testRoundTrip(t *testing.T, q queue.Queue, _ Config) {
	ctx := t.Context()
	sent := []queue.Manifest{Manifest(0), Manifest(1), Manifest(2)}
	sent[1].TraceID = "" // omitempty field
	sent[2].Layout.Header = nil
	if err := q.Send(ctx, 0, sent...); err != nil {
		t.Fatalf("Send: %v", err)
	}
	want := Manifest(0)
	sent[0].Layout.Header[0] = "mutated after Send" // the queue must not share memory with the sender

	got := collect(t, q, 3, poll+late)
	ids := map[string]bool{}
	for _, m := range got {
		if m.ID == "" || m.Receipt == "" {
			t.Errorf("shard %d: empty ID %q or Receipt %q", m.Manifest.Shard, m.ID, m.Receipt)
		}
		if ids[m.ID] {
			t.Errorf("ID %q given to two messages", m.ID)
		}
		ids[m.ID] = true
		if m.ReceiveCount != 1 {
			t.Errorf("shard %d: ReceiveCount %d on the first delivery, want 1", m.Manifest.Shard, m.ReceiveCount)
		}
		var w queue.Manifest
		switch m.Manifest.Shard {
		case 0:
			w = want
		case 1, 2:
			w = sent[m.Manifest.Shard]
		default:
			t.Errorf("received a manifest for shard %d, never sent", m.Manifest.Shard)
			continue
		}
		if diff := cmp.Diff(w, m.Manifest); diff != "" {
			t.Errorf("shard %d manifest changed on the way (-sent +received):\n%s", m.Manifest.Shard, diff)
		}
		ack(t, q, m)
	}
}

func testReceiveEmpty(t *testing.T, q queue.Queue, _ Config) {
	ctx := t.Context()
	const wait = time.Second
	start := time.Now()
	got, err := q.Receive(ctx, 10, wait)
	elapsed := time.Since(start)
	if err != nil {
		t.Fatalf("Receive on an empty queue: %v", err)
	}
	if len(got) != 0 {
		t.Fatalf("Receive on an empty queue returned %d messages", len(got))
	}
	// A long poll, not a spin: callers loop on Receive.
	if elapsed < wait/2 {
		t.Errorf("Receive(wait %v) on an empty queue returned after %v; want it to wait", wait, elapsed)
	}
	if elapsed > wait+late {
		t.Errorf("Receive(wait %v) on an empty queue returned after %v", wait, elapsed)
	}

	start = time.Now()
	if got, err := q.Receive(ctx, 10, 0); err != nil || len(got) != 0 {
		t.Fatalf("Receive(wait 0) on an empty queue = %d messages, %v", len(got), err)
	}
	if elapsed := time.Since(start); elapsed > late {
		t.Errorf("Receive(wait 0) on an empty queue returned after %v, want at once", elapsed)
	}
}

func testAckDeletes(t *testing.T, q queue.Queue, cfg Config) {
	send(t, q, 0, Manifest(7))
	m := collect(t, q, 1, poll+late)[0]
	ack(t, q, m)
	// Past the visibility timeout, an acknowledged message stays gone.
	if extra := drain(t, q, cfg.VisibilityTimeout+poll); len(extra) > 0 {
		t.Errorf("acknowledged message delivered again (ReceiveCount %d)", extra[0].ReceiveCount)
	}
}

func testRedelivery(t *testing.T, q queue.Queue, cfg Config) {
	send(t, q, 0, Manifest(8))
	first, t0, _ := collectOneTimed(t, q, poll+late)
	if first.ReceiveCount != 1 {
		t.Errorf("first ReceiveCount = %d, want 1", first.ReceiveCount)
	}
	second, _, at := collectOneTimed(t, q, cfg.VisibilityTimeout+late)
	if d := at.Sub(t0); d < cfg.VisibilityTimeout-early {
		t.Errorf("unacknowledged message delivered again after %v, before the visibility timeout %v", d, cfg.VisibilityTimeout)
	}
	if second.ID != first.ID {
		t.Errorf("redelivery has ID %q, want the original %q", second.ID, first.ID)
	}
	if second.ReceiveCount != 2 {
		t.Errorf("redelivery ReceiveCount = %d, want 2", second.ReceiveCount)
	}
	if second.Receipt == first.Receipt {
		t.Errorf("redelivery reuses receipt %q", first.Receipt)
	}
	if diff := cmp.Diff(first.Manifest, second.Manifest); diff != "" {
		t.Errorf("redelivered manifest differs (-first +second):\n%s", diff)
	}
	ack(t, q, second)
}

func testRetryDelay(t *testing.T, q queue.Queue, cfg Config) {
	const delay = time.Second
	send(t, q, 0, Manifest(9))
	first := collect(t, q, 1, poll+late)[0]
	t0 := time.Now()
	if err := q.Retry(t.Context(), first, delay); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	second, _, at := collectOneTimed(t, q, delay+late)
	d := at.Sub(t0)
	if d < delay-early {
		t.Errorf("Retry(%v): delivered again after %v, before the delay", delay, d)
	}
	// Well before the visibility timeout: the delay, not the timeout, brought it back.
	if d >= cfg.VisibilityTimeout-early {
		t.Errorf("Retry(%v): delivered again only after %v (visibility timeout %v)", delay, d, cfg.VisibilityTimeout)
	}
	if second.ID != first.ID || second.ReceiveCount != 2 || second.Receipt == first.Receipt {
		t.Errorf("after Retry got ID %q ReceiveCount %d Receipt %q; want ID %q, ReceiveCount 2, a new receipt",
			second.ID, second.ReceiveCount, second.Receipt, first.ID)
	}
	ack(t, q, second)
}

func testRetryNoDelay(t *testing.T, q queue.Queue, cfg Config) {
	send(t, q, 0, Manifest(10))
	first := collect(t, q, 1, poll+late)[0]
	t0 := time.Now()
	if err := q.Retry(t.Context(), first, 0); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	second, _, at := collectOneTimed(t, q, late)
	if d := at.Sub(t0); d >= cfg.VisibilityTimeout-early {
		t.Errorf("Retry(0): delivered again only after %v (visibility timeout %v)", d, cfg.VisibilityTimeout)
	}
	if second.ID != first.ID || second.ReceiveCount != 2 {
		t.Errorf("after Retry(0) got ID %q ReceiveCount %d; want ID %q, ReceiveCount 2", second.ID, second.ReceiveCount, first.ID)
	}
	ack(t, q, second)
}

func testSendDelay(t *testing.T, q queue.Queue, _ Config) {
	const delay = 2 * time.Second
	t0 := time.Now()
	if err := q.Send(t.Context(), delay, Manifest(11)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	m, _, at := collectOneTimed(t, q, delay+late)
	if d := at.Sub(t0); d < delay-early {
		t.Errorf("Send(delay %v): delivered after %v, before the delay", delay, d)
	}
	if m.ReceiveCount != 1 {
		t.Errorf("ReceiveCount = %d, want 1", m.ReceiveCount)
	}
	ack(t, q, m)
}

func testConcurrentReceivers(t *testing.T, q queue.Queue, cfg Config) {
	const n, receivers = 25, 4
	manifests := make([]queue.Manifest, n)
	for i := range manifests {
		manifests[i] = Manifest(i)
	}
	send(t, q, 0, manifests...) // more than one SQS batch

	ctx, cancel := context.WithTimeout(t.Context(), 2*late+poll)
	defer cancel()
	var (
		mu     sync.Mutex
		seen   = map[int]int{}    // shard -> deliveries
		ids    = map[string]int{} // ID -> shard
		total  int
		errsMu sync.Mutex
		errs   []error
	)
	var wg sync.WaitGroup
	for range receivers {
		wg.Go(func() {
			for {
				mu.Lock()
				finished := total >= n
				mu.Unlock()
				if finished || ctx.Err() != nil {
					return
				}
				got, err := q.Receive(ctx, 10, poll)
				if err != nil {
					if ctx.Err() == nil {
						errsMu.Lock()
						errs = append(errs, fmt.Errorf("receive: %w", err))
						errsMu.Unlock()
					}
					return
				}
				for _, m := range got {
					mu.Lock()
					seen[m.Manifest.Shard]++
					if s, ok := ids[m.ID]; ok && s != m.Manifest.Shard {
						errsMu.Lock()
						errs = append(errs, fmt.Errorf("ID %q used for shards %d and %d", m.ID, s, m.Manifest.Shard))
						errsMu.Unlock()
					}
					ids[m.ID] = m.Manifest.Shard
					total++
					mu.Unlock()
					if err := q.Ack(t.Context(), m); err != nil {
						errsMu.Lock()
						errs = append(errs, fmt.Errorf("ack shard %d: %w", m.Manifest.Shard, err))
						errsMu.Unlock()
					}
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if seen[i] != 1 {
			t.Errorf("shard %d delivered %d times, want exactly once", i, seen[i])
		}
	}
	for shard := range seen {
		if shard < 0 || shard >= n {
			t.Errorf("received shard %d, never sent", shard)
		}
	}
	if extra := drain(t, q, cfg.VisibilityTimeout+poll); len(extra) > 0 {
		t.Errorf("%d acknowledged messages delivered again", len(extra))
	}
}

func testReceiveMax(t *testing.T, q queue.Queue, _ Config) {
	const n, maxN = 5, 2
	manifests := make([]queue.Manifest, n)
	for i := range manifests {
		manifests[i] = Manifest(100 + i)
	}
	send(t, q, 0, manifests...)
	seen := map[int]bool{}
	deadline := time.Now().Add(n*poll + late)
	for len(seen) < n && time.Now().Before(deadline) {
		got, err := q.Receive(t.Context(), maxN, poll)
		if err != nil {
			t.Fatalf("Receive(max %d): %v", maxN, err)
		}
		if len(got) > maxN {
			t.Fatalf("Receive(max %d) returned %d messages", maxN, len(got))
		}
		for _, m := range got {
			if seen[m.Manifest.Shard] {
				t.Errorf("shard %d delivered twice within its visibility timeout", m.Manifest.Shard)
			}
			seen[m.Manifest.Shard] = true
			ack(t, q, m)
		}
	}
	if len(seen) != n {
		t.Errorf("received %d of %d messages", len(seen), n)
	}
}

func testContextCancel(t *testing.T, q queue.Queue, _ Config) {
	ctx, cancel := context.WithCancel(t.Context())
	const after = 300 * time.Millisecond
	timer := time.AfterFunc(after, cancel)
	defer timer.Stop()
	start := time.Now()
	got, err := q.Receive(ctx, 10, 10*time.Second)
	elapsed := time.Since(start)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Receive ended by cancel: error %v, want one that is context.Canceled", err)
	}
	if len(got) != 0 {
		t.Errorf("Receive ended by cancel returned %d messages", len(got))
	}
	if elapsed > after+2*time.Second {
		t.Errorf("Receive returned %v after its context was canceled", elapsed-after)
	}

	// An already canceled context: no wait at all.
	start = time.Now()
	if _, err := q.Receive(ctx, 10, 10*time.Second); !errors.Is(err, context.Canceled) {
		t.Errorf("Receive with a canceled context: %v, want context.Canceled", err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("Receive with a canceled context took %v", elapsed)
	}
}

func send(t *testing.T, q queue.Queue, delay time.Duration, ms ...queue.Manifest) {
	t.Helper()
	if err := q.Send(t.Context(), delay, ms...); err != nil {
		t.Fatalf("Send %d manifests: %v", len(ms), err)
	}
}

func ack(t *testing.T, q queue.Queue, m queue.Message) {
	t.Helper()
	if err := q.Ack(t.Context(), m); err != nil {
		t.Errorf("Ack shard %d: %v", m.Manifest.Shard, err)
	}
}

// collect long-polls until it has received n messages or within has passed,
// failing t if fewer than n came. It returns everything received.
func collect(t *testing.T, q queue.Queue, n int, within time.Duration) []queue.Message {
	t.Helper()
	var got []queue.Message
	deadline := time.Now().Add(within)
	for len(got) < n && time.Now().Before(deadline) {
		ms, err := q.Receive(t.Context(), 10, poll)
		if err != nil {
			t.Fatalf("Receive: %v", err)
		}
		got = append(got, ms...)
	}
	if len(got) < n {
		t.Fatalf("received %d messages within %v, want %d", len(got), within, n)
	}
	return got
}

// collectOneTimed receives exactly one message, and returns it with the times
// just before and just after the Receive call that returned it. A delivery
// happens between the two, so checks that a message did not come too early
// compare the call's end with the time before the event that hid it (or the
// call's start, when that event is an earlier delivery).
func collectOneTimed(t *testing.T, q queue.Queue, within time.Duration) (m queue.Message, callStart, callEnd time.Time) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		start := time.Now()
		ms, err := q.Receive(t.Context(), 10, poll)
		end := time.Now()
		if err != nil {
			t.Fatalf("Receive: %v", err)
		}
		switch len(ms) {
		case 0:
			continue
		case 1:
			return ms[0], start, end
		default:
			t.Fatalf("received %d messages, want 1", len(ms))
		}
	}
	t.Fatalf("no message within %v", within)
	return queue.Message{}, time.Time{}, time.Time{}
}

// drain long-polls for the whole of d and returns what arrived.
func drain(t *testing.T, q queue.Queue, d time.Duration) []queue.Message {
	t.Helper()
	var got []queue.Message
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		ms, err := q.Receive(t.Context(), 10, poll)
		if err != nil {
			t.Fatalf("Receive: %v", err)
		}
		got = append(got, ms...)
	}
	return got
}
