package profile

import (
	"testing"
)

// benchRows are the rows BenchmarkValidate checks, by name.
var benchRows = []struct {
	name  string
	cells []string
}{
	{"valid-full", []string{"SKU-000123", "Stainless steel tea cup 350ml", "Kitchen", "Acme", "12.50", "cny", "100", "Active", "A porcelain cup, dishwasher safe.", "https://img.example.com/a/123.jpg"}},
	{"valid-required-only", []string{"SKU-000123", "Stainless steel tea cup 350ml", "Kitchen", "", "12.5", "", "", "", "", ""}},
	{"valid-chinese", []string{"HH-20240001", "不锈钢保温杯 350毫升", "厨房用品", "品牌", "128", "CNY", "20", "active", "双层真空，保温 12 小时。", "https://图片.中国/1.jpg|https://图片.中国/2.jpg"}},
	{"invalid-price", []string{"SKU-000123", "Stainless steel tea cup 350ml", "Kitchen", "Acme", "12,50", "cny", "100", "Active", "", ""}},
}

// BenchmarkValidate measures Validate on one row of the default profile
// (rows/s is per goroutine; "parallel" runs GOMAXPROCS goroutines).
func BenchmarkValidate(b *testing.B) {
	v := compile(b, Default())
	c := header(b, v, fieldNames[:]...)
	for _, r := range benchRows {
		b.Run(r.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = v.Validate(c, r.cells)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
	b.Run("parallel-valid-full", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := v.Validate(c, benchRows[0].cells); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	})
	b.Run("names-cached", func(b *testing.B) {
		keys := fieldNames[:]
		b.ReportAllocs()
		for b.Loop() {
			v.Names(keys)
		}
	})
}
