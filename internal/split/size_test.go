package split_test

import (
	"strings"
	"testing"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/split"
)

// TestSizeGuard: a CSV, TSV or JSON Lines file over Options.MaxText is
// REJECTED (RowTooLarge) with a message naming its size, the limit and
// what to do, and no shard; at the limit, or without one, it is planned.
func TestSizeGuard(t *testing.T) {
	t.Parallel()
	csv := []byte("sku,name,category,price\nA-1,Lamp,Home,9.50\nA-2,Desk,Home,99.00\n")
	jsonl := []byte(`{"sku":"A-1","name":"Lamp","category":"Home","price":"9.50"}` + "\n")
	for _, tc := range []struct {
		name    string
		content []byte
		max     int64
		reject  bool
	}{
		{"p.csv", csv, int64(len(csv)) - 1, true},
		{"p.csv", csv, int64(len(csv)), false},
		{"p.csv", csv, 0, false},
		{"p.tsv", []byte(strings.ReplaceAll(string(csv), ",", "\t")), 10, true},
		{"p.jsonl", jsonl, 10, true},
	} {
		p := plan(t, tc.name, tc.content, split.Options{MaxText: tc.max})
		if !tc.reject {
			if p.Rejected != nil || len(p.Shards) == 0 {
				t.Errorf("%s under a limit of %d: rejected %v, %d shards", tc.name, tc.max, p.Rejected, len(p.Shards))
			}
			continue
		}
		msg := ""
		if p.Rejected != nil {
			msg = p.Rejected.Error()
		}
		if failure.ReasonOf(p.Rejected) != failure.RowTooLarge || len(p.Shards) != 0 {
			t.Errorf("%s over a limit of %d: rejected %v with %d shards, want RowTooLarge", tc.name, tc.max, p.Rejected, len(p.Shards))
		}
		for _, want := range []string{"file rejected", "bytes), over the limit of", "split it into smaller files", "MaxUploadBytes"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: message %q does not say %q", tc.name, msg, want)
			}
		}
	}
	if got := split.TooLarge(12<<30+300<<20, 10<<30).Error(); !strings.Contains(got, "it is 12.3 GiB (13199474688 bytes), over the limit of 10.0 GiB (10737418240 bytes)") {
		t.Errorf("message %q", got)
	}
}
