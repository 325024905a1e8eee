package state_test

import (
	"testing"

	"github.com/catalog-import/catalog-import/internal/state"
)

// TestBehind: a checkpoint is behind the stored one when any one of its
// fields is lower, whatever the others do; equal or ahead is not behind.
// Each field going back alone has its own case, so dropping any term of the
// predicate fails.
func TestBehind(t *testing.T) {
	t.Parallel()
	stored := state.Checkpoint{NextOffset: 1000, NextRow: 50,
		Counts: state.Counts{Total: 48, Imported: 38, Superseded: 2, Failed: 5, Skipped: 3}}
	with := func(f func(*state.Checkpoint)) state.Checkpoint {
		cp := stored
		f(&cp)
		return cp
	}
	cases := []struct {
		name string
		cp   state.Checkpoint
		want bool
	}{
		{"equal", stored, false},
		{"all ahead", with(func(c *state.Checkpoint) {
			c.NextOffset, c.NextRow = 2000, 90
			c.Counts = state.Counts{Total: 88, Imported: 70, Superseded: 3, Failed: 10, Skipped: 8}
		}), false},
		{"only NextOffset ahead", with(func(c *state.Checkpoint) { c.NextOffset++ }), false},
		{"only Imported ahead", with(func(c *state.Checkpoint) { c.Counts.Imported++ }), false},
		{"only Superseded ahead", with(func(c *state.Checkpoint) { c.Counts.Superseded++ }), false},
		{"zero checkpoint", state.Checkpoint{}, true},

		{"NextOffset back", with(func(c *state.Checkpoint) { c.NextOffset-- }), true},
		{"NextRow back", with(func(c *state.Checkpoint) { c.NextRow-- }), true},
		{"Total back", with(func(c *state.Checkpoint) { c.Counts.Total-- }), true},
		{"Imported back", with(func(c *state.Checkpoint) { c.Counts.Imported-- }), true},
		{"Superseded back", with(func(c *state.Checkpoint) { c.Counts.Superseded-- }), true},
		{"Failed back", with(func(c *state.Checkpoint) { c.Counts.Failed-- }), true},
		{"Skipped back", with(func(c *state.Checkpoint) { c.Counts.Skipped-- }), true},

		// One field back while every other moves forward is still behind.
		{"NextOffset back, rest ahead", with(func(c *state.Checkpoint) {
			c.NextOffset, c.NextRow = 999, 60
			c.Counts = state.Counts{Total: 58, Imported: 50, Superseded: 2, Failed: 5, Skipped: 3}
		}), true},
		{"Skipped back, rest ahead", with(func(c *state.Checkpoint) {
			c.NextOffset, c.NextRow = 1500, 60
			c.Counts = state.Counts{Total: 58, Imported: 50, Superseded: 2, Failed: 6, Skipped: 2}
		}), true},
	}
	for _, tc := range cases {
		if got := state.Behind(tc.cp, stored); got != tc.want {
			t.Errorf("%s: Behind(%+v, %+v) = %v, want %v", tc.name, tc.cp, stored, got, tc.want)
		}
	}
}
