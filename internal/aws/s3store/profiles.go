package s3store

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/catalog-import/catalog-import/internal/aws/awserr"
	"github.com/catalog-import/catalog-import/internal/profile"
)

// ProfilesPrefix is the key prefix of the stack's named profiles:
// profiles/<name>.yaml (pipeline.Profiles; importctl profile push).
const ProfilesPrefix = "profiles/"

// ProfileKey returns the key of the profile called name.
func ProfileKey(name string) string { return ProfilesPrefix + name + ".yaml" }

// Profiles is the store of named profiles in one bucket
// (pipeline.Profiles). It is safe for concurrent use.
type Profiles struct {
	client *s3.Client
	bucket string
}

// NewProfiles returns the profile store of bucket, read and written with
// client.
func NewProfiles(client *s3.Client, bucket string) *Profiles {
	return &Profiles{client: client, bucket: bucket}
}

// Get reads profiles/<name>.yaml and checks it (profile.CheckNamed). A name
// profile.CheckName refuses, or no such object, is an error matching
// profile.ErrNotFound; a profile that does not check names its object and
// problems; S3 failures are ImportErrors with awserr's reason.
func (p *Profiles) Get(ctx context.Context, name string) (*profile.Profile, error) {
	if err := profile.CheckName(name); err != nil {
		return nil, fmt.Errorf("%w: %w", profile.ErrNotFound, err)
	}
	key := ProfileKey(name)
	uri := URI(p.bucket, key)
	out, err := p.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &p.bucket, Key: &key})
	if err != nil {
		if isNotFound(err) && awserr.Code(err) != "NoSuchBucket" {
			return nil, fmt.Errorf("%w: no %s", profile.ErrNotFound, uri)
		}
		return nil, awserr.Wrap(err, "GetObject "+uri)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(io.LimitReader(out.Body, profile.MaxSize+1))
	if err != nil {
		return nil, awserr.Wrap(err, "GetObject "+uri)
	}
	if len(data) > profile.MaxSize {
		return nil, fmt.Errorf("profile %s: larger than %d bytes", uri, profile.MaxSize)
	}
	pr, err := profile.CheckNamed(name, data)
	if err != nil {
		return nil, fmt.Errorf("profile %s:\n%w", uri, err)
	}
	return pr, nil
}

// Put stores data as the profile called name, once it checks
// (profile.CheckNamed; its problems are the error, and nothing is stored), and
// returns the profile and the object's URI.
func (p *Profiles) Put(ctx context.Context, name string, data []byte) (*profile.Profile, string, error) {
	if len(data) > profile.MaxSize {
		return nil, "", fmt.Errorf("profile %s: larger than %d bytes", name, profile.MaxSize)
	}
	pr, err := profile.CheckNamed(name, data)
	if err != nil {
		return nil, "", err
	}
	key := ProfileKey(name)
	uri := URI(p.bucket, key)
	_, err = p.client.PutObject(ctx, &s3.PutObjectInput{Bucket: &p.bucket, Key: &key, Body: bytes.NewReader(data),
		ContentType: aws.String("application/yaml")})
	if err != nil {
		return nil, "", awserr.Wrap(err, "PutObject "+uri)
	}
	return pr, uri, nil
}
