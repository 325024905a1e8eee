package split_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/catalog-import/catalog-import/internal/local/file"
	"github.com/catalog-import/catalog-import/internal/profile"
	"github.com/catalog-import/catalog-import/internal/record/recordtest"
	"github.com/catalog-import/catalog-import/internal/split"
)

// BenchmarkPlan measures planning a 20k-row file (5% heavy rows in one
// cluster) without a weight, with the byte-size weight (no parsing) and
// with an expression over fields (every row parsed and weighed).
func BenchmarkPlan(b *testing.B) {
	var buf bytes.Buffer
	if err := recordtest.WriteProducts(&buf, recordtest.Options{Rows: 20_000, Seed: 1, Heavy: func(r int64) bool { return r >= 8000 && r < 9000 }}); err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "p.csv")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	src := &file.Source{}
	info, err := src.Stat(context.Background(), path)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct{ name, profile string }{
		{"no-weight", "name: p\n"},
		{"bytes", "name: p\nweight: {expression: bytes}\n"},
		{"fields", "name: p\nweight: {expression: '1 + len(image_urls) / 20 + len(description) / 3000'}\n"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p, err := profile.Parse([]byte(bc.profile))
			if err != nil {
				b.Fatal(err)
			}
			v, _ := p.Compile()
			b.SetBytes(info.Size)
			for b.Loop() {
				if _, err := split.PlanSource(context.Background(), src, info, v, split.Options{ShardRows: 2500}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(20_000*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
