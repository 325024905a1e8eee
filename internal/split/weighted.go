package split

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/object"
	"github.com/catalog-import/catalog-import/internal/profile"
	"github.com/catalog-import/catalog-import/internal/record"
	"github.com/catalog-import/catalog-import/internal/state"
)

// Weighted shards (decision 15). When the profile declares a weight, the
// plan takes two reads of the data:
//
//  1. weigh: scan every record, parse it (only when the expression reads
//     cells) and weigh it, keeping the cumulative weight at record
//     boundaries (a curve of at most maxCurve points), and count the shards
//     the row and byte targets would cut (n);
//  2. cut: the usual scan, which cuts at the n-1 boundaries of the curve
//     closest to equal cumulative weight and computes each shard's checksum.
//
// The second read is the plain boundary scan (no parsing), so the cost of
// weighting is one parse of the file in the splitter. Shards stay contiguous
// byte ranges cut at record boundaries: workers range-read them as before.

// maxCurve bounds the boundaries the weigh pass keeps (32 bytes each): past
// it, every other point is dropped and points are taken half as often. Cuts
// then fall within rows/maxCurve..2*rows/maxCurve rows of the ideal place.
const maxCurve = 1 << 16

// Weights describes a weighted plan.
type Weights struct {
	Expression string    // the profile's weight expression
	Total      float64   // the rows' total weight, in the expression's unit
	Fallback   int64     // rows the expression could not weigh (they weigh their byte size, converted)
	Shards     []float64 // each shard's weight, as planned
}

// point is the curve at one record boundary: everything before End.
type point struct {
	end  int64   // offset just past a record: a possible cut
	rows int64   // data rows before end
	w    float64 // weight of the rows the expression weighed
	fb   float64 // bytes of the rows it could not weigh
}

// curve is the cumulative weight of the data at record boundaries, thinned
// to at most max points (plus the last record's).
type curve struct {
	pts    []point
	last   point // the last record's boundary
	stride int64 // records between kept points
	since  int64 // records since the last kept point
	max    int
}

func (c *curve) add(p point) {
	c.last = p
	c.since++
	if c.since < c.stride {
		return
	}
	if len(c.pts) == c.max { // keep every other point, and take them half as often
		for i := 1; i < len(c.pts); i += 2 {
			c.pts[i/2] = c.pts[i]
		}
		c.pts = c.pts[:len(c.pts)/2]
		c.stride *= 2
		if c.since < c.stride {
			return
		}
	}
	c.since = 0
	c.pts = append(c.pts, p)
}

// finish appends the last record's boundary when thinning skipped it.
func (c *curve) finish() {
	if n := len(c.pts); c.last.rows > 0 && (n == 0 || c.pts[n-1].end != c.last.end) {
		c.pts = append(c.pts, c.last)
	}
}

// weighPass reads the data once and returns the curve and the number of
// shards the size targets give.
type weighPass struct {
	v       *profile.Validator
	w       *profile.Weigher
	d       record.Dialect
	cols    *profile.Columns // csv/tsv: the header's mapping
	header  []string
	opts    Options
	maxPts  int
	curve   curve
	shards  int   // shards the row and byte targets cut
	okBytes int64 // bytes of the rows the expression weighed
	stats   Weights
}

func (wp *weighPass) run(ctx context.Context, r io.Reader, offset, row int64) error {
	sc := record.NewScannerLimits(r, wp.d, offset, row, wp.opts.limits)
	var parser *record.Parser
	if wp.w.NeedsCells() {
		parser = record.NewParser(wp.d, wp.header)
	}
	wp.curve = curve{stride: 1, max: max(wp.maxPts, 2)}
	var (
		cum             point
		gRows           int64 // greedy shard: rows and start
		gStart          = offset
		okBytes, fbRows int64
	)
	for n := 0; sc.Next(); n++ {
		if n&4095 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		raw := sc.Raw()
		if raw.Blank {
			if gRows == 0 {
				gStart = raw.End
			}
			continue
		}
		gRows++
		if gRows >= wp.opts.ShardRows || raw.End-gStart >= wp.opts.ShardBytes {
			wp.shards++
			gRows, gStart = 0, raw.End
		}
		if w, ok := wp.weigh(parser, raw); ok {
			cum.w += w
			okBytes += raw.Len()
		} else {
			cum.fb += float64(raw.Len())
			fbRows++
		}
		cum.rows++
		cum.end = raw.End
		wp.curve.add(cum)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if gRows > 0 {
		wp.shards++
	}
	wp.curve.finish()
	wp.okBytes, wp.stats.Fallback = okBytes, fbRows
	return nil
}

// weigh returns a record's weight, or false when it gets its default weight.
func (wp *weighPass) weigh(parser *record.Parser, raw record.Raw) (float64, bool) {
	if parser == nil {
		w, err := wp.w.Weigh(nil, nil, raw.Len())
		return w, err == nil
	}
	if raw.TooLarge {
		return 0, false
	}
	row := parser.Parse(raw)
	if row.Err != nil {
		return 0, false
	}
	cols := wp.cols
	if cols == nil { // jsonl: each object has its own keys
		cols = wp.v.Names(row.Names)
	}
	w, err := wp.w.Weigh(cols, row.Values, raw.Len())
	return w, err == nil
}

// cuts returns the offsets where shards end, except the last, and records
// each shard's weight.
func (wp *weighPass) cuts() []int64 {
	pts := wp.curve.pts
	if len(pts) == 0 || wp.shards <= 1 {
		if len(pts) > 0 {
			wp.stats.Total = wp.weightAt(pts[len(pts)-1])
			wp.stats.Shards = []float64{wp.stats.Total}
		}
		return nil
	}
	cum := make([]float64, len(pts)+1) // cum[0]: the start
	for i, p := range pts {
		cum[i+1] = wp.weightAt(p)
	}
	total := cum[len(pts)]
	wp.stats.Total = total
	if total == 0 { // nothing weighs anything: equal rows
		for i, p := range pts {
			cum[i+1] = float64(p.rows)
		}
	}
	idx := balance(cum, wp.shards)
	cuts := make([]int64, len(idx))
	prev := 0.0
	for i, j := range idx {
		cuts[i] = pts[j-1].end
		wp.stats.Shards = append(wp.stats.Shards, wp.weightAt(pts[j-1])-prev)
		prev = wp.weightAt(pts[j-1])
	}
	wp.stats.Shards = append(wp.stats.Shards, total-prev)
	return cuts
}

// weightAt is the cumulative weight at p: the weighed rows' weight plus the
// default-weighted rows' bytes in the expression's unit (its mean weight per
// byte over the rows it weighed; 1 when it weighed none, so the default is
// exactly the byte size).
func (wp *weighPass) weightAt(p point) float64 {
	perByte := 1.0
	if wp.okBytes > 0 {
		perByte = wp.curve.pts[len(wp.curve.pts)-1].w / float64(wp.okBytes)
	}
	return p.w + p.fb*perByte
}

// balance chooses n-1 cuts on a cumulative weight curve: cum[0] = 0 is the
// start, cum[i] the weight up to candidate boundary i, cum[len-1] the total
// (non-decreasing). It returns the indexes of the cuts, strictly increasing
// in 1..len-2, so every shard has at least one step. Each cut is the
// boundary nearest to an equal share of the weight still to place, so a row
// heavier than a share becomes a shard of its own and the shards after it
// share the rest evenly. With fewer steps than n, it cuts at every step.
func balance(cum []float64, n int) []int {
	m := len(cum) - 1
	n = min(n, m)
	cuts := make([]int, 0, max(n-1, 0))
	prev := 0
	for k := 1; k < n; k++ {
		target := cum[prev] + (cum[m]-cum[prev])/float64(n-k+1)
		lo, hi := prev+1, m-(n-k) // leave a step for each shard after this one
		i, _ := slices.BinarySearch(cum[lo:hi+1], target)
		i += lo
		if i > hi {
			i = hi
		}
		if i > lo && target-cum[i-1] <= cum[i]-target {
			i--
		}
		cuts = append(cuts, i)
		prev = i
	}
	return cuts
}

// planWeights runs the weigh pass over the data and returns where to cut
// and how many rows it found.
func (p *Plan) planWeights(ctx context.Context, src object.Source, info object.Info, v *profile.Validator, cols *profile.Columns, dataStart, firstRow int64, opts Options) ([]int64, int64, error) {
	wp := &weighPass{v: v, w: v.Weigher(), d: p.Dialect, header: p.Layout.Header, cols: cols, opts: opts, maxPts: maxCurve}
	wp.stats.Expression = v.Profile().WeightExpression()
	rc, err := src.Open(ctx, info, dataStart, -1)
	if err != nil {
		return nil, 0, fmt.Errorf("open %s: %w", info.URI, err)
	}
	defer rc.Close()
	if err := wp.run(ctx, rc, dataStart, firstRow); err != nil {
		return nil, 0, fmt.Errorf("weigh %s: %w", info.URI, err)
	}
	cuts := wp.cuts()
	p.Weights = &wp.stats
	return cuts, wp.curve.last.rows, nil
}

// atOffsets is the cut rule of a weighted plan: cut after the records that
// end at the planned offsets, in order.
func atOffsets(cuts []int64) func(*state.Shard, record.Raw) bool {
	next := 0
	return func(_ *state.Shard, raw record.Raw) bool {
		if next < len(cuts) && raw.End == cuts[next] {
			next++
			return true
		}
		return false
	}
}

// checkCuts verifies that the cut read met every planned cut and the rows
// the weigh read counted: otherwise the object changed between the reads.
func (p *Plan) checkCuts(cuts []int64, rows int64) error {
	ok := p.Rows == rows && (len(cuts) == 0 || len(p.Shards) == len(cuts)+1)
	for i := 0; ok && i < len(cuts); i++ {
		ok = p.Shards[i].End == cuts[i]
	}
	if !ok {
		return failure.New(failure.SourceChanged, "", "the object changed while it was split: the second read found %d rows in %d shards, the first %d rows and %d cuts", p.Rows, len(p.Shards), rows, len(cuts))
	}
	return nil
}
