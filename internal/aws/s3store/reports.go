package s3store

//lint:file-ignore SA1019 feature/s3/manager (deprecated in favour of feature/s3/transfermanager) is the upload manager in go.mod; moving is a dependency decision of its own.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/catalog-import/catalog-import/internal/aws/awserr"
	"github.com/catalog-import/catalog-import/internal/finalize"
)

// IncomingPrefix is where uploads that start an import land in the bucket
// (the splitter's S3 notification filter).
const IncomingPrefix = "incoming/"

// ReportsPrefix is the key prefix of every report: reports/<batch>/<name>.
const ReportsPrefix = "reports/"

// Reports stores batch reports in one bucket (finalize.Reports). It is safe
// for concurrent use.
type Reports struct {
	bucket   string
	uploader *manager.Uploader
}

// NewReports returns a report store that uploads to bucket with client.
// Memory per upload is bounded by the upload manager's part size times its
// concurrency (5 MiB x 5 by default), whatever the report's size.
func NewReports(client *s3.Client, bucket string) *Reports {
	return &Reports{bucket: bucket, uploader: manager.NewUploader(client)}
}

// Put streams what write writes to s3://<bucket>/reports/<batchID>/<name>
// and returns that URI. Content types: text/csv for .csv, text/html for
// .html (both UTF-8). If write fails, the upload is abandoned (no partial
// object is left) and its error is returned; if the upload fails, write's
// next Write fails and the upload's error is returned. batchID and name must
// pass finalize.ReportName.
func (r *Reports) Put(ctx context.Context, batchID, name string, write func(io.Writer) error) (string, error) {
	if err := finalize.ReportName(batchID, name); err != nil {
		return "", err
	}
	key := ReportsPrefix + batchID + "/" + name
	uri := URI(r.bucket, key)

	pr, pw := io.Pipe()
	werr := make(chan error, 1)
	go func() {
		err := write(pw)
		pw.CloseWithError(err) // nil: the uploader reads io.EOF
		werr <- err
	}()
	_, uerr := r.uploader.Upload(ctx, &s3.PutObjectInput{
		Bucket:      &r.bucket,
		Key:         &key,
		Body:        pr,
		ContentType: aws.String(contentType(name)),
	})
	// Unblock a writer the uploader stopped reading from.
	pr.CloseWithError(errUploadEnded)
	if err := <-werr; err != nil && !errors.Is(err, errUploadEnded) {
		return "", fmt.Errorf("write report %s: %w", uri, err)
	}
	if uerr != nil {
		return "", awserr.Wrap(uerr, "upload "+uri)
	}
	return uri, nil
}

// errUploadEnded is what a report writer sees when the upload stopped
// reading.
var errUploadEnded = errors.New("s3store: upload ended")

func contentType(name string) string {
	switch strings.ToLower(path.Ext(name)) {
	case ".csv":
		return "text/csv; charset=utf-8"
	case ".html", ".htm":
		return "text/html; charset=utf-8"
	case ".json":
		return "application/json"
	}
	return "application/octet-stream"
}
