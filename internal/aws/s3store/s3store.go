// Package s3store is the S3 adapter of the object source port
// (internal/object), of the splitter's staging area (split.Stager), of
// the report store of finalization (finalize.Reports) and of the named
// profiles uploads pick (pipeline.Profiles: profiles/<name>.yaml in the
// bucket, written by importctl profile push).
//
// Source keeps invariant 7 (source immutability) by pinning every read to
// the version the splitter registered: in a versioned bucket (the batch has
// a version id) every GetObject carries VersionId, so an object overwritten
// after the split is still read as it was registered and the batch
// completes with the registered content; otherwise every GetObject carries
// If-Match with the ETag the splitter saw, so an object overwritten after
// the split answers 412 PreconditionFailed, which becomes a
// failure.SourceChanged ImportError (the batch is then SUSPENDED). A
// registered version that was deleted (NoSuchVersion) is SourceChanged too. A read that is already under
// way keeps streaming the version it opened (S3 serves one version per
// response), so two versions are never mixed. Bodies are streamed, never read
// whole.
//
// ETags are kept exactly as S3 returns them, with their double quotes
// (`"9b2cf535f27731c974343645a3985328-3"`); Open also accepts an ETag
// without quotes (as S3 event notifications carry it) and quotes it.
//
// Staging (split.Stager) puts the normalized chunks of a workbook's sheets
// at s3://<bucket>/staging/<batch>/<name> and deletes them, every version,
// when the batch finishes.
//
// Reports streams error reports to s3://<bucket>/reports/<batch>/<name>
// with the S3 upload manager, through a pipe: at most the manager's parts in
// flight are in memory, never the whole report.
package s3store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/catalog-import/catalog-import/internal/aws/awserr"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/object"
)

// URI returns the URI of an object: "s3://bucket/key".
func URI(bucket, key string) string { return "s3://" + bucket + "/" + key }

// ParseURI splits "s3://bucket/key" into its bucket and key. The key is
// taken as written (no URL decoding) and may contain slashes; neither part
// may be empty.
func ParseURI(uri string) (bucket, key string, err error) {
	rest, ok := strings.CutPrefix(uri, "s3://")
	if !ok {
		return "", "", fmt.Errorf("s3store: %q is not an s3:// URI", uri)
	}
	bucket, key, ok = strings.Cut(rest, "/")
	if !ok || bucket == "" || key == "" {
		return "", "", fmt.Errorf("s3store: %q does not name a bucket and a key", uri)
	}
	return bucket, key, nil
}

// Source reads S3 objects. It is safe for concurrent use; each reader it
// returns belongs to one goroutine.
type Source struct {
	client *s3.Client
}

var _ object.Source = (*Source)(nil)

// New returns a Source that reads with client.
func New(client *s3.Client) *Source { return &Source{client: client} }

// Stat returns the size, ETag (quoted, as S3 returns it), version id,
// modification time and user metadata of the object at uri (HeadObject). A missing object is
// an error that matches fs.ErrNotExist; other failures are ImportErrors with
// the reason awserr gives them (Throttled, AccessDenied, ...).
func (s *Source) Stat(ctx context.Context, uri string) (object.Info, error) {
	bucket, key, err := ParseURI(uri)
	if err != nil {
		return object.Info{}, err
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		if isNotFound(err) {
			return object.Info{}, fmt.Errorf("stat %s: %w (%w)", uri, fs.ErrNotExist, err)
		}
		return object.Info{}, awserr.Wrap(err, "HeadObject "+uri)
	}
	return object.Info{
		URI:      uri,
		Size:     aws.ToInt64(out.ContentLength),
		ETag:     aws.ToString(out.ETag),
		Version:  aws.ToString(out.VersionId),
		ModTime:  aws.ToTime(out.LastModified),
		Metadata: metadata(out.Metadata),
	}, nil
}

// metadata returns an object's user metadata with lower-case keys (S3
// returns them as they were sent; HTTP headers ignore case), nil for none.
func metadata(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[strings.ToLower(k)] = v
	}
	return out
}

// Open streams bytes [start, end) of the object version want with one
// GetObject (Range "bytes=start-end-1", or open-ended, and VersionId
// want.Version when it is set, else If-Match want.ETag): a versioned read
// returns the version asked for even after the key was overwritten. end < 0 means to the end of the object; an end past the end is
// clamped; an empty range, or a start at or past the end, reads nothing once
// a conditional HeadObject has checked the ETag. start < 0 or
// 0 <= end < start is an error. An object whose ETag is no longer want.ETag,
// or that is gone, fails with a SourceChanged ImportError. The body is
// streamed; a body shorter than its Content-Length fails with
// io.ErrUnexpectedEOF rather than ending cleanly.
func (s *Source) Open(ctx context.Context, want object.Info, start, end int64) (io.ReadCloser, error) {
	if start < 0 || (end >= 0 && end < start) {
		return nil, fmt.Errorf("open %s: invalid range [%d, %d)", want.URI, start, end)
	}
	bucket, key, err := ParseURI(want.URI)
	if err != nil {
		return nil, err
	}
	if want.ETag == "" {
		return nil, fmt.Errorf("open %s: no ETag to read the object's version by", want.URI)
	}
	etag := quote(want.ETag)
	if start == end {
		return s.empty(ctx, want, bucket, key, etag)
	}
	in := &s3.GetObjectInput{Bucket: &bucket, Key: &key}
	if pinned(want) {
		in.VersionId = aws.String(want.Version)
	} else {
		in.IfMatch = &etag
	}
	switch {
	case end >= 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", start, end-1))
	case start > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", start))
	}
	out, err := s.client.GetObject(ctx, in)
	switch {
	case err == nil:
	case awserr.Code(err) == "InvalidRange":
		// start is at or past the end: nothing to read, once the version
		// is checked (S3 may answer the range before the precondition).
		return s.empty(ctx, want, bucket, key, etag)
	default:
		return nil, readError(err, "GetObject "+want.URI, etag)
	}
	r := &reader{body: out.Body, uri: want.URI, left: -1}
	if out.ContentLength != nil {
		r.left = *out.ContentLength
	}
	return r, nil
}

// empty checks that the version asked for is still there (want.Version) or
// that the object still has etag, and returns a reader of no bytes.
func (s *Source) empty(ctx context.Context, want object.Info, bucket, key, etag string) (io.ReadCloser, error) {
	in := &s3.HeadObjectInput{Bucket: &bucket, Key: &key}
	if pinned(want) {
		in.VersionId = aws.String(want.Version)
	} else {
		in.IfMatch = &etag
	}
	_, err := s.client.HeadObject(ctx, in)
	if err != nil {
		return nil, readError(err, "HeadObject "+want.URI, etag)
	}
	return io.NopCloser(strings.NewReader("")), nil
}

// pinned reports whether want names a version S3 keeps: not "" and not
// "null", the version id of an object put while the bucket's versioning is
// off or suspended, which the next put to the key replaces (it is read by
// If-Match instead).
func pinned(want object.Info) bool { return want.Version != "" && want.Version != "null" }

// reader streams one GetObject body and makes sure it is as long as the
// response said.
type reader struct {
	body io.ReadCloser
	uri  string
	left int64 // bytes of the response not yet returned; -1: unknown
	err  error // sticky once the body ended
}

func (r *reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	n, err := r.body.Read(p)
	if r.left >= 0 {
		r.left -= int64(n)
	}
	switch {
	case err == nil:
		return n, nil
	case errors.Is(err, io.EOF):
		r.err = io.EOF
		if r.left > 0 {
			r.err = fmt.Errorf("read %s: body ended %d bytes early: %w", r.uri, r.left, io.ErrUnexpectedEOF)
		}
	default:
		r.err = awserr.Wrap(err, "read "+r.uri)
	}
	return n, r.err
}

func (r *reader) Close() error { return r.body.Close() }

// readError maps the error of a conditional read: a failed precondition or a
// missing object is SourceChanged.
func readError(err error, op, etag string) error {
	code, status := awserr.Code(err), awserr.Status(err)
	switch {
	case code == "PreconditionFailed" || status == 412:
		return failure.Wrap(failure.SourceChanged, "", err, fmt.Sprintf("%s: the object is no longer version %s", op, etag))
	case isNotFound(err) || awserr.Code(err) == "NoSuchVersion":
		return failure.Wrap(failure.SourceChanged, "", err, op+": the object (or the version read) no longer exists")
	}
	return awserr.Wrap(err, op)
}

func isNotFound(err error) bool {
	switch awserr.Code(err) {
	case "NoSuchKey", "NotFound", "NoSuchBucket":
		return true
	}
	return awserr.Status(err) == 404
}

// quote returns etag in the quoted form If-Match wants.
func quote(etag string) string {
	if strings.HasPrefix(etag, `"`) || strings.HasPrefix(etag, `W/"`) {
		return etag
	}
	return `"` + etag + `"`
}
