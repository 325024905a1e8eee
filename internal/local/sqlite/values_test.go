package sqlite

import (
	"runtime"
	"strconv"
	"testing"
)

// TestValueSlab: a slab's values are the strings and integers they were
// made of, for type switches, comparisons and after collections, and a
// full slab still boxes (by copying).
func TestValueSlab(t *testing.T) {
	sl := newValueSlab(100, 10)
	var vals []any
	for i := range 110 {
		vals = append(vals, sl.str("s-"+strconv.Itoa(i)))
		if i < 12 {
			vals = append(vals, sl.int(int64(1000+i)))
		}
	}
	sl = nil
	runtime.GC()
	runtime.GC()
	k := 0
	for i := range 110 {
		if s, ok := vals[k].(string); !ok || s != "s-"+strconv.Itoa(i) || vals[k] != any("s-"+strconv.Itoa(i)) {
			t.Fatalf("value %d = %#v, want %q", k, vals[k], "s-"+strconv.Itoa(i))
		}
		k++
		if i < 12 {
			if n, ok := vals[k].(int64); !ok || n != int64(1000+i) {
				t.Fatalf("value %d = %#v, want %d", k, vals[k], 1000+i)
			}
			k++
		}
	}
}
