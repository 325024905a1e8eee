package report

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/state"
)

// Chart geometry, in SVG user units (pixels at 100% zoom).
const (
	chartWidth = 720
	barRow     = 26  // height of one bar's row
	barLabel   = 200 // room for the labels left of the bars
	barValue   = 90  // room for the counts right of the bars
	barMax     = chartWidth - barLabel - barValue
)

// layerColors are the fills of each layer, also used for its reasons.
var layerColors = map[failure.Layer]string{
	failure.LayerSyntax:         "#7b4fa0",
	failure.LayerSemantic:       "#d9822b",
	failure.LayerBusiness:       "#2b6cb0",
	failure.LayerInfrastructure: "#c53030",
}

// shardColors cycle over the shards' lines.
var shardColors = []string{"#2b6cb0", "#d9822b", "#2f855a", "#c53030", "#7b4fa0",
	"#8c6d31", "#d53f8c", "#4a5568", "#b7791f", "#319795"}

// barChart is a horizontal bar chart: one row per bar, largest first.
type barChart struct {
	ID, Title string
	Height    int
	Bars      []bar
}

// bar is one row of a barChart. W is 0 for a zero count (no rectangle).
type bar struct {
	Key, Label, Count, Color, Tip string
	N                             int64
	TextY, RectY                  int     // baselines of the texts, top of the rectangle
	W, CountX                     float64 // width of the rectangle, where its count starts
}

func newBarChart(id, title string, counts []Count, color func(key string) string, label func(key string) string) barChart {
	c := barChart{ID: id, Title: title, Height: max(1, len(counts)) * barRow}
	var top int64
	for _, n := range counts {
		top = max(top, n.Count)
	}
	for i, n := range counts {
		y := i * barRow
		b := bar{Key: n.Key, Label: label(n.Key), N: n.Count, Count: num(n.Count), Color: color(n.Key), TextY: y + 17, RectY: y + 4}
		if n.Count > 0 {
			b.W = math.Max(2, round1(float64(barMax)*float64(n.Count)/float64(top)))
		}
		b.CountX = float64(barLabel) + b.W + 6
		b.Tip = fmt.Sprintf("%s: %s", b.Label, b.Count)
		c.Bars = append(c.Bars, b)
	}
	return c
}

// lineChart is rows done over time, one line per shard.
type lineChart struct {
	Width, Height                  int
	PlotX, PlotY, PlotW, PlotH     int
	PlotR, PlotB, LegendX          int // right and bottom edges of the plot, left of the legend
	XTicks, YTicks                 []tick
	Series                         []series
	Legend                         bool
	XLabel, YLabel, Empty, Summary string
}

type tick struct {
	Pos   float64
	Label string
}

// series is one shard's line: Points for a polyline, or one dot (X, Y) when
// the shard has a single sample.
type series struct {
	Shard          int
	Color, Points  string
	Dot            bool
	X, Y           float64
	Tip, LegendTip string
	LegendY        int
}

// maxLegend is the most shards named in a legend; more are only lines.
const maxLegend = 16

func newLineChart(b state.Batch, shards []state.Shard) lineChart {
	c := lineChart{Width: chartWidth, Height: 300, PlotX: 70, PlotY: 12, XLabel: "time since the batch started", YLabel: "rows done"}
	var (
		start, end time.Time
		top        int64
		n          int
	)
	start = b.CreatedAt
	for _, s := range shards {
		top = max(top, s.Rows)
		for _, p := range s.Progress {
			if start.IsZero() || p.At.Before(start) {
				start = p.At
			}
			if p.At.After(end) {
				end = p.At
			}
			top = max(top, p.Done)
			n++
		}
	}
	if n == 0 {
		c.Empty = "No progress was recorded for this batch (no shard reached a checkpoint)."
		return c
	}
	legend := len(shards) <= maxLegend
	c.Legend = legend
	plotRight := 14
	if legend {
		plotRight = 110
	}
	c.PlotW = c.Width - c.PlotX - plotRight
	c.PlotH = c.Height - c.PlotY - 46
	c.PlotR, c.PlotB, c.LegendX = c.PlotX+c.PlotW, c.PlotY+c.PlotH, c.PlotX+c.PlotW+12
	span := end.Sub(start)
	if span < time.Second {
		span = time.Second
	}
	if top < 1 {
		top = 1
	}
	x := func(t time.Time) float64 {
		return round1(float64(c.PlotX) + float64(c.PlotW)*float64(t.Sub(start))/float64(span))
	}
	y := func(v int64) float64 {
		return round1(float64(c.PlotY+c.PlotH) - float64(c.PlotH)*float64(v)/float64(top))
	}
	for _, v := range niceTicks(float64(span), 5) {
		c.XTicks = append(c.XTicks, tick{x(start.Add(time.Duration(v))), duration(time.Duration(v))})
	}
	for _, v := range niceTicks(float64(top), 5) {
		c.YTicks = append(c.YTicks, tick{y(int64(v)), num(int64(v))})
	}
	li := 0
	for i, s := range shards {
		if len(s.Progress) == 0 {
			continue
		}
		se := series{Shard: s.Index, Color: shardColors[i%len(shardColors)]}
		last := s.Progress[len(s.Progress)-1]
		se.Tip = fmt.Sprintf("shard %d: %s of %s rows done, %s failed", s.Index, num(last.Done), num(s.Rows), num(last.Failed))
		if len(s.Progress) == 1 {
			se.Dot, se.X, se.Y = true, x(last.At), y(last.Done)
		} else {
			pts := make([]string, len(s.Progress))
			for j, p := range s.Progress {
				pts[j] = fmt.Sprintf("%g,%g", x(p.At), y(p.Done))
			}
			se.Points = strings.Join(pts, " ")
		}
		if legend {
			se.LegendY = c.PlotY + 6 + li*16
			li++
		}
		c.Series = append(c.Series, se)
	}
	c.Summary = fmt.Sprintf("%d shards, %d progress samples over %s", len(c.Series), n, duration(span))
	return c
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

// niceTicks returns about n evenly spaced round values from 0 to at most top.
func niceTicks(top float64, n int) []float64 {
	if top <= 0 {
		return []float64{0}
	}
	raw := top / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var out []float64
	for v := 0.0; v <= top*1.0000001; v += step {
		out = append(out, v)
	}
	return out
}

// duration formats a duration for axis labels and the summary: "850ms",
// "42s", "3m20s", "1h05m".
func duration(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		s := d.Seconds()
		if s == math.Trunc(s) {
			return fmt.Sprintf("%ds", int(s))
		}
		return fmt.Sprintf("%.1fs", s)
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

// num formats n with thousands separators.
func num(n int64) string {
	if n < 0 {
		return "-" + num(-n)
	}
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
