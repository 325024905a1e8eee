package record

import (
	"reflect"
	"testing"
)

// spectrum is the csv-spectrum corpus (github.com/max-mapper/csv-spectrum):
// each file with the cells it must read as. A quoted cell's bytes are kept
// as they are: newlines_crlf expects "Once upon \r\na time".
var spectrum = []struct {
	name  string
	in    string
	cells [][]string
}{
	{"comma_in_quotes", "first,last,address,city,zip\nJohn,Doe,120 any st.,\"Anytown, WW\",08123\n",
		[][]string{{"first", "last", "address", "city", "zip"}, {"John", "Doe", "120 any st.", "Anytown, WW", "08123"}}},
	{"empty", "a,b,c\n1,\"\",\"\"\n2,3,4\n", [][]string{{"a", "b", "c"}, {"1", "", ""}, {"2", "3", "4"}}},
	{"empty_crlf", "a,b,c\r\n1,\"\",\"\"\r\n2,3,4\r\n", [][]string{{"a", "b", "c"}, {"1", "", ""}, {"2", "3", "4"}}},
	{"escaped_quotes", "a,b\n1,\"ha \"\"ha\"\" ha\"\n3,4\n", [][]string{{"a", "b"}, {"1", `ha "ha" ha`}, {"3", "4"}}},
	{"json", "key,val\n1,\"{\"\"type\"\": \"\"Point\"\", \"\"coordinates\"\": [102.0, 0.5]}\"\n",
		[][]string{{"key", "val"}, {"1", `{"type": "Point", "coordinates": [102.0, 0.5]}`}}},
	{"newlines", "a,b,c\n1,2,3\n\"Once upon \na time\",5,6\n7,8,9\n",
		[][]string{{"a", "b", "c"}, {"1", "2", "3"}, {"Once upon \na time", "5", "6"}, {"7", "8", "9"}}},
	{"newlines_crlf", "a,b,c\r\n1,2,3\r\n\"Once upon \r\na time\",5,6\r\n7,8,9\r\n",
		[][]string{{"a", "b", "c"}, {"1", "2", "3"}, {"Once upon \r\na time", "5", "6"}, {"7", "8", "9"}}},
	{"quotes_and_newlines", "a,b\n1,\"ha \n\"\"ha\"\" \nha\"\n3,4\n", [][]string{{"a", "b"}, {"1", "ha \n\"ha\" \nha"}, {"3", "4"}}},
	{"simple", "a,b,c\n1,2,3\n", [][]string{{"a", "b", "c"}, {"1", "2", "3"}}},
	{"simple_crlf", "a,b,c\r\n1,2,3\r\n", [][]string{{"a", "b", "c"}, {"1", "2", "3"}}},
	{"utf8", "a,b,c\n1,2,3\n4,5,ʤ\n", [][]string{{"a", "b", "c"}, {"1", "2", "3"}, {"4", "5", "ʤ"}}},
}

// TestCSVSpectrum reads the csv-spectrum corpus in every encoding the
// Scanner reads csv in (GB18030 only for the ASCII files): the same cells,
// with every byte of a quoted cell kept.
func TestCSVSpectrum(t *testing.T) {
	t.Parallel()
	for _, tc := range spectrum {
		for _, enc := range []Encoding{UTF8, GB18030, UTF16LE, UTF16BE} {
			if enc == GB18030 && tc.name == "utf8" {
				continue
			}
			t.Run(tc.name+"/"+string(enc), func(t *testing.T) {
				t.Parallel()
				d := Dialect{Format: CSV, Encoding: enc, Delimiter: ','}
				in := tc.in
				if d.unitSize() == 2 {
					in = unit16(d, in)
				}
				rows, blank := parseAll(d, nil, []byte(in))
				if blank {
					t.Fatal("blank record")
				}
				var got [][]string
				for _, r := range rows {
					if r.Err != nil {
						t.Fatalf("row %d: %v", r.Num, r.Err)
					}
					got = append(got, r.Cells)
				}
				if !reflect.DeepEqual(got, tc.cells) {
					t.Fatalf("\n got %q\nwant %q", got, tc.cells)
				}
			})
		}
	}
}
