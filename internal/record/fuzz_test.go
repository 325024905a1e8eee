package record

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/record/recordtest"
)

// seeds are inputs every fuzz target starts from.
var seeds = []string{
	"",
	"\n",
	"a,b\nc,d\n",
	"a,b\r\nc,d",
	"sku,name\r\n1,\"x\r\ny\"\r\n\r\n2,\"a\"\"b\"\r\n",
	"a,\"b\nc\",d\n\"\"\"\",e\n",
	"5\" screen,x\n\"a\"b,c\n",
	"a,\"unbalanced\nb,c\n",
	",,\n \t\r\n",
	"a\"\nb\"\n",
	"\"\"\n\"\n",
	"{\"a\":1}\n[1]\n\"s\"\n{\"a\":1,\"a\":2}\n{\"o\":{}}\n{bad}\n",
	"{\"sku\":\"x\",\"p\":12.50,\"l\":[\"a\",1,null,true]}\r\n\n",
	"\xef\xbb\xbfsku,name\n1,\xff\n",
	"\xff\xfe" + string(le("a\t\"上\n\"\r\nb\tc\r\n")),
	string(be("x,\"y\n\"\nz")),
	"\xb5\xe7,\"\xc4\xe3\n\xba\xc3\"\n\x81\x30\x81\x30\n",
	"\"a\"\r",
	"a\r\r",
	strings.Repeat("x", 40) + "\n" + strings.Repeat("\"y\n", 10),
	// issue 13: a quoted CRLF is kept; a doubled quote before a line break
	// does not close the cell (also in UTF-16: see differential).
	"a,b,c\r\n1,2,3\r\n\"Once upon \r\na time\",5,6\r\n7,8,9\r\n",
	"a,b\n1,\"ha \n\"\"ha\"\" \nha\"\n3,4\n",
	"\xff\xfe" + string(le("a,\"x\"\"\r\ny\"\r\n")),
	string(be("a,\"\"\"\n\"\"\"\nb\n")),
	// issue 13: a quote nothing closes costs one row.
	"sku,name\n1,\"Bad quote start\n2,ok\n3,ok\n",
	"sku,name\r\n1,\"Bad quote start\r\n2,ok",
	// issue 13: control characters are InvalidValue in any cell.
	"sku,name\n1,a\x00b\n2,\"\x01\"\n3,tab\tok\n",
	"{\"sku\":\"1\",\"name\":\"a\\u0000b\"}\n",
	// issue 13: a UTF-8 row among GBK rows (鍟嗗搧10 when read as GBK).
	"\xc9\xcc\xc6\xb7,x\r\n\xe5\x95\x86\xe5\x93\x8110,y\r\n",
}

// fuzzDialects are the dialects FuzzScanner scans every input with.
var fuzzDialects = []Dialect{
	csvUTF8,
	tsvUTF8,
	{Format: CSV, Encoding: GB18030, Delimiter: ';'},
	jsonUTF8,
	{Format: TSV, Encoding: UTF16LE, Delimiter: '\t'},
	{Format: CSV, Encoding: UTF16BE, Delimiter: ','},
	{Format: JSONL, Encoding: UTF16LE},
}

// FuzzScanner: the scanner never panics; its records tile the input exactly
// and their bytes are the input's (minus terminators); the result does not
// depend on buffer sizes or read sizes; scanning from any record boundary
// gives the same tail.
func FuzzScanner(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		const max = 16
		for _, d := range fuzzDialects {
			all := scanAll(t, bytes.NewReader(in), d, 0, 1, max, 5)
			checkTiling(t, d, in, all, max)
			big := scanAll(t, iotest.HalfReader(bytes.NewReader(in)), d, 0, 1, max, 4096)
			if !equalRecs(all, big) {
				t.Fatalf("%+v: buffer size changes the records:\n%+v\n%+v", d, all, big)
			}
			for i, r := range all {
				if i > 20 {
					break
				}
				tail := scanAll(t, bytes.NewReader(in[r.Off:]), d, r.Off, r.Row, max, 7)
				if !equalRecs(tail, all[i:]) {
					t.Fatalf("%+v: from record %d:\n got %+v\nwant %+v", d, i, tail, all[i:])
				}
			}
		}
	})
}

func checkTiling(t *testing.T, d Dialect, in []byte, recs []rec, max int) {
	t.Helper()
	var off int64
	u := d.unitSize()
	for i, r := range recs {
		if r.Off != off || r.End <= r.Off || r.Row != int64(i+1) {
			t.Fatalf("%+v: record %d %+v does not follow offset %d", d, i, r, off)
		}
		whole := in[r.Off:r.End]
		if r.TooLarge {
			if !bytes.HasPrefix(whole, []byte(r.Bytes)) || len(r.Bytes) > tooLargePrefix || len(whole) <= max {
				t.Fatalf("%+v: too-large record %d %+v", d, i, r)
			}
		} else {
			if !bytes.HasPrefix(whole, []byte(r.Bytes)) || len(r.Bytes) > max {
				t.Fatalf("%+v: record %d bytes %q not a prefix of %q", d, i, r.Bytes, whole)
			}
			term := string(whole[len(r.Bytes):])
			ok := term == "" || term == "\n" || term == "\r\n" || r.End == int64(len(in)) && term == "\r"
			if u == 2 {
				ok = term == "" || term == unit16(d, "\n") || term == unit16(d, "\r\n") || r.End == int64(len(in)) && term == unit16(d, "\r")
			}
			if !ok {
				t.Fatalf("%+v: record %d terminator %q", d, i, term)
			}
		}
		off = r.End
	}
	if off != int64(len(in)) {
		t.Fatalf("%+v: records end at %d of %d", d, off, len(in))
	}
}

func unit16(d Dialect, s string) string {
	if d.Encoding == UTF16BE {
		return string(be(s))
	}
	return string(le(s))
}

// parseAll scans and parses in (no header), skipping blank records.
func parseAll(d Dialect, header []string, in []byte) (rows []Row, blank bool) {
	s := NewScanner(bytes.NewReader(in), d, 0, 1, 1<<16)
	p := NewParser(d, header)
	for s.Next() {
		if s.Raw().Blank {
			blank = true
			continue
		}
		rows = append(rows, p.Parse(s.Raw()))
	}
	return rows, blank
}

// differential compares the scanner and parser with encoding/csv
// (FieldsPerRecord -1, LazyQuotes false) on in, as UTF-8 and as UTF-16LE
// and UTF-16BE (cells compared with CRLF read as LF, as encoding/csv reads
// a quoted CRLF). It reports whether the
// comparison applied: encoding/csv accepts in, in is UTF-8 and has no
// blank records (encoding/csv skips empty lines; we keep their row number).
func differential(t *testing.T, in []byte, comma rune) bool {
	t.Helper()
	if !utf8.Valid(in) {
		return false
	}
	r := csv.NewReader(bytes.NewReader(in))
	r.Comma = comma
	r.FieldsPerRecord = -1
	want, err := r.ReadAll()
	if err != nil {
		return false
	}
	d := Dialect{Format: CSV, Encoding: UTF8, Delimiter: comma}
	rows, blank := parseAll(d, nil, in)
	if blank {
		return false
	}
	var got [][]string
	for _, row := range rows {
		if row.Err != nil && !controlRow(row) {
			t.Fatalf("comma %q: row %d: %v; encoding/csv read %q", comma, row.Num, row.Err, want)
		}
		got = append(got, crlfToLF(row.Cells))
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("comma %q: input %q\n got %q\nwant %q", comma, in, got, want)
	}
	// The same text in UTF-16 (either byte order) reads the same: the
	// UTF-16 scan has its own quote handling, pinned here.
	for _, enc := range []Encoding{UTF16LE, UTF16BE} {
		d := Dialect{Format: CSV, Encoding: enc, Delimiter: comma}
		rows, _ := parseAll(d, nil, []byte(unit16(d, string(in))))
		var got16 [][]string
		for _, row := range rows {
			if row.Err != nil && !controlRow(row) {
				t.Fatalf("%s comma %q: row %d: %v; encoding/csv read %q", enc, comma, row.Num, row.Err, want)
			}
			got16 = append(got16, crlfToLF(row.Cells))
		}
		if !reflect.DeepEqual(got16, want) {
			t.Fatalf("%s comma %q: input %q\n got %q\nwant %q", enc, comma, in, got16, want)
		}
	}
	return true
}

// controlRow reports whether row failed InvalidValue for a control
// character it holds (encoding/csv reads those as text; the cells still
// match).
func controlRow(row Row) bool {
	return failure.ReasonOf(row.Err) == failure.InvalidValue && controlIndex(row.Text) >= 0
}

// crlfToLF returns cells with CRLF turned into LF, as encoding/csv reads a
// quoted CRLF (the Parser keeps the cell's bytes; outside quotes a cell
// cannot hold a line break).
func crlfToLF(cells []string) []string {
	out := make([]string, len(cells))
	for i, c := range cells {
		out[i] = strings.ReplaceAll(c, "\r\n", "\n")
	}
	return out
}

// TestDifferentialCSV runs the differential check over the seeds and a
// generated product file (quoted multi-line cells, doubled quotes, CRLF).
func TestDifferentialCSV(t *testing.T) {
	t.Parallel()
	var gen bytes.Buffer
	if err := recordtest.WriteProductCSV(&gen, 3000, 7, true); err != nil {
		t.Fatal(err)
	}
	if !differential(t, gen.Bytes(), ',') {
		t.Fatal("generated file not compared")
	}
	n := 0
	for _, s := range seeds {
		for _, c := range []rune{',', ';', '\t'} {
			if differential(t, []byte(s), c) {
				n++
			}
		}
	}
	if n < 10 {
		t.Fatalf("only %d seeds compared", n)
	}
}

// FuzzParseCSV: parsing never panics, Text is valid UTF-8 (and the record
// itself when that was valid), rows agree with encoding/csv wherever it
// accepts the input, and every error is a syntax-layer ImportError.
func FuzzParseCSV(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, c := range []rune{',', ';', '\t'} {
			differential(t, in, c)
		}
		for _, d := range []Dialect{csvUTF8, {Format: CSV, Encoding: GB18030, Delimiter: ','}, {Format: TSV, Encoding: UTF16LE}} {
			header, start, first, err := Header(bytes.NewReader(in), d, 1<<10)
			if err != nil {
				if ie, ok := failure.As(err); !ok || ie.Reason != failure.SchemaMismatch {
					t.Fatalf("header error %v", err)
				}
				header, start, first = nil, 0, 1
			}
			s := NewScanner(bytes.NewReader(in[start:]), d, start, first, 1<<10)
			p := NewParser(d, header)
			for s.Next() {
				raw := s.Raw()
				row := p.Parse(raw)
				if !utf8.ValidString(row.Text) {
					t.Fatalf("text %q is not UTF-8", row.Text)
				}
				if d.Encoding == UTF8 && utf8.Valid(raw.Bytes) && !raw.TooLarge && row.Text != string(raw.Bytes) {
					t.Fatalf("text %q != record %q", row.Text, raw.Bytes)
				}
				if row.Err != nil {
					if ie, ok := failure.As(row.Err); !ok || ie.Layer != failure.LayerSyntax && ie.Reason != failure.InvalidValue {
						t.Fatalf("error %v", row.Err)
					}
				}
				if row.Err == nil && controlIndex(row.Text) >= 0 {
					t.Fatalf("no error for the control character in %q", row.Text)
				}
				if header != nil && len(row.Names) != len(row.Values) {
					t.Fatalf("names %q values %q", row.Names, row.Values)
				}
				if row.Err == nil && header != nil && len(row.Values) != len(header) {
					t.Fatalf("no error but %d values for %d columns", len(row.Values), len(header))
				}
			}
		}
	})
}

// FuzzParseJSONL: parsing never panics, and a row without error holds
// exactly what encoding/json (with UseNumber) reads from the line.
func FuzzParseJSONL(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		rows, _ := parseAll(jsonUTF8, nil, in)
		for _, row := range rows {
			if !utf8.ValidString(row.Text) || len(row.Names) != len(row.Values) {
				t.Fatalf("row %+v", row)
			}
			dec := json.NewDecoder(strings.NewReader(row.Text))
			dec.UseNumber()
			var m map[string]any
			err := dec.Decode(&m)
			if err == nil {
				if _, e := dec.Token(); !errors.Is(e, io.EOF) {
					err = errors.New("more than one value")
				}
			}
			if row.Err != nil {
				if ie, ok := failure.As(row.Err); !ok || ie.Layer != failure.LayerSyntax && ie.Reason != failure.InvalidValue {
					t.Fatalf("error %v", row.Err)
				}
				continue
			}
			if err != nil || m == nil {
				t.Fatalf("no error for %q; encoding/json: %v", row.Text, err)
			}
			if len(m) != len(row.Names) {
				t.Fatalf("%q: %d keys, encoding/json %d", row.Text, len(row.Names), len(m))
			}
			for i, k := range row.Names {
				if got, want := row.Values[i], jsonString(t, m[k]); got != want {
					t.Fatalf("%q: key %q = %q, encoding/json %q", row.Text, k, got, want)
				}
			}
		}
	})
}

// jsonString is the expected cell text of a value decoded by encoding/json.
func jsonString(t *testing.T, v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case json.Number:
		return string(v)
	case bool:
		if v {
			return "true"
		}
		return "false"
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = jsonString(t, e)
		}
		return strings.Join(parts, "|")
	}
	t.Fatalf("unexpected value %#v", v)
	return ""
}

// FuzzDetect: Detect never panics, returns a valid dialect or a
// SchemaMismatch, and the dialect it returns can be read.
func FuzzDetect(f *testing.F) {
	names := []string{"a.csv", "a.tsv", "a.jsonl", "a.txt", "data"}
	for i, s := range seeds {
		f.Add(names[i%len(names)], []byte(s))
	}
	f.Add("a.txt", []byte("\x00\x01\x02"))
	f.Add("a.csv", []byte("sku,name\r\nA1,x\x00y\r\n")) // issue 13: text with a NUL cell
	f.Add("a.csv", []byte(gbk("商品编码,商品名称\r\n")+"\xe5\x95\x86\xe5\x93\x81,x\r\n"))
	f.Add("a.csv", []byte(gbk("商品编码,商品名称\r\n")))
	f.Fuzz(func(t *testing.T, name string, in []byte) {
		d, err := Detect(name, in)
		if err != nil {
			if ie, ok := failure.As(err); !ok || ie.Reason != failure.SchemaMismatch {
				t.Fatalf("error %v", err)
			}
			return
		}
		if err := d.Validate(); err != nil {
			t.Fatalf("%+v: %v", d, err)
		}
		if d.BOM > len(in) {
			t.Fatalf("BOM %d of %d bytes", d.BOM, len(in))
		}
		header, start, first, err := Header(bytes.NewReader(in), d, 1<<10)
		if err != nil {
			return
		}
		if start < int64(d.BOM) || start > int64(len(in)) || first < 1 || d.Format != JSONL && len(header) == 0 {
			t.Fatalf("header %q %d %d", header, start, first)
		}
		s := NewScanner(bytes.NewReader(in[start:]), d, start, first, 1<<10)
		p := NewParser(d, header)
		for s.Next() {
			p.Parse(s.Raw())
		}
	})
}
