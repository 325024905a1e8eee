package awsclient_test

import (
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"

	"github.com/catalog-import/catalog-import/internal/aws/awsclient"
)

// TestConnectionsPerHost: the clients keep MaxIdleConnsPerHost connections
// per endpoint between calls (the SDK's default is 10, under the products
// sink's puts in flight), or as many as Settings.IdleConnsPerHost asks.
func TestConnectionsPerHost(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  int
		want int
	}{
		{"default", 0, awsclient.MaxIdleConnsPerHost},
		{"more for a large pool", 272, 272},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := awsclient.New(t.Context(), awsclient.Settings{Region: "us-east-1", Endpoint: "http://127.0.0.1:1", IdleConnsPerHost: tc.set})
			if err != nil {
				t.Fatal(err)
			}
			bc, ok := c.Config.HTTPClient.(*awshttp.BuildableClient)
			if !ok {
				t.Fatalf("HTTP client %T, want *http.BuildableClient", c.Config.HTTPClient)
			}
			if got := bc.GetTransport().MaxIdleConnsPerHost; got != tc.want || got < 16 {
				t.Errorf("MaxIdleConnsPerHost %d, want %d", got, tc.want)
			}
		})
	}
}
