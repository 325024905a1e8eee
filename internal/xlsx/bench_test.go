package xlsx

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/xuri/excelize/v2"
)

// benchRows is the size of the benchmark's sheet.
const benchRows = 50_000

// writeBenchBook writes a product sheet of benchRows rows (strings as
// shared strings, numbers as numbers, a date column) with excelize.
func writeBenchBook(b *testing.B) string {
	b.Helper()
	f := excelize.NewFile()
	defer f.Close()
	date, _ := f.NewStyle(&excelize.Style{NumFmt: 14})
	for r := range benchRows + 1 {
		row := []any{"sku", "name", "category", "price", "stock", "listed", "description"}
		if r > 0 {
			row = []any{fmt.Sprintf("SKU-%06d", r), fmt.Sprintf("商品名称 %d", r), "家居/灯具", float64(r%5000) + 0.99, r % 300, 45000 + r%1000,
				"A description of the product, long enough to look like one: warm white, 9 W, E27."}
		}
		cell, _ := excelize.CoordinatesToCellName(1, r+1)
		if err := f.SetSheetRow("Sheet1", cell, &row); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.SetColStyle("Sheet1", "F", date); err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "bench.xlsx")
	if err := f.SaveAs(path); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkReadSheet reads every row of a 50k-row product sheet: open
// (directory checks, styles, shared strings) and stream.
func BenchmarkReadSheet(b *testing.B) {
	path := writeBenchBook(b)
	b.ResetTimer()
	for b.Loop() {
		wb, err := Open(path, Limits{})
		if err != nil {
			b.Fatal(err)
		}
		rows, err := wb.Rows(wb.Sheets()[0])
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for rows.Next() {
			n++
		}
		if rows.Err() != nil || n != benchRows+1 {
			b.Fatalf("%d rows, %v", n, rows.Err())
		}
		rows.Close()
		wb.Close()
	}
	b.ReportMetric(float64(benchRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
