package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"log"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/catalog-import/catalog-import/internal/record/recordtest"
)

// The weighted-shards section: one generated file in which 5% of the rows,
// in one cluster, are heavy (recordtest.Options.Heavy: a 6,000-character
// Chinese description and 32 image URLs, as a best seller's listing; more
// bytes to decode, check and store, and 32 URLs to parse instead of 1-3),
// imported by `importctl run` with shards cut four ways in the same
// invocation, interleaved run by run:
//   - equal rows: the row target alone (the plan without a weight);
//   - `bytes`, the default weight, which needs no parsing in the splitter;
//   - `1 + bytes / 1000`: a fixed cost per row plus a cost per byte, the
//     model that fits this engine (decision 15);
//   - the same model over fields (image count and description length),
//     which the splitter parses every row for.
//
// What a heavy row costs is measured too: a file of only light rows and one
// of only heavy rows, as many as the cluster, each imported in one shard.
// Shard times come from `importctl run -v`'s "shard processed" log lines
// (one per delivery; a shard's time is the sum of its deliveries).
const (
	weightedShards = 4 // shards per file: twice the shards processed at once
	weightedAtOnce = 2 // shards processed at once (importctl run's default)
	// heavyFrom and heavyTo place the cluster, as fractions of the file.
	heavyFrom, heavyTo = 0.40, 0.45
)

// weightVariant is one way of cutting the shards.
type weightVariant struct {
	name    string
	profile string // YAML; "" for the built-in default (no weight)
}

// weightVariants are the ways of cutting shards, given k: the bytes that
// cost as much as the fixed part of a row (the cost model calibrated on the
// light-only and heavy-only files).
func weightVariants(k int) []weightVariant {
	cost := fmt.Sprintf("1 + bytes / %d", k)
	fields := fmt.Sprintf("1 + (3 * len(description) + 50 * len(image_urls)) / %d", k)
	return []weightVariant{
		{"equal rows (no weight)", ""},
		{"weight `bytes`", "name: bench-bytes\nweight: {expression: bytes}\n"},
		{"weight `" + cost + "`", "name: bench-cost\nweight: {expression: '" + cost + "'}\n"},
		{"weight `" + fields + "`", "name: bench-fields\nweight: {expression: '" + fields + "'}\n"},
	}
}

// calibrate returns k for the cost model 1 + bytes/k (a row costs a fixed
// part plus a part per byte) from the time per light and per heavy row and
// their sizes, rounded to two significant digits; 0 when the fixed part is
// not positive (then the cost is the bytes alone).
func calibrate(perLight, perHeavy time.Duration, lightB, heavyB float64) int {
	b := float64(perHeavy-perLight) / (heavyB - lightB) // per byte
	a := float64(perLight) - b*lightB                   // per row
	if a <= 0 || b <= 0 {
		return 0
	}
	k := a / b
	scale := math.Pow(10, math.Floor(math.Log10(k))-1)
	return int(math.Round(k/scale) * scale)
}

// weightedRun is what the section measured, per variant, per run.
type weightedRun struct {
	rows, heavy    int
	fileMB         float64
	lightB, heavyB float64                    // mean bytes of a light and of a heavy row
	wall, slowest  map[string][]time.Duration // 2 at a time
	alone          map[string][]time.Duration // slowest shard, 1 at a time
	split          map[string][]time.Duration // from the start to "batch registered"
	shardRows      map[string][]int64         // each shard's rows (last run)
	// Time per row of a light-only and a heavy-only file (one shard each),
	// and the cost model's k.
	perLight, perHeavy []time.Duration
	k                  int
	variants           []weightVariant
}

func measureWeighted(bin, dir string, rows, runs int) (*weightedRun, error) {
	path := filepath.Join(dir, "products-heavy.csv")
	from, to := int64(float64(rows)*heavyFrom)+2, int64(float64(rows)*heavyTo)+2
	isHeavy := func(row int64) bool { return row >= from && row < to }
	lightOnly, heavyOnly := filepath.Join(dir, "light-only.csv"), filepath.Join(dir, "heavy-only.csv")
	for _, g := range []struct {
		path string
		o    recordtest.Options
	}{
		{path, recordtest.Options{Rows: rows, Seed: 42, Heavy: isHeavy}},
		{lightOnly, recordtest.Options{Rows: int(to - from), Seed: 7}},
		{heavyOnly, recordtest.Options{Rows: int(to - from), Seed: 7, Heavy: func(int64) bool { return true }}},
	} {
		if err := writeProducts(g.path, g.o); err != nil {
			return nil, err
		}
	}
	res := &weightedRun{rows: rows, heavy: int(to - from), wall: map[string][]time.Duration{}, slowest: map[string][]time.Duration{}, alone: map[string][]time.Duration{},
		split: map[string][]time.Duration{}, shardRows: map[string][]int64{}}
	if err := res.sizes(path); err != nil {
		return nil, err
	}
	log.Printf("  calibrating: %d light rows, %d heavy rows", res.heavy, res.heavy)
	for i := range runs {
		for _, f := range []string{lightOnly, heavyOnly} {
			shards, _, _, err := runShards(bin, dir, f, "", res.heavy, 1, 1, i)
			if err != nil {
				return nil, err
			}
			var took time.Duration
			for _, s := range shards {
				took += s.took
			}
			if f == lightOnly {
				res.perLight = append(res.perLight, took/time.Duration(res.heavy))
			} else {
				res.perHeavy = append(res.perHeavy, took/time.Duration(res.heavy))
			}
		}
	}
	res.k = calibrate(median(res.perLight), median(res.perHeavy), res.lightB, res.heavyB)
	if res.k == 0 {
		return nil, fmt.Errorf("rows cost %v (light) and %v (heavy): no fixed cost per row to calibrate", median(res.perLight), median(res.perHeavy))
	}
	log.Printf("  %v per light row, %v per heavy row: cost model 1 + bytes / %d", median(res.perLight), median(res.perHeavy), res.k)
	res.variants = weightVariants(res.k)
	profiles := map[string]string{}
	for i, v := range res.variants {
		if v.profile == "" {
			continue
		}
		p := filepath.Join(dir, fmt.Sprintf("weight-%d.yaml", i))
		if err := os.WriteFile(p, []byte(v.profile), 0o644); err != nil {
			return nil, err
		}
		profiles[v.name] = p
	}
	for i := range runs {
		for _, v := range res.variants {
			alone, _, _, err := runShards(bin, dir, path, profiles[v.name], rows, weightedShards, 1, i)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", v.name, err)
			}
			res.alone[v.name] = append(res.alone[v.name], slowestOf(alone))
			shards, wall, split, err := runShards(bin, dir, path, profiles[v.name], rows, weightedShards, weightedAtOnce, i)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", v.name, err)
			}
			slowest := slowestOf(shards)
			res.wall[v.name] = append(res.wall[v.name], wall)
			res.slowest[v.name] = append(res.slowest[v.name], slowest)
			res.split[v.name] = append(res.split[v.name], split)
			res.shardRows[v.name] = res.shardRows[v.name][:0]
			for _, s := range shards {
				res.shardRows[v.name] = append(res.shardRows[v.name], s.rows)
			}
			log.Printf("  run %d, %s: slowest shard alone %.2fs; 2 at a time: slowest %.2fs, wall %.2fs", i+1, v.name,
				slowestOf(alone).Seconds(), slowest.Seconds(), wall.Seconds())
		}
	}
	return res, nil
}

func slowestOf(shards []shardTime) time.Duration {
	var d time.Duration
	for _, s := range shards {
		d = max(d, s.took)
	}
	return d
}

func writeProducts(path string, o recordtest.Options) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if err := recordtest.WriteProducts(w, o); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// sizes measures the file, and the mean bytes of a light and of a heavy row
// on 2,000 generated rows of each.
func (r *weightedRun) sizes(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	r.fileMB = float64(st.Size()) / 1e6
	var light, heavy bytes.Buffer
	if err := recordtest.WriteProducts(&light, recordtest.Options{Rows: 2000, Seed: 42}); err != nil {
		return err
	}
	if err := recordtest.WriteProducts(&heavy, recordtest.Options{Rows: 2000, Seed: 42, Heavy: func(int64) bool { return true }}); err != nil {
		return err
	}
	hdr := float64(len(recordtest.Header) + 2)
	r.lightB, r.heavyB = (float64(light.Len())-hdr)/2000, (float64(heavy.Len())-hdr)/2000
	return nil
}

// shardTime is one shard's processing in one import.
type shardTime struct {
	index     int
	rows      int64
	took      time.Duration
	processed int // deliveries
}

// runShards imports path (rows rows) with the profile (none: the default)
// into a fresh database, in shards of equal rows (or weight) processed
// atOnce at a time, and returns each shard's time (in shard order), the
// wall time and the time until the batch was registered (the split).
func runShards(bin, dir, path, prof string, rows, shards, atOnce, i int) ([]shardTime, time.Duration, time.Duration, error) {
	db := filepath.Join(dir, fmt.Sprintf("weighted-%d.db", i))
	defer removeDB(db)
	args := []string{"run", "-v", "--json", "--quiet", "--db", db, "--shards", strconv.Itoa(atOnce),
		"--shard-rows", strconv.Itoa((rows + shards - 1) / shards), "--shard-bytes", strconv.Itoa(1 << 40)}
	if prof != "" {
		args = append(args, "--profile", prof)
	}
	cmd := exec.Command(bin, append(args, path)...)
	var out, logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &logs
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			return nil, 0, 0, fmt.Errorf("importctl run: %v: %s", err, out.String()+lastLines(logs.String(), 5))
		}
	}
	var sum struct {
		RowsImported int64 `json:"rows_imported"`
	}
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil || sum.RowsImported != int64(rows) {
		return nil, 0, 0, fmt.Errorf("importctl run: unexpected summary %q", out.String())
	}
	byIndex := map[int]*shardTime{}
	var split time.Duration
	for line := range strings.SplitSeq(logs.String(), "\n") {
		var ev struct {
			Time     time.Time `json:"time"`
			Msg      string    `json:"msg"`
			Shard    int       `json:"shard"`
			Rows     int64     `json:"rows"`
			Duration float64   `json:"duration_ms"`
		}
		if json.Unmarshal([]byte(line), &ev) != nil {
			continue
		}
		switch ev.Msg {
		case "batch registered":
			split = ev.Time.Sub(start)
		case "shard processed":
			s := byIndex[ev.Shard]
			if s == nil {
				s = &shardTime{index: ev.Shard}
				byIndex[ev.Shard] = s
			}
			s.took += time.Duration(ev.Duration * float64(time.Millisecond))
			s.rows = max(s.rows, ev.Rows)
			s.processed++
		}
	}
	if len(byIndex) == 0 {
		return nil, 0, 0, fmt.Errorf("importctl run -v logged no shard times:\n%s", lastLines(logs.String(), 5))
	}
	times := make([]shardTime, 0, len(byIndex))
	for _, s := range byIndex {
		times = append(times, *s)
	}
	slices.SortFunc(times, func(a, b shardTime) int { return a.index - b.index })
	return times, wall, split, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func (r *weightedRun) markdown(b *strings.Builder) {
	runs := len(r.wall[r.variants[0].name])
	fmt.Fprintf(b, "## Weighted shards: %d rows, %d of them (5%%) heavy, in one cluster\n\n", r.rows, r.heavy)
	fmt.Fprintf(b, "A %.0f MB product CSV whose rows %d%%..%d%% are heavy (a %d-character Chinese description and %d image URLs: %.0f bytes against %.0f, %.0fx), "+
		"imported by `importctl run` (embedded) in %d shards cut four ways, in the same invocation, interleaved; medians of %d runs. "+
		"Each way is imported twice: one shard at a time, where a shard's time is its own work (as on AWS, where every shard has its own Lambda), "+
		"and %d at a time (`importctl run`'s default), where shards share the 2 cores and the one SQLite writer. "+
		"Shard times are from `importctl run -v`'s \"shard processed\" lines.\n\n",
		r.fileMB, int(heavyFrom*100), int(heavyTo*100), recordtest.HeavyDescription, recordtest.HeavyImages, r.heavyB, r.lightB, r.heavyB/r.lightB,
		weightedShards, runs, weightedAtOnce)
	fmt.Fprintf(b, "| shards cut by | slowest shard, 1 at a time | vs equal rows | wall, %d at a time | vs equal rows | slowest shard, %d at a time | split (until registered) | rows per shard |\n|---|---|---|---|---|---|---|---|\n",
		weightedAtOnce, weightedAtOnce)
	base := r.variants[0].name
	for _, v := range r.variants {
		a, w := median(r.alone[v.name]), median(r.wall[v.name])
		fmt.Fprintf(b, "| %s | %.2f s | %.2fx | %.2f s | %.2fx | %.2f s | %.2f s | %v |\n", v.name,
			a.Seconds(), a.Seconds()/median(r.alone[base]).Seconds(), w.Seconds(), w.Seconds()/median(r.wall[base]).Seconds(),
			median(r.slowest[v.name]).Seconds(), median(r.split[v.name]).Seconds(), r.shardRows[v.name])
	}
	b.WriteString("\nAll runs (slowest shard 1 at a time / wall 2 at a time):")
	for _, v := range r.variants {
		fmt.Fprintf(b, " %s %v / %v;", v.name, rounded(r.alone[v.name]), rounded(r.wall[v.name]))
	}
	pl, ph := median(r.perLight), median(r.perHeavy)
	fmt.Fprintf(b, "\n\nWhat a row costs, importing a file of %d light rows and one of %d heavy rows, one shard each: "+
		"%.1f µs per light row, %.1f µs per heavy row, **%.1fx** for %.0fx the bytes (runs: light %v, heavy %v). "+
		"So the heavy 5%% of the rows are %.0f%% of the work. A row costs a fixed part plus a part per byte, "+
		"which `1 + bytes / %d` models (k = fixed part / cost per byte, from these two figures); `bytes` alone over-weights the heavy rows.\n\n",
		r.heavy, r.heavy, us(pl), us(ph), float64(ph)/float64(pl), r.heavyB/r.lightB, micros(r.perLight), micros(r.perHeavy),
		100*0.05*float64(ph)/(0.95*float64(pl)+0.05*float64(ph)), r.k)
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

func micros(ds []time.Duration) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = fmt.Sprintf("%.0fµs", us(d))
	}
	return out
}
