package s3store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/catalog-import/catalog-import/internal/aws/awstest"
	"github.com/catalog-import/catalog-import/internal/aws/s3store"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/finalize"
	"github.com/catalog-import/catalog-import/internal/finalize/reportstest"
	"github.com/catalog-import/catalog-import/internal/object"
	"github.com/catalog-import/catalog-import/internal/object/objecttest"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/split/stagetest"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// timeout bounds the tests that could otherwise hang.
const timeout = time.Minute

// harness writes objects with PutObject into a fresh versioned bucket.
type harness struct {
	client *s3.Client
	bucket string
	src    *s3store.Source
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	client := awstest.Clients(t).S3
	return &harness{client: client, bucket: newBucket(t, client), src: s3store.New(client)}
}

// newBucket creates a versioned bucket with a unique name.
func newBucket(t *testing.T, client *s3.Client) string {
	t.Helper()
	bucket := awstest.Name("s3store")
	if _, err := client.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatalf("CreateBucket %s: %v", bucket, err)
	}
	_, err := client.PutBucketVersioning(t.Context(), &s3.PutBucketVersioningInput{
		Bucket:                  &bucket,
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled},
	})
	if err != nil {
		t.Fatalf("PutBucketVersioning %s: %v", bucket, err)
	}
	return bucket
}

func (h *harness) Source() object.Source { return h.src }

func (h *harness) Put(t *testing.T, name string, data []byte) string {
	t.Helper()
	key := "incoming/" + name
	_, err := h.client.PutObject(t.Context(), &s3.PutObjectInput{Bucket: &h.bucket, Key: &key, Body: bytes.NewReader(data)})
	if err != nil {
		t.Fatalf("PutObject %s: %v", key, err)
	}
	return s3store.URI(h.bucket, key)
}

func (h *harness) PutWithMetadata(t *testing.T, name string, data []byte, meta map[string]string) string {
	t.Helper()
	key := "incoming/" + name
	_, err := h.client.PutObject(t.Context(), &s3.PutObjectInput{Bucket: &h.bucket, Key: &key, Body: bytes.NewReader(data), Metadata: meta})
	if err != nil {
		t.Fatalf("PutObject %s: %v", key, err)
	}
	return s3store.URI(h.bucket, key)
}

func TestContract(t *testing.T) {
	objecttest.Run(t, newHarness(t))
}

var _ split.Stager = (*s3store.Staging)(nil)

func TestStagingContract(t *testing.T) {
	client := awstest.Clients(t).S3
	stagetest.Run(t, func(t *testing.T) (split.Stager, object.Source) {
		return s3store.NewStaging(client, newBucket(t, client)), s3store.New(client)
	})
}

func TestParseURI(t *testing.T) {
	tests := []struct {
		uri, bucket, key string
	}{
		{"s3://b/k.csv", "b", "k.csv"},
		{"s3://my-bucket/incoming/商品/supplier A/p 1.csv", "my-bucket", "incoming/商品/supplier A/p 1.csv"},
		{"s3://b/dir/", "b", "dir/"},
	}
	for _, tt := range tests {
		b, k, err := s3store.ParseURI(tt.uri)
		if err != nil || b != tt.bucket || k != tt.key {
			t.Errorf("ParseURI(%q) = %q, %q, %v; want %q, %q", tt.uri, b, k, err, tt.bucket, tt.key)
		}
		if got := s3store.URI(b, k); got != tt.uri {
			t.Errorf("URI(%q, %q) = %q, want %q", b, k, got, tt.uri)
		}
	}
	for _, uri := range []string{"", "s3://", "s3://b", "s3://b/", "s3:///k", "file:///tmp/x.csv", "/tmp/x.csv", "S3://b/k"} {
		if b, k, err := s3store.ParseURI(uri); err == nil {
			t.Errorf("ParseURI(%q) = %q, %q; want an error", uri, b, k)
		}
	}
}

func TestStatInfo(t *testing.T) {
	h := newHarness(t)
	uri := h.Put(t, "info.csv", []byte("sku\nA1\n"))
	info, err := h.src.Stat(t.Context(), uri)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(info.ETag, `"`) || !strings.HasSuffix(info.ETag, `"`) {
		t.Errorf("ETag %s: want it quoted, as S3 returns it", info.ETag)
	}
	if info.Version == "" {
		t.Errorf("Version is empty in a versioned bucket")
	}
	if info.ModTime.IsZero() {
		t.Errorf("ModTime is zero")
	}

	// An ETag without quotes (as S3 events carry it) reads the same version.
	bare := info
	bare.ETag, bare.Version = strings.Trim(info.ETag, `"`), "" // read by If-Match
	r, err := h.src.Open(t.Context(), bare, 0, 3)
	if err != nil {
		t.Fatalf("Open with an unquoted ETag: %v", err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || string(got) != "sku" {
		t.Errorf("read (0, 3) = %q, %v; want \"sku\"", got, err)
	}
}

// read reads bytes [start, end) of info.
func read(t *testing.T, src *s3store.Source, info object.Info, start, end int64) ([]byte, error) {
	t.Helper()
	r, err := src.Open(t.Context(), info, start, end)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

func TestMissing(t *testing.T) {
	h := newHarness(t)
	uri := h.Put(t, "gone.csv", []byte("sku\n"))
	info, err := h.src.Stat(t.Context(), uri)
	if err != nil {
		t.Fatal(err)
	}
	_, key, _ := s3store.ParseURI(uri)
	if _, err := h.client.DeleteObject(t.Context(), &s3.DeleteObjectInput{Bucket: &h.bucket, Key: &key}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.src.Stat(t.Context(), uri); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat of a deleted object: %v, want fs.ErrNotExist", err)
	}
	// Read by version, the deleted object's version is still there (a
	// delete marker hides it): it is read as registered. By ETag, or once
	// the version itself is deleted, it is SourceChanged.
	byETag := info
	byETag.Version = ""
	for _, rg := range [][2]int64{{0, -1}, {0, 2}, {2, 2}} {
		if _, err := h.src.Open(t.Context(), byETag, rg[0], rg[1]); failure.ReasonOf(err) != failure.SourceChanged {
			t.Errorf("Open(%d, %d) by ETag of an object deleted after Stat: %v, want SourceChanged", rg[0], rg[1], err)
		}
	}
	if got, err := read(t, h.src, info, 0, 3); err != nil || string(got) != "sku" {
		t.Errorf("Open(0, 3) of the registered version of a deleted object: %q, %v; want \"sku\"", got, err)
	}
	if _, err := h.client.DeleteObject(t.Context(), &s3.DeleteObjectInput{Bucket: &h.bucket, Key: &key, VersionId: &info.Version}); err != nil {
		t.Fatal(err)
	}
	for _, rg := range [][2]int64{{0, -1}, {0, 2}, {2, 2}} {
		if _, err := h.src.Open(t.Context(), info, rg[0], rg[1]); failure.ReasonOf(err) != failure.SourceChanged {
			t.Errorf("Open(%d, %d) of a deleted version: %v, want SourceChanged", rg[0], rg[1], err)
		}
	}
	if _, err := h.src.Stat(t.Context(), s3store.URI(awstest.Name("no-such-bucket"), "x.csv")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat in a missing bucket: %v, want fs.ErrNotExist", err)
	}
}

var _ finalize.Reports = (*s3store.Reports)(nil)

// bucketReader reads reports back from the bucket.
type bucketReader struct {
	client *s3.Client
	bucket string
}

func (b bucketReader) Read(ctx context.Context, location string) ([]byte, error) {
	bucket, key, err := s3store.ParseURI(location)
	if err != nil {
		return nil, err
	}
	out, err := b.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

func (b bucketReader) List(ctx context.Context, batchID string) ([]string, error) {
	prefix := s3store.ReportsPrefix + batchID + "/"
	var names []string
	p := s3.NewListObjectsV2Paginator(b.client, &s3.ListObjectsV2Input{Bucket: &b.bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, o := range page.Contents {
			names = append(names, strings.TrimPrefix(aws.ToString(o.Key), prefix))
		}
	}
	return names, nil
}

func TestReportsContract(t *testing.T) {
	client := awstest.Clients(t).S3
	reportstest.Run(t, func(t *testing.T) (finalize.Reports, reportstest.Reader) {
		bucket := newBucket(t, client)
		return s3store.NewReports(client, bucket), bucketReader{client: client, bucket: bucket}
	})
}

func TestReports(t *testing.T) {
	client := awstest.Clients(t).S3
	bucket := newBucket(t, client)
	reports := s3store.NewReports(client, bucket)

	tests := []struct {
		name, contentType string
		size              int
	}{
		{"errors.csv", "text/csv; charset=utf-8", 100},
		{"summary.html", "text/html; charset=utf-8", 10},
		{"big.csv", "text/csv; charset=utf-8", 12 << 20}, // several parts: a multipart upload
		{"empty.csv", "text/csv; charset=utf-8", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line := "b-1,-,42,semantic,InvalidNumber,price,价格不是数字\n"
			want := strings.Repeat(line, tt.size/len(line))
			loc, err := reports.Put(t.Context(), "b-1", tt.name, func(w io.Writer) error {
				for i := 0; i < len(want); i += len(line) {
					if _, err := io.WriteString(w, line); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatalf("Put: %v", err)
			}
			if wantLoc := fmt.Sprintf("s3://%s/reports/b-1/%s", bucket, tt.name); loc != wantLoc {
				t.Errorf("location %q, want %q", loc, wantLoc)
			}
			_, key, _ := s3store.ParseURI(loc)
			out, err := client.GetObject(t.Context(), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
			if err != nil {
				t.Fatalf("GetObject %s: %v", loc, err)
			}
			got, err := io.ReadAll(out.Body)
			out.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != want {
				t.Errorf("report has %d bytes, want %d", len(got), len(want))
			}
			if ct := aws.ToString(out.ContentType); ct != tt.contentType {
				t.Errorf("content type %q, want %q", ct, tt.contentType)
			}
		})
	}
}

func TestReportsWriteFails(t *testing.T) {
	client := awstest.Clients(t).S3
	bucket := newBucket(t, client)
	reports := s3store.NewReports(client, bucket)
	boom := errors.New("boom")
	for _, size := range []int{10, 7 << 20} { // one part; past the first part
		_, err := reports.Put(t.Context(), "b-2", "errors.csv", func(w io.Writer) error {
			if _, err := w.Write(make([]byte, size)); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Errorf("Put with a writer failing after %d bytes: %v, want the writer's error", size, err)
		}
	}
	key := "reports/b-2/errors.csv"
	if _, err := client.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: &bucket, Key: &key}); err == nil {
		t.Errorf("a failed report left an object at %s", key)
	}

	for _, bad := range [][2]string{{"", "errors.csv"}, {"b-2", ""}, {"b/2", "errors.csv"}, {"b-2", "x/errors.csv"}} {
		if _, err := reports.Put(t.Context(), bad[0], bad[1], func(io.Writer) error { return nil }); err == nil {
			t.Errorf("Put(%q, %q) succeeded", bad[0], bad[1])
		}
	}
}

func TestReportsUploadFails(t *testing.T) {
	client := awstest.Clients(t).S3
	reports := s3store.NewReports(client, awstest.Name("no-such-bucket"))
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	_, err := reports.Put(ctx, "b-3", "errors.csv", func(w io.Writer) error {
		// More than a part: the writer blocks until the upload gives up.
		_, err := w.Write(make([]byte, 12<<20))
		return err
	})
	if err == nil {
		t.Fatal("Put into a missing bucket succeeded")
	}
	if _, ok := failure.As(err); !ok {
		t.Errorf("Put into a missing bucket: %v, want an ImportError", err)
	}
}

// TestStaleEmptyRanges covers the reads that need no bytes: they check the
// version all the same.
func TestStaleEmptyRanges(t *testing.T) {
	h := newHarness(t)
	uri := h.Put(t, "stale-empty.csv", []byte("sku\nA1\n"))
	stale, err := h.src.Stat(t.Context(), uri)
	if err != nil {
		t.Fatal(err)
	}
	h.Put(t, "stale-empty.csv", []byte("sku\nB2\n"))
	stale.Version = "" // by ETag (If-Match), as in an unversioned bucket
	for _, rg := range [][2]int64{{3, 3}, {7, -1}, {100, -1}, {100, 200}} {
		if r, err := h.src.Open(t.Context(), stale, rg[0], rg[1]); failure.ReasonOf(err) != failure.SourceChanged {
			if err == nil {
				r.Close()
			}
			t.Errorf("Open(%d, %d) with a stale Info: %v, want SourceChanged", rg[0], rg[1], err)
		}
	}
}
