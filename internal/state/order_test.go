package state_test

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"
	"time"

	"github.com/catalog-import/catalog-import/internal/state"
)

// TestOrderAt: the AWS upload order is the event time in milliseconds
// times 1e6 plus a tie-breaker from the batch id, so later uploads are
// newer and two uploads of one millisecond are ordered by id, the same way
// every time.
func TestOrderAt(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 2, 6, 30, 0, 123_000_000, time.UTC)
	sum := sha256.Sum256([]byte("b-1"))
	want := at.UnixMilli()*1_000_000 + int64(binary.BigEndian.Uint64(sum[:8])%1_000_000)
	if got := state.OrderAt(at, "b-1"); got != want {
		t.Errorf("OrderAt = %d, want %d", got, want)
	}
	if state.OrderAt(at, "b-1") != state.OrderAt(at.Add(999*time.Microsecond), "b-1") {
		t.Errorf("the order depends on more than the millisecond")
	}
	for _, id := range []string{"a", "b", "c", "b-1", "b-2"} {
		o := state.OrderAt(at, id)
		if o <= 0 || o >= state.OrderAt(at.Add(time.Millisecond), "zzz") {
			t.Errorf("OrderAt(%s) = %d: not below every order of the next millisecond", id, o)
		}
	}
	if state.OrderAt(at, "a") == state.OrderAt(at, "b") {
		t.Errorf("two ids of one millisecond have the same order")
	}
}
