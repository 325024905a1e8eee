package handler_test

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/catalog-import/catalog-import/internal/state"
)

// checkBatchReport: finalization left the batch report at
// reports/<batch>/report.html in the bucket, an HTML page with the batch's
// status and numbers.
func checkBatchReport(t *testing.T, c *s3.Client, bucket string, b state.Batch) {
	t.Helper()
	key := "reports/" + b.ID + "/report.html"
	page, err := c.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("batch report %s: %v", key, err)
	}
	html, err := io.ReadAll(page.Body)
	page.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	ct := aws.ToString(page.ContentType)
	for _, want := range []string{
		string(b.Status),
		fmt.Sprintf(`data-value="%d"`, b.Counts.Total),
		fmt.Sprintf(`data-value="%d"`, b.Counts.Failed),
		`<a href="errors.csv">`,
	} {
		if !strings.HasPrefix(ct, "text/html") || !bytes.Contains(html, []byte(want)) {
			t.Errorf("%s (%s, %d bytes) lacks %q", key, ct, len(html), want)
		}
	}
}
