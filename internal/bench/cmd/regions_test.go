package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/catalog-import/catalog-import/internal/aws/faultproxy"
)

// TestRewriteRegions: the rewriter replaces the content of the regions it
// is given, block or inline, leaves everything else byte for byte, and
// refuses a document whose markers are unknown, malformed, unclosed,
// nested or crossed, and figures no region takes.
func TestRewriteRegions(t *testing.T) {
	t.Parallel()
	known := []string{"a", "b", "table"}
	for _, tc := range []struct {
		name, doc string
		fill      map[string]string
		want      string // "" with err
		err       string
	}{
		{name: "inline", doc: "x <!-- bench:a -->old<!-- /bench:a --> y\n", fill: map[string]string{"a": " 12 rows/s \n"},
			want: "x <!-- bench:a -->12 rows/s<!-- /bench:a --> y\n"},
		{name: "block", doc: "# T\n\n<!-- bench:table -->\nold\nlines\n<!-- /bench:table -->\n\nafter\n", fill: map[string]string{"table": "| a |\n|---|\n| 1 |\n"},
			want: "# T\n\n<!-- bench:table -->\n\n| a |\n|---|\n| 1 |\n\n<!-- /bench:table -->\n\nafter\n"},
		{name: "block in a list item keeps its indent", doc: "1. text:\n\n   <!-- bench:table -->\n   old\n   <!-- /bench:table -->\n2. next\n", fill: map[string]string{"table": "| a |\n\n| 1 |"},
			want: "1. text:\n\n   <!-- bench:table -->\n\n   | a |\n\n   | 1 |\n\n   <!-- /bench:table -->\n2. next\n"},
		{name: "regions not filled are left alone", doc: "<!-- bench:a -->1<!-- /bench:a --> <!-- bench:b -->2<!-- /bench:b -->", fill: map[string]string{"b": "3"},
			want: "<!-- bench:a -->1<!-- /bench:a --> <!-- bench:b -->3<!-- /bench:b -->"},
		{name: "a region twice takes the figure twice", doc: "<!-- bench:a -->1<!-- /bench:a -->, <!-- bench:a -->1<!-- /bench:a -->", fill: map[string]string{"a": "2"},
			want: "<!-- bench:a -->2<!-- /bench:a -->, <!-- bench:a -->2<!-- /bench:a -->"},
		{name: "another comment is no marker, and no fill changes nothing", doc: "a <!-- other comment --> <!-- bench:a -->1<!-- /bench:a -->\n", want: "a <!-- other comment --> <!-- bench:a -->1<!-- /bench:a -->\n"},
		{name: "a marker quoted in code is no marker", doc: "write `<!-- bench:zz -->` and <!-- bench:a -->1<!-- /bench:a -->", fill: map[string]string{"a": "2"},
			want: "write `<!-- bench:zz -->` and <!-- bench:a -->2<!-- /bench:a -->"},
		{name: "unknown region", doc: "<!-- bench:zz -->1<!-- /bench:zz -->", err: `line 1: unknown region "zz"`},
		{name: "unclosed", doc: "x\n<!-- bench:a -->1\n", err: `line 2: region "a" is not closed`},
		{name: "closed, not opened", doc: "1<!-- /bench:a -->", err: `region "a" closed but not opened`},
		{name: "nested", doc: "<!-- bench:a --><!-- bench:b -->1<!-- /bench:b --><!-- /bench:a -->", err: `region "b" opened inside region "a"`},
		{name: "crossed", doc: "<!-- bench:a -->1<!-- /bench:b -->", err: `region "b" closed inside region "a"`},
		{name: "malformed marker", doc: "<!--bench:a-->1<!-- /bench:a -->", err: "malformed region marker"},
		{name: "figure for an unknown region", doc: "", fill: map[string]string{"zz": "1"}, err: `no region "zz" is known`},
		{name: "figure for a region the document lacks", doc: "<!-- bench:a -->1<!-- /bench:a -->", fill: map[string]string{"b": "1"}, err: `the document has no region "b"`},
		{name: "inline content over lines", doc: "<!-- bench:a -->1<!-- /bench:a -->", fill: map[string]string{"a": "1\n2"}, err: "content over several lines"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := rewriteRegions(tc.doc, known, tc.fill)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one with %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v\nwant %q", got, err, tc.want)
			}
			again, err := rewriteRegions(got, known, tc.fill)
			if err != nil || again != got {
				t.Errorf("a second rewrite changed the document: %q, %v", again, err)
			}
		})
	}
}

// TestPlaceholders: words in capitals with underscores are placeholders,
// outside code spans, code blocks and comments.
func TestPlaceholders(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		doc  string
		want []string
	}{
		{"took SPLIT_100M, at SPLIT_RATE MB/s", []string{"SPLIT_100M", "SPLIT_RATE"}},
		{"set `POOL_SIZE` and <!-- NOT_THIS --> ```\nNOR_THIS\n```", nil},
		{"TransactionConflict, BATCH#<id>, S3, 1,000 WCU", nil},
	} {
		if got := placeholders(tc.doc); !slices.Equal(got, tc.want) {
			t.Errorf("placeholders(%q) = %q, want %q", tc.doc, got, tc.want)
		}
	}
}

// scaleDoc is docs/scale.md, read from the repository.
func scaleDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "scale.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestScaleDocIsComplete: docs/scale.md holds no unfilled placeholder, its
// regions are well formed and known, and it has every region the bench
// fills (a figure the bench measures is never dropped).
func TestScaleDocIsComplete(t *testing.T) {
	t.Parallel()
	doc := scaleDoc(t)
	if ps := placeholders(doc); len(ps) > 0 {
		t.Errorf("docs/scale.md holds unfilled placeholders: %q", ps)
	}
	rs, err := findRegions(doc, scaleDocRegions)
	if err != nil {
		t.Fatalf("docs/scale.md: %v", err)
	}
	for _, name := range scaleDocRegions {
		if !slices.ContainsFunc(rs, func(r region) bool { return r.name == name }) {
			t.Errorf("docs/scale.md has no region %q", name)
		}
	}
	for _, r := range rs {
		if strings.TrimSpace(doc[r.open[1]:r.close[0]]) == "" {
			t.Errorf("docs/scale.md line %d: region %q is empty (run make bench)", lineOf(doc, r.open[0]), r.name)
		}
	}
}

// TestScaleDocFill: a run of the scale, aws and coldstart sections fills
// every region of docs/scale.md and leaves no placeholder; a run of none of
// them fills nothing, and one of the coldstart section only its regions.
func TestScaleDocFill(t *testing.T) {
	t.Parallel()
	ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	s := &scaleRuns{splitMBps: 300, splitRows: 200_000, splitMB: 45}
	for _, every := range []int{100, 1000} {
		for _, pool := range []int{4, 8, 16, 32} {
			// pool puts of 6 ms each, at a dilation of 10.
			s.workers = append(s.workers, workerRun{pool: pool, every: every, rows: 4000, dilate: 10, wall: ms(10 * 4000 * 6 / float64(pool)), cpu: ms(400),
				stats: faultproxy.Stats{Calls: map[string]int64{"dynamodb PutItem": 4000}}})
		}
	}
	for _, n := range []int{10, 50, 200} {
		s.contention = append(s.contention, contentionRun{workers: n, interval: ms(600), dilate: 40, checkpoints: 4 * n, writes: int64(5 * n), conflicts: int64(n),
			latencies: []time.Duration{ms(20), ms(40)}, offered: float64(n) / 0.6, wall: 3})
	}
	meter := snapshot{est: map[string]units{"products": {Write: 950}, "state": {Write: 110}}, ops: map[string]int{"SQS SendMessage": 4}}
	a := &awsRuns{fresh: awsRun{rows: 1000, m: meter}, again: awsRun{rows: 1000, m: meter}}
	cold := &coldRun{binMB: 20, runs: map[string][]time.Duration{}, invokes: []time.Duration{ms(3)}}
	for _, v := range coldVariants {
		cold.runs[v] = []time.Duration{ms(40), ms(45)}
	}

	all := (&report{scale: s, aws: a, cold: cold}).scaleDocFill()
	for _, name := range scaleDocRegions {
		if strings.TrimSpace(all[name]) == "" {
			t.Errorf("region %q not filled", name)
		}
	}
	doc, err := rewriteRegions(scaleDoc(t), scaleDocRegions, all)
	if err != nil {
		t.Fatal(err)
	}
	if out := os.Getenv("SCALE_DOC_DUMP"); out != "" {
		_ = os.WriteFile(out, []byte(doc), 0o644)
	}
	if ps := placeholders(doc); len(ps) > 0 {
		t.Errorf("placeholders after a rewrite: %q", ps)
	}
	if want := "a checkpoint every 1,000 rows, pool 4: 667, 8: 1,333, 16: 2,667, 32: 5,333 rows/s"; !strings.HasPrefix(all["worker-summary"], want) {
		t.Errorf("worker-summary %q, want it to start with %q", all["worker-summary"], want)
	}
	if got := (&report{}).scaleDocFill(); len(got) != 0 {
		t.Errorf("no section: filled %d regions", len(got))
	}
	got := (&report{cold: cold}).scaleDocFill()
	if len(got) != 2 || got["cold-summary"] == "" || got["cold-section"] == "" {
		t.Errorf("coldstart only: filled %d regions, want cold-summary and cold-section", len(got))
	}
}
