package lineage

import (
	"testing"

	"github.com/catalog-import/catalog-import/internal/state"
)

func TestParent(t *testing.T) {
	csvLayout := state.Layout{Format: "csv", Encoding: "utf-8", Delimiter: ",", Header: []string{"sku", "price", "_source_row", "_error", "_batch"}}
	cases := []struct {
		name   string
		layout state.Layout
		data   string
		whole  bool
		want   string
	}{
		{"fix file", csvLayout, "A-1,abc,7,InvalidNumber: x (price),b-123\r\nA-2,1,9,x,b-123\r\n", true, "b-123"},
		{"blank lines first", csvLayout, "\r\n,,,,\r\nA-1,abc,7,e,b-9\r\n", true, "b-9"},
		{"first row cut by the prefix", csvLayout, "A-1,abc,7,e,b-12", false, ""},
		{"first row whole in the prefix", csvLayout, "A-1,abc,7,e,b-12\r\nA-2", false, "b-12"},
		{"last row of a whole file without newline", csvLayout, "A-1,abc,7,e,b-12", true, "b-12"},
		{"no _batch column", state.Layout{Format: "csv", Encoding: "utf-8", Header: []string{"sku", "_source_row"}}, "A,7\n", true, ""},
		{"ordinary file", state.Layout{Format: "csv", Encoding: "utf-8", Header: []string{"sku", "price"}}, "A,1\n", true, ""},
		{"jsonl", state.Layout{Format: "jsonl", Encoding: "utf-8"}, `{"sku":"A","_source_row":4,"_error":"e","_batch":"b-j"}` + "\n", true, "b-j"},
		{"jsonl without link", state.Layout{Format: "jsonl", Encoding: "utf-8"}, `{"sku":"A"}` + "\n", true, ""},
		{"tsv", state.Layout{Format: "tsv", Encoding: "utf-8", Delimiter: "\t", Header: []string{"sku", "_source_row", "_error", "_batch"}}, "A\t3\te\tb-t\n", true, "b-t"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Parent(c.layout, []byte(c.data), c.whole, 2, 1<<20); got != c.want {
				t.Errorf("Parent = %q, want %q", got, c.want)
			}
		})
	}
}

// FuzzParent: any bytes under a fix file's layout give a parent or "",
// never a panic.
func FuzzParent(f *testing.F) {
	f.Add([]byte("A-1,abc,7,e,b-123\r\n"), true)
	f.Add([]byte("\"A,\"\"1\",x,\r\n"), false)
	layout := state.Layout{Format: "csv", Encoding: "utf-8", Delimiter: ",", Header: []string{"sku", "price", "_source_row", "_error", "_batch"}}
	f.Fuzz(func(t *testing.T, data []byte, whole bool) {
		Parent(layout, data, whole, 2, 4096)
	})
}
