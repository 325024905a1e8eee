package dynamostate

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/catalog-import/catalog-import/internal/aws/dynamoattr"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/state"
)

// This file keeps a shard's progress samples (state.Sample), appended in
// the checkpoint's transaction.

// avProgress is a shard's progress history, nil when empty: a list (L) of
// samples, each a list of numbers [at in Unix milliseconds, rows done, rows
// failed, failed syntax, semantic, business, infrastructure], the layer
// counts left out when all are zero. About 25 bytes a sample, so a full
// history (state.MaxSamples) adds some 2.5 KB to the shard item.
func avProgress(ss []state.Sample) types.AttributeValue {
	if len(ss) == 0 {
		return nil
	}
	out := make([]types.AttributeValue, len(ss))
	for i, s := range ss {
		ns := []int64{s.At.UnixMilli(), s.Done, s.Failed}
		if l := s.ByLayer; l != (state.LayerCounts{}) {
			ns = append(ns, l.Syntax, l.Semantic, l.Business, l.Infrastructure)
		}
		vs := make([]types.AttributeValue, len(ns))
		for j, n := range ns {
			vs[j] = dynamoattr.N(n)
		}
		out[i] = &types.AttributeValueMemberL{Value: vs}
	}
	return &types.AttributeValueMemberL{Value: out}
}

// decodeProgress reads avProgress's form from attribute name of d's item.
func decodeProgress(d *dynamoattr.Decoder, name string) []state.Sample {
	switch v := d.Attr(name).(type) {
	case nil:
		return nil
	case *types.AttributeValueMemberL:
		out := make([]state.Sample, 0, len(v.Value))
		for _, e := range v.Value {
			l, ok := e.(*types.AttributeValueMemberL)
			if !ok {
				d.Fail(name, fmt.Errorf("sample of type %T, want L", e))
				return nil
			}
			var ns [7]int64
			for j, x := range l.Value {
				n, ok := x.(*types.AttributeValueMemberN)
				if !ok || j >= len(ns) {
					d.Fail(name, fmt.Errorf("sample element %d of type %T, want at most 7 N", j, x))
					return nil
				}
				var err error
				if ns[j], err = strconv.ParseInt(n.Value, 10, 64); err != nil {
					d.Fail(name, err)
					return nil
				}
			}
			out = append(out, state.Sample{At: time.UnixMilli(ns[0]).UTC(), Done: ns[1], Failed: ns[2],
				ByLayer: state.LayerCounts{Syntax: ns[3], Semantic: ns[4], Business: ns[5], Infrastructure: ns[6]}})
		}
		return out
	default:
		d.Fail(name, fmt.Errorf("type %T, want L", v))
		return nil
	}
}

// nextProgress is the history of sh after its checkpoint moves to cp with
// records, at now; nil when no sample is appended.
func nextProgress(sh state.Shard, cp state.Checkpoint, records []failure.Record, now time.Time) types.AttributeValue {
	var last state.Sample
	if n := len(sh.Progress); n > 0 {
		last = sh.Progress[n-1]
	}
	s, ok := state.NextSample(last, sh.Checkpoint, cp, records, now)
	if !ok {
		return nil
	}
	return avProgress(state.AppendSample(slices.Clone(sh.Progress), s))
}
