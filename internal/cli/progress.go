package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/catalog-import/catalog-import/internal/state"
)

// rateWindow is how far back the rows/s and ETA look.
const rateWindow = 10 * time.Second

// obs is one observation of a batch's rows done.
type obs struct {
	at   time.Time
	done int64
}

// meter measures rows/s over the observations of the last rateWindow. One
// observation has no rate: the rows a run had done before it was first
// looked at, over the near-zero time since, would read as billions of rows
// per second.
type meter struct {
	hist []obs // within rateWindow, oldest first
}

// add records done rows at time at and returns the rate (rows/s), or -1
// while it is unknown (a first observation, or no time between them).
func (m *meter) add(at time.Time, done int64) float64 {
	m.hist = append(m.hist, obs{at, done})
	for len(m.hist) > 2 && at.Sub(m.hist[1].at) >= rateWindow {
		m.hist = m.hist[1:]
	}
	if first := m.hist[0]; len(m.hist) > 1 && at.After(first.at) {
		return float64(done-first.done) / at.Sub(first.at).Seconds()
	}
	return -1
}

// eta is the time left for left rows at rate rows/s, or -1 when unknown.
func eta(left int64, rate float64) time.Duration {
	switch {
	case left <= 0:
		return 0
	case rate <= 0:
		return -1
	}
	return time.Duration(float64(left) / rate * float64(time.Second))
}

// progressView is run's progress bar on a terminal: rows done of the
// total, with the rows/s and ETA of a meter (the bar's own rate counts
// from the bar's creation, which is the first sample of a run).
type progressView struct {
	w        io.Writer
	throttle time.Duration // least time between redraws
	now      func() time.Time
	bar      *progressbar.ProgressBar
	m        meter
}

// update shows counts c.
func (v *progressView) update(c state.Counts) {
	if v.bar == nil {
		v.bar = progressbar.NewOptions64(max(c.Total, 1),
			progressbar.OptionSetWriter(v.w),
			progressbar.OptionSetDescription("importing"),
			progressbar.OptionShowCount(),
			progressbar.OptionSetItsString("rows"),
			progressbar.OptionThrottle(v.throttle),
			progressbar.OptionSetElapsedTime(false), // the description has the rate and ETA
			progressbar.OptionSetPredictTime(false),
			progressbar.OptionFullWidth(),
		)
	}
	rate := v.m.add(v.now(), c.Done())
	desc := "importing"
	if rate >= 0 {
		desc = fmt.Sprintf("importing %s rows/s, %s", num(int64(rate+0.5)), etaText(frame{ETA: eta(c.Total-c.Done(), rate)}))
	}
	v.bar.Describe(desc)
	_ = v.bar.Set64(c.Done())
}

// finish ends the bar's line, if a bar was drawn.
func (v *progressView) finish() {
	if v.bar != nil {
		_ = v.bar.Finish()
		fmt.Fprintln(v.w)
	}
}
