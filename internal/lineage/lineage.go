// Package lineage is a child batch and its parent: a batch that re-imports
// failed rows (a fix file a merchant edited, or the retry file `importctl
// retry-failures` writes from the failure snapshots) and the batch those
// rows failed in. It writes those files (FixWriter, WriteRetryFile), reads
// a child's parent at split (Parent), and marks the parent's failure
// records resolved once their rows import (Resolver).
//
// The link is in the data, not in a side channel: a fix file's trailing
// columns (ColBatch, ColSourceRow, optionally ColSourceSheet) name each
// row's parent batch and row, so the same file works dropped in the bucket,
// run locally, or edited and reordered in Excel. The splitter records the
// first row's parent as the batch's Parent (Parent), and finalization calls
// Resolver.Resolve before the batch is finished, so a crash in between
// repeats an idempotent resolution.
package lineage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/object"
	"github.com/catalog-import/catalog-import/internal/record"
	"github.com/catalog-import/catalog-import/internal/state"
)

// link is where a fix-file row came from.
type link struct {
	parent string
	key    failure.Key
}

// columns finds the link columns of a row; ok is false when the row does
// not name its parent batch and row.
func columns(row record.Row) (link, bool) {
	var (
		l      = link{key: failure.Key{Sheet: failure.NoSheet}}
		hasRow bool
	)
	for i, name := range row.Names {
		if i >= len(row.Values) {
			break
		}
		v := strings.TrimSpace(row.Values[i])
		switch name {
		case ColBatch:
			l.parent = v
		case ColSourceRow:
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 1 {
				return link{}, false
			}
			l.key.Row, hasRow = n, true
		case ColSourceSheet:
			// A sheet name never starts with an apostrophe (Excel refuses
			// one), so a leading one is the fix file's mark (Mark).
			if v = Unmark(v); v != "" {
				l.key.Sheet = v
			}
		}
	}
	return l, hasRow && l.parent != ""
}

// hasColumns reports whether a csv/tsv header has the link columns (jsonl
// rows name their own keys, so they are looked at row by row).
func hasColumns(l state.Layout) bool {
	if l.Format == string(record.JSONL) {
		return true
	}
	var b, r bool
	for _, h := range l.Header {
		b = b || h == ColBatch
		r = r || h == ColSourceRow
	}
	return b && r
}

// Parent returns the parent batch named by the first data row of data (the
// bytes of the object from the layout's DataStart; whole says they run to
// the object's end, otherwise a row cut by the end of data is not read), or
// "" when the file is not a fix file.
func Parent(l state.Layout, data []byte, whole bool, firstRow int64, maxRecord int) string {
	if !hasColumns(l) {
		return ""
	}
	d := l.Dialect()
	sc := record.NewScanner(bytes.NewReader(data), d, l.DataStart, firstRow, maxRecord)
	p := record.NewParser(d, l.Header)
	for sc.Next() {
		raw := sc.Raw()
		if raw.Blank {
			continue
		}
		if raw.TooLarge || (!whole && raw.End >= l.DataStart+int64(len(data))) {
			return ""
		}
		lk, _ := columns(p.Parse(raw))
		return lk.parent
	}
	return ""
}

// Store is what Resolve needs of the state store.
type Store interface {
	ListShards(ctx context.Context, batchID string) ([]state.Shard, error)
	Failures(ctx context.Context, batchID string, f state.FailureFilter) ([]failure.Record, error)
	ResolveFailures(ctx context.Context, batchID string, keys []failure.Key, by string, at time.Time) (int, error)
}

// Resolver marks the failures a child batch resolved.
type Resolver struct {
	Source    object.Source
	Store     Store
	MaxRecord int              // largest record read whole (default 1 MiB, as the split's)
	Now       func() time.Time // default time.Now
}

// resolveChunk is how many keys one ResolveFailures call carries.
const resolveChunk = 500

// Resolve reads the finished shards of child's source once and marks, in
// each row's parent batch, the failure record of every row that imported:
// rows of DONE shards that have no failure record in child. It returns how
// many parent records it marked (0 when child is not a fix-file import).
func (r Resolver) Resolve(ctx context.Context, child state.Batch) (int, error) {
	if child.Parent == "" || !hasColumns(child.Layout) {
		return 0, nil
	}
	shards, err := r.Store.ListShards(ctx, child.ID)
	if err != nil {
		return 0, fmt.Errorf("lineage of %s: %w", child.ID, err)
	}
	var done []state.Shard
	for _, s := range shards {
		if s.Status == state.ShardDone {
			done = append(done, s)
		}
	}
	if len(done) == 0 {
		return 0, nil
	}
	failed, err := r.failedRows(ctx, child.ID)
	if err != nil {
		return 0, err
	}
	maxRecord := r.MaxRecord
	if maxRecord <= 0 {
		maxRecord = 1 << 20
	}
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	at := now().UTC()
	d := child.Layout.Dialect()
	src := child.Source.Info()

	total := 0
	pending := map[string][]failure.Key{}
	flush := func(parent string) error {
		n, err := r.Store.ResolveFailures(ctx, parent, pending[parent], child.ID, at)
		total += n
		delete(pending, parent)
		if errors.Is(err, state.ErrNotFound) {
			// A fix file of a batch this store does not know (an AWS
			// batch's file imported locally, say): its rows import, and
			// there is nothing to mark.
			return nil
		}
		if err != nil {
			return fmt.Errorf("resolve failures of %s imported by %s: %w", parent, child.ID, err)
		}
		return nil
	}
	p := record.NewParser(d, child.Layout.Header)
	for _, s := range done { // shards are contiguous: one ranged read each
		if err := r.readShard(ctx, src, d, s, maxRecord, func(raw record.Raw) error {
			if failed[raw.Row] {
				return nil
			}
			lk, ok := columns(p.Parse(raw))
			if !ok {
				return nil
			}
			pending[lk.parent] = append(pending[lk.parent], lk.key)
			if len(pending[lk.parent]) >= resolveChunk {
				return flush(lk.parent)
			}
			return nil
		}); err != nil {
			return total, err
		}
	}
	for parent := range pending {
		if err := flush(parent); err != nil {
			return total, err
		}
	}
	return total, nil
}

// failedRows is the set of child's rows that have a failure record (a fix
// file has no sheets: its rows are keyed by row number).
func (r Resolver) failedRows(ctx context.Context, id string) (map[int64]bool, error) {
	out := map[int64]bool{}
	f := state.FailureFilter{Limit: 1000}
	for {
		page, err := r.Store.Failures(ctx, id, f)
		if err != nil {
			return nil, fmt.Errorf("lineage of %s: %w", id, err)
		}
		for _, rec := range page {
			out[rec.Row] = true
		}
		if len(page) < f.Limit {
			return out, nil
		}
		last := page[len(page)-1]
		f.AfterSheet, f.AfterRow = last.Sheet, last.Row
	}
}

func (r Resolver) readShard(ctx context.Context, src object.Info, d record.Dialect, s state.Shard, maxRecord int, each func(record.Raw) error) error {
	rc, err := r.Source.Open(ctx, src, s.Start, s.End)
	if err != nil {
		return fmt.Errorf("lineage: open %s: %w", src.URI, err)
	}
	defer rc.Close()
	sc := record.NewScanner(io.LimitReader(rc, s.End-s.Start), d, s.Start, s.FirstRow, maxRecord)
	for sc.Next() {
		raw := sc.Raw()
		if raw.Blank || raw.TooLarge {
			continue
		}
		if err := each(raw); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("lineage: read %s: %w", src.URI, err)
	}
	return nil
}
