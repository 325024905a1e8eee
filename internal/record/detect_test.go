package record

import (
	"bytes"
	"strings"
	"testing"

	"github.com/catalog-import/catalog-import/internal/failure"
	"golang.org/x/text/encoding/simplifiedchinese"
)

func gbk(s string) string {
	b, err := simplifiedchinese.GB18030.NewEncoder().Bytes([]byte(s))
	if err != nil {
		panic(err)
	}
	return string(b)
}

// pseudoRandom returns n bytes of a fixed pseudo-random sequence (the bytes
// of compressed data: an image, a zip, an encrypted file).
func pseudoRandom(n int) string {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x >> 24)
	}
	return string(b)
}

func TestDetect(t *testing.T) {
	t.Parallel()
	chinese := "商品编码,商品名称,价格\r\nA1,无线蓝牙耳机,199.00\r\n"
	tests := []struct {
		name string
		file string
		in   string
		want Dialect
		msg  string // expected SchemaMismatch message (substring)
	}{
		{name: "empty", file: "a.csv", in: "", msg: "file is empty"},
		{name: "only utf-8 bom", file: "a.csv", in: "\xef\xbb\xbf", msg: "file is empty"},
		{name: "utf-8 bom", file: "a.csv", in: "\xef\xbb\xbfsku,name\n", want: Dialect{CSV, UTF8, ',', 3}},
		{name: "utf-16le bom, Excel unicode text", file: "export.txt", in: "\xff\xfe" + string(le("sku\tname\r\n")), want: Dialect{TSV, UTF16LE, '\t', 2}},
		{name: "utf-16be bom", file: "export.txt", in: "\xfe\xff" + string(be("sku\tname\r\n")), want: Dialect{TSV, UTF16BE, '\t', 2}},
		{name: "utf-16le bom single column", file: "export.txt", in: "\xff\xfe" + string(le("sku\r\n")), want: Dialect{TSV, UTF16LE, '\t', 2}},
		{name: "utf-16le without bom", file: "x.txt", in: string(le("sku\tname\r\n上衣\t1\r\n")), want: Dialect{TSV, UTF16LE, '\t', 0}},
		{name: "utf-16be without bom", file: "x.csv", in: string(be("sku,name\r\n")), want: Dialect{CSV, UTF16BE, ',', 0}},
		{name: "nul bytes binary", file: "a.csv", in: "sku,name\n\x00\x01\x02\x03garbage", msg: "file is not text (binary data at byte 9)"},
		{name: "xlsx zip", file: "a.xlsx", in: "PK\x03\x04\x14\x00\x06\x00\x08\x00", want: Dialect{XLSX, UTF8, 0, 0}},
		{name: "xlsm zip", file: "s3://b/incoming/宏.XLSM", in: "PK\x03\x04\x14\x00\x06\x00\x08\x00", want: Dialect{XLSX, UTF8, 0, 0}},
		{name: "zip named csv", file: "a.csv", in: "PK\x03\x04\x14\x00\x06\x00\x08\x00", msg: "binary data at byte 5"},
		{name: "xlsx name, csv content", file: "a.xlsx", in: "sku,name\n", want: Dialect{CSV, UTF8, ',', 0}},
		{name: "legacy xls", file: "a.xls", in: "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00", msg: "legacy Excel 97-2003 workbook (.xls)"},
		// A text file with a NUL (or another control byte) in a cell is text:
		// that row fails InvalidValue. Binary files are still not text.
		{name: "one nul cell is text", file: "a.csv", in: "sku,name\r\nA1,x\x00y\r\nA2,ok\r\n", want: Dialect{CSV, UTF8, ',', 0}},
		{name: "a few control cells are text", file: "a.csv", in: "sku,name\n1,\x00\n2,\x1b[0m\n3,\x07\n4,ok\n5,ok\n", want: Dialect{CSV, UTF8, ',', 0}},
		{name: "gbk with a nul cell", file: "a.csv", in: gbk(chinese) + "A2,\x00\r\n", want: Dialect{CSV, GB18030, ',', 0}},
		{name: "nul padding is binary", file: "a.csv", in: "sku,name\n" + strings.Repeat("\x00", 8), msg: "binary data at byte 9"},
		{name: "elf", file: "a.csv", in: "\x7fELF\x02\x01\x01" + strings.Repeat("\x00", 9) + "\x02\x00>\x00" + strings.Repeat("x", 100), msg: "binary data at byte 7"},
		{name: "random bytes", file: "a.csv", in: pseudoRandom(64 << 10), msg: "not text"},
		{name: "control bytes", file: "a.dat", in: "\x01\x02\x03\x04\x05abc\x06\x07", msg: "binary data at byte 0"},
		{name: "a few control bytes are text", file: "a.csv", in: "sku,name\n1,a\x1bb\n2,c\n3,d\n", want: Dialect{CSV, UTF8, ',', 0}},
		{name: "utf-8", file: "a.csv", in: chinese, want: Dialect{CSV, UTF8, ',', 0}},
		{name: "utf-8 cut at the end", file: "a.csv", in: chinese + "\xe4\xb8", want: Dialect{CSV, UTF8, ',', 0}},
		{name: "gbk", file: "a.csv", in: gbk(chinese), want: Dialect{CSV, GB18030, ',', 0}},
		{name: "gbk cut at the end", file: "a.csv", in: gbk(chinese) + "\xc9", want: Dialect{CSV, GB18030, ',', 0}},
		{name: "gb18030 4-byte cut at the end", file: "a.csv", in: gbk(chinese) + "\x81\x30", want: Dialect{CSV, GB18030, ',', 0}},
		{name: "gbk with one bad row", file: "a.csv", in: gbk(chinese) + "A2,\xff\xff,1\r\n" + gbk(chinese), want: Dialect{CSV, GB18030, ',', 0}},
		{name: "neither: utf-8 with bad bytes", file: "a.csv", in: "sku,name\n1,caf\xe9\xff\xff\n", want: Dialect{CSV, UTF8, ',', 0}},
		{name: "csv extension", file: "A.CSV", in: "{\"a\":1}", want: Dialect{CSV, UTF8, ',', 0}},
		{name: "csv extension semicolons", file: "a.csv", in: "sku;name;price\n1;a;1,5\n", want: Dialect{CSV, UTF8, ';', 0}},
		{name: "csv extension tabs", file: "a.csv", in: "sku\tname\tprice\n", want: Dialect{CSV, UTF8, '\t', 0}},
		{name: "tsv extension", file: "a.tsv", in: "sku,name\n", want: Dialect{TSV, UTF8, '\t', 0}},
		{name: "tab extension", file: "a.tab", in: "sku\tname\n", want: Dialect{TSV, UTF8, '\t', 0}},
		{name: "jsonl extension", file: "a.jsonl", in: "sku,name\n", want: Dialect{JSONL, UTF8, 0, 0}},
		{name: "ndjson extension", file: "s3://b/incoming/x.ndjson", in: "{}", want: Dialect{JSONL, UTF8, 0, 0}},
		{name: "jsonlines extension", file: "x.jsonlines", in: "{}", want: Dialect{JSONL, UTF8, 0, 0}},
		{name: "sniff jsonl object", file: "data", in: "\n  {\"a\":1}\n", want: Dialect{JSONL, UTF8, 0, 0}},
		{name: "sniff jsonl array", file: "data.txt", in: "[1,2]\n", want: Dialect{JSONL, UTF8, 0, 0}},
		{name: "sniff tsv", file: "data.txt", in: "sku\tname\tdesc\n1\ta\tb, c, d\n", want: Dialect{TSV, UTF8, '\t', 0}},
		{name: "sniff semicolon", file: "data.txt", in: "sku;name;price\n1;\"a,b,c,d\";1,5\n", want: Dialect{CSV, UTF8, ';', 0}},
		{name: "sniff comma", file: "data", in: "sku,name;x\n", want: Dialect{CSV, UTF8, ',', 0}},
		{name: "sniff quoted delimiters ignored", file: "data", in: "\"a;b;c\",d,e\n", want: Dialect{CSV, UTF8, ',', 0}},
		{name: "sniff skips blank lines", file: "data", in: ",,,,\n\nsku;name\n", want: Dialect{CSV, UTF8, ';', 0}},
		{name: "sniff single column", file: "data", in: "sku\n1\n", want: Dialect{CSV, UTF8, ',', 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, err := Detect(tt.file, []byte(tt.in))
			if tt.msg != "" {
				ie, ok := failure.As(err)
				if !ok || ie.Reason != failure.SchemaMismatch || !strings.Contains(ie.Message, tt.msg) {
					t.Fatalf("err = %v; want SchemaMismatch %q", err, tt.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d != tt.want {
				t.Fatalf("got %+v; want %+v", d, tt.want)
			}
			if err := d.Validate(); (err != nil) != (d.Format == XLSX) {
				t.Fatal(err)
			}
		})
	}
}

func TestDetectLargePrefix(t *testing.T) {
	t.Parallel()
	// More than SniffSize is cut to SniffSize; a GBK character cut at the
	// cut is ignored.
	var b bytes.Buffer
	b.WriteString(gbk("商品编码,商品名称\r\n"))
	for b.Len() <= SniffSize {
		b.WriteString(gbk("A1,无线蓝牙耳机\r\n"))
	}
	for cut := SniffSize - 3; cut <= SniffSize; cut++ {
		d, err := Detect("a.csv", b.Bytes()[:cut])
		if err != nil || d.Encoding != GB18030 {
			t.Fatalf("cut %d: %+v %v", cut, d, err)
		}
	}
	d, err := Detect("a.csv", b.Bytes())
	if err != nil || d.Encoding != GB18030 {
		t.Fatalf("%+v %v", d, err)
	}
}

func TestDialectValidate(t *testing.T) {
	t.Parallel()
	bad := []Dialect{
		{Format: "xlsx", Encoding: UTF8},
		{Format: CSV, Encoding: "latin1"},
		{Format: CSV, Encoding: UTF8, Delimiter: '"'},
		{Format: CSV, Encoding: UTF8, Delimiter: '\n'},
		{Format: CSV, Encoding: UTF8, Delimiter: '，'},
		{Format: CSV, Encoding: UTF8, BOM: -1},
		{Format: CSV, Encoding: GB18030, Delimiter: '|'},
	}
	for _, d := range bad {
		if d.Validate() == nil {
			t.Errorf("%+v accepted", d)
		}
	}
	for _, d := range []Dialect{{Format: CSV, Encoding: UTF8}, {Format: TSV, Encoding: GB18030}, {Format: JSONL, Encoding: UTF16LE, Delimiter: '，'}} {
		if err := d.Validate(); err != nil {
			t.Errorf("%+v: %v", d, err)
		}
	}
	if (Dialect{Format: TSV}).delim() != '\t' || (Dialect{Format: CSV}).delim() != ',' {
		t.Error("default delimiters")
	}
}
