package handler

import (
	"testing"
)

// TestSinkInFlightFollowsPoolSize: the products sink's puts in flight are
// the worker's pool size as POOL_SIZE (template.yaml's PoolSize) sets it;
// without POOL_SIZE the sink keeps its own default (InFlight 0).
func TestSinkInFlightFollowsPoolSize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pool string
		want int
	}{{"", 0}, {"1", 1}, {"4", 4}, {"8", 8}, {"32", 32}, {"256", 256}} {
		env := map[string]string{"BUCKET": "b", "STATE_TABLE": "s", "PRODUCTS_TABLE": "p", "SHARD_QUEUE_URL": "q", "POOL_SIZE": tc.pool}
		c, err := ConfigFromEnv(func(k string) string { return env[k] })
		if err != nil {
			t.Fatalf("POOL_SIZE=%q: %v", tc.pool, err)
		}
		if got := sinkOptions(c.Options).InFlight; got != tc.want || c.Options.Pool != tc.want {
			t.Errorf("POOL_SIZE=%q: pool %d, sink InFlight %d; want both %d", tc.pool, c.Options.Pool, got, tc.want)
		}
	}
}
