package cli

import (
	"context"
	"errors"
	"os"
	"strings"

	"github.com/catalog-import/catalog-import/internal/aws/dynamostate"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/local/sqlite"
	"github.com/catalog-import/catalog-import/internal/state"
	"github.com/catalog-import/catalog-import/internal/text"
)

// openExisting opens a database that must already exist (reading commands
// never create one by accident), for reading only: it may be on a
// read-only mount, and a read changes nothing.
func openExisting(path string) (*sqlite.DB, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, usage("no database at %s (run an import first, or pass --db)", path)
	}
	return sqlite.Open(path, sqlite.Options{ReadOnly: true})
}

// reader is the part of a state store the reading commands use.
type reader interface {
	GetBatch(ctx context.Context, id string) (state.Batch, error)
	ListBatches(ctx context.Context, limit int) ([]state.Batch, error)
	ListShards(ctx context.Context, batchID string) ([]state.Shard, error)
	Failures(ctx context.Context, batchID string, f state.FailureFilter) ([]failure.Record, error)
}

// openReader opens the stack's DynamoDB state table when --stack is given,
// else the SQLite database; where names it in messages.
func (g *global) openReader(ctx context.Context) (r reader, where string, closeFn func(), err error) {
	if g.stack == "" {
		db, err := openExisting(g.db)
		if err != nil {
			return nil, "", nil, err
		}
		return db, g.db, func() { db.Close() }, nil
	}
	res, clients, err := g.resources(ctx)
	if err != nil {
		return nil, "", nil, err
	}
	return dynamostate.New(clients.DynamoDB, res.StateTable, dynamostate.Options{}), "stack " + g.stack, func() {}, nil
}

// findBatch reads batch id from the store opened at where; an unknown id is
// a usage error naming both.
func findBatch(ctx context.Context, db reader, where, id string) (state.Batch, error) {
	b, err := db.GetBatch(ctx, id)
	if errors.Is(err, state.ErrNotFound) {
		return b, usage("no batch %s in %s", id, where)
	}
	return b, err
}

// dash shows an empty cell as "-".
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine puts s on one line, cut to at most n bytes (never inside a
// character) with an ellipsis.
func oneLine(s string, n int) string {
	return text.Truncate(strings.ReplaceAll(s, "\n", " "), n, "…")
}
