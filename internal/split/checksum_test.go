package split_test

import (
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/catalog-import/catalog-import/internal/split"
)

// TestChecksumAppend checks that a checksum built from blocks' checksums
// (Append) is the checksum of the blocks' records added one by one, which
// is CRC-32C over each record and a newline.
func TestChecksumAppend(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	record := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return b
	}
	for _, tc := range []struct {
		name   string
		blocks [][]int // record lengths per block
	}{
		{"no blocks", nil},
		{"one empty block", [][]int{{}}},
		{"one record", [][]int{{5}}},
		{"empty records", [][]int{{0, 0}, {0}}},
		{"blocks", [][]int{{1, 2, 3}, {200, 17}, {4096}, {}, {1, 65537}}},
		{"a long block first", [][]int{{1 << 20}, {3}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			direct, combined := split.NewChecksum(), split.NewChecksum()
			var all []byte
			for _, lens := range tc.blocks {
				block := split.NewChecksum()
				for _, n := range lens {
					rec := record(n)
					direct.Add(rec)
					block.Add(rec)
					all = append(append(all, rec...), '\n')
				}
				combined.Append(block)
			}
			want := fmt.Sprintf("crc32c:%08x", crc32.Checksum(all, crc32.MakeTable(crc32.Castagnoli)))
			if got := direct.String(); got != want {
				t.Errorf("added one by one: %s, want %s", got, want)
			}
			if got := combined.String(); got != want {
				t.Errorf("appended blocks: %s, want %s", got, want)
			}
			if !strings.HasSuffix(want, combined.Hex()) {
				t.Errorf("Hex %s is not the end of %s", combined.Hex(), want)
			}
		})
	}
}

// BenchmarkChecksum measures a shard's checksums of 225-byte records in
// blocks of 100: each record summed in its block and in the shard's
// checksum (before decision 28's last steps), or summed in its block only,
// the block appended to the shard's checksum.
func BenchmarkChecksum(b *testing.B) {
	rec := []byte(strings.Repeat("x", 224))
	for _, tc := range []struct {
		name   string
		append bool
	}{{"twice", false}, {"append", true}} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(rec)+1) * 100)
			sum := split.NewChecksum()
			for b.Loop() {
				block := split.NewChecksum()
				for range 100 {
					block.Add(rec)
					if !tc.append {
						sum.Add(rec)
					}
				}
				if tc.append {
					sum.Append(block)
				}
			}
		})
	}
}
