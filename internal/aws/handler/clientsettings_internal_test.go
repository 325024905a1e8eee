package handler

import (
	"testing"

	"github.com/catalog-import/catalog-import/internal/aws/awsclient"
)

// TestClientSettingsFollowPoolSize: the worker keeps an idle connection per
// put in flight (POOL_SIZE) and a few more, never fewer than the clients'
// default, so a pool of 256 does not open a TLS connection per put.
func TestClientSettingsFollowPoolSize(t *testing.T) {
	for _, tc := range []struct {
		pool string
		want int
	}{
		{"", awsclient.MaxIdleConnsPerHost},
		{"16", awsclient.MaxIdleConnsPerHost},
		{"256", 272},
	} {
		env := map[string]string{"BUCKET": "b", "STATE_TABLE": "s", "PRODUCTS_TABLE": "p", "SHARD_QUEUE_URL": "q", "DLQ_URL": "d", "POOL_SIZE": tc.pool}
		c, err := ConfigFromEnv(func(k string) string { return env[k] })
		if err != nil {
			t.Fatal(err)
		}
		if got := clientSettings(c).IdleConnsPerHost; got != tc.want {
			t.Errorf("POOL_SIZE=%q: %d idle connections per host, want %d", tc.pool, got, tc.want)
		}
	}
}
