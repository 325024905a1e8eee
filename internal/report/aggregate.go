package report

import (
	"cmp"
	"context"
	"maps"
	"slices"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/state"
)

// Failures reads a batch's failure records in (sheet, row) order, a page at
// a time (state.Store.Failures).
type Failures interface {
	Failures(ctx context.Context, batchID string, f state.FailureFilter) ([]failure.Record, error)
}

// PageSize is how many failure records Collect reads per call.
const PageSize = 5000

// Sample bounds: the first SamplesPerReason records of each reason are kept,
// at most MaxSamples in all, so the sample table shows every kind of
// failure whatever their numbers.
const (
	SamplesPerReason = 3
	MaxSamples       = 60
)

// NoField is the field name counts use for records that name no field
// (a row that could not be read at all, an infrastructure failure).
const NoField = "(row)"

// Aggregate is what a batch's failure records add up to, in memory that does
// not grow with their number: counts per layer, reason and field, and a few
// sample records. The zero value is ready to use.
type Aggregate struct {
	Total    int64
	ByLayer  state.LayerCounts
	ByReason map[failure.Reason]int64
	ByField  map[string]int64 // product field (NoField when none); bounded by the profile's fields
	Samples  []failure.Record // in the order added (row order when fed by Collect)
}

// Add counts one record and keeps it as a sample while its reason has fewer
// than SamplesPerReason and there are fewer than MaxSamples.
func (a *Aggregate) Add(r failure.Record) {
	if a.ByReason == nil {
		a.ByReason, a.ByField = map[failure.Reason]int64{}, map[string]int64{}
	}
	a.Total++
	a.ByLayer.Add(r.Layer, 1)
	a.ByReason[r.Reason]++
	field := r.Field
	if field == "" {
		field = NoField
	}
	a.ByField[field]++
	if a.ByReason[r.Reason] <= SamplesPerReason && len(a.Samples) < MaxSamples {
		a.Samples = append(a.Samples, r)
	}
}

// Collect pages once through the batch's failure records that f selects
// (f.Limit and the paging keys are its own) and aggregates them.
func Collect(ctx context.Context, src Failures, batchID string, f state.FailureFilter) (*Aggregate, error) {
	a := &Aggregate{}
	f.Limit, f.AfterSheet, f.AfterRow = PageSize, "", 0
	for {
		recs, err := src.Failures(ctx, batchID, f)
		if err != nil {
			return nil, err // "list failures of <batch>: ..."
		}
		for _, r := range recs {
			a.Add(r)
		}
		if len(recs) < PageSize {
			return a, nil
		}
		last := recs[len(recs)-1]
		f.AfterSheet, f.AfterRow = last.Sheet, last.Row
	}
}

// Count is one group of an aggregation: a key (a reason, layer or field)
// and how many records it has.
type Count struct {
	Key   string `json:"key"`
	Count int64  `json:"count"`
}

// Group names what Groups groups by.
type Group string

// The groupings of Groups.
const (
	ByReason Group = "reason"
	ByLayer  Group = "layer"
	ByField  Group = "field"
)

// Groups returns the counts of the grouping g, largest first (ties by key).
// Layers with no records are left out.
func (a *Aggregate) Groups(g Group) []Count {
	var out []Count
	switch g {
	case ByReason:
		for r, n := range a.ByReason {
			out = append(out, Count{string(r), n})
		}
	case ByLayer:
		for _, l := range state.Layers() {
			if n := a.ByLayer.Get(l); n > 0 {
				out = append(out, Count{string(l), n})
			}
		}
	case ByField:
		for _, f := range slices.Sorted(maps.Keys(a.ByField)) {
			out = append(out, Count{f, a.ByField[f]})
		}
	}
	slices.SortStableFunc(out, func(x, y Count) int {
		if c := cmp.Compare(y.Count, x.Count); c != 0 {
			return c
		}
		return cmp.Compare(x.Key, y.Key)
	})
	return out
}
