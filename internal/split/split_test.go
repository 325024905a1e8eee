package split_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/local/file"
	"github.com/catalog-import/catalog-import/internal/profile"
	"github.com/catalog-import/catalog-import/internal/record"
	"github.com/catalog-import/catalog-import/internal/record/recordtest"
	"github.com/catalog-import/catalog-import/internal/split"
)

func plan(t *testing.T, name string, content []byte, o split.Options) split.Plan {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	src := &file.Source{}
	info, err := src.Stat(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := profile.Default().Compile()
	p, err := split.PlanSource(context.Background(), src, info, v, o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestShardsTileTheFile: for several shard sizes, shards are contiguous byte
// ranges that cover the data exactly, cut at record boundaries (a worker
// scanning each range alone finds exactly the rows the split counted, with
// the same first row number), and their rows add up to every data row.
func TestShardsTileTheFile(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := recordtest.WriteProductCSV(&buf, 3000, 5, true); err != nil {
		t.Fatal(err)
	}
	content := append(buf.Bytes(), "\n\n"...) // trailing blank lines are no rows
	for _, o := range []split.Options{
		{ShardRows: 1}, {ShardRows: 7}, {ShardRows: 1000}, {ShardBytes: 4096}, {ShardRows: 1 << 30},
	} {
		t.Run(fmt.Sprintf("rows=%d,bytes=%d", o.ShardRows, o.ShardBytes), func(t *testing.T) {
			t.Parallel()
			p := plan(t, "p.csv", content, o)
			if p.Rejected != nil {
				t.Fatal(p.Rejected)
			}
			if p.Rows != 3000 {
				t.Errorf("%d rows, want 3000", p.Rows)
			}
			next, sum := p.Layout.DataStart, int64(0)
			for i, s := range p.Shards {
				if s.Index != i || s.Start != next || s.End <= s.Start || s.Sheet != failure.NoSheet {
					t.Fatalf("shard %d: %+v does not start where shard %d ended (%d)", i, s, i-1, next)
				}
				sc := record.NewScanner(bytes.NewReader(content[s.Start:s.End]), p.Dialect, s.Start, s.FirstRow, 0)
				rows, first := int64(0), int64(0)
				for sc.Next() {
					if r := sc.Raw(); !r.Blank {
						if rows == 0 {
							first = r.Row
						}
						rows++
					}
				}
				if rows != s.Rows || first != s.FirstRow || sc.Offset() != s.End {
					t.Fatalf("shard %d: scanning its range alone finds %d rows from row %d ending at %d; split said %d from %d ending at %d",
						i, rows, first, sc.Offset(), s.Rows, s.FirstRow, s.End)
				}
				if o.ShardRows > 0 && o.ShardBytes == 0 && s.Rows > o.ShardRows {
					t.Errorf("shard %d has %d rows, over the target %d", i, s.Rows, o.ShardRows)
				}
				next, sum = s.End, sum+s.Rows
			}
			if sum != p.Rows {
				t.Errorf("shards hold %d rows, the file %d", sum, p.Rows)
			}
			if last := p.Shards[len(p.Shards)-1].End; strings.TrimSpace(string(content[last:])) != "" {
				t.Errorf("data after the last shard: %q", content[last:])
			}
		})
	}
}

func TestRejections(t *testing.T) {
	t.Parallel()
	for name, content := range map[string]string{
		"empty.csv":   "",
		"missing.csv": "sku,title\nA,B\n",
		"nohdr.csv":   "\n\n",
	} {
		p := plan(t, name, []byte(content), split.Options{})
		if failure.ReasonOf(p.Rejected) != failure.SchemaMismatch || len(p.Shards) != 0 {
			t.Errorf("%s: rejected %v with %d shards, want SchemaMismatch and none", name, p.Rejected, len(p.Shards))
		}
	}
}
