package state_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/catalog-import/catalog-import/internal/object"
	"github.com/catalog-import/catalog-import/internal/record"
	"github.com/catalog-import/catalog-import/internal/state"
)

func TestSourceInfo(t *testing.T) {
	t.Parallel()
	at := time.Date(2031, 3, 14, 15, 9, 26, 0, time.UTC)
	s := state.Source{URI: "s3://b/k.csv", Size: 42, ETag: `"e"`, Version: "v1", ModTime: at}
	want := object.Info{URI: "s3://b/k.csv", Size: 42, ETag: `"e"`, Version: "v1", ModTime: at}
	if got := s.Info(); !reflect.DeepEqual(got, want) {
		t.Errorf("Info() = %+v, want %+v", got, want)
	}
}

func TestLayoutDialect(t *testing.T) {
	t.Parallel()
	cases := []struct {
		layout state.Layout
		want   record.Dialect
	}{
		{state.Layout{Format: "csv", Encoding: "utf-8"}, record.Dialect{Format: record.CSV, Encoding: record.UTF8}},
		{state.Layout{Format: "csv", Encoding: "gb18030", Delimiter: ";"}, record.Dialect{Format: record.CSV, Encoding: record.GB18030, Delimiter: ';'}},
		{state.Layout{Format: "tsv", Encoding: "utf-16le", Delimiter: "\t"}, record.Dialect{Format: record.TSV, Encoding: record.UTF16LE, Delimiter: '\t'}},
		{state.Layout{Format: "csv", Encoding: "utf-8", Delimiter: "¦"}, record.Dialect{Format: record.CSV, Encoding: record.UTF8, Delimiter: '¦'}},
		// Not one character: the format's default.
		{state.Layout{Format: "csv", Encoding: "utf-8", Delimiter: ";;"}, record.Dialect{Format: record.CSV, Encoding: record.UTF8}},
		{state.Layout{Format: "jsonl", Encoding: "utf-8", Header: []string{"a"}, DataStart: 3}, record.Dialect{Format: record.JSONL, Encoding: record.UTF8}},
	}
	for _, tc := range cases {
		if got := tc.layout.Dialect(); got != tc.want {
			t.Errorf("%+v.Dialect() = %+v, want %+v", tc.layout, got, tc.want)
		}
	}
}
