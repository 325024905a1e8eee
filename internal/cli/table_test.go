package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mattn/go-runewidth"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/state"
)

// TestTablesAlignCJK: the failures and shards tables of a workbook whose
// sheets have Chinese names stay aligned on a terminal: every column starts
// at the same display column on every line (tabwriter counted characters,
// and a Chinese character is two columns wide). Golden:
// testdata/golden/table-cjk.txt.
func TestTablesAlignCJK(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	fw := newFailureTable(&out, true)
	for _, r := range []failure.Record{
		{Sheet: "商品", Row: 2, Reason: failure.InvalidNumber, Field: "price", Message: `price "十二" is not a number`},
		{Sheet: "Sheet1", Row: 10, Reason: failure.MissingField, Field: "name", Message: "name is required but empty"},
		{Sheet: "库存清单（二月）", Row: 1234, Reason: failure.DuplicateSKU, Field: "sku", ResolvedBy: "b-9f2c", Message: `SKU "A-1" is also on row 2`},
	} {
		if err := fw.write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := fw.close(); err != nil {
		t.Fatal(err)
	}
	tw := newTable(&out)
	printShards(tw, state.Batch{Layout: state.Layout{Format: "xlsx"}}, []state.Shard{
		{Index: 0, Sheet: "商品", Status: state.ShardDone, Rows: 1200, FirstRow: 2, Start: 0, End: 52341},
		{Index: 1, Sheet: "库存清单（二月）", Status: state.ShardDone, Rows: 15, FirstRow: 2, Start: 0, End: 812},
	})
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	got := out.String()

	// Each block (lines with cells, up to a blank line): a column starts at
	// the same display column on every line.
	for _, block := range strings.Split(strings.TrimSpace(got), "\n\n") {
		lines := strings.Split(block, "\n")
		starts := columnStarts(lines[0])
		for _, l := range lines[1:] {
			if s := columnStarts(l); !cmp.Equal(s[:min(len(s), len(starts))], starts[:min(len(s), len(starts))]) {
				t.Errorf("columns of %q start at %v, the header's at %v:\n%s", l, s, starts, block)
			}
		}
	}
	path := filepath.Join("testdata", "golden", "table-cjk.txt")
	if *update {
		os.WriteFile(path, []byte(got), 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("differs from %s (-want +got):\n%s", path, diff)
	}
}

// columnStarts is the display column where each cell after the first of a
// table line starts (after a run of two spaces or more).
func columnStarts(line string) []int {
	var starts []int
	col, spaces := 0, 0
	for _, r := range line {
		if r == ' ' {
			spaces++
		} else {
			if spaces >= tablePadding && col > spaces {
				starts = append(starts, col)
			}
			spaces = 0
		}
		col += runewidth.RuneWidth(r)
	}
	return starts
}
