package xlsx

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"fmt"
	"hash/crc32"
	"runtime"
	"strings"
	"testing"
)

// bomb returns a worksheet part of n bytes that deflates to almost nothing.
func bomb(n int) string {
	head := `<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>`
	tail := `</sheetData></worksheet>`
	return head + strings.Repeat(" ", n-len(head)-len(tail)) + tail
}

// rawZip writes parts whose headers say what the caller wants, whatever
// the data: a zip whose directory lies about its sizes.
func rawZip(t testing.TB, parts []part, declare map[string]uint64) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, p := range parts {
		var comp bytes.Buffer
		fw, _ := flate.NewWriter(&comp, flate.BestCompression)
		fw.Write([]byte(p.data))
		fw.Close()
		size := uint64(len(p.data))
		if d, ok := declare[p.name]; ok {
			size = d
		}
		w, err := zw.CreateRaw(&zip.FileHeader{Name: p.name, Method: zip.Deflate, CRC32: crc32.ChecksumIEEE([]byte(p.data)),
			CompressedSize64: uint64(comp.Len()), UncompressedSize64: size})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(comp.Bytes())
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestHostileWorkbooks: a workbook built to exhaust memory, disk or time is
// refused with a clear reason, and reading it allocates little.
func TestHostileWorkbooks(t *testing.T) {
	one := func(ws string) []part { return book([]sheetDef{{name: "S", xml: ws}}, "", "", false) }
	withSST := func(sst string) []part {
		return book([]sheetDef{{name: "S", xml: sheetXML(`<row r="1"><c t="s"><v>0</v></c></row>`)}}, sst, "", false)
	}
	laughs := `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">` +
		`<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;"><!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>`
	cells := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, `<row r="%d"><c><v>%d</v></c></row>`, i+1, i)
		}
		return b.String()
	}
	manyParts := one(sheetXML(""))
	for i := range 60 {
		manyParts = append(manyParts, part{fmt.Sprintf("xl/media/image%d.png", i), "x"})
	}
	for _, c := range []struct {
		name   string
		data   []byte
		lim    Limits
		reason string
		want   string
	}{
		{"zip bomb: 64 MiB of XML in 64 KiB", zipBytes(t, one(bomb(64<<20))), Limits{},
			"RowTooLarge", "part xl/worksheets/sheet1.xml expands from"},
		{"zip bomb: 64 MiB of XML over a 32 MiB limit", zipBytes(t, one(bomb(64<<20))), Limits{MaxUncompressed: 32 << 20, MaxRatio: 1 << 20},
			"RowTooLarge", "over the limit of 32.0 MiB: a zip bomb?"},
		{"directory declares 100 GiB", rawZip(t, one(sheetXML("")), map[string]uint64{"xl/worksheets/sheet1.xml": 100 << 30}), Limits{},
			"RowTooLarge", "declares 100.0 GiB"},
		{"directory declares less than the data", rawZip(t, one(bomb(4<<20)), map[string]uint64{"xl/worksheets/sheet1.xml": 1000}), Limits{},
			"SchemaMismatch", "part xl/worksheets/sheet1.xml is corrupt"},
		{"too many parts", zipBytes(t, manyParts), Limits{MaxParts: 50},
			"RowTooLarge", "64 parts in the zip, over the limit of 50"},
		{"shared strings declared over the limit", zipBytes(t, withSST(`<sst uniqueCount="5000001"><si><t>a</t></si></sst>`)), Limits{},
			"RowTooLarge", "declares 5000001 strings, over the limit of 5000000"},
		{"shared strings over the limit despite the count", zipBytes(t, withSST(`<sst uniqueCount="1">`+strings.Repeat("<si><t>a</t></si>", 11)+`</sst>`)), Limits{MaxSharedStrings: 10},
			"RowTooLarge", "has over 10 strings"},
		{"shared strings text over the limit", zipBytes(t, withSST(`<sst>`+strings.Repeat("<si><t>abcdefghij</t></si>", 200)+`</sst>`)), Limits{MaxSharedBytes: 1000},
			"RowTooLarge", "over the limit of 1000 B"},
		{"too many cells", zipBytes(t, one(sheetXML(cells(101)))), Limits{MaxCells: 100},
			"RowTooLarge", "over 100 cells with a value"},
		{"row too large", zipBytes(t, one(sheetXML(`<row r="1"><c t="inlineStr"><is><t>`+strings.Repeat("x", 2000)+`</t></is></c></row>`))), Limits{MaxRowBytes: 1000},
			"RowTooLarge", "row 1 of sheet \"S\" holds over 1000 B"},
		{"billion laughs in a sheet", zipBytes(t, one(laughs+`<worksheet><sheetData><row r="1"><c t="inlineStr"><is><t>&lol9;</t></is></c></row></sheetData></worksheet>`)), Limits{},
			"SchemaMismatch", "part xl/worksheets/sheet1.xml declares a DTD (<!DOCTYPE…>)"},
		{"billion laughs in the shared strings", zipBytes(t, withSST(laughs+`<sst><si><t>&lol9;</t></si></sst>`)), Limits{},
			"SchemaMismatch", "part xl/sharedStrings.xml declares a DTD"},
		{"undeclared entity", zipBytes(t, one(sheetXML(`<row r="1"><c t="inlineStr"><is><t>&lol9;</t></is></c></row>`))), Limits{},
			"SchemaMismatch", "is not valid XML"},
		{"not a zip", []byte("sku,name\nA,B\n"), Limits{},
			"SchemaMismatch", "not a valid XLSX file"},
		{"a zip without a workbook", zipBytes(t, []part{{"hello.txt", "hi"}}), Limits{},
			"SchemaMismatch", "it has no workbook part (xl/workbook.xml)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := writeFile(t, "hostile.xlsx", c.data)
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := readAll(t, path, c.lim)
			runtime.ReadMemStats(&after)
			wantRejected(t, err, c.reason, c.want)
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
				t.Errorf("reading allocated %d MiB, want a refusal that costs little", alloc>>20)
			}
		})
	}
}
