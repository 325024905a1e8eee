package s3store_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/catalog-import/catalog-import/internal/aws/awstest"
	"github.com/catalog-import/catalog-import/internal/aws/s3store"
	"github.com/catalog-import/catalog-import/internal/pipeline"
	"github.com/catalog-import/catalog-import/internal/pipeline/profilestest"
	"github.com/catalog-import/catalog-import/internal/profile"
)

var _ pipeline.Profiles = (*s3store.Profiles)(nil)

func TestProfilesContract(t *testing.T) {
	client := awstest.Clients(t).S3
	profilestest.Run(t, func(t *testing.T) (pipeline.Profiles, profilestest.Put) {
		bucket := newBucket(t, client)
		return s3store.NewProfiles(client, bucket), func(t *testing.T, name string, data []byte) {
			key := s3store.ProfileKey(name)
			if _, err := client.PutObject(t.Context(), &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(data)}); err != nil {
				t.Fatalf("PutObject %s: %v", key, err)
			}
		}
	})
}

// TestProfilesPut: Put stores a profile that checks, where Get finds it,
// and refuses (storing nothing) a bad name or a profile with problems,
// naming them.
func TestProfilesPut(t *testing.T) {
	client := awstest.Clients(t).S3
	for _, tc := range []struct {
		name, profile, data, wantErr string
	}{
		{"stored", "stock", profilestest.Stock, ""},
		{"bad profile", "stock", "fields:\n  price: {scale: -1}\n", "fields.price.scale"},
		{"bad name", "Stock!", profilestest.Stock, `profile name "Stock!"`},
		{"reserved name", "retries", profilestest.Stock, "reserved"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := s3store.NewProfiles(client, newBucket(t, client))
			p, uri, err := store.Put(t.Context(), tc.profile, []byte(tc.data))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Put = %v, want an error saying %q", err, tc.wantErr)
				}
				if _, err := store.Get(t.Context(), tc.profile); !errors.Is(err, profile.ErrNotFound) {
					t.Errorf("after a refused Put, Get = %v, want not found", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasSuffix(uri, "/profiles/stock.yaml") {
				t.Errorf("Put URI = %s, want .../profiles/stock.yaml", uri)
			}
			got, err := store.Get(t.Context(), tc.profile)
			if err != nil || got.RuleVersion() != p.RuleVersion() {
				t.Errorf("Get after Put = %v, %v; want rule version %s", got, err, p.RuleVersion())
			}
		})
	}
}
