package cli

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/catalog-import/catalog-import/internal/state"
)

func TestMeter(t *testing.T) {
	t.Parallel()
	at := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)
	var m meter
	for _, tc := range []struct {
		name  string
		after time.Duration
		done  int64
		want  float64
	}{
		{"first sample: no rate", 0, 19_000, -1},
		{"no time between samples", 0, 19_000, -1},
		{"second sample", 200 * time.Millisecond, 38_000, 95_000},
		{"within the window", time.Second, 118_000, 99_000},
		{"the window moves on", 12 * time.Second, 1_218_000, 100_000},
	} {
		if got := m.add(at.Add(tc.after), tc.done); got != tc.want {
			t.Errorf("%s: rate %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestProgressFirstSample: the run's bar shows no rate for its first
// sample (it showed 1,897,689,769 rows/s: the rows done before the bar
// existed, over the microseconds since), then the rate between samples.
func TestProgressFirstSample(t *testing.T) {
	t.Parallel()
	at := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)
	now := at
	var out bytes.Buffer
	v := &progressView{w: &out, now: func() time.Time { return now }}
	rates := regexp.MustCompile(`([0-9,]+) rows/s`)

	v.update(state.Counts{Total: 100_000, Imported: 19_000})
	if r := rates.FindString(out.String()); r != "" {
		t.Errorf("first sample shows %q:\n%q", r, out.String())
	}
	now = at.Add(200 * time.Millisecond)
	v.update(state.Counts{Total: 100_000, Imported: 37_000, Failed: 1_000})
	v.finish()
	got := rates.FindAllStringSubmatch(out.String(), -1)
	if len(got) == 0 || got[len(got)-1][1] != "95,000" {
		t.Errorf("rates %v after the second sample, want 95,000:\n%q", got, out.String())
	}
	if !strings.Contains(out.String(), "ETA 1s") {
		t.Errorf("no ETA 1s (62,000 rows left at 95,000 rows/s):\n%q", out.String())
	}
}
