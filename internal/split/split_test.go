package split_test

import (
	"bytes"
	"context"
	"crypto/sha256"
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

// TestUnbalancedQuoteShards: the splitter applies the profile's quote limits
// (the same record.Limits a worker reads with, split.ScanLimits): a stray
// quote costs one row, every later row is counted, and each shard scanned
// alone under the same limits finds exactly the split's rows.
func TestUnbalancedQuoteShards(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("sku,name,category,price,stock\n")
	for i := 2; i <= 40; i++ {
		name := fmt.Sprintf("Item %d", i)
		switch i {
		case 5:
			name = `"Bad quote start` // never closes
		case 30:
			name = "\"two\nlines\"" // closes on the next line: one row
		}
		fmt.Fprintf(&b, "S%d,%s,toys,1.00,3\n", i, name)
	}
	content := []byte(b.String())
	tests := []struct {
		name     string
		profile  string
		rows     int64
		unclosed int
	}{
		// Five lines: row 5's quote is unclosed (the next quote is 25 lines
		// down), so row 5 ends at its line; rows 2-40 are 39 rows (row 30
		// holds two lines).
		{"five lines", "name: x\nmax_quoted_lines: 5", 39, 1},
		// Default limits (1,000 lines): the quote of row 30 is within
		// reach, so it closes row 5's cell (as in any CSV reader): rows
		// 2-4, one record from row 5 to row 30's first line, row 30's
		// second line, rows 31-40.
		{"default limits", "name: x", 15, 0},
		// One byte: both quoted cells are unclosed, and row 30's second
		// line is a row of its own.
		{"one byte", "name: x\nmax_quoted_bytes: 1", 40, 2},
	}
	for _, tt := range tests {
		prof, err := profile.Parse([]byte(tt.profile))
		if err != nil {
			t.Fatal(err)
		}
		v, err := prof.Compile()
		if err != nil {
			t.Fatal(err)
		}
		lim := split.ScanLimits(prof, 0)
		for _, rows := range []int64{1, 2, 7, 1000} {
			t.Run(fmt.Sprintf("%s/rows=%d", tt.name, rows), func(t *testing.T) {
				t.Parallel()
				path := filepath.Join(t.TempDir(), "q.csv")
				if err := os.WriteFile(path, content, 0o644); err != nil {
					t.Fatal(err)
				}
				src := &file.Source{}
				info, err := src.Stat(context.Background(), path)
				if err != nil {
					t.Fatal(err)
				}
				p, err := split.PlanSource(context.Background(), src, info, v, split.Options{ShardRows: rows})
				if err != nil || p.Rejected != nil {
					t.Fatal(err, p.Rejected)
				}
				if p.Rows != tt.rows {
					t.Fatalf("split counted %d rows, want %d", p.Rows, tt.rows)
				}
				unclosed := 0
				for _, s := range p.Shards {
					sc := record.NewScannerLimits(bytes.NewReader(content[s.Start:s.End]), p.Dialect, s.Start, s.FirstRow, lim)
					n := int64(0)
					for sc.Next() {
						n++
						if sc.Raw().Unclosed {
							unclosed++
							if r := sc.Raw().Row; r != 5 && r != 30 {
								t.Errorf("row %d is unclosed", sc.Raw().Row)
							}
						}
					}
					if n != s.Rows || sc.Offset() != s.End {
						t.Fatalf("shard %d alone: %d rows ending at %d; split: %d ending at %d", s.Index, n, sc.Offset(), s.Rows, s.End)
					}
				}
				if unclosed != tt.unclosed {
					t.Errorf("%d unclosed records, want %d", unclosed, tt.unclosed)
				}
			})
		}
	}
}

// TestContentHash: with HashContent the plan's Content is the SHA-256 of
// the whole file (the embedded batch id is derived from it), also for a
// file of several of the hashing goroutine's buffers, and a different
// byte anywhere gives a different hash.
func TestContentHash(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := recordtest.WriteProductCSV(&buf, 20000, 3, false); err != nil {
		t.Fatal(err)
	}
	content := buf.Bytes()
	if len(content) < 2<<20 {
		t.Fatalf("the file is %d bytes: too short to use several buffers", len(content))
	}
	p := plan(t, "h.csv", content, split.Options{HashContent: true, BlockRows: 100})
	if want := fmt.Sprintf("%x", sha256.Sum256(content)); p.Content != want {
		t.Errorf("Content %s, want %s", p.Content, want)
	}
	edited := bytes.Clone(content)
	edited[len(edited)/2+1] ^= 1
	if q := plan(t, "h.csv", edited, split.Options{HashContent: true}); q.Content == p.Content || q.Content == "" {
		t.Errorf("a file with one byte changed has Content %q, the original %q", q.Content, p.Content)
	}
}
