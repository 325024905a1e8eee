package sqlite

import "unsafe"

// This file boxes a prepared chunk's column values without one allocation
// per value. any(s) copies a string's header to the heap, 10 allocations
// per product, about a fifth of Prepare's time (decision 28); a valueSlab
// keeps the headers of a chunk in two arrays and makes interface values
// that point at them, as any(s) points at its copy.

// eface is the layout of an interface value of type any.
type eface struct {
	typ, data unsafe.Pointer
}

// valueSlab holds the strings and integers of a prepared chunk's values.
// Its arrays never grow: a value points into them for as long as it lives.
type valueSlab struct {
	strs []string
	ints []int64
}

// newValueSlab returns room for strs strings and ints integers.
func newValueSlab(strs, ints int) *valueSlab {
	return &valueSlab{strs: make([]string, 0, strs), ints: make([]int64, 0, ints)}
}

// str returns s as a value of type string.
func (sl *valueSlab) str(s string) any {
	if len(sl.strs) == cap(sl.strs) {
		return s // no room (never for the sizes Prepare asks): box as usual
	}
	sl.strs = append(sl.strs, s)
	v := any("")
	(*eface)(unsafe.Pointer(&v)).data = unsafe.Pointer(&sl.strs[len(sl.strs)-1])
	return v
}

// int returns n as a value of type int64.
func (sl *valueSlab) int(n int64) any {
	if len(sl.ints) == cap(sl.ints) {
		return n
	}
	sl.ints = append(sl.ints, n)
	v := any(int64(0))
	(*eface)(unsafe.Pointer(&v)).data = unsafe.Pointer(&sl.ints[len(sl.ints)-1])
	return v
}
