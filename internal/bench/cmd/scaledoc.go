package main

import (
	"fmt"
	"log"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/catalog-import/catalog-import/internal/aws/stack"
)

// scaleDocRegions are the generated regions of docs/scale.md (see
// regions.go), each filled from the sections of the run that measure it:
//
//   - date: the day and machine of the scale section's run;
//   - units: DynamoDB units per row (aws);
//   - worker-summary, worker-table: one worker's rows/s (scale);
//   - contention-summary, contention-table: many workers checkpointing one
//     batch (scale);
//   - split, split-rate, split-100m, split-max: the splitter's pass (scale);
//   - binds, quota-workers, projection, pipe-time, pipe-cost: the model
//     (scale and aws);
//   - cold-summary, cold-section: the worker's cold start (coldstart).
var scaleDocRegions = []string{
	"date", "units", "worker-summary", "worker-table",
	"contention-summary", "contention-table",
	"split", "split-rate", "split-100m", "split-max",
	"binds", "quota-workers", "projection", "pipe-time", "pipe-cost",
	"cold-summary", "cold-section",
}

// splitterTimeout is the splitter's Lambda timeout (template.yaml), the
// most its single pass may take.
const splitterTimeout = 900.0

// headlineRows and headlineWorkers are the comparison of docs/scale.md:
// 100M rows at the most workers the table shows.
const (
	headlineRows    = 100_000_000
	headlineWorkers = 200
)

// updateScaleDoc rewrites the generated regions of the markdown file at
// path from the sections r ran; with none of the scale, aws and coldstart
// sections, the file is left alone.
func updateScaleDoc(path string, r *report) error {
	fill := r.scaleDocFill()
	if len(fill) == 0 {
		log.Printf("%s left alone: none of its sections (aws, scale, coldstart) ran", path)
		return nil
	}
	doc, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, err := rewriteRegions(string(doc), scaleDocRegions, fill)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		return err
	}
	log.Printf("rewrote %d regions of %s", len(fill), path)
	return nil
}

// modelInputs are the projection's inputs as this run measured them.
type modelInputs struct{ rate, split, cps, wru, rru float64 }

// model returns the projection's inputs when the scale and aws sections
// both ran.
func (r *report) model() (modelInputs, bool) {
	if r.scale == nil || r.aws == nil {
		return modelInputs{}, false
	}
	c := r.aws.fresh.cost()
	return modelInputs{rate: r.scale.defaultRate(), split: r.scale.splitMBps, cps: r.scale.batchCheckpointRate(), wru: c.wru, rru: c.rru}, true
}

func (m modelInputs) project(rows, workers int) projection {
	return project(rows, workers, m.rate, m.split, m.wru, m.rru, m.cps)
}

// scaleDocFill is the content of the regions of docs/scale.md that this
// run measured.
func (r *report) scaleDocFill() map[string]string {
	fill := map[string]string{}
	if a := r.aws; a != nil {
		f, g := a.fresh.cost(), a.again.cost()
		fill["units"] = fmt.Sprintf("%.2f write and %.2f read (new products, 5%% faulty rows); %.2f write and %.2f read for the same SKUs again from a newer file", f.wru, f.rru, g.wru, g.rru)
	}
	if s := r.scale; s != nil {
		fill["date"] = fmt.Sprintf("%s (%d cores, %s/%s)", time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)
		s.workerRegions(fill)
		s.contentionRegions(fill)
		s.splitRegions(fill)
	}
	if m, ok := r.model(); ok {
		m.regions(fill, r.scale)
	}
	if c := r.cold; c != nil {
		tr, ev, off := c.runs[coldVariants[0]], c.runs[coldVariants[1]], c.runs[coldVariants[2]]
		fill["cold-summary"] = fmt.Sprintf("%.0f ms (median, tracing on); %.0f ms with the binary out of the page cache; %.0f ms with tracing off; the first invocation %.1f ms",
			ms(median(tr)), ms(median(ev)), ms(median(off)), ms(median(c.invokes)))
		var b strings.Builder
		c.markdown(&b)
		fill["cold-section"] = fmt.Sprintf("Measured on %s.\n\n%s", time.Now().UTC().Format("2006-01-02"), withoutHeadings(b.String()))
	}
	return fill
}

// withoutHeadings drops the markdown headings of s (a section of
// performance.md placed under a heading of scale.md).
func withoutHeadings(s string) string {
	var keep []string
	for line := range strings.SplitSeq(s, "\n") {
		if !strings.HasPrefix(line, "#") {
			keep = append(keep, line)
		}
	}
	return strings.TrimSpace(strings.Join(keep, "\n"))
}

// workerRun returns the measured run at pool and every, if any.
func (r *scaleRuns) workerRun(pool, every int) (workerRun, bool) {
	i := slices.IndexFunc(r.workers, func(w workerRun) bool { return w.pool == pool && w.every == every })
	if i < 0 {
		return workerRun{}, false
	}
	return r.workers[i], true
}

// workerRegions: one worker's rows/s by pool size and checkpoint interval.
func (r *scaleRuns) workerRegions(fill map[string]string) {
	var pools, everys []int
	for _, w := range r.workers {
		if !slices.Contains(pools, w.pool) {
			pools = append(pools, w.pool)
		}
		if !slices.Contains(everys, w.every) {
			everys = append(everys, w.every)
		}
	}
	slices.Sort(pools)
	slices.Sort(everys)
	slices.Reverse(everys) // the template's 1,000 first
	var sum []string
	for _, e := range everys {
		var parts []string
		for _, p := range pools {
			if w, ok := r.workerRun(p, e); ok {
				parts = append(parts, fmt.Sprintf("%d: %s", p, rps(w.rate())))
			}
		}
		sum = append(sum, fmt.Sprintf("a checkpoint every %s rows, pool %s rows/s", thousands(e), strings.Join(parts, ", ")))
	}
	fill["worker-summary"] = strings.Join(sum, "; ")

	var b strings.Builder
	fmt.Fprintf(&b, "| pool (puts in flight) |")
	for _, e := range everys {
		fmt.Fprintf(&b, " rows/s, a checkpoint every %s rows |", thousands(e))
	}
	fmt.Fprintf(&b, " rows/s per put in flight (every %s) | CPU per row (worker + proxy, this machine) |\n|---:|", thousands(everys[0]))
	for range everys {
		b.WriteString("---:|")
	}
	b.WriteString("---:|---:|\n")
	for _, p := range pools {
		fmt.Fprintf(&b, "| %d |", p)
		for _, e := range everys {
			if w, ok := r.workerRun(p, e); ok {
				fmt.Fprintf(&b, " %s |", rps(w.rate()))
			} else {
				b.WriteString(" |")
			}
		}
		w, _ := r.workerRun(p, everys[0])
		fmt.Fprintf(&b, " %.0f | %.0f µs |\n", w.rate()/float64(p), float64(w.cpuPerRow())/1e3)
	}
	fill["worker-table"] = b.String()
}

// contentionRegions: many workers checkpointing one batch at once.
func (r *scaleRuns) contentionRegions(fill map[string]string) {
	var sum []string
	var b strings.Builder
	fmt.Fprintf(&b, "| workers on one batch | checkpoints offered/s | done/s | done | shard writes sent (UpdateItem, TransactWriteItems) | refused by a conflict | gave up |\n|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, c := range r.contention {
		done := float64(c.checkpoints) / c.wall
		share := 100 * float64(c.conflicts) / math.Max(1, float64(c.writes))
		sum = append(sum, fmt.Sprintf("%d workers: %.0f checkpoints/s, %.0f%% of the writes refused by a conflict", c.workers, done, share))
		fmt.Fprintf(&b, "| %d | %.0f | %.0f | %d of %d | %d | %d (%.0f%%) | %d |\n", c.workers, c.offered, done, c.checkpoints, c.workers*contentionRounds, c.writes, c.conflicts, share, c.gaveUp)
	}
	fill["contention-summary"] = strings.Join(sum, "; ")
	fill["contention-table"] = b.String()
}

// splitterRate is the splitter's single pass in MB/s on Lambda: one S3
// stream, or the CPU rate measured here scaled to the splitter's share of
// a vCPU, whichever is slower.
func splitterRate(cpuMBps float64) float64 { return math.Min(s3StreamMBps, cpuMBps*splitterVCPU) }

// splitRegions: the splitter's single pass and what it caps.
func (r *scaleRuns) splitRegions(fill map[string]string) {
	rate := splitterRate(r.splitMBps)
	fill["split"] = fmt.Sprintf("%.0f", r.splitMBps)
	bound := "S3's one stream"
	if r.splitMBps*splitterVCPU < s3StreamMBps {
		bound = fmt.Sprintf("the CPU: %.0f MB/s x %.2f vCPU", r.splitMBps, splitterVCPU)
	}
	fill["split-rate"] = fmt.Sprintf("%.0f MB/s (bound by %s)", rate, bound)
	mb := float64(headlineRows) * bytesPerRow / 1e6
	fill["split-100m"] = dur(mb / rate)
	maxMB := splitterTimeout * rate
	fill["split-max"] = fmt.Sprintf("%.0f GB (%s rows of %d bytes)", maxMB/1e3, si(maxMB*1e6/bytesPerRow), bytesPerRow)
}

// regions: the model's table, what bounds it, and the headline.
func (m modelInputs) regions(fill map[string]string, s *scaleRuns) {
	var b strings.Builder
	s.projectionMarkdown(&b, m.wru, m.rru, true)
	fill["projection"] = withoutHeadings(b.String())
	p := m.project(headlineRows, headlineWorkers)
	fill["pipe-time"] = fmt.Sprintf("%s (%s rows/s, bound by the %s)", dur(p.split+p.ramp+p.work), rps(p.rate), p.bound)
	fill["pipe-cost"] = fmt.Sprintf("$%.0f (DynamoDB $%.0f, Lambda $%.0f, SQS + S3 $%.3f)", p.dynamo+p.lambda+p.other, p.dynamo, p.lambda, p.other)
	fill["binds"] = m.binds()
	quota := tableWRUQuota / m.wru
	fill["quota-workers"] = fmt.Sprintf("%s rows/s at %.2f units a row, which %.0f workers reach at %s rows/s each (the template's pool of %d)", rps(quota), m.wru, math.Ceil(quota/m.rate), rps(m.rate), stack.Defaults().PoolSize)
}

// binds says, for 100M rows, from how many workers a limit other than the
// workers bounds the rate, and which: with 5% faulty rows and with none.
func (m modelInputs) binds() string {
	first := func(clean bool) (int, string, float64) {
		for w := 1; w <= 1000; w++ {
			p := m.project(headlineRows, w)
			bound, rate := p.bound, p.rate
			if clean {
				bound, rate = p.boundClean, p.rateClean
			}
			if !strings.HasSuffix(bound, " workers") {
				return w, bound, rate
			}
		}
		return 0, "", 0
	}
	say := func(w int, bound string, rate float64) string {
		if w == 0 {
			return "by the workers up to 1,000 of them"
		}
		return fmt.Sprintf("by the workers up to %d of them, then by the %s at %s rows/s", w-1, bound, rps(rate))
	}
	w, bound, rate := first(false)
	wc, boundc, ratec := first(true)
	return fmt.Sprintf("at %s rows/s a worker, 100M rows with 5%% faulty rows are bound %s; with no faulty row, %s",
		rps(m.rate), say(w, bound, rate), say(wc, boundc, ratec))
}

// thousands formats n with a comma between thousands (1,000).
func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// rps formats rows per second: whole rows with thousands separated below
// 10,000 (1,333), then as si does (38k, 1.20M).
func rps(v float64) string {
	if v < 1e4 {
		return thousands(int(math.Round(v)))
	}
	return si(v)
}
