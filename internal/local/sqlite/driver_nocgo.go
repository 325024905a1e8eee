//go:build !cgo

package sqlite

// defaultDriver is the pure Go driver when cgo is off (mattn's is a stub then).
const defaultDriver = DriverModernc

// mattnCode reports no code: without cgo the mattn driver cannot run.
func mattnCode(error) (int, bool) { return 0, false }
