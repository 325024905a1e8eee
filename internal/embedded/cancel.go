package embedded

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/catalog-import/catalog-import/internal/local/file"
	"github.com/catalog-import/catalog-import/internal/local/sqlite"
	"github.com/catalog-import/catalog-import/internal/pipeline"
	"github.com/catalog-import/catalog-import/internal/state"
)

// Cancel ends batch id of the database cfg.DB for good (CANCELLED; see
// pipeline.Pipeline.Cancel), also while another process runs it.
//
// It does not take the run lock (the flock(2) `importctl run` holds on the
// database file for the whole run, see lock): that lock only keeps a second
// run off the database, and a cancel runs no worker. SQLite's own locks are
// POSIX fcntl(2) locks, independent of flock(2) on Linux, so the run's lock
// does not block it; it writes through the store, whose database is in WAL
// mode with a busy timeout, so its few write transactions (the batch's
// final status and counts) wait for the run's short ones instead of
// failing. The run's workers then stop at their next
// checkpoint (state.ErrBatchFinished), its queued manifests are
// acknowledged as no-ops, and the run ends reporting CANCELLED.
func Cancel(ctx context.Context, cfg Config, id, message string) (state.Batch, error) {
	cfg = cfg.withDefaults()
	if cfg.DB != sqlite.Memory {
		if _, err := os.Stat(cfg.DB); err != nil {
			return state.Batch{}, fmt.Errorf("open database %s: %w", cfg.DB, unpath(err))
		}
	}
	db, err := sqlite.Open(cfg.DB, sqlite.Options{})
	if err != nil {
		return state.Batch{}, err // it names the database
	}
	defer db.Close()
	return cancelIn(ctx, cfg, db, id, message)
}

// cancelIn cancels batch id in db.
func cancelIn(ctx context.Context, cfg Config, db *sqlite.DB, id, message string) (state.Batch, error) {
	staging := cfg.StagingDir
	if staging == "" && cfg.DB != sqlite.Memory {
		staging = filepath.Join(filepath.Dir(cfg.DB), "staging")
	}
	ports := pipeline.Ports{Source: &file.Source{}, Store: db, Sink: db}
	if cfg.ReportDir != "" {
		ports.Reports = file.Reports{Dir: cfg.ReportDir}
	}
	if staging != "" {
		ports.Staging = file.Staging{Dir: staging}
	}
	pl := pipeline.New(ports, pipeline.Options{Profile: cfg.Profile, Log: cfg.Log})
	return pl.Cancel(ctx, id, message)
}
