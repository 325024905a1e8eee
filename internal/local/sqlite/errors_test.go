package sqlite

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/state"
)

// TestMapErr: busy and locked databases are Throttled (transient, so the
// worker's retry policy applies), other driver errors Internal; sentinels,
// context errors and ImportErrors keep their identity.
func TestMapErr(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err    error
		reason failure.Reason // "" for errors returned unchanged
	}{
		{errors.New("database is locked"), failure.Throttled},
		{errors.New("database table is locked: products"), failure.Throttled},
		{errors.New("exec: SQLITE_BUSY"), failure.Throttled},
		{fmt.Errorf("commit: %w", errors.New("database is locked (5) (SQLITE_BUSY)")), failure.Throttled},
		{errors.New("no such table: products"), failure.Internal},
		{fmt.Errorf("x: %w", state.ErrFenced), ""},
		{context.Canceled, ""},
		{failure.New(failure.InvalidValue, "f", "bad"), ""},
	}
	for _, tc := range tests {
		got := mapErr(tc.err)
		if tc.reason == "" {
			if got != tc.err {
				t.Errorf("mapErr(%v) = %v, want it unchanged", tc.err, got)
			}
			continue
		}
		if r := failure.ReasonOf(got); r != tc.reason || !errors.Is(got, tc.err) {
			t.Errorf("mapErr(%v) = %v (%s), want %s wrapping the cause", tc.err, got, r, tc.reason)
		}
		if tc.reason == failure.Throttled && !failure.ReasonOf(got).Transient() {
			t.Errorf("mapErr(%v) is not transient", tc.err)
		}
	}
}
