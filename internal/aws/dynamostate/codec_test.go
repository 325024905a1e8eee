package dynamostate

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/catalog-import/catalog-import/internal/aws/dynamoattr"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/state"
)

// TestFailureKeysSortLikeSheetThenRow: the sort keys of failure records
// order them as SQLite does, sheets bytewise (a sheet before any longer
// sheet it prefixes) and then rows numerically, whatever bytes the sheet
// names hold.
func TestFailureKeysSortLikeSheetThenRow(t *testing.T) {
	alphabet := []string{"", " ", "!", "\"", "#", "$", "%", "-", "0", "A", "a", "~", "\x00", "\x01", "é", "价", "表"}
	rnd := rand.New(rand.NewPCG(7, 11))
	type key struct {
		sheet string
		row   int64
	}
	var keys []key
	for range 3000 {
		var b strings.Builder
		for range rnd.IntN(4) {
			b.WriteString(alphabet[rnd.IntN(len(alphabet))])
		}
		keys = append(keys, key{b.String(), rnd.Int64N(maxRow + 1)})
	}
	keys = append(keys, key{"Sheet", 2}, key{"Sheet 2", 1}, key{"Sheet#", 1}, key{"-", maxRow}, key{"-", 0})
	bySheetRow := slices.Clone(keys)
	slices.SortFunc(bySheetRow, func(a, b key) int {
		if c := strings.Compare(a.sheet, b.sheet); c != 0 {
			return c
		}
		return int(a.row - b.row)
	})
	for i := 1; i < len(bySheetRow); i++ {
		a, b := bySheetRow[i-1], bySheetRow[i]
		ka, kb := failSK(a.sheet, a.row), failSK(b.sheet, b.row)
		if a != b && ka >= kb {
			t.Fatalf("(%q, %d) < (%q, %d) but key %q >= %q", a.sheet, a.row, b.sheet, b.row, ka, kb)
		}
	}
	for _, k := range keys {
		sk := failSK(k.sheet, k.row)
		if !strings.HasPrefix(sk, failPrefix) || sk >= failEnd {
			t.Errorf("key %q outside [%q, %q)", sk, failPrefix, failEnd)
		}
	}
	if got := failSK("Sheet 2", 7); got != "FAIL#Sheet$202#000000000007" {
		t.Errorf("failSK(Sheet 2, 7) = %q", got)
	}
}

// TestItemsRoundTrip: batch, shard and failure items decode to what was
// encoded, with UTC times.
func TestItemsRoundTrip(t *testing.T) {
	cst := time.FixedZone("CST", 8*3600)
	at := time.Date(2031, 3, 14, 23, 9, 26, 535897932, cst)
	b := state.Batch{ID: "b1", Status: state.BatchCompletedWithErrors, Source: state.Source{URI: "s3://x/y", Size: 9, ETag: `"e"`, ModTime: at},
		Layout: state.Layout{Format: "csv", Header: []string{"a", ""}}, Profile: []byte{0, 0xff}, Shards: 3, ShardsDone: 2,
		Counts: state.Counts{Total: 9, Imported: 5, Failed: 3, Skipped: 1}, ByReason: map[failure.Reason]int64{failure.MissingField: 3},
		CreatedAt: at, UpdatedAt: at, FinishedAt: at}
	bi, err := batchItem(b, "c")
	if err != nil {
		t.Fatal(err)
	}
	gb, err := decodeBatch(bi)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(b, gb); d != "" {
		t.Errorf("batch (-want +got):\n%s", d)
	}
	if gb.CreatedAt.Location() != time.UTC || !gb.CreatedAt.Equal(at) {
		t.Errorf("CreatedAt %v", gb.CreatedAt)
	}
	sh := state.Shard{BatchID: "b1", Index: 42, Sheet: "价格表", Status: state.ShardEscalated, Epoch: 3, Owner: "w", LeaseUntil: at.UTC(), UpdatedAt: at.UTC(),
		Checkpoint: state.Checkpoint{NextOffset: 1 << 40, NextRow: 99, Counts: state.Counts{Total: 4, Imported: 1, Failed: 2, Skipped: 1}},
		Progress: []state.Sample{{At: at.UTC().Truncate(time.Millisecond), Done: 2, Failed: 0},
			{At: at.UTC().Add(time.Second).Truncate(time.Millisecond), Done: 4, Failed: 2, ByLayer: state.LayerCounts{Syntax: 1, Infrastructure: 1}}}}
	for _, staged := range []*state.Staged{nil, {URI: "s3://b/staging/b1/0001-00000.csv", Size: 7, ETag: `"e"`, Header: []string{"sku", "名称"}}} {
		sh.Staged = staged
		si, err := shardItem(sh)
		if err != nil {
			t.Fatal(err)
		}
		gs, err := decodeShard(si)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(sh, gs); d != "" {
			t.Errorf("shard (-want +got):\n%s", d)
		}
	}
}

// TestFailureItemsFitWriteUnits: a failure record of an ordinary row whose
// raw line and cells take it over 1 KB (a write unit, two in the
// checkpoint's transaction) is stored with them compressed, in fewer units;
// one under 1 KB, or one that compression would not make smaller in units,
// is stored as is. Every form decodes to the record.
func TestFailureItemsFitWriteUnits(t *testing.T) {
	at := time.Date(2031, 3, 14, 23, 9, 26, 0, time.UTC)
	record := func(desc string) failure.Record {
		cells := []string{"SKU-000123", "Wireless Mouse blue 77", "电子/鼠标", "Logi", "12.5x", "CNY", "17", "active", desc, "https://img.example.com/SKU-000123.jpg"}
		return failure.Record{BatchID: "b-" + strings.Repeat("0f", 32), Sheet: "-", Row: 125, Layer: failure.LayerSemantic, Reason: failure.InvalidNumber,
			Field: "price", Message: `row 125: price "12.5x" is not a decimal number`, RuleVersion: "r-" + strings.Repeat("ab", 8),
			FieldMapping: map[string]string{"sku": "sku", "name": "name", "category": "category", "brand": "brand", "price": "price", "currency": "currency",
				"stock": "stock", "status": "status", "description": "description", "image_urls": "image_urls"},
			FailureAt: at, TraceID: "1-5f84c7a5-" + strings.Repeat("a", 24), Shard: 3,
			RawLine: strings.Join(cells, ","), Cells: cells}
	}
	units := func(it item) int { return (dynamoattr.Size(it) + 1023) / 1024 }
	for _, tc := range []struct {
		name   string
		desc   string
		raw    string // a raw line without cells (a malformed row), if set
		zipped bool
	}{
		{"under a unit", "", "", false},
		{"just over a unit", "Size: 12\" screen, black and white finish,\nincludes \"pro\" edition accessories, 14-day return policy and more text here", "", true},
		{"random bytes do not compress", "", randomText(1100), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := record(tc.desc)
			if tc.raw != "" {
				r.RawLine, r.Cells = tc.raw, nil
			}
			it, err := failureItem(r, layoutSpread, 0)
			if err != nil {
				t.Fatal(err)
			}
			plain := dynamoattr.Size(it)
			if _, ok := it["raw_gz"]; ok != tc.zipped {
				t.Errorf("raw_gz stored: %v, want %v (item %d bytes)", ok, tc.zipped, plain)
			}
			if tc.zipped && units(it) != 1 {
				t.Errorf("compressed item %d bytes: %d write units, want 1", plain, units(it))
			}
			got, err := decodeFailure(it)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(r, got); d != "" {
				t.Errorf("record (-want +got):\n%s", d)
			}
		})
	}
}

func randomText(n int) string {
	rnd := rand.New(rand.NewPCG(3, 5))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('!' + rnd.IntN(90))
	}
	return string(b)
}

// TestFailPartIsStable pins the partition of a failure record's key (FNV-1a
// of the sheet, a NUL and the row's digits, modulo 16; the figures computed
// apart from this code): a record must land in the same partition whichever
// deploy writes, replays or resolves it (invariant 4), so a change of the
// function breaks batches in flight, which no other test would show.
func TestFailPartIsStable(t *testing.T) {
	for _, tc := range []struct {
		sheet string
		row   int64
		want  int
	}{
		{"-", 2, 14},
		{"-", 1000, 9},
		{"Sheet1", 7, 2},
		{"价格表", 123456789012, 12},
	} {
		if got := failPart(tc.sheet, tc.row); got != tc.want {
			t.Errorf("failPart(%q, %d) = %d, want %d", tc.sheet, tc.row, got, tc.want)
		}
	}
	if got, want := failPK("b-1", layoutSpread, "-", 2), "BATCH#b-1#F14"; got != want {
		t.Errorf("failPK = %q, want %q", got, want)
	}
}
