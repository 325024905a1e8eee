package record

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf16"
)

var (
	csvUTF8  = Dialect{Format: CSV, Encoding: UTF8, Delimiter: ','}
	tsvUTF8  = Dialect{Format: TSV, Encoding: UTF8, Delimiter: '\t'}
	jsonUTF8 = Dialect{Format: JSONL, Encoding: UTF8}
	csvGB    = Dialect{Format: CSV, Encoding: GB18030, Delimiter: ','}
	tsv16LE  = Dialect{Format: TSV, Encoding: UTF16LE, Delimiter: '\t', BOM: 2}
	tsv16BE  = Dialect{Format: TSV, Encoding: UTF16BE, Delimiter: '\t', BOM: 2}
)

// rec is a Raw with its bytes copied (Raw.Bytes is only valid until Next).
type rec struct {
	Off, End, Row   int64
	Blank, TooLarge bool
	Bytes           string
	Unclosed        bool
}

func scanAll(t testing.TB, r io.Reader, d Dialect, off, row int64, maxRecord, bufSize int) []rec {
	t.Helper()
	return scanAllLimits(t, r, d, off, row, Limits{MaxRecord: maxRecord}, bufSize)
}

func scanAllLimits(t testing.TB, r io.Reader, d Dialect, off, row int64, l Limits, bufSize int) []rec {
	t.Helper()
	s := newScanner(r, d, off, row, l, bufSize)
	var out []rec
	for s.Next() {
		raw := s.Raw()
		if s.Offset() != raw.End || s.Row() != raw.Row+1 {
			t.Fatalf("Offset()=%d Row()=%d after record %+v", s.Offset(), s.Row(), raw)
		}
		out = append(out, rec{raw.Offset, raw.End, raw.Row, raw.Blank, raw.TooLarge, string(raw.Bytes), raw.Unclosed})
	}
	if err := s.Err(); err != nil {
		t.Fatalf("scan: %v", err)
	}
	return out
}

// le encodes s as UTF-16LE, be as UTF-16BE.
func le(s string) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = append(b, byte(u), byte(u>>8))
	}
	return b
}

func be(s string) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = append(b, byte(u>>8), byte(u))
	}
	return b
}

func TestScanner(t *testing.T) {
	t.Parallel()
	type want struct {
		bytes string
		end   int64
		blank bool
	}
	tests := []struct {
		name  string
		d     Dialect
		in    string
		want  []want // offsets follow from the ends; rows count from 1
		max   int
		large []bool
		// unclosed marks the records with an unclosed quoted cell
		unclosed []bool
	}{
		{name: "LF", d: csvUTF8, in: "a,b\nc,d\n", want: []want{{"a,b", 4, false}, {"c,d", 8, false}}},
		{name: "CRLF", d: csvUTF8, in: "a,b\r\nc,d\r\n", want: []want{{"a,b", 5, false}, {"c,d", 10, false}}},
		{name: "no trailing newline", d: csvUTF8, in: "a,b\nc,d", want: []want{{"a,b", 4, false}, {"c,d", 7, false}}},
		{name: "trailing CR at EOF", d: csvUTF8, in: "a,b\r\nc,d\r", want: []want{{"a,b", 5, false}, {"c,d", 9, false}}},
		{name: "empty input", d: csvUTF8, in: "", want: nil},
		{name: "only newline", d: csvUTF8, in: "\n", want: []want{{"", 1, true}}},
		{name: "quoted newline", d: csvUTF8, in: "a,\"x\ny\"\nb,c\n", want: []want{{"a,\"x\ny\"", 8, false}, {"b,c", 12, false}}},
		{name: "quoted CRLF", d: csvUTF8, in: "\"x\r\ny\"\r\nz\r\n", want: []want{{"\"x\r\ny\"", 8, false}, {"z", 11, false}}},
		{name: "doubled quotes", d: csvUTF8, in: "\"a\"\"\nb\",c\nd\n", want: []want{{"\"a\"\"\nb\",c", 10, false}, {"d", 12, false}}},
		{name: "escaped quote before newline", d: csvUTF8, in: "\"a\"\"\"\nb\n", want: []want{{"\"a\"\"\"", 6, false}, {"b", 8, false}}},
		{name: "bare quote is literal", d: csvUTF8, in: "5\" screen,x\n\"y\"\n", want: []want{{"5\" screen,x", 12, false}, {"\"y\"", 16, false}}},
		{name: "bare quote then newline", d: csvUTF8, in: "a\"b\nc\"d\n", want: []want{{"a\"b", 4, false}, {"c\"d", 8, false}}},
		{name: "quote after delimiter opens", d: csvUTF8, in: "a,\"b\nc\"\n", want: []want{{"a,\"b\nc\"", 8, false}}},
		{name: "quote after space is literal", d: csvUTF8, in: "a, \"b\nc\"\n", want: []want{{"a, \"b", 6, false}, {"c\"", 9, false}}},
		{name: "blank lines", d: csvUTF8, in: "a\n\n,,\n \t\r\nb\n", want: []want{{"a", 2, false}, {"", 3, true}, {",,", 6, true}, {" \t", 10, true}, {"b", 12, false}}},
		{name: "quoted empty is not blank", d: csvUTF8, in: "\"\"\n", want: []want{{"\"\"", 3, false}}},
		{name: "unbalanced quote ends at its line", d: csvUTF8, in: "a\n\"b\nc\nd", want: []want{{"a", 2, false}, {"\"b", 5, false}, {"c", 7, false}, {"d", 8, false}},
			unclosed: []bool{false, true, false, false}},
		{name: "unbalanced quote at end", d: csvUTF8, in: "a\nb,\"", want: []want{{"a", 2, false}, {"b,\"", 5, false}}, unclosed: []bool{false, true}},
		{name: "closing quote at EOF", d: csvUTF8, in: "a,\"b\"", want: []want{{"a,\"b\"", 5, false}}},
		{name: "text after closing quote", d: csvUTF8, in: "\"a\"b,c\nd\n", want: []want{{"\"a\"b,c", 7, false}, {"d", 9, false}}},
		{name: "tsv quotes", d: tsvUTF8, in: "a\t\"b\nc\"\t,\n", want: []want{{"a\t\"b\nc\"\t,", 10, false}}},
		{name: "semicolon", d: Dialect{Format: CSV, Encoding: UTF8, Delimiter: ';'}, in: "a;\"b\n\";c\n", want: []want{{"a;\"b\n\";c", 9, false}}},
		{name: "jsonl ignores quotes", d: jsonUTF8, in: "{\"a\":\"x\"}\n{\"b\n\n  \r\n", want: []want{{"{\"a\":\"x\"}", 10, false}, {"{\"b", 14, false}, {"", 15, true}, {"  ", 19, true}}},
		{name: "jsonl commas not blank", d: jsonUTF8, in: ",,\n", want: []want{{",,", 3, false}}},
		// 0x81 0x22 is not a GB18030 character; 0xB5 0xE7 is 电 (GBK). Trail
		// bytes never look like quotes or newlines, so raw bytes are scanned.
		{name: "gb18030", d: csvGB, in: "\xb5\xe7,\"\xc4\xe3\n\xba\xc3\"\n\xb5\xe7\n", want: []want{{"\xb5\xe7,\"\xc4\xe3\n\xba\xc3\"", 11, false}, {"\xb5\xe7", 14, false}}},
		{name: "too large", d: csvUTF8, in: "abc\nabcdefgh\nab\n", max: 4, want: []want{{"abc", 4, false}, {"abcdefgh", 13, false}, {"ab", 16, false}}, large: []bool{false, true, false}},
		{name: "too large CRLF", d: csvUTF8, in: "abcdefgh\r\nab\r\n", max: 4, want: []want{{"abcdefgh", 10, false}, {"ab", 14, false}}, large: []bool{true, false}},
		// A quoted cell still open when its record passes the maximum size
		// is unclosed: the record ends at the end of the quote's line.
		{name: "too large quoted", d: csvUTF8, in: "\"ab\ncd\"\"e\nf\"\r\nx", max: 4, want: []want{{"\"ab", 4, false}, {"cd\"\"e", 10, false}, {"f\"", 14, false}, {"x", 15, false}},
			large: []bool{false, true, false, false}, unclosed: []bool{true, false, false, false}},
		{name: "too large quoted one line", d: csvUTF8, in: "\"abcdef\"\nx", max: 4, want: []want{{"\"abcdef\"", 9, false}, {"x", 10, false}},
			large: []bool{true, false}, unclosed: []bool{true, false}},
		{name: "too large utf-16", d: Dialect{Format: TSV, Encoding: UTF16LE}, in: string(le("ab\"c\td\r\n\"e\n\"\r\n")), max: 4,
			want:  []want{{string(le("ab\"c\td")), 16, false}, {string(le("\"e")), 22, false}, {string(le("\"")), 28, false}},
			large: []bool{true, false, false}, unclosed: []bool{false, true, true}},
		{name: "exactly max with CRLF", d: csvUTF8, in: "abcd\r\nx\n", max: 4, want: []want{{"abcd", 6, false}, {"x", 8, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			max := tt.max
			if max == 0 {
				max = 1 << 10
			}
			var exp []rec
			off := int64(0)
			for i, w := range tt.want {
				tl := tt.large != nil && tt.large[i]
				exp = append(exp, rec{off, w.end, int64(i + 1), w.blank, tl, w.bytes, tt.unclosed != nil && tt.unclosed[i]})
				off = w.end
			}
			for _, bs := range []int{4, 5, 7, 64, defaultBufSize} {
				for _, one := range []bool{false, true} {
					var r io.Reader = strings.NewReader(tt.in)
					if one {
						r = iotest.OneByteReader(r)
					}
					got := scanAll(t, r, tt.d, 0, 1, max, bs)
					if !equalRecs(got, exp) {
						t.Fatalf("buf %d one-byte %v:\n got %+v\nwant %+v", bs, one, got, exp)
					}
				}
			}
		})
	}
}

func equalRecs(a, b []rec) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestScannerUTF16(t *testing.T) {
	t.Parallel()
	// 上 is U+4E0A: its UTF-16LE bytes are 0A 4E, a 0x0A byte that is not a
	// newline. 䈢 is U+4222 (22 42: a 0x22 byte that is not a quote).
	text := "名称\t描述\r\n上\t\"a\r\n上\"\"b\"\r\n\t\r\n䈢x\t\"\"\r\n"
	wantRecs := []string{"名称\t描述", "上\t\"a\r\n上\"\"b\"", "\t", "䈢x\t\"\""}
	for _, tc := range []struct {
		name string
		d    Dialect
		enc  func(string) []byte
	}{{"le", tsv16LE, le}, {"be", tsv16BE, be}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := append([]byte{0, 0}, tc.enc(text)...) // stand-in for the BOM
			var exp []rec
			off := int64(2)
			for i, r := range wantRecs {
				b := tc.enc(r)
				end := off + int64(len(b)) + 4
				exp = append(exp, rec{off, end, int64(i + 1), r == "\t", false, string(b), false})
				off = end
			}
			for _, bs := range []int{4, 6, 9, defaultBufSize} {
				got := scanAll(t, bytes.NewReader(in[2:]), tc.d, 2, 1, 1<<10, bs)
				if !equalRecs(got, exp) {
					t.Fatalf("buf %d:\n got %+v\nwant %+v", bs, got, exp)
				}
			}
		})
	}
	t.Run("odd trailing byte", func(t *testing.T) {
		t.Parallel()
		in := append(le("a\nb"), 0x41)
		got := scanAll(t, bytes.NewReader(in), tsv16LE, 0, 1, 1<<10, 4)
		exp := []rec{{0, 4, 1, false, false, string(le("a")), false}, {4, 7, 2, false, false, string(le("b")) + "A", false}}
		if !equalRecs(got, exp) {
			t.Fatalf("got %+v\nwant %+v", got, exp)
		}
	})
}

// TestScannerFromBoundary: starting at any record boundary (with that
// record's row number) gives the same records as scanning from the start.
func TestScannerFromBoundary(t *testing.T) {
	t.Parallel()
	inputs := map[string]struct {
		d  Dialect
		in []byte
	}{
		"csv":   {csvUTF8, []byte("h1,h2\r\n1,\"a\r\nb\"\r\n\r\n2,\"x\"\"\"\r\n3,5\" screen\r\n4,\"unbalanced\n5,x")},
		"jsonl": {jsonUTF8, []byte("{\"a\":1}\n\n{\"a\":\"\\\"\n\"}\n{}")},
		"utf16": {tsv16LE, append([]byte{0xFF, 0xFE}, le("上\t\"\n\"\r\n下\t2\r\n")...)},
	}
	for name, tc := range inputs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			all := scanAll(t, bytes.NewReader(tc.in[tc.d.BOM:]), tc.d, int64(tc.d.BOM), 1, 1<<10, 8)
			for i, r := range all {
				tail := scanAll(t, bytes.NewReader(tc.in[r.Off:]), tc.d, r.Off, r.Row, 1<<10, 8)
				if !equalRecs(tail, all[i:]) {
					t.Fatalf("from record %d:\n got %+v\nwant %+v", i, tail, all[i:])
				}
			}
		})
	}
}

// bigReader produces n bytes of 'x' then tail, without holding them.
type bigReader struct {
	n    int64
	tail string
}

func (r *bigReader) Read(p []byte) (int, error) {
	if r.n > 0 {
		k := int(min(int64(len(p)), r.n))
		for i := range p[:k] {
			p[i] = 'x'
		}
		r.n -= int64(k)
		return k, nil
	}
	if r.tail == "" {
		return 0, io.EOF
	}
	k := copy(p, r.tail)
	r.tail = r.tail[k:]
	return k, nil
}

// TestScannerHugeLine: a 50 MB single line with maxRecord 1 MiB is one
// TooLarge record with a 1 KiB prefix, and the scanner does not buffer it.
// (Not parallel: it measures the heap.)
func TestScannerHugeLine(t *testing.T) {
	const size = 50 << 20
	for _, quoted := range []bool{false, true} {
		r := &bigReader{n: size, tail: "\r\nnext,row\n"}
		head := "sku,name\n"
		if quoted {
			// an unbalanced quote would run to EOF; a balanced one ends at the tail
			head = "sku,name\n1,\""
			r.tail = "\"\r\nnext,row\n"
		}
		in := io.MultiReader(strings.NewReader(head), r)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		s := NewScanner(in, csvUTF8, 0, 1, 1<<20)
		var got []rec
		for s.Next() {
			raw := s.Raw()
			b := raw.Bytes
			if len(b) > 16 {
				b = b[:16]
			}
			got = append(got, rec{raw.Offset, raw.End, raw.Row, raw.Blank, raw.TooLarge, string(b), raw.Unclosed})
			if raw.TooLarge && len(raw.Bytes) != tooLargePrefix {
				t.Fatalf("prefix is %d bytes", len(raw.Bytes))
			}
		}
		runtime.ReadMemStats(&after)
		if s.Err() != nil {
			t.Fatal(s.Err())
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
			t.Errorf("quoted=%v: allocated %d bytes scanning a 50 MB line", quoted, alloc)
		}
		hl, tl := int64(9), int64(2) // header line; CRLF after the x's
		line := "xxxxxxxxxxxxxxxx"
		if quoted {
			line = "1,\"xxxxxxxxxxxxx"
			tl = 3 + 3 // 1," before, "CRLF after
		}
		want := []rec{
			{0, 9, 1, false, false, "sku,name", false},
			{9, hl + size + tl, 2, false, true, line, quoted}, // a quote still open past the maximum record size is unclosed
			{hl + size + tl, hl + size + tl + 9, 3, false, false, "next,row", false},
		}
		if !equalRecs(got, want) {
			t.Fatalf("quoted=%v:\n got %+v\nwant %+v", quoted, got, want)
		}
	}
}

func TestScannerReadError(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	s := NewScanner(iotest.TimeoutReader(strings.NewReader("a\nb\n")), csvUTF8, 0, 1, 0)
	_ = s.Next() // the first read succeeds
	for s.Next() {
	}
	if s.Err() == nil {
		t.Fatal("no error from a failing reader")
	}
	s = NewScanner(iotest.ErrReader(boom), csvUTF8, 0, 1, 0)
	if s.Next() || !errors.Is(s.Err(), boom) {
		t.Fatalf("Next on a failing reader: err %v", s.Err())
	}
	s = NewScanner(strings.NewReader("a"), Dialect{Format: "xml", Encoding: UTF8}, 0, 1, 0)
	if s.Next() || s.Err() == nil {
		t.Fatal("invalid dialect accepted")
	}
}

// TestScannerUnclosedQuote pins the unbalanced-quote rule (Limits) in every
// quote-aware encoding: a quoted cell that does not close within the line
// and byte limits, or at all, ends its record at the end of the quote's line.
func TestScannerUnclosedQuote(t *testing.T) {
	t.Parallel()
	type want struct {
		bytes    string
		end      int64 // in ASCII characters (code units)
		unclosed bool
	}
	tests := []struct {
		name string
		in   string
		lim  Limits
		want []want
	}{
		{name: "closes", in: "a,\"x\ny\"\nb\n", want: []want{{"a,\"x\ny\"", 8, false}, {"b", 10, false}}},
		{name: "never closes", in: "a,\"bad\nb,c\nd\n", want: []want{{"a,\"bad", 7, true}, {"b,c", 11, false}, {"d", 13, false}}},
		{name: "never closes CRLF", in: "a,\"bad\r\nb,c\r\n", want: []want{{"a,\"bad", 8, true}, {"b,c", 13, false}}},
		{name: "never closes last line", in: "a\nb,\"bad", want: []want{{"a", 2, false}, {"b,\"bad", 8, true}}},
		{name: "escaped quotes do not close", in: "\"a\"\"b\nc\n", want: []want{{"\"a\"\"b", 6, true}, {"c", 8, false}}},
		{name: "lines over", in: "a,\"x\ny\nz\nw\"\nb\n", lim: Limits{MaxQuotedLines: 2},
			want: []want{{"a,\"x", 5, true}, {"y", 7, false}, {"z", 9, false}, {"w\"", 12, false}, {"b", 14, false}}},
		{name: "lines at limit", in: "a,\"x\ny\nz\nw\"\nb\n", lim: Limits{MaxQuotedLines: 3},
			want: []want{{"a,\"x\ny\nz\nw\"", 12, false}, {"b", 14, false}}},
		{name: "bytes over", in: "\"ab\ncd\"\nx\n", lim: Limits{MaxQuotedBytes: 5},
			want: []want{{"\"ab", 4, true}, {"cd\"", 8, false}, {"x", 10, false}}},
		{name: "bytes at limit", in: "\"ab\ncd\"\nx\n", lim: Limits{MaxQuotedBytes: 6},
			want: []want{{"\"ab\ncd\"", 8, false}, {"x", 10, false}}},
		{name: "bytes over on one line", in: "\"abcdef\",x\ny\n", lim: Limits{MaxQuotedBytes: 3},
			want: []want{{"\"abcdef\",x", 11, true}, {"y", 13, false}}},
		{name: "second cell", in: "h\n1,\"ok\",\"bad\n2\n", want: []want{{"h", 2, false}, {"1,\"ok\",\"bad", 14, true}, {"2", 16, false}}},
	}
	dialects := []Dialect{csvUTF8, csvGB, {Format: CSV, Encoding: UTF16LE, Delimiter: ','}, {Format: CSV, Encoding: UTF16BE, Delimiter: ','}}
	for _, tt := range tests {
		for _, d := range dialects {
			t.Run(tt.name+"/"+string(d.Encoding), func(t *testing.T) {
				t.Parallel()
				u := int64(d.unitSize())
				enc := func(s string) string {
					if u == 2 {
						return unit16(d, s)
					}
					return s
				}
				var exp []rec
				var off int64
				for i, w := range tt.want {
					exp = append(exp, rec{off, w.end * u, int64(i + 1), false, false, enc(w.bytes), w.unclosed})
					off = w.end * u
				}
				in := enc(tt.in)
				lim := tt.lim // bytes are counted in the file's encoding
				lim.MaxQuotedBytes *= int(u)
				for _, bs := range []int{4, 5, 8, 64, defaultBufSize} {
					for _, one := range []bool{false, true} {
						var r io.Reader = strings.NewReader(in)
						if one {
							r = iotest.OneByteReader(r)
						}
						got := scanAllLimits(t, r, d, 0, 1, lim, bs)
						if !equalRecs(got, exp) {
							t.Fatalf("buf %d one-byte %v:\n got %+v\nwant %+v", bs, one, got, exp)
						}
					}
				}
				// From every record boundary, the same tail.
				for i, r := range exp {
					tail := scanAllLimits(t, strings.NewReader(in[r.Off:]), d, r.Off, r.Row, lim, 5)
					if !equalRecs(tail, exp[i:]) {
						t.Fatalf("from record %d:\n got %+v\nwant %+v", i, tail, exp[i:])
					}
				}
			})
		}
	}
}
