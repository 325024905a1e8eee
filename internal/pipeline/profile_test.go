package pipeline_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/local/file"
	"github.com/catalog-import/catalog-import/internal/local/memqueue"
	"github.com/catalog-import/catalog-import/internal/local/sqlite"
	"github.com/catalog-import/catalog-import/internal/pipeline"
	"github.com/catalog-import/catalog-import/internal/pipeline/profilestest"
	"github.com/catalog-import/catalog-import/internal/profile"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/state"
)

// brokenProfiles is a profile store that cannot be read.
type brokenProfiles struct{}

func (brokenProfiles) Get(context.Context, string) (*profile.Profile, error) {
	return nil, failure.New(failure.Throttled, "", "profiles unavailable")
}

// TestSplitProfileChoice: Split runs under the profile the request names;
// an optional name that names none falls back to Options.Profile; a
// required one, or a stored profile that is not valid, REJECTS the source
// naming it; a store that cannot be read is an error (the caller retries)
// and registers nothing.
func TestSplitProfileChoice(t *testing.T) {
	dir := t.TempDir()
	profiles := filepath.Join(dir, "profiles")
	if err := os.MkdirAll(profiles, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"stock": profilestest.Stock, "broken": "name: broken\nfields:\n  price: {scale: -1}\n"} {
		if err := os.WriteFile(filepath.Join(profiles, name+".yaml"), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "stock.csv")
	if err := os.WriteFile(path, []byte("sku,stock\nA-1,5\nA-2,-3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stock, err := profile.Parse([]byte(profilestest.Stock))
	if err != nil {
		t.Fatal(err)
	}
	def := profile.Default().RuleVersion()
	for _, tc := range []struct {
		name     string
		store    pipeline.Profiles
		choice   pipeline.ProfileChoice
		rules    string
		status   state.BatchStatus
		message  string
		wantErr  bool
		noSplits bool
	}{
		{"no name", file.Profiles{Dir: profiles}, pipeline.ProfileChoice{}, def, state.BatchRejected, "SchemaMismatch", false, false},
		{"stored", file.Profiles{Dir: profiles}, pipeline.ProfileChoice{Name: "stock", From: "x-amz-meta-profile"}, stock.RuleVersion(), state.BatchRunning, "", false, false},
		{"optional, none stored", file.Profiles{Dir: profiles}, pipeline.ProfileChoice{Name: "supplier", From: "its folder", Optional: true}, def, state.BatchRejected, "SchemaMismatch", false, false},
		{"required, none stored", file.Profiles{Dir: profiles}, pipeline.ProfileChoice{Name: "price", From: "x-amz-meta-profile"}, def, state.BatchRejected,
			`profile "price" not found: upload it with importctl profile push price FILE --stack catalog (the upload names it in x-amz-meta-profile)`, false, false},
		{"no store", nil, pipeline.ProfileChoice{Name: "stock", From: "x-amz-meta-profile"}, def, state.BatchRejected, `profile "stock" not found`, false, false},
		{"stored profile not valid", file.Profiles{Dir: profiles}, pipeline.ProfileChoice{Name: "broken", From: "its folder", Optional: true}, def, state.BatchRejected,
			`profile "broken" is not valid (the upload names it in its folder): profile `, false, false},
		{"store unavailable", brokenProfiles{}, pipeline.ProfileChoice{Name: "stock", From: "x-amz-meta-profile"}, "", "", "", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, err := sqlite.Open(":memory:", sqlite.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			q, err := memqueue.New(memqueue.Options{VisibilityTimeout: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			src := &file.Source{}
			ports := pipeline.Ports{Source: src, Store: db, Sink: db, Queue: q}
			if tc.store != nil {
				ports.Profiles = tc.store
			}
			pl := pipeline.New(ports, pipeline.Options{StackName: "catalog"})
			info, err := src.Stat(t.Context(), path)
			if err != nil {
				t.Fatal(err)
			}
			_, out, err := pl.Split(t.Context(), pipeline.SplitRequest{Info: info, ID: func(split.Plan) string { return "b-1" }, Profile: tc.choice})
			if tc.wantErr {
				if _, ok := failure.As(err); !ok {
					t.Fatalf("Split = %v, want the store's ImportError", err)
				}
				if _, err := db.GetBatch(t.Context(), "b-1"); !errors.Is(err, state.ErrNotFound) {
					t.Errorf("a batch was registered: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b := out.Batch
			if strings.Contains(b.Message, "\n") && b.Status == state.BatchRejected && tc.choice.Name != "" {
				t.Errorf("rejection message on several lines: %q", b.Message)
			}
			if b.RuleVersion != tc.rules || b.Status != tc.status || !strings.Contains(b.Message, tc.message) {
				t.Fatalf("batch: rules %s, %s, %q; want rules %s, %s, message with %q", b.RuleVersion, b.Status, b.Message, tc.rules, tc.status, tc.message)
			}
		})
	}
}
