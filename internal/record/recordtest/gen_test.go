package recordtest

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"
	"unicode/utf8"
)

func gen(t *testing.T, rows int, seed int64, faults bool) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := WriteProductCSV(&b, rows, seed, faults); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestDeterministic(t *testing.T) {
	t.Parallel()
	if !bytes.Equal(gen(t, 500, 3, true), gen(t, 500, 3, true)) {
		t.Fatal("same seed, different output")
	}
	if bytes.Equal(gen(t, 500, 3, false), gen(t, 500, 4, false)) {
		t.Fatal("different seeds, same output")
	}
}

func TestRowsAndFaults(t *testing.T) {
	t.Parallel()
	const n = 2000
	for _, faults := range []bool{false, true} {
		data := gen(t, n, 11, faults)
		r := csv.NewReader(bytes.NewReader(data))
		recs, err := r.ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != n+1 || strings.Join(recs[0], ",") != Header {
			t.Fatalf("%d records, header %q", len(recs), recs[0])
		}
		col := map[string]int{}
		for i, h := range recs[0] {
			col[h] = i
		}
		quoted, multiline, bad := 0, 0, 0
		for i, rec := range recs[1:] {
			row := int64(i) + 2
			if len(rec) != 10 {
				t.Fatalf("row %d has %d cells", row, len(rec))
			}
			if strings.Contains(rec[col["description"]], "\n") {
				multiline++
			}
			if strings.Contains(rec[col["description"]], `"`) {
				quoted++
			}
			f := FaultOf(row)
			if !faults {
				f = ""
			}
			if f != "" {
				bad++
			}
			field, _ := Expected(f)
			v := ""
			if field != "" {
				v = rec[col[field]]
			}
			switch f {
			case "":
				if rec[col["sku"]] != SKU(row) || rec[col["name"]] == "" || rec[col["price"]] == "" || rec[col["status"]] == "deleted" {
					t.Fatalf("row %d should be valid: %q", row, rec)
				}
			case FaultMissingPrice:
				ok(t, row, f, v == "")
			case FaultPriceNotNumber:
				ok(t, row, f, v == "abc")
			case FaultPriceDecimals:
				ok(t, row, f, v == "12.345")
			case FaultNegativeStock:
				ok(t, row, f, v == "-5")
			case FaultBadCurrency:
				ok(t, row, f, v == "RMB")
			case FaultBadStatus:
				ok(t, row, f, v == "deleted")
			case FaultDuplicateSKU:
				ok(t, row, f, v == SKU(row-1) && FaultOf(row-1) == "")
			case FaultBadURL:
				ok(t, row, f, !strings.HasPrefix(v, "http"))
			case FaultEmptyName:
				ok(t, row, f, v == "")
			default:
				t.Fatalf("row %d: unknown fault %q", row, f)
			}
		}
		if frac := float64(multiline) / n; frac < 0.3 || frac > 0.5 {
			t.Errorf("%.0f%% multi-line descriptions", 100*frac)
		}
		if quoted != multiline {
			t.Errorf("%d quoted, %d multi-line", quoted, multiline)
		}
		if want := 0; !faults && bad != want || faults && (bad < n/25 || bad > n/15) {
			t.Errorf("faults=%v: %d faulty rows", faults, bad)
		}
	}
}

func ok(t *testing.T, row int64, fault string, cond bool) {
	t.Helper()
	if !cond {
		t.Fatalf("row %d: fault %s not present", row, fault)
	}
}

func TestFaultOf(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for row := int64(-5); row < 400; row++ {
		f := FaultOf(row)
		if f != "" {
			seen[f] = true
			if row%FaultEvery != FaultPhase || FaultOf(row-1) != "" {
				t.Fatalf("row %d: %s", row, f)
			}
			if field, reason := Expected(f); field == "" || !reason.Known() {
				t.Fatalf("fault %s: %q %q", f, field, reason)
			}
		}
	}
	if len(seen) != len(Faults) {
		t.Fatalf("faults seen: %v", seen)
	}
	if FaultOf(1) != "" || FaultOf(7) == "" {
		t.Fatal("first faulty row should be row 7")
	}
}

// TestHeavyRows: heavy rows have the long description and the image list,
// many times the bytes of the others, and every other row is exactly what
// WriteProductCSV writes.
func TestHeavyRows(t *testing.T) {
	t.Parallel()
	const n = 2000
	heavy := func(row int64) bool { return row >= 1000 && row < 1100 }
	var b bytes.Buffer
	if err := WriteProducts(&b, Options{Rows: n, Seed: 5, Faults: true, Heavy: heavy}); err != nil {
		t.Fatal(err)
	}
	plain, err := csv.NewReader(bytes.NewReader(gen(t, n, 5, true))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(plain) {
		t.Fatalf("%d records, want %d", len(recs), len(plain))
	}
	size := func(rec []string) int { return len(strings.Join(rec, ",")) }
	var light, heavySize, lightN, heavyN int
	for i, rec := range recs[1:] {
		row := int64(i) + 2
		if !heavy(row) {
			if strings.Join(rec, ",") != strings.Join(plain[i+1], ",") {
				t.Fatalf("row %d differs from WriteProductCSV's", row)
			}
			light, lightN = light+size(rec), lightN+1
			continue
		}
		images := strings.Count(rec[9], "|") + 1
		if utf8.RuneCountInString(rec[8]) != HeavyDescription || images != HeavyImages && FaultOf(row) != FaultBadURL || rec[0] != plain[i+1][0] {
			t.Fatalf("heavy row %d: description %d characters, %d images, sku %q", row, utf8.RuneCountInString(rec[8]), images, rec[0])
		}
		heavySize, heavyN = heavySize+size(rec), heavyN+1
	}
	ratio := float64(heavySize/heavyN) / float64(light/lightN)
	t.Logf("heavy rows: %.1fx the bytes", ratio)
	if heavyN != 100 || ratio < 50 {
		t.Errorf("%d heavy rows, %.1fx the bytes of a light row; want 100 at 50x or more", heavyN, ratio)
	}
}
