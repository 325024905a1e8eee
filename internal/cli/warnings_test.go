package cli

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"
)

// TestWorkbookWarnings: what the split noticed about a workbook (a hidden
// sheet left out, a cell right of the header ignored) is in `run --json`,
// in the text summary of a rerun and in `status`, text and JSON, and
// `preview` gives them before the import.
func TestWorkbookWarnings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	book := filepath.Join(dir, "book.xlsx")
	writeBook(t, book, []sheet{
		{name: "Sheet1", cells: map[string]any{"A1": "SKU", "B1": "Name", "C1": "Category", "D1": "Price",
			"A2": "W-1", "B2": "Lamp", "C2": "Home", "D2": 12.5, "F2": "a note"}},
		{name: "lists", cells: map[string]any{"A1": "Home"}, hidden: true},
	})
	want := []string{
		`sheet "lists" is hidden and was not imported (a profile's sheets: list imports the sheets it names, hidden ones too)`,
		`sheet "Sheet1", column F has no header: 1 cell ignored (F2 holds "a note"); give the column a header the profile maps to import it`,
	}
	db := filepath.Join(dir, "w.db")
	o, s := runImport(t, db, book)
	if o.Status != "COMPLETED" || !slices.Equal(s.Warnings, want) {
		t.Fatalf("run --json: %s, warnings %q; want COMPLETED with %q", o.Status, s.Warnings, want)
	}
	lines := func(out string) []string {
		var ws []string
		for l := range strings.SplitSeq(out, "\n") {
			if w, ok := strings.CutPrefix(l, "warning   "); ok {
				ws = append(ws, w)
			}
		}
		return ws
	}
	_, out, _ := importctl(t, "run", "--quiet", "--db", db, book)
	if got := lines(out); !slices.Equal(got, want) {
		t.Errorf("run summary warnings %q, want %q:\n%s", got, want, out)
	}
	_, out, _ = importctl(t, "status", "--db", db, s.BatchID)
	if got := lines(out); !slices.Equal(got, want) {
		t.Errorf("status warnings %q, want %q:\n%s", got, want, out)
	}
	// preview gives them before any import, on stderr after the rows.
	code, out, errs := importctl(t, "preview", book)
	var previewed []string
	for l := range strings.SplitSeq(errs, "\n") {
		if w, ok := strings.CutPrefix(l, book+": warning: "); ok {
			previewed = append(previewed, w)
		}
	}
	if code != 0 || !strings.Contains(out, `"SKU":"W-1"`) || !slices.Equal(previewed, want) {
		t.Errorf("preview: exit %d, warnings %q, want 0 and %q; stdout:\n%s\nstderr:\n%s", code, previewed, want, out, errs)
	}
	_, out, _ = importctl(t, "status", "--json", "--db", db, s.BatchID)
	var st struct {
		Warnings []string `json:"warnings"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || !slices.Equal(st.Warnings, want) {
		t.Errorf("status --json warnings %q (%v), want %q", st.Warnings, err, want)
	}
}

// TestPreviewSaysTheImportWouldReject: a visible sheet with rows but no
// header rejects the whole workbook on import; preview shows the good
// sheet's rows and says so, naming the sheet.
func TestPreviewSaysTheImportWouldReject(t *testing.T) {
	t.Parallel()
	book := filepath.Join(t.TempDir(), "book.xlsx")
	writeBook(t, book, []sheet{
		{name: "Sheet1", cells: map[string]any{"A1": "SKU", "B1": "Name", "C1": "Category", "D1": "Price", "A2": "W-1", "B2": "Lamp", "C2": "Home", "D2": 12.5}},
		{name: "notes", cells: map[string]any{"A1": "call the supplier on Monday"}},
	})
	code, out, errs := importctl(t, "preview", book)
	if code != 0 || !strings.Contains(out, `"SKU":"W-1"`) || !strings.Contains(errs, book+`: an import would reject the workbook: `) || !strings.Contains(errs, `"notes"`) {
		t.Errorf("preview: exit %d; want 0, the row of Sheet1 and the rejection naming sheet \"notes\"; stdout:\n%s\nstderr:\n%s", code, out, errs)
	}
}

// sheet is one sheet of a workbook writeBook writes: its cells by
// reference (A1, ...), hidden or not.
type sheet struct {
	name   string
	cells  map[string]any
	hidden bool
}

// writeBook writes a workbook of sheets, in order, at path.
func writeBook(t *testing.T, path string, sheets []sheet) {
	t.Helper()
	f := excelize.NewFile()
	for i, s := range sheets {
		if i == 0 {
			if err := f.SetSheetName("Sheet1", s.name); err != nil {
				t.Fatal(err)
			}
		} else if _, err := f.NewSheet(s.name); err != nil {
			t.Fatal(err)
		}
		for cell, v := range s.cells {
			if err := f.SetCellValue(s.name, cell, v); err != nil {
				t.Fatal(err)
			}
		}
		if s.hidden {
			if err := f.SetSheetVisible(s.name, false); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := f.SaveAs(path); err != nil {
		t.Fatal(err)
	}
}
