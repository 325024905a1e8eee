package state

import (
	"time"

	"github.com/catalog-import/catalog-import/internal/failure"
)

// MaxSamples bounds a shard's progress history (Shard.Progress): once it is
// full, AppendSample thins it to half before adding, so the history always
// spans the shard's whole life at a resolution that halves as it grows.
const MaxSamples = 100

// Sample is a shard's progress at one moment: the counters of the
// checkpoint stored then. Every field is cumulative since the shard's first
// row, so thinning the history loses resolution, never counts.
type Sample struct {
	At      time.Time   `json:"at"`
	Done    int64       `json:"rows_done"`   // rows with an outcome: imported + superseded + failed + skipped
	Failed  int64       `json:"rows_failed"` // of which failed
	ByLayer LayerCounts `json:"failed_by_layer"`
}

// LayerCounts counts failed rows per validation layer.
type LayerCounts struct {
	Syntax         int64 `json:"syntax"`
	Semantic       int64 `json:"semantic"`
	Business       int64 `json:"business"`
	Infrastructure int64 `json:"infrastructure"`
}

// Get returns the count of layer l (unknown layers count as infrastructure,
// as failure.Reason.Layer files unknown reasons).
func (c LayerCounts) Get(l failure.Layer) int64 {
	switch l {
	case failure.LayerSyntax:
		return c.Syntax
	case failure.LayerSemantic:
		return c.Semantic
	case failure.LayerBusiness:
		return c.Business
	}
	return c.Infrastructure
}

// Add adds n to layer l's count.
func (c *LayerCounts) Add(l failure.Layer, n int64) {
	switch l {
	case failure.LayerSyntax:
		c.Syntax += n
	case failure.LayerSemantic:
		c.Semantic += n
	case failure.LayerBusiness:
		c.Business += n
	default:
		c.Infrastructure += n
	}
}

// Plus returns c + d, layer by layer.
func (c LayerCounts) Plus(d LayerCounts) LayerCounts {
	return LayerCounts{c.Syntax + d.Syntax, c.Semantic + d.Semantic, c.Business + d.Business, c.Infrastructure + d.Infrastructure}
}

// Total is the sum over the layers.
func (c LayerCounts) Total() int64 { return c.Syntax + c.Semantic + c.Business + c.Infrastructure }

// Layers lists the four layers in the order rows are checked.
func Layers() []failure.Layer {
	return []failure.Layer{failure.LayerSyntax, failure.LayerSemantic, failure.LayerBusiness, failure.LayerInfrastructure}
}

// NextSample is the sample a store appends when a shard's checkpoint moves
// from prev to cp with records as the failure records written with it, at
// now; last is the shard's latest sample (the zero Sample when it has none).
// ok is false when cp has no more rows with an outcome than prev (a replayed
// or repeated checkpoint, a hand-on): then nothing is appended, so a replay
// never counts its records twice.
func NextSample(last Sample, prev, cp Checkpoint, records []failure.Record, now time.Time) (s Sample, ok bool) {
	if cp.Counts.Done() <= prev.Counts.Done() {
		return Sample{}, false
	}
	s = Sample{At: now.UTC(), Done: cp.Counts.Done(), Failed: cp.Counts.Failed, ByLayer: last.ByLayer}
	for _, r := range records {
		s.ByLayer.Add(r.Layer, 1)
	}
	return s, true
}

// AppendSample appends s to a shard's samples (oldest first), keeping at
// most MaxSamples: when full, every second sample after the first is dropped
// before s is added. The first sample (the shard's start) and the newest are
// always kept. The input slice may be reused.
func AppendSample(samples []Sample, s Sample) []Sample {
	if len(samples) >= MaxSamples {
		samples = Thin(samples)
	}
	return append(samples, s)
}

// Thin keeps the first sample and every second one after it (indexes 0, 2,
// 4, ...), in place. Stores whose samples are rows rather than one list
// delete the others (Dropped says which).
func Thin(samples []Sample) []Sample {
	kept := samples[:0]
	for i, s := range samples {
		if !Dropped(i) {
			kept = append(kept, s)
		}
	}
	return kept
}

// Dropped reports whether Thin drops the sample at index i.
func Dropped(i int) bool { return i%2 == 1 }
