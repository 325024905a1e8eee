package split_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/local/file"
	"github.com/catalog-import/catalog-import/internal/object"
	"github.com/catalog-import/catalog-import/internal/profile"
	"github.com/catalog-import/catalog-import/internal/record"
	"github.com/catalog-import/catalog-import/internal/record/recordtest"
	"github.com/catalog-import/catalog-import/internal/split"
)

// planWith plans content under the profile (YAML; "" for the default).
func planWith(t *testing.T, name string, content []byte, prof string, o split.Options) (split.Plan, *profile.Validator) {
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
	p := profile.Default()
	if prof != "" {
		if p, err = profile.Parse([]byte(prof)); err != nil {
			t.Fatal(err)
		}
	}
	v, err := p.Compile()
	if err != nil {
		t.Fatal(err)
	}
	pl, err := split.PlanSource(context.Background(), src, info, v, o)
	if err != nil {
		t.Fatal(err)
	}
	if pl.Rejected != nil {
		t.Fatal(pl.Rejected)
	}
	return pl, v
}

// tiles checks that the shards are contiguous ranges covering every data
// row, cut at record boundaries: scanning each range alone finds the rows
// and first row the plan says. It returns each shard's weight, weighed
// independently of the splitter with the profile's Weigher (a row it
// cannot weigh counts its bytes times the weighed rows' weight per byte),
// and the heaviest row's.
func tiles(t *testing.T, content []byte, p split.Plan, v *profile.Validator) (weights []float64, heaviest float64) {
	t.Helper()
	perByte := weightPerByte(content, p, v)
	next, sum := p.Layout.DataStart, int64(0)
	w := v.Weigher()
	var cols *profile.Columns
	if p.Dialect.Format != record.JSONL {
		cols, _ = v.Header(p.Layout.Header)
	}
	for i, s := range p.Shards {
		if s.Index != i || s.Start != next || s.End <= s.Start || s.Sheet != failure.NoSheet {
			t.Fatalf("shard %d: %+v does not start where shard %d ended (%d)", i, s, i-1, next)
		}
		sc := record.NewScanner(bytes.NewReader(content[s.Start:s.End]), p.Dialect, s.Start, s.FirstRow, 0)
		parser := record.NewParser(p.Dialect, p.Layout.Header)
		rows, first, weight := int64(0), int64(0), 0.0
		for sc.Next() {
			r := sc.Raw()
			if r.Blank {
				continue
			}
			if rows == 0 {
				first = r.Row
			}
			rows++
			if w == nil {
				continue
			}
			row := parser.Parse(r)
			c := cols
			if c == nil {
				c = v.Names(row.Names)
			}
			x, err := w.Weigh(c, row.Values, r.Len())
			if err != nil || row.Err != nil {
				x = float64(r.Len()) * perByte
			}
			weight += x
			heaviest = max(heaviest, x)
		}
		if rows != s.Rows || first != s.FirstRow || sc.Offset() != s.End {
			t.Fatalf("shard %d: scanning its range alone finds %d rows from row %d ending at %d; split said %d from %d ending at %d",
				i, rows, first, sc.Offset(), s.Rows, s.FirstRow, s.End)
		}
		weights = append(weights, weight)
		next, sum = s.End, sum+s.Rows
	}
	if sum != p.Rows {
		t.Errorf("shards hold %d rows, the file %d", sum, p.Rows)
	}
	if last := p.Shards[len(p.Shards)-1].End; strings.TrimSpace(string(content[last:])) != "" {
		t.Errorf("data after the last shard: %q", content[last:])
	}
	return weights, heaviest
}

// weightPerByte is the weighed rows' total weight over their bytes (1 when
// the expression weighs none).
func weightPerByte(content []byte, p split.Plan, v *profile.Validator) float64 {
	w := v.Weigher()
	if w == nil {
		return 0
	}
	var okW, okBytes float64
	sc := record.NewScanner(bytes.NewReader(content[p.Layout.DataStart:]), p.Dialect, p.Layout.DataStart, 2, 0)
	parser := record.NewParser(p.Dialect, p.Layout.Header)
	cols, _ := v.Header(p.Layout.Header)
	for sc.Next() {
		if sc.Raw().Blank {
			continue
		}
		row := parser.Parse(sc.Raw())
		c := cols
		if p.Dialect.Format == record.JSONL {
			c = v.Names(row.Names)
		}
		if x, err := w.Weigh(c, row.Values, sc.Raw().Len()); err == nil && row.Err == nil {
			okW, okBytes = okW+x, okBytes+float64(sc.Raw().Len())
		}
	}
	if okBytes == 0 {
		return 1
	}
	return okW / okBytes
}

func products(t *testing.T, o recordtest.Options) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := recordtest.WriteProducts(&b, o); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// clustered: rows 1202..1351 (5% of 3000) are heavy.
func clustered(row int64) bool { return row >= 1202 && row < 1352 }

// TestWeightedShards: with a weight, the plan has as many shards as the row
// and byte targets give, contiguous and tiling the file, and each weighs an
// equal share of the total, give or take its heaviest row; the weights the
// plan reports are the rows' weights.
func TestWeightedShards(t *testing.T) {
	t.Parallel()
	heavy := products(t, recordtest.Options{Rows: 3000, Seed: 9, Faults: true, Heavy: clustered})
	var one bytes.Buffer // a row far heavier than a share
	one.WriteString("sku,name,category,price,description\n")
	for i := range 100 {
		desc := "short"
		if i == 40 {
			desc = strings.Repeat("x", 60_000)
		}
		fmt.Fprintf(&one, "S-%03d,Item,Home,1.00,%s\n", i, desc)
	}
	var jsonl bytes.Buffer
	for i := range 400 {
		n := 1
		if i >= 100 && i < 140 {
			n = 40
		}
		fmt.Fprintf(&jsonl, `{"sku":"J-%d","name":"n","category":"c","price":"1","image_urls":"%s"}`+"\n", i,
			strings.TrimSuffix(strings.Repeat("https://a.example/x.jpg|", n), "|"))
	}
	tests := []struct {
		name    string
		file    string
		content []byte
		expr    string
		opts    split.Options
		check   func(t *testing.T, p split.Plan, weights []float64)
	}{
		{"bytes, a heavy cluster", "p.csv", heavy, "bytes", split.Options{ShardRows: 300}, func(t *testing.T, p split.Plan, _ []float64) {
			for _, s := range p.Shards {
				outside := s.FirstRow+s.Rows <= 1202 || s.FirstRow >= 1352
				middle := s.FirstRow <= 1277 && 1277 < s.FirstRow+s.Rows
				if outside && s.Rows <= 300 || middle && s.Rows >= 150 {
					t.Errorf("shard %d (rows %d..%d) has %d rows: shards of light rows should have more than 300, the heavy cluster's far fewer",
						s.Index, s.FirstRow, s.FirstRow+s.Rows-1, s.Rows)
				}
			}
		}},
		{"an expression over fields", "p.csv", heavy, "1 + len(image_urls) + len(description) / 500", split.Options{ShardRows: 500}, nil},
		{"a row heavier than a share is a shard of its own", "one.csv", one.Bytes(), "bytes", split.Options{ShardRows: 25}, func(t *testing.T, p split.Plan, _ []float64) {
			for _, s := range p.Shards {
				if s.FirstRow <= 42 && 42 < s.FirstRow+s.Rows && s.Rows != 1 {
					t.Errorf("the heavy row 42 shares shard %d with %d other rows", s.Index, s.Rows-1)
				}
			}
		}},
		{"json lines", "p.jsonl", jsonl.Bytes(), "len(image_urls)", split.Options{ShardRows: 100}, nil},
		{"bytes targets count too", "p.csv", heavy, "bytes", split.Options{ShardBytes: 64 << 10}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			prof := fmt.Sprintf("name: w\nfields: {description: {max_length: 100000}}\nweight: {expression: '%s'}\n", tt.expr)
			p, v := planWith(t, tt.file, tt.content, prof, tt.opts)
			unweighted, _ := planWith(t, tt.file, tt.content, "", tt.opts)
			if len(p.Shards) != len(unweighted.Shards) || p.Rows != unweighted.Rows {
				t.Fatalf("%d shards of %d rows, unweighted %d of %d", len(p.Shards), p.Rows, len(unweighted.Shards), unweighted.Rows)
			}
			if p.Weights == nil || p.Weights.Expression != tt.expr || len(p.Weights.Shards) != len(p.Shards) {
				t.Fatalf("plan weights %+v", p.Weights)
			}
			weights, heaviest := tiles(t, tt.content, p, v)
			share := p.Weights.Total / float64(len(p.Shards))
			for i, w := range weights {
				if math.Abs(w-p.Weights.Shards[i]) > 1e-6*p.Weights.Total {
					t.Errorf("shard %d weighs %.1f, the plan says %.1f", i, w, p.Weights.Shards[i])
				}
				if w > share+heaviest {
					t.Errorf("shard %d weighs %.1f: more than a share (%.1f) plus the heaviest row (%.1f); shards %v", i, w, share, heaviest, weights)
				}
			}
			if tt.check != nil {
				tt.check(t, p, weights)
			}
		})
	}
}

// TestWeightedEdgeCases: all-zero weights cut equal row counts; rows the
// expression cannot weigh count their byte size in the expression's unit
// and never stop the split; a file without data rows has no shards.
func TestWeightedEdgeCases(t *testing.T) {
	t.Parallel()
	content := products(t, recordtest.Options{Rows: 3000, Seed: 9, Faults: true, Heavy: clustered})
	t.Run("all-zero weights cut as the row target does", func(t *testing.T) {
		t.Parallel()
		p, _ := planWith(t, "p.csv", content, "name: w\nweight: {expression: '0'}\n", split.Options{ShardRows: 300})
		u, _ := planWith(t, "p.csv", content, "", split.Options{ShardRows: 300})
		if len(p.Shards) != len(u.Shards) {
			t.Fatalf("%d shards, unweighted %d", len(p.Shards), len(u.Shards))
		}
		for i := range p.Shards {
			if p.Shards[i].Start != u.Shards[i].Start || p.Shards[i].Rows != u.Shards[i].Rows {
				t.Errorf("shard %d: %+v, unweighted %+v", i, p.Shards[i], u.Shards[i])
			}
		}
	})
	t.Run("rows the expression cannot weigh", func(t *testing.T) {
		t.Parallel()
		// price fails its rule on the missing_price, price_not_number and
		// price_decimals rows; they weigh their bytes x (weight per byte of
		// the others).
		p, v := planWith(t, "p.csv", content, "name: w\nweight: {expression: 'price < 2500 ? 1 : 3'}\n", split.Options{ShardRows: 250})
		want := int64(0)
		for r := int64(2); r < 3002; r++ {
			switch recordtest.FaultOf(r) {
			case recordtest.FaultMissingPrice, recordtest.FaultPriceNotNumber, recordtest.FaultPriceDecimals:
				want++
			}
		}
		if p.Weights.Fallback != want || want == 0 {
			t.Errorf("%d rows fell back to their size, want %d", p.Weights.Fallback, want)
		}
		weights, _ := tiles(t, content, p, v)
		total := 0.0
		for i, x := range weights {
			total += x
			if math.Abs(x-p.Weights.Shards[i]) > 1e-6*p.Weights.Total {
				t.Errorf("shard %d weighs %.2f, the plan says %.2f", i, x, p.Weights.Shards[i])
			}
		}
		if math.Abs(total-p.Weights.Total) > 1e-6*total {
			t.Errorf("rows weigh %.2f, the plan says %.2f", total, p.Weights.Total)
		}
	})
	t.Run("no data rows", func(t *testing.T) {
		t.Parallel()
		p, _ := planWith(t, "p.csv", []byte(recordtest.Header+"\r\n\r\n"), "name: w\nweight: {expression: bytes}\n", split.Options{})
		if len(p.Shards) != 0 || p.Rows != 0 || p.Weights == nil || p.Weights.Total != 0 {
			t.Errorf("%d shards, %d rows, weights %+v", len(p.Shards), p.Rows, p.Weights)
		}
	})
	t.Run("no weight, no weights", func(t *testing.T) {
		t.Parallel()
		if p, _ := planWith(t, "p.csv", content, "", split.Options{ShardRows: 300}); p.Weights != nil {
			t.Errorf("an unweighted plan has weights %+v", p.Weights)
		}
	})
}

// changing is a file source whose object loses its last records after the
// first full read: what a concurrent overwrite with the same version tag
// would look like to the splitter.
type changing struct {
	file.Source
	reads int
}

func (c *changing) Open(ctx context.Context, want object.Info, start, end int64) (io.ReadCloser, error) {
	rc, err := c.Source.Open(ctx, want, start, end)
	if err != nil || end >= 0 {
		return rc, err
	}
	if c.reads++; c.reads == 1 {
		return rc, nil
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(rc, want.Size/2), rc}, nil
}

func TestWeightedSplitSeesAChangedSource(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "p.csv")
	if err := os.WriteFile(path, products(t, recordtest.Options{Rows: 2000, Seed: 3}), 0o644); err != nil {
		t.Fatal(err)
	}
	src := &changing{}
	info, err := src.Stat(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := profile.Parse([]byte("name: w\nweight: {expression: bytes}\n"))
	v, _ := p.Compile()
	_, err = split.PlanSource(context.Background(), src, info, v, split.Options{ShardRows: 100})
	if failure.ReasonOf(err) != failure.SourceChanged || !strings.Contains(err.Error(), "changed while it was split") {
		t.Errorf("PlanSource = %v, want SourceChanged", err)
	}
}
