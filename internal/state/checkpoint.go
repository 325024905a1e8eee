package state

// Behind reports whether cp is before the stored checkpoint in any respect:
// its NextRow, its NextOffset or any of its counts (superseded included) is lower. Checkpoints
// only move forward (invariant 3), so a store that is handed a checkpoint
// Behind the one it holds keeps its own: Checkpoint changes nothing but the
// lease, FinishShard finishes the shard at the stored checkpoint. Every
// adapter decides with this one predicate.
func Behind(cp, stored Checkpoint) bool {
	c, s := cp.Counts, stored.Counts
	return cp.NextRow < stored.NextRow || cp.NextOffset < stored.NextOffset ||
		c.Total < s.Total || c.Imported < s.Imported || c.Superseded < s.Superseded || c.Failed < s.Failed || c.Skipped < s.Skipped
}
