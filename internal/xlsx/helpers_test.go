package xlsx

import (
	"archive/zip"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// part is one file of a hand-made workbook.
type part struct {
	name string
	data string
}

// sheetDef is a sheet of a hand-made workbook: its name, state and XML.
type sheetDef struct {
	name, state, xml string
}

// book builds the parts of a minimal workbook: the relationships, the
// workbook part, the sheets, and the shared strings and styles when given.
func book(sheets []sheetDef, sst, styles string, date1904 bool) []part {
	var wbSheets, rels strings.Builder
	parts := []part{{"_rels/.rels", `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>`}}
	for i, s := range sheets {
		state := ""
		if s.state != "" {
			state = fmt.Sprintf(` state="%s"`, s.state)
		}
		fmt.Fprintf(&wbSheets, `<sheet name="%s" sheetId="%d"%s r:id="rId%d"/>`, s.name, i+1, state, i+1)
		fmt.Fprintf(&rels, `<Relationship Id="rId%d" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet%d.xml"/>`, i+1, i+1)
		parts = append(parts, part{fmt.Sprintf("xl/worksheets/sheet%d.xml", i+1), s.xml})
	}
	if sst != "" {
		rels.WriteString(`<Relationship Id="rIdS" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>`)
		parts = append(parts, part{"xl/sharedStrings.xml", sst})
	}
	if styles != "" {
		rels.WriteString(`<Relationship Id="rIdT" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="/xl/styles.xml"/>`)
		parts = append(parts, part{"xl/styles.xml", styles})
	}
	pr := ""
	if date1904 {
		pr = `<workbookPr date1904="1"/>`
	}
	parts = append(parts,
		part{"xl/workbook.xml", `<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">` +
			pr + `<sheets>` + wbSheets.String() + `</sheets></workbook>`},
		part{"xl/_rels/workbook.xml.rels", `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">` + rels.String() + `</Relationships>`})
	return parts
}

// sheetXML wraps rows in a worksheet part.
func sheetXML(rows string) string {
	return `<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>` + rows + `</sheetData></worksheet>`
}

// zipBytes deflates parts into a zip.
func zipBytes(t testing.TB, parts []part) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, p := range parts {
		w, err := zw.Create(p.name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(p.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// writeFile writes data to a file in a test directory and returns its path.
func writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// sheetRows is what reading one sheet gave.
type sheetRows struct {
	Name  string
	Rows  map[int64][]string
	Notes map[int64][]Note // rows with notes only
}

// readAll reads every worksheet of the workbook at path.
func readAll(t testing.TB, path string, lim Limits) ([]sheetRows, error) {
	t.Helper()
	wb, err := Open(path, lim)
	if err != nil {
		return nil, err
	}
	return readBook(wb)
}

// readBytes reads every worksheet of the workbook data, without a file.
func readBytes(data []byte, lim Limits) ([]sheetRows, error) {
	wb, err := open(bytes.NewReader(data), int64(len(data)), lim.Defaults())
	if err != nil {
		return nil, err
	}
	return readBook(wb)
}

func readBook(wb *Workbook) ([]sheetRows, error) {
	defer wb.Close()
	var out []sheetRows
	for _, s := range wb.Sheets() {
		rows, err := wb.Rows(s)
		if err != nil {
			return out, err
		}
		sr := sheetRows{Name: s.Name, Rows: map[int64][]string{}}
		for rows.Next() {
			sr.Rows[rows.Row()] = append([]string(nil), rows.Cells()...)
			if n := rows.Notes(); len(n) > 0 {
				if sr.Notes == nil {
					sr.Notes = map[int64][]Note{}
				}
				sr.Notes[rows.Row()] = append([]Note(nil), n...)
			}
		}
		err = rows.Err()
		rows.Close()
		out = append(out, sr)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}
