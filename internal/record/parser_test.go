package record

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/catalog-import/catalog-import/internal/failure"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// parseOne parses a single record (the whole input) with header.
func parseOne(d Dialect, header []string, in []byte) Row {
	s := NewScanner(bytes.NewReader(in), d, 0, 2, 1<<10)
	if !s.Next() {
		return Row{Err: s.Err()}
	}
	return NewParser(d, header).Parse(s.Raw())
}

func errOf(t *testing.T, err error) (failure.Reason, string) {
	t.Helper()
	if err == nil {
		return "", ""
	}
	ie, ok := failure.As(err)
	if !ok {
		t.Fatalf("error %v is not an ImportError", err)
	}
	if ie.Layer != failure.LayerSyntax && ie.Reason != failure.InvalidValue {
		t.Fatalf("error %v is in layer %s", err, ie.Layer)
	}
	return ie.Reason, ie.Field
}

func TestParseCSV(t *testing.T) {
	t.Parallel()
	header := []string{"sku", "name", "price"}
	tests := []struct {
		name    string
		d       Dialect
		in      string
		values  []string
		cells   []string
		reason  failure.Reason
		field   string
		message string // substring
		length  int64  // the record's length; 0: all of in
	}{
		{name: "plain", in: "a,b,c", values: []string{"a", "b", "c"}},
		{name: "not trimmed", in: " a , b,c ", values: []string{" a ", " b", "c "}},
		{name: "quoted delimiter", in: `a,"b,c",d`, values: []string{"a", "b,c", "d"}},
		{name: "doubled quotes", in: `a,"say ""hi""",""`, values: []string{"a", `say "hi"`, ""}},
		{name: "quoted newline", in: "a,\"x\ny\",z\n", values: []string{"a", "x\ny", "z"}},
		// Control characters (C0 but tab, CR, LF) are InvalidValue in any
		// cell, quoted or not, in every encoding.
		{name: "NUL", in: "a,b\x00c,d", values: []string{"a", "b\x00c", "d"}, reason: failure.InvalidValue, field: "name", message: `control character U+0000 in column "name" (cell 2)`},
		{name: "NUL quoted", in: "a,b,\"\x00\"", values: []string{"a", "b", "\x00"}, reason: failure.InvalidValue, field: "price", message: "U+0000"},
		{name: "bell", in: "\x07,b,c", values: []string{"\x07", "b", "c"}, reason: failure.InvalidValue, field: "sku", message: "U+0007"},
		{name: "escape char", in: "a,b,c\x1b", values: []string{"a", "b", "c\x1b"}, reason: failure.InvalidValue, field: "price", message: "U+001B"},
		{name: "unit separator in an extra cell", in: "a,b,c,\x1f", values: []string{"a", "b", "c"}, cells: []string{"a", "b", "c", "\x1f"}, reason: failure.InvalidValue, message: "cell 4"},
		{name: "tab CR LF are text", in: "a,\"b\tc\rd\ne\",f", values: []string{"a", "b\tc\rd\ne", "f"}},
		{name: "DEL and C1 are text", in: "a,b\x7f,c\u0085", values: []string{"a", "b\x7f", "c\u0085"}},
		{name: "NUL in utf-16", d: tsv16LE, in: string(le("a\tb\x00\tc")), values: []string{"a", "b\x00", "c"}, reason: failure.InvalidValue, field: "name"},
		{name: "NUL in gb18030", d: csvGB, in: "\xb5\xe7,\x00,c", values: []string{"电", "\x00", "c"}, reason: failure.InvalidValue, field: "name"},
		{name: "quoted CRLF is kept", in: "a,\"x\r\ny\r\n\",z\r\n", values: []string{"a", "x\r\ny\r\n", "z"}},
		{name: "quoted lone CR is kept", in: "a,\"x\ry\",z", values: []string{"a", "x\ry", "z"}},
		{name: "quoted CRLF with doubled quotes", in: "a,\"\"\"x\"\"\r\ny\",z", values: []string{"a", "\"x\"\r\ny", "z"}},
		{name: "lone CR kept", in: "a,\"x\ry\",z", values: []string{"a", "x\ry", "z"}},
		{name: "bare quote literal", in: `A2,TV 5" remote,19.90`, values: []string{"A2", `TV 5" remote`, "19.90"}},
		{name: "empty cells", in: ",,", values: []string{"", "", ""}},
		{name: "trailing empty extra cells ok", in: "a,b,c,,", values: []string{"a", "b", "c"}, cells: []string{"a", "b", "c", "", ""}},
		{name: "extra non-empty cell", in: "a,b,c,d", values: []string{"a", "b", "c"}, cells: []string{"a", "b", "c", "d"},
			reason: failure.SchemaMismatch, message: "row has 4 cells, header has 3"},
		{name: "fewer cells", in: "a,b", values: []string{"a", "b"}, reason: failure.SchemaMismatch, message: "row has 2 cells, header has 3"},
		{name: "text after closing quote", in: `a,"b"x,c`, values: []string{"a", `b"x`, "c"},
			reason: failure.MalformedRow, field: "name", message: `column "name" (cell 2)`},
		// The row ends at the end of the open quote's line (Limits).
		{name: "unbalanced quote", in: "a,b,\"c\nd", values: []string{"a", "b", "c"}, length: 7,
			reason: failure.MalformedRow, field: "price", message: `unbalanced quote in column "price" (cell 3): the quoted cell does not close within 1000 lines and 262144 bytes`},
		{name: "unbalanced quote in a middle cell", in: "a,\"b,c\nd", values: []string{"a", "b,c"}, length: 7,
			reason: failure.MalformedRow, field: "name", message: `unbalanced quote in column "name" (cell 2)`},
		{name: "invalid utf-8", in: "a,b\xff,c", values: []string{"a", "b\uFFFD", "c"},
			reason: failure.InvalidEncoding, field: "name", message: `column "name"`},
		{name: "invalid utf-8 in extra cell", in: "a,b,c,\xff", values: []string{"a", "b", "c"}, cells: []string{"a", "b", "c", "\uFFFD"},
			reason: failure.InvalidEncoding, message: "cell 4"},
		{name: "real U+FFFD is fine", in: "a,\uFFFD,c", values: []string{"a", "\uFFFD", "c"}},
		{name: "tsv", d: tsvUTF8, in: "a\t\"b\tc\"\t,", values: []string{"a", "b\tc", ","}},
		{name: "semicolon", d: Dialect{Format: CSV, Encoding: UTF8, Delimiter: ';'}, in: `a;"b;c";1,5`, values: []string{"a", "b;c", "1,5"}},
		{name: "gb18030", d: csvGB, in: "\xb5\xe7,\"\xc4\xe3,\xba\xc3\",\x81\x30\x81\x30", values: []string{"电", "你,好", "\u0080"}},
		// A UTF-8 row in a GB18030 file is InvalidEncoding, read as UTF-8
		// (decision 21), whether its bytes happen to be valid GB18030
		// (mojibake) or not.
		{name: "utf-8 row in gb18030 file", d: csvGB, in: "A1,商品10,1", values: []string{"A1", "商品10", "1"},
			reason: failure.InvalidEncoding, field: "name", message: `column "name" (cell 2) is UTF-8 but the file is gb18030: read as gb18030, "商品10" would be "鍟嗗搧10"`},
		{name: "utf-8 row not valid gb18030", d: csvGB, in: "A1,x,€", values: []string{"A1", "x", "€"}, reason: failure.InvalidEncoding, field: "price", message: "is UTF-8"},
		{name: "gbk that is valid 2-byte utf-8 stays gbk", d: csvGB, in: "a,\xc6\xb7,c", values: []string{"a", "品", "c"}},
		{name: "gbk text stays gbk", d: csvGB, in: "\xc9\xcc\xc6\xb7,\xce\xde\xcf\xdf\xc0\xb6\xd1\xc0\xb6\xfa\xbb\xfa,c", values: []string{"商品", "无线蓝牙耳机", "c"}},
		{name: "gb18030 euro 0x80", d: csvGB, in: "a,\x80,c", values: []string{"a", "€", "c"}},
		{name: "gb18030 real U+FFFD", d: csvGB, in: "a,\x84\x31\xa4\x37,c", values: []string{"a", "\uFFFD", "c"}},
		{name: "gb18030 invalid", d: csvGB, in: "a,b,\xb5\xe7\xff", values: []string{"a", "b", "电\uFFFD"},
			reason: failure.InvalidEncoding, field: "price", message: "gb18030"},
		{name: "gb18030 lead before quote", d: csvGB, in: "a,\x81\",\"c\"", values: []string{"a", "\uFFFD\"", "c"},
			reason: failure.InvalidEncoding, field: "name"},
		{name: "utf-16le", d: tsv16LE, in: string(le("上\t\"a\r\nb\"\"\"\t下")), values: []string{"上", "a\r\nb\"", "下"}},
		{name: "utf-16be", d: tsv16BE, in: string(be("x\t😀\t\uFFFD")), values: []string{"x", "😀", "\uFFFD"}},
		{name: "utf-16 unpaired surrogate", d: tsv16LE, in: string(le("x\t")) + "\x00\xd8" + string(le("\ty")), values: []string{"x", "\uFFFD", "y"},
			reason: failure.InvalidEncoding, field: "name"},
		{name: "utf-16 odd byte", d: tsv16LE, in: string(le("x\ty\tz")) + "A", values: []string{"x", "y", "z\uFFFD"},
			reason: failure.InvalidEncoding, field: "price"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := tt.d
			if d.Format == "" {
				d = csvUTF8
			}
			row := parseOne(d, header, []byte(tt.in))
			reason, field := errOf(t, row.Err)
			if reason != tt.reason || field != tt.field {
				t.Fatalf("err = %v; want reason %q field %q", row.Err, tt.reason, tt.field)
			}
			if tt.message != "" && !strings.Contains(row.Err.Error(), tt.message) {
				t.Errorf("message %q does not contain %q", row.Err, tt.message)
			}
			if !reflect.DeepEqual(row.Values, tt.values) {
				t.Errorf("values = %q; want %q", row.Values, tt.values)
			}
			cells := tt.cells
			if cells == nil {
				cells = tt.values
			}
			if !reflect.DeepEqual(row.Cells, cells) {
				t.Errorf("cells = %q; want %q", row.Cells, cells)
			}
			if len(row.Names) != len(row.Values) {
				t.Errorf("names %q not aligned with values %q", row.Names, row.Values)
			}
			length := tt.length
			if length == 0 {
				length = int64(len(tt.in))
			}
			if row.Num != 2 || row.Offset != 0 || row.Length != length {
				t.Errorf("position = %d/%d/%d", row.Num, row.Offset, row.Length)
			}
		})
	}
}

func TestParseTooLarge(t *testing.T) {
	t.Parallel()
	in := "abc\n" + strings.Repeat("é", 3000) + "\r\nx"
	s := NewScanner(strings.NewReader(in), csvUTF8, 0, 1, 100)
	p := NewParser(csvUTF8, []string{"h"})
	var rows []Row
	for s.Next() {
		rows = append(rows, p.Parse(s.Raw()))
	}
	if len(rows) != 3 {
		t.Fatalf("%d rows", len(rows))
	}
	r := rows[1]
	if reason, _ := errOf(t, r.Err); reason != failure.RowTooLarge {
		t.Fatalf("err = %v", r.Err)
	}
	if !strings.Contains(r.Err.Error(), "6002 bytes, over the limit of 100 bytes") {
		t.Errorf("message %q", r.Err)
	}
	if r.Text != strings.Repeat("é", 512) || r.Values != nil {
		t.Errorf("text %d bytes, values %q", len(r.Text), r.Values)
	}
	if rows[2].Err != nil || rows[2].Values[0] != "x" {
		t.Errorf("row after the large one: %+v", rows[2])
	}
}

func TestParseJSONL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		names   []string
		values  []string
		reason  failure.Reason
		field   string
		message string
	}{
		{name: "object", in: `{"sku":"A","price":12.50,"stock":-0,"n":1e3,"ok":true,"no":false,"x":null}`,
			names: []string{"sku", "price", "stock", "n", "ok", "no", "x"}, values: []string{"A", "12.50", "-0", "1e3", "true", "false", ""}},
		{name: "key order and case kept", in: ` { "B" : "1" , "a":"2","SKU":"3" } `, names: []string{"B", "a", "SKU"}, values: []string{"1", "2", "3"}},
		{name: "escapes", in: `{"k\"ey":"a\\b\n\u4e0a\"","s":"\/"}`, names: []string{`k"ey`, "s"}, values: []string{"a\\b\n上\"", "/"}},
		{name: "array of scalars", in: `{"image_urls":["a","b",3,true,null],"e":[]}`, names: []string{"image_urls", "e"}, values: []string{"a|b|3|true|", ""}},
		{name: "empty object", in: `{}`},
		{name: "big number literal", in: `{"p":123456789012345678901234567890.10}`, names: []string{"p"}, values: []string{"123456789012345678901234567890.10"}},
		{name: "escaped NUL", in: `{"sku":"A","name":"x\u0000y"}`, names: []string{"sku", "name"}, values: []string{"A", "x\x00y"},
			reason: failure.InvalidValue, field: "name", message: `control character U+0000 in key "name"`},
		{name: "escaped tab is text", in: `{"name":"x\ty"}`, names: []string{"name"}, values: []string{"x\ty"}},
		{name: "array line", in: `["a","b"]`, reason: failure.SchemaMismatch, message: "line is a JSON array, not an object"},
		{name: "string line", in: `"x"`, reason: failure.SchemaMismatch, message: "JSON string"},
		{name: "number line", in: `12`, reason: failure.SchemaMismatch, message: "JSON number"},
		{name: "invalid json", in: `{"a":1,}`, reason: failure.MalformedRow, message: "invalid JSON: invalid character '}'"},
		{name: "two objects", in: `{"a":1} {"b":2}`, reason: failure.MalformedRow, message: "after top-level value"},
		{name: "truncated", in: `{"a":`, reason: failure.MalformedRow, message: "unexpected end of JSON input"},
		{name: "duplicate key", in: `{"sku":"1","name":"x","sku":"2"}`, names: []string{"sku", "name", "sku"}, values: []string{"1", "x", "2"},
			reason: failure.MalformedRow, field: "sku", message: `duplicate key "sku"`},
		{name: "nested object", in: `{"sku":"1","attrs":{"c":[1,{"d":"}"}]},"z":1}`, names: []string{"sku", "attrs", "z"}, values: []string{"1", `{"c":[1,{"d":"}"}]}`, "1"},
			reason: failure.SchemaMismatch, field: "attrs", message: `key "attrs" holds a nested object`},
		{name: "array of objects", in: `{"v":[{"s":"M"}]}`, names: []string{"v"}, values: []string{`[{"s":"M"}]`},
			reason: failure.SchemaMismatch, field: "v"},
		{name: "array of arrays", in: `{"v":[1,[2]]}`, names: []string{"v"}, values: []string{`[1,[2]]`}, reason: failure.SchemaMismatch, field: "v"},
		{name: "invalid utf-8 in value", in: "{\"sku\":\"1\",\"name\":\"a\xffb\"}", names: []string{"sku", "name"}, values: []string{"1", "a\uFFFDb"},
			reason: failure.InvalidEncoding, field: "name"},
		{name: "invalid utf-8 outside strings", in: "{\"sku\":1\xff}", reason: failure.InvalidEncoding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			row := parseOne(jsonUTF8, nil, []byte(tt.in))
			reason, field := errOf(t, row.Err)
			if reason != tt.reason || field != tt.field {
				t.Fatalf("err = %v; want reason %q field %q", row.Err, tt.reason, tt.field)
			}
			if tt.message != "" && !strings.Contains(row.Err.Error(), tt.message) {
				t.Errorf("message %q does not contain %q", row.Err, tt.message)
			}
			if !reflect.DeepEqual(row.Names, tt.names) || !reflect.DeepEqual(row.Values, tt.values) {
				t.Errorf("names %q values %q; want %q %q", row.Names, row.Values, tt.names, tt.values)
			}
			if !reflect.DeepEqual(row.Cells, row.Values) {
				t.Errorf("cells %q != values %q", row.Cells, row.Values)
			}
			if row.Text != strings.ToValidUTF8(tt.in, "\uFFFD") {
				t.Errorf("text %q", row.Text)
			}
		})
	}
}

// TestParserRowsIndependent: rows returned earlier are not changed by later
// calls (the parser reuses buffers, never the returned strings and slices).
func TestParserRowsIndependent(t *testing.T) {
	t.Parallel()
	in := "a,\"x\"\"1\",c\nd,\"y\"\"2\",f\n"
	s := NewScanner(strings.NewReader(in), csvUTF8, 0, 2, 0)
	p := NewParser(csvUTF8, []string{"h1", "h2", "h3"})
	var rows []Row
	for s.Next() {
		rows = append(rows, p.Parse(s.Raw()))
	}
	rows[1].Cells = append(rows[1].Cells, "appended")
	if !reflect.DeepEqual(rows[0].Values, []string{"a", `x"1`, "c"}) || rows[0].Text != `a,"x""1",c` {
		t.Fatalf("first row changed: %+v", rows[0])
	}
}

func TestHeader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		d      Dialect
		in     string
		cells  []string
		start  int64
		row    int64
		reason failure.Reason
		msg    string
	}{
		{name: "simple", d: csvUTF8, in: "sku,name\n1,a\n", cells: []string{"sku", "name"}, start: 9, row: 2},
		{name: "bom and spaces", d: Dialect{Format: CSV, Encoding: UTF8, Delimiter: ',', BOM: 3}, in: "\xef\xbb\xbf sku , \"name\" \r\n1,a", cells: []string{"sku", `"name"`}, start: 19, row: 2},
		{name: "blank lines first", d: csvUTF8, in: "\n,,\r\nsku,name,,\n", cells: []string{"sku", "name"}, start: 16, row: 4},
		{name: "quoted header", d: csvUTF8, in: "\"s\nku\",b\n", cells: []string{"s\nku", "b"}, start: 9, row: 2},
		{name: "gbk", d: csvGB, in: "\xc9\xcc\xc6\xb7\xb1\xe0\xc2\xeb,\xc9\xcc\xc6\xb7\xc3\xfb\xb3\xc6\r\n", cells: []string{"商品编码", "商品名称"}, start: 19, row: 2},
		{name: "jsonl", d: Dialect{Format: JSONL, Encoding: UTF8, BOM: 3}, in: "\xef\xbb\xbf{}", start: 3, row: 1},
		{name: "empty", d: csvUTF8, in: "", reason: failure.SchemaMismatch, msg: "no header row"},
		{name: "only blank lines", d: csvUTF8, in: "\n\n,\n", reason: failure.SchemaMismatch, msg: "no header row"},
		{name: "only bom", d: Dialect{Format: CSV, Encoding: UTF8, Delimiter: ',', BOM: 3}, in: "\xef\xbb", reason: failure.SchemaMismatch, msg: "empty"},
		{name: "malformed", d: csvUTF8, in: "sku,\"name\nx", reason: failure.SchemaMismatch, msg: "unbalanced quote"},
		{name: "undecodable", d: csvUTF8, in: "sku,n\xffame\n", reason: failure.SchemaMismatch, msg: "not valid utf-8"},
		{name: "too large", d: csvUTF8, in: strings.Repeat("h,", 100) + "\n", reason: failure.SchemaMismatch, msg: "larger than 64 bytes"},
		{name: "no names", d: csvUTF8, in: "\"\",\" \"\n", reason: failure.SchemaMismatch, msg: "no column names"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cells, start, row, err := Header(strings.NewReader(tt.in), tt.d, 64)
			if reason, _ := errOf(t, err); reason != tt.reason {
				t.Fatalf("err = %v, want %s", err, tt.reason)
			}
			if err != nil {
				if !strings.Contains(err.Error(), tt.msg) {
					t.Errorf("message %q does not contain %q", err, tt.msg)
				}
				return
			}
			if !reflect.DeepEqual(cells, tt.cells) || start != tt.start || row != tt.row {
				t.Errorf("got %q %d %d; want %q %d %d", cells, start, row, tt.cells, tt.start, tt.row)
			}
		})
	}
}

// goldenRow is the JSON form of a Row in the golden files.
type goldenRow struct {
	Row    int64    `json:"row"`
	Offset int64    `json:"offset"`
	Length int64    `json:"length"`
	Blank  bool     `json:"blank,omitempty"`
	Names  []string `json:"names,omitempty"`
	Values []string `json:"values,omitempty"`
	Cells  []string `json:"cells,omitempty"`
	Text   string   `json:"text"`
	Reason string   `json:"reason,omitempty"`
	Field  string   `json:"field,omitempty"`
	Error  string   `json:"message,omitempty"`
}

type golden struct {
	Dialect   Dialect     `json:"dialect"`
	Header    []string    `json:"header"`
	DataStart int64       `json:"data_start"`
	FirstRow  int64       `json:"first_row"`
	Rows      []goldenRow `json:"rows"`
}

// TestGolden reads every input file in testdata/ the way the engine does
// (Detect, Header, Scanner, Parser) and compares with <file>.golden.json.
// go test -run TestGolden -update rewrites the golden files.
func TestGolden(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/*")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, file := range files {
		if strings.HasSuffix(file, ".golden.json") || strings.Contains(file, "fuzz") {
			continue
		}
		n++
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			got := readGolden(t, file, data)
			out, err := json.MarshalIndent(got, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, '\n')
			gf := file + ".golden.json"
			if *update {
				if err := os.WriteFile(gf, out, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(gf)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(out, want) {
				t.Errorf("%s differs from %s (run with -update and review the diff):\n%s", file, gf, out)
			}
		})
	}
	if n < 4 {
		t.Fatalf("only %d golden inputs", n)
	}
}

func readGolden(t *testing.T, name string, data []byte) golden {
	d, err := Detect(name, data)
	if err != nil {
		t.Fatal(err)
	}
	header, start, first, err := Header(bytes.NewReader(data), d, 1<<10)
	if err != nil {
		t.Fatal(err)
	}
	g := golden{Dialect: d, Header: header, DataStart: start, FirstRow: first}
	s := NewScanner(bytes.NewReader(data[start:]), d, start, first, 1<<10)
	p := NewParser(d, header)
	for s.Next() {
		raw := s.Raw()
		if raw.Blank {
			g.Rows = append(g.Rows, goldenRow{Row: raw.Row, Offset: raw.Offset, Length: raw.Len(), Blank: true})
			continue
		}
		row := p.Parse(raw)
		gr := goldenRow{Row: row.Num, Offset: row.Offset, Length: row.Length, Values: row.Values, Text: row.Text}
		if d.Format == JSONL {
			gr.Names = row.Names
		}
		if len(row.Cells) != len(row.Values) {
			gr.Cells = row.Cells
		}
		if row.Err != nil {
			ie, _ := failure.As(row.Err)
			gr.Reason, gr.Field, gr.Error = string(ie.Reason), ie.Field, ie.Message
		}
		g.Rows = append(g.Rows, gr)
	}
	if s.Err() != nil {
		t.Fatal(s.Err())
	}
	return g
}

// TestControlIndex checks controlIndex and its word-at-a-time
// controlIndexBytes against a byte loop: every byte value at every position
// of strings of several lengths, alone or followed by a control character.
func TestControlIndex(t *testing.T) {
	naive := func(s []byte) int {
		for i, c := range s {
			if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
				return i
			}
		}
		return -1
	}
	for _, n := range []int{0, 1, 7, 8, 9, 16, 23} {
		for pos := range n {
			for k := range 512 {
				b, next := k%256, k
				s := bytes.Repeat([]byte{'a'}, n)
				s[pos] = byte(b)
				if pos+1 < n && next >= 256 {
					s[pos+1] = 0x01
				}
				if got, want := controlIndex(s), naive(s); got != want {
					t.Fatalf("controlIndex(%q) = %d, want %d", s, got, want)
				}
				if got, want := controlIndexBytes(s), naive(s); got != want {
					t.Fatalf("controlIndexBytes(%q) = %d, want %d", s, got, want)
				}
			}
		}
	}
}
