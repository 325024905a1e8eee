package awsclient_test

import (
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"

	"github.com/catalog-import/catalog-import/internal/aws/awsclient"
)

// TestConnectionsPerHost: the clients keep MaxIdleConnsPerHost connections
// per endpoint between calls (the SDK's default is 10, under the products
// sink's puts in flight).
func TestConnectionsPerHost(t *testing.T) {
	c, err := awsclient.New(t.Context(), awsclient.Settings{Region: "us-east-1", Endpoint: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	bc, ok := c.Config.HTTPClient.(*awshttp.BuildableClient)
	if !ok {
		t.Fatalf("HTTP client %T, want *http.BuildableClient", c.Config.HTTPClient)
	}
	if got := bc.GetTransport().MaxIdleConnsPerHost; got != awsclient.MaxIdleConnsPerHost || got < 16 {
		t.Errorf("MaxIdleConnsPerHost %d, want %d", got, awsclient.MaxIdleConnsPerHost)
	}
}
