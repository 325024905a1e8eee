// Command bench measures Catalog Import side by side on this machine and writes
// docs/performance.md (`make bench`). Every figure is a median of runs made in
// the same invocation, interleaved, so that ratios compare like with like on a
// noisy 2-core machine. It measures:
//   - end to end: `importctl run` vs `sqlite3 .import` of the same 1M-row CSV
//     into a table with the same primary key;
//   - reading: raw read vs boundary scan vs scan+parse vs scan+parse+validate;
//   - peak RSS of importctl at 100k and 1M rows;
//   - the Go micro-benchmarks that chose the pool and the SQLite driver;
//   - AWS requests per 1,000 rows through the Lambda handlers on moto, and
//     the cost of 1M rows they imply;
//   - weighted shards: the slowest shard and the wall time of a file with a
//     cluster of heavy rows, cut into equal-row vs weighted shards.
//
// With -scale-md it also rewrites the generated regions of docs/scale.md
// (`<!-- bench:NAME -->` ... `<!-- /bench:NAME -->`) from the same run,
// those of the sections that ran.
//
// -sections runs some of them (e.g. -sections weighted while developing;
// the report then has only those).
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/catalog-import/catalog-import/internal/profile"
	"github.com/catalog-import/catalog-import/internal/record"
	"github.com/catalog-import/catalog-import/internal/record/recordtest"
)

func main() {
	rows := flag.Int("rows", 1_000_000, "rows of the end-to-end file")
	runs := flag.Int("runs", 5, "runs of each end-to-end measurement")
	importctl := flag.String("importctl", "bin/importctl", "importctl binary")
	out := flag.String("out", "docs/performance.md", "report to write")
	work := flag.String("dir", "", "scratch directory (default: a temporary one)")
	awsRows := flag.Int("aws-rows", 5_000, "rows imported through the AWS handlers on moto to count requests (0: skip)")
	weightedRows := flag.Int("weighted-rows", 0, "rows of the weighted-shards file (default: rows/10)")
	sections := flag.String("sections", "all", "comma-separated sections to run: e2e (end to end, peak RSS), read, go, aws, weighted, coldstart, scale; or all")
	coldRuns := flag.Int("cold-runs", 20, "starts of the shard worker binary per variant (coldstart)")
	scaleRows := flag.Int("scale-rows", 4000, "rows of the one-shard file of each worker measurement (scale)")
	scalePools := flag.String("scale-pools", "4,8,16,32", "pool sizes of the worker measurements (scale)")
	scaleEvery := flag.String("scale-every", "100,1000", "checkpoint intervals of the worker measurements (scale)")
	scaleCrowds := flag.String("scale-crowds", "10,50,200", "workers checkpointing one batch at once (scale)")
	scaleMD := flag.String("scale-md", "", "rewrite the generated regions of this scale document (docs/scale.md) from the aws, scale and coldstart sections that ran")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the bench process to this file")
	projectIn := flag.String("project", "", "print only the scale projection from given inputs: worker=ROWS/S,split=MB/S,cps=PER_S (checkpoints a second one batch takes),wru=UNITS,rru=UNITS")
	flag.Parse()
	if *projectIn != "" {
		in := map[string]float64{}
		for kv := range strings.SplitSeq(*projectIn, ",") {
			k, v, _ := strings.Cut(kv, "=")
			f, err := strconv.ParseFloat(v, 64)
			must(err)
			in[k] = f
		}
		var b strings.Builder
		writeProjection(&b, in["worker"], in["split"], in["cps"], in["wru"], in["rru"], false)
		fmt.Print(b.String())
		return
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		must(err)
		must(pprof.StartCPUProfile(f))
		defer pprof.StopCPUProfile()
	}
	log.SetFlags(0)
	want := func(section string) bool {
		return *sections == "all" || slices.Contains(strings.Split(*sections, ","), section)
	}

	dir := *work
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "catalog-bench-"); err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(dir)
	}
	r := &report{read: map[string][]time.Duration{}, runs: *runs}
	big := filepath.Join(dir, "products-1m.csv")
	small := filepath.Join(dir, "products-100k.csv")
	if want("e2e") || want("read") {
		must(generate(big, *rows))
		st, _ := os.Stat(big)
		r.fileMB = float64(st.Size()) / 1e6
	}
	if want("e2e") {
		must(generate(small, *rows/10))
	}
	r.rows = *rows

	if want("e2e") {
		log.Printf("end to end: importctl run vs sqlite3 .import, %d runs each", *runs)
	}
	for i := range *runs {
		if !want("e2e") {
			break
		}
		imp, err := runImportctl(*importctl, dir, big, i, "")
		must(err)
		r.importctl = append(r.importctl, imp.wall)
		r.importctlCPU = append(r.importctlCPU, imp.cpu)
		r.rss1m = append(r.rss1m, imp.rss)
		ref, err := runSQLiteImport(dir, big, i)
		must(err)
		r.sqlite = append(r.sqlite, ref.wall)
		r.sqliteCPU = append(r.sqliteCPU, ref.cpu)
		small, err := runImportctl(*importctl, dir, small, 100+i, "")
		must(err)
		r.rss100k = append(r.rss100k, small.rss)
		log.Printf("  run %d: importctl %.2fs (cpu %.2fs), sqlite3 %.2fs (cpu %.2fs)", i+1,
			imp.wall.Seconds(), imp.cpu.Seconds(), ref.wall.Seconds(), ref.cpu.Seconds())
	}
	if want("e2e") && *runs > 0 {
		log.Printf("end to end: one more importctl run with a CPU profile")
		prof := filepath.Join(dir, "importctl.pprof")
		_, err := runImportctl(*importctl, dir, big, 999, prof)
		must(err)
		r.profile = cpuProfile(*importctl, prof)
	}

	if want("read") {
		log.Printf("reading: raw, scan, parse, validate")
	}
	for range *runs {
		if !want("read") {
			break
		}
		for _, stage := range stages {
			t := time.Now()
			must(readStage(stage, big))
			r.read[stage] = append(r.read[stage], time.Since(t))
		}
	}

	if want("go") {
		log.Printf("go benchmarks: pools, SQLite drivers")
		r.pool = goBench("./internal/shard/", "^BenchmarkPool$", *runs)
		r.drivers = goBench("./internal/local/sqlite/", "^BenchmarkSinkWrite$", *runs)
	}

	if *awsRows > 0 && want("aws") {
		log.Printf("AWS requests: %d rows through the handlers on moto", *awsRows)
		run, err := measureAWS(dir, *awsRows)
		must(err)
		r.aws = &run
	}
	if want("weighted") {
		n := *weightedRows
		if n <= 0 {
			n = *rows / 10
		}
		log.Printf("weighted shards: %d rows, equal-row vs weighted shards, %d runs each", n, *runs)
		run, err := measureWeighted(*importctl, dir, n, *runs)
		must(err)
		r.weighted = run
	}
	if want("coldstart") {
		log.Printf("cold start: the shard worker binary, %d starts per variant", *coldRuns)
		run, err := measureColdStart(dir, *coldRuns)
		must(err)
		r.cold = run
	}
	if want("scale") {
		log.Printf("scale: one worker at pool sizes 4-32, checkpoints of many workers on one batch, the splitter")
		run, err := measureScale(dir, *scaleRows, ints(*scalePools), ints(*scaleEvery), ints(*scaleCrowds))
		must(err)
		r.scale = run
	}
	must(os.WriteFile(*out, []byte(r.markdown()), 0o644))
	log.Printf("wrote %s", *out)
	if *scaleMD != "" {
		must(updateScaleDoc(*scaleMD, r))
	}
}

// ints parses a comma-separated list of integers.
func ints(s string) []int {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		must(err)
		out = append(out, n)
	}
	return out
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

func generate(path string, rows int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if err := recordtest.WriteProductCSV(w, rows, 42, false); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// timing is one measured process: wall time, CPU time (user + system) and
// peak RSS.
type timing struct {
	wall, cpu time.Duration
	rss       int64
}

// measured returns the CPU time and peak RSS of a finished command.
func measured(cmd *exec.Cmd, wall time.Duration) timing {
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return timing{wall: wall, cpu: cpu, rss: ru.Maxrss * 1024}
}

// runImportctl imports file into a fresh database (with a CPU profile
// written to profile, when set) and returns its timing.
func runImportctl(bin, dir, file string, i int, profile string) (timing, error) {
	db := filepath.Join(dir, fmt.Sprintf("run-%d.db", i))
	defer removeDB(db)
	args := []string{"run", "--json", "--quiet", "--db", db}
	if profile != "" {
		args = append(args, "--cpuprofile", profile)
	}
	cmd := exec.Command(bin, append(args, file)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	t := time.Now()
	err := cmd.Run()
	el := time.Since(t)
	if err != nil {
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			return timing{}, fmt.Errorf("importctl run: %v: %s", err, out.String())
		}
	}
	var s struct {
		Status       string `json:"status"`
		RowsImported int64  `json:"rows_imported"`
	}
	if err := json.Unmarshal(out.Bytes(), &s); err != nil || s.RowsImported == 0 {
		return timing{}, fmt.Errorf("importctl run: unexpected summary %q", out.String())
	}
	return measured(cmd, el), nil
}

func removeDB(db string) {
	for _, s := range []string{"", "-wal", "-shm"} {
		os.Remove(db + s)
	}
	os.RemoveAll(filepath.Join(filepath.Dir(db), "reports"))
}

// runSQLiteImport is the reference: the sqlite3 CLI's .import into a table
// with the same columns and primary key, in WAL mode like importctl.
func runSQLiteImport(dir, file string, i int) (timing, error) {
	db := filepath.Join(dir, fmt.Sprintf("ref-%d.db", i))
	defer removeDB(db)
	script := `PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
CREATE TABLE products(sku TEXT PRIMARY KEY, name TEXT, category TEXT, brand TEXT, price TEXT, currency TEXT,
  stock INTEGER, status TEXT, description TEXT, image_urls TEXT);
.mode csv
.import --skip 1 ` + file + ` products
`
	cmd := exec.Command("sqlite3", db)
	cmd.Stdin = strings.NewReader(script)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	t := time.Now()
	if err := cmd.Run(); err != nil {
		return timing{}, fmt.Errorf("sqlite3 .import: %v: %s", err, out.String())
	}
	return measured(cmd, time.Since(t)), nil
}

// profileReport is what the report shows of a CPU profile of importctl run.
type profileReport struct {
	stages string // CPU by stage (the goroutines' pprof label "stage")
	top    string // the functions with the most CPU of their own
}

// cpuProfile summarizes the profile prof of bin with `go tool pprof`.
func cpuProfile(bin, prof string) *profileReport {
	pprof := func(args ...string) string {
		out, err := exec.Command("go", append(append([]string{"tool", "pprof"}, args...), bin, prof)...).Output()
		if err != nil {
			log.Printf("go tool pprof %v: %v", args, err)
		}
		var keep []string
		for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
			if !strings.HasPrefix(line, "File:") && !strings.HasPrefix(line, "Build ID:") && !strings.HasPrefix(line, "Type:") && !strings.HasPrefix(line, "Time:") {
				keep = append(keep, line)
			}
		}
		return strings.Join(keep, "\n")
	}
	return &profileReport{stages: pprof("-tags", "-tagfocus=stage="), top: pprof("-top", "-nodecount=20")}
}

var stages = []string{"raw read", "boundary scan", "scan + parse", "scan + parse + validate"}

// readStage runs one reading stage over the file, read with read(2) through
// the page cache as a worker reads it (256 KiB at a time for every stage).
func readStage(stage, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if stage == "raw read" {
		_, err := io.CopyBuffer(io.Discard, onlyReader{f}, make([]byte, 256<<10))
		return err
	}
	prefix := make([]byte, record.SniffSize)
	n, err := io.ReadFull(f, prefix)
	if err != nil && err != io.ErrUnexpectedEOF {
		return err
	}
	prefix = prefix[:n]
	d, err := record.Detect(path, prefix)
	if err != nil {
		return err
	}
	header, start, row, err := record.Header(bytes.NewReader(prefix), d, 1<<20)
	if err != nil {
		return err
	}
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		return err
	}
	v, err := profile.Default().Compile()
	if err != nil {
		return err
	}
	cols, err := v.Header(header)
	if err != nil {
		return err
	}
	p := record.NewParser(d, header)
	sc := record.NewScanner(onlyReader{f}, d, start, row, 1<<20)
	n = 0
	for sc.Next() {
		n++
		if stage == "boundary scan" {
			continue
		}
		rw := p.Parse(sc.Raw())
		if stage == "scan + parse + validate" && rw.Err == nil {
			v.Validate(cols, rw.Values)
		}
	}
	if n == 0 {
		return fmt.Errorf("no records")
	}
	return sc.Err()
}

// onlyReader hides WriteTo so io.Copy and the scanner read in chunks, as
// they do from a file or a network stream.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// benchLine is one `go test -bench` result line.
var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(-\d+)?\s+\d+\s+(.*)$`)

// goBench runs go benchmarks and returns, per benchmark name and unit, the
// measured values.
func goBench(pkg, pattern string, count int) map[string]map[string][]float64 {
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", pattern, "-count", strconv.Itoa(count), pkg)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		log.Printf("go test -bench %s %s: %v\n%s", pattern, pkg, err, out)
		return nil
	}
	res := map[string]map[string][]float64{}
	for line := range strings.SplitSeq(string(out), "\n") {
		m := benchLine.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		name := m[1]
		f := strings.Fields(m[3])
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			if res[name] == nil {
				res[name] = map[string][]float64{}
			}
			res[name][f[i+1]] = append(res[name][f[i+1]], v)
		}
	}
	return res
}

// readingNotes explains the tables; it is part of every report.
const readingNotes = `
## Reading these figures

- The write path (decision 28): the validation pool also prepares each
  chunk's INSERT (the products decided against no stored state, their
  values and meta text) and the single SQLite writer runs it through the
  driver's statement, one cgo call per 100 rows, with ON CONFLICT DO
  NOTHING; only when a SKU turns out to be stored does it read the stored
  states and decide again. A product is 11 bound values (10 columns and
  one meta JSON array), there is no secondary index, and each checkpoint
  commits with the products it covers. The committer validates the chunk
  it waits for itself when the pool is behind.
- importctl uses both cores and sqlite3 one: on a busy machine the wall
  ratio moves toward the CPU ratio. The CPU column is the steadier figure.
- In the driver table ` + "`sqlite3`" + ` is mattn/go-sqlite3 (cgo, the default) and ` + "`sqlite`" + ` is
  modernc.org/sqlite (pure Go, used when built without cgo).
- Reading stages run on one core, reading the file with read(2) through the page cache.
`

type report struct {
	rows                    int
	fileMB                  float64
	importctl, sqlite       []time.Duration
	importctlCPU, sqliteCPU []time.Duration
	profile                 *profileReport
	rss100k, rss1m          []int64
	read                    map[string][]time.Duration
	pool, drivers           map[string]map[string][]float64
	aws                     *awsRuns
	weighted                *weightedRun
	cold                    *coldRun
	scale                   *scaleRuns
	runs                    int
}

func median[T int64 | float64 | time.Duration](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func (r *report) markdown() string {
	var b strings.Builder
	host, _ := os.Hostname()
	_ = host
	fmt.Fprintf(&b, "# Performance\n\nWritten by `make bench` on %s (%d cores, %s, %s). Medians of %d interleaved runs\n",
		time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), runtime.GOOS+"/"+runtime.GOARCH, runtime.Version(), r.runs)
	fmt.Fprintf(&b, "in one invocation; this machine is noisy, so compare ratios, not absolute figures.\n\n")
	if len(r.importctl) > 0 {
		fmt.Fprintf(&b, "## End to end: %d rows, %.0f MB product CSV (generated, 40%% quoted multi-line descriptions)\n\n", r.rows, r.fileMB)
		it, st := median(r.importctl), median(r.sqlite)
		ic, sc := median(r.importctlCPU), median(r.sqliteCPU)
		ratios := make([]float64, len(r.importctl))
		for i := range ratios {
			ratios[i] = r.importctl[i].Seconds() / r.sqlite[i].Seconds()
		}
		fmt.Fprintf(&b, "| what | median | rows/s | vs sqlite3 .import (median of the runs' ratios) | CPU (user + system) | CPU vs sqlite3 |\n|---|---|---|---|---|---|\n")
		fmt.Fprintf(&b, "| `importctl run` (detect, split, validate, dedupe, field stamps, checkpoint every 100 rows, failure records, reconcile) | %.2f s | %s | **%.2fx** the time | %.2f s | %.2fx |\n",
			it.Seconds(), si(float64(r.rows)/it.Seconds()), median(ratios), ic.Seconds(), ic.Seconds()/sc.Seconds())
		fmt.Fprintf(&b, "| `sqlite3 .import` into the same columns with `sku` PRIMARY KEY (WAL) | %.2f s | %s | 1.00x | %.2f s | 1.00x |\n\n",
			st.Seconds(), si(float64(r.rows)/st.Seconds()), sc.Seconds())
		fmt.Fprintf(&b, "All runs (wall): importctl %v; sqlite3 %v; ratios %v. CPU: importctl %v; sqlite3 %v.\n\n",
			rounded(r.importctl), rounded(r.sqlite), ratioText(ratios), rounded(r.importctlCPU), rounded(r.sqliteCPU))
		fmt.Fprintf(&b, "## Peak memory (RSS) of `importctl run`\n\n| rows | peak RSS (median) |\n|---|---|\n")
		fmt.Fprintf(&b, "| %d | %.0f MB |\n| %d | %.0f MB |\n\n", r.rows/10, float64(median(r.rss100k))/1e6, r.rows, float64(median(r.rss1m))/1e6)
		if p := r.profile; p != nil {
			fmt.Fprintf(&b, "## CPU profile of one `importctl run` of the same file (`--cpuprofile`)\n\n")
			fmt.Fprintf(&b, "By stage (the goroutines' pprof label `stage`; `go tool pprof -tags`):\n\n```\n%s\n```\n\n", p.stages)
			fmt.Fprintf(&b, "Top entries (`go tool pprof -top`; `runtime.cgocall` is the time in SQLite's C code):\n\n```\n%s\n```\n\n", p.top)
		}
	}
	if len(r.read["raw read"]) > 0 {
		fmt.Fprintf(&b, "## Reading the same file through the page cache (one core)\n\n| stage | MB/s | rows/s | vs raw read |\n|---|---|---|---|\n")
		raw := median(r.read["raw read"]).Seconds()
		for _, s := range stages {
			t := median(r.read[s]).Seconds()
			fmt.Fprintf(&b, "| %s | %s | %s | %.2fx the time |\n", s, si(r.fileMB/t), si(float64(r.rows)/t), t/raw)
		}
		b.WriteString("\n")
	}
	if r.pool != nil || r.drivers != nil {
		writeGo(&b, "Worker pools (parse + validate, 20k rows; `BenchmarkPool` in internal/shard)", r.pool, "rows/s")
		writeGo(&b, "SQLite drivers (`BenchmarkSinkWrite` in internal/local/sqlite)", r.drivers, "rows/s")
	}
	if len(r.importctl) > 0 {
		b.WriteString(readingNotes)
	}
	if r.aws != nil {
		r.aws.markdown(&b)
	}
	if r.weighted != nil {
		b.WriteString("\n")
		r.weighted.markdown(&b)
	}
	if r.scale != nil {
		r.scale.markdown(&b)
		wru, rru, measured := 1.06, 0.0, false
		if r.aws != nil {
			c := r.aws.fresh.cost()
			wru, rru, measured = c.wru, c.rru, true
		}
		r.scale.projectionMarkdown(&b, wru, rru, measured)
	}
	if r.cold != nil {
		r.cold.markdown(&b)
	}
	return b.String()
}

func writeGo(b *strings.Builder, title string, res map[string]map[string][]float64, unit string) {
	fmt.Fprintf(b, "## %s\n\n| benchmark | ns/op | %s |\n|---|---|---|\n", title, unit)
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range res {
			if !yield(k) {
				return
			}
		}
	})
	for _, n := range names {
		fmt.Fprintf(b, "| %s | %s | %s |\n", n, si(median(res[n]["ns/op"])), si(median(res[n][unit])))
	}
	b.WriteString("\n")
}

func ratioText(rs []float64) []string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = fmt.Sprintf("%.2fx", r)
	}
	return s
}

func rounded(ds []time.Duration) []string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = fmt.Sprintf("%.2fs", d.Seconds())
	}
	return s
}

// si formats a number with a k/M suffix.
func si(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.0fk", v/1e3)
	default:
		return fmt.Sprintf("%.1f", v)
	}
}
