package state_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/state"
)

func TestNextSample(t *testing.T) {
	t.Parallel()
	now := time.Date(2031, 3, 14, 15, 9, 26, 0, time.FixedZone("CST", 8*3600))
	last := state.Sample{Done: 100, Failed: 3, ByLayer: state.LayerCounts{Semantic: 2, Business: 1}}
	prev := state.Checkpoint{NextRow: 102, Counts: state.Counts{Total: 100, Imported: 97, Failed: 3}}
	recs := func(reasons ...failure.Reason) []failure.Record {
		var out []failure.Record
		for _, r := range reasons {
			out = append(out, failure.Record{Layer: r.Layer(), Reason: r})
		}
		return out
	}
	cases := []struct {
		name    string
		cp      state.Checkpoint
		records []failure.Record
		want    state.Sample
		ok      bool
	}{
		{"forward adds the records' layers", state.Checkpoint{NextRow: 202, Counts: state.Counts{Total: 200, Imported: 194, Failed: 6}},
			recs(failure.MalformedRow, failure.InvalidNumber, failure.DuplicateSKU), state.Sample{At: now.UTC(), Done: 200, Failed: 6,
				ByLayer: state.LayerCounts{Syntax: 1, Semantic: 3, Business: 2}}, true},
		{"skipped rows move it too", state.Checkpoint{NextRow: 202, Counts: state.Counts{Total: 200, Imported: 97, Failed: 3, Skipped: 100}},
			nil, state.Sample{At: now.UTC(), Done: 200, Failed: 3, ByLayer: last.ByLayer}, true},
		{"a repeated checkpoint appends nothing", prev, recs(failure.InvalidNumber), state.Sample{}, false},
		{"a checkpoint behind appends nothing", state.Checkpoint{NextRow: 52, Counts: state.Counts{Total: 50, Imported: 50}}, nil, state.Sample{}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok := state.NextSample(last, prev, tc.cp, tc.records, now)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("sample (-want +got):\n%s", d)
			}
		})
	}
}

func TestAppendSampleStaysBoundedAndSpansTheShard(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	var ss []state.Sample
	for i := 1; i <= 1000; i++ {
		ss = state.AppendSample(ss, state.Sample{At: t0.Add(time.Duration(i) * time.Second), Done: int64(i)})
		if len(ss) > state.MaxSamples {
			t.Fatalf("after %d appends: %d samples, want at most %d", i, len(ss), state.MaxSamples)
		}
	}
	if ss[0].Done != 1 || ss[len(ss)-1].Done != 1000 {
		t.Errorf("first and last samples: %d and %d, want 1 and 1000", ss[0].Done, ss[len(ss)-1].Done)
	}
	if len(ss) < state.MaxSamples/2 {
		t.Errorf("%d samples kept, want at least %d", len(ss), state.MaxSamples/2)
	}
	for i := 1; i < len(ss); i++ {
		if !ss[i].At.After(ss[i-1].At) || ss[i].Done <= ss[i-1].Done {
			t.Fatalf("samples out of order at %d: %+v then %+v", i, ss[i-1], ss[i])
		}
	}
}

func TestLayerCounts(t *testing.T) {
	t.Parallel()
	var c state.LayerCounts
	for _, r := range failure.Reasons() {
		c.Add(r.Layer(), 1)
	}
	c.Add("unknown", 1)
	want := state.LayerCounts{Syntax: 4, Semantic: 4, Business: 4, Infrastructure: 8}
	if c != want {
		t.Errorf("counts %+v, want %+v", c, want)
	}
	for _, l := range state.Layers() {
		if c.Get(l) == 0 {
			t.Errorf("Get(%s) = 0", l)
		}
	}
	if c.Total() != 20 || c.Plus(c).Total() != 40 {
		t.Errorf("Total %d, Plus(c).Total %d", c.Total(), c.Plus(c).Total())
	}
}
