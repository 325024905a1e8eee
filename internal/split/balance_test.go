package split

import (
	"slices"
	"testing"
)

// cumulative turns row weights into the curve balance reads.
func cumulative(ws ...float64) []float64 {
	cum := []float64{0}
	for _, w := range ws {
		cum = append(cum, cum[len(cum)-1]+w)
	}
	return cum
}

// shardWeights are the weights of the shards that cuts make on cum.
func shardWeights(cum []float64, cuts []int) []float64 {
	var out []float64
	prev := 0
	for _, c := range append(slices.Clone(cuts), len(cum)-1) {
		out = append(out, cum[c]-cum[prev])
		prev = c
	}
	return out
}

func TestBalance(t *testing.T) {
	tests := []struct {
		name    string
		weights []float64
		n       int
		want    []int // cut after these rows (1-based)
	}{
		{"equal weights", []float64{1, 1, 1, 1, 1, 1, 1, 1, 1}, 3, []int{3, 6}},
		{"one shard", []float64{1, 2, 3}, 1, []int{}},
		{"a heavy cluster is spread over shards", []float64{1, 1, 1, 1, 5, 5, 5, 5, 1, 1, 1, 1}, 4, []int{5, 6, 7}}, // 9 5 5 9: no cut does better than 9
		{"a row heavier than a share is a shard of its own", []float64{1, 1, 1, 1, 100, 1, 1, 1, 1}, 3, []int{4, 5}},
		{"a heavy first row", []float64{100, 1, 1, 1, 1}, 3, []int{1, 3}},
		{"a heavy last row", []float64{1, 1, 1, 1, 100}, 3, []int{3, 4}},
		{"more shards than rows", []float64{1, 1, 1}, 5, []int{1, 2}},
		{"zero-weight rows go with the earlier shard's end", []float64{2, 0, 0, 2, 0, 0}, 2, []int{1}},
		{"every shard keeps a row", []float64{0, 0, 0, 0, 10}, 3, []int{3, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cum := cumulative(tt.weights...)
			got := balance(cum, tt.n)
			if !slices.Equal(got, tt.want) {
				t.Errorf("balance = %v (shards weigh %v), want %v (%v)", got, shardWeights(cum, got), tt.want, shardWeights(cum, tt.want))
			}
			for i := 1; i < len(got); i++ {
				if got[i] <= got[i-1] {
					t.Errorf("cuts %v are not increasing: an empty shard", got)
				}
			}
		})
	}
}

// TestBalanceIsNearOptimal: on many random curves, no shard weighs more
// than an equal share plus the heaviest row.
func TestBalanceIsNearOptimal(t *testing.T) {
	for seed := range 200 {
		ws := make([]float64, 50+seed*7)
		heaviest := 0.0
		for i := range ws {
			x := uint64(seed*7919+i*104729) * 0x9E3779B97F4A7C15
			ws[i] = float64(x>>59) + 0.5 // 0.5..31.5, some clusters by chance
			if (i/40)%5 == 0 {
				ws[i] *= 20
			}
			heaviest = max(heaviest, ws[i])
		}
		cum := cumulative(ws...)
		n := 2 + seed%9
		share := cum[len(cum)-1] / float64(n)
		cuts := balance(cum, n)
		if len(cuts) != n-1 {
			t.Fatalf("seed %d: %d cuts for %d shards", seed, len(cuts), n)
		}
		for i, w := range shardWeights(cum, cuts) {
			if w > share+heaviest {
				t.Fatalf("seed %d: shard %d weighs %.1f, share %.1f, heaviest row %.1f", seed, i, w, share, heaviest)
			}
		}
	}
}

// TestCurveThinning: past its size the curve keeps evenly spaced points, in
// order, always ending at the last record, and never more than max+1.
func TestCurveThinning(t *testing.T) {
	for _, records := range []int64{1, 7, 8, 9, 100, 1000, 4097} {
		c := curve{stride: 1, max: 8}
		for r := int64(1); r <= records; r++ {
			c.add(point{end: r * 10, rows: r, w: float64(r)})
		}
		c.finish()
		if len(c.pts) > c.max+1 || c.pts[len(c.pts)-1].rows != records {
			t.Fatalf("%d records: %d points ending at row %d", records, len(c.pts), c.pts[len(c.pts)-1].rows)
		}
		step := c.pts[0].rows
		for i := 1; i < len(c.pts); i++ {
			gap := c.pts[i].rows - c.pts[i-1].rows
			if gap <= 0 || (i < len(c.pts)-1 && gap != step) || gap > step {
				t.Fatalf("%d records: points at rows %v are not evenly spaced", records, rowsOf(c.pts))
			}
		}
		if records > 8 && len(c.pts) < c.max/2 {
			t.Errorf("%d records: only %d points kept", records, len(c.pts))
		}
	}
}

func rowsOf(pts []point) []int64 {
	var rs []int64
	for _, p := range pts {
		rs = append(rs, p.rows)
	}
	return rs
}
