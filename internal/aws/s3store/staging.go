package s3store

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/catalog-import/catalog-import/internal/aws/awserr"
	"github.com/catalog-import/catalog-import/internal/object"
)

// StagingPrefix is the key prefix of staged objects:
// staging/<batch>/<name>. It is outside incoming/, so staging never starts
// an import.
const StagingPrefix = "staging/"

// Staging is the staging area of the splitter on AWS (split.Stager): the
// normalized chunks of a workbook's sheets, as objects
// s3://<bucket>/staging/<batch>/<name> that workers read with Source. It is
// safe for concurrent use.
type Staging struct {
	client *s3.Client
	bucket string
}

// NewStaging returns the staging area in bucket.
func NewStaging(client *s3.Client, bucket string) *Staging {
	return &Staging{client: client, bucket: bucket}
}

// Stage puts data (one chunk, at most a shard's size: one PutObject) as
// staging/<batchID>/<name> and returns its URI, size, ETag and version id.
func (s *Staging) Stage(ctx context.Context, batchID, name string, data []byte) (object.Info, error) {
	if !plainName(batchID) || !plainName(name) {
		return object.Info{}, fmt.Errorf("s3store: staged object %q of batch %q: want non-empty names without slashes", name, batchID)
	}
	key := StagingPrefix + batchID + "/" + name
	out, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &s.bucket, Key: &key, Body: bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))), ContentType: aws.String(contentType(name)),
	})
	if err != nil {
		return object.Info{}, awserr.Wrap(err, "PutObject "+URI(s.bucket, key))
	}
	return object.Info{URI: URI(s.bucket, key), Size: int64(len(data)), ETag: aws.ToString(out.ETag), Version: aws.ToString(out.VersionId)}, nil
}

// Unstage deletes every version of every object under staging/<batchID>/
// (DeleteObjects, 1,000 keys a request), so nothing of the batch's staging
// is left behind on a versioned bucket either.
func (s *Staging) Unstage(ctx context.Context, batchID string) error {
	if !plainName(batchID) {
		return fmt.Errorf("s3store: unstage batch %q: want a non-empty name without slashes", batchID)
	}
	prefix := StagingPrefix + batchID + "/"
	in := &s3.ListObjectVersionsInput{Bucket: &s.bucket, Prefix: &prefix}
	for {
		page, err := s.client.ListObjectVersions(ctx, in)
		if err != nil {
			return awserr.Wrap(err, "ListObjectVersions "+URI(s.bucket, prefix))
		}
		var ids []types.ObjectIdentifier
		for _, v := range page.Versions {
			ids = append(ids, types.ObjectIdentifier{Key: v.Key, VersionId: v.VersionId})
		}
		for _, m := range page.DeleteMarkers {
			ids = append(ids, types.ObjectIdentifier{Key: m.Key, VersionId: m.VersionId})
		}
		if len(ids) > 0 {
			out, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: &s.bucket, Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)}})
			if err != nil {
				return awserr.Wrap(err, "DeleteObjects "+URI(s.bucket, prefix))
			}
			if len(out.Errors) > 0 {
				e := out.Errors[0]
				return fmt.Errorf("s3store: delete %s: %d keys failed, first %s: %s", URI(s.bucket, prefix), len(out.Errors), aws.ToString(e.Key), aws.ToString(e.Message))
			}
		}
		if !aws.ToBool(page.IsTruncated) {
			return nil
		}
		in.KeyMarker, in.VersionIdMarker = page.NextKeyMarker, page.NextVersionIdMarker
	}
}

func plainName(s string) bool { return s != "" && !strings.Contains(s, "/") }
