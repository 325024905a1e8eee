// Package reportstest is the contract suite of the report store port
// (finalize.Reports): where finalization puts a batch's error report and
// HTML summary. Every adapter (internal/local/file, internal/aws/s3store)
// calls Run from its own test.
//
// The suite pins what a user checks after a batch: the report reads back,
// byte for byte, at the location Put returned; that location is the report's
// name in its batch's folder; putting a name again replaces the report; and
// a writer that fails leaves no partial report (and an earlier one as it
// was), with the writer's error returned.
package reportstest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/catalog-import/catalog-import/internal/finalize"
)

// Reader reads back what a report store stored, the way a user would.
type Reader interface {
	// Read returns the content at a location Put returned.
	Read(ctx context.Context, location string) ([]byte, error)
	// List returns the names of everything in a batch's report folder
	// (none, and no error, for a batch with no reports).
	List(ctx context.Context, batchID string) ([]string, error)
}

// Run runs the suite. newReports returns a fresh, empty report store and
// the reader of what it stores.
func Run(t *testing.T, newReports func(t *testing.T) (finalize.Reports, Reader)) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, r finalize.Reports, rd Reader)
	}{
		{"ReportReadsBack", testReadBack},
		{"EmptyReport", testEmpty},
		{"LargeReport", testLarge},
		{"PutAgainReplaces", testReplace},
		{"BatchesApart", testBatches},
		{"FailingWriterLeavesNothing", testWriterFails},
		{"ConcurrentPuts", testConcurrent},
		{"StaysInItsBatchFolder", testStaysInFolder},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, rd := newReports(t)
			tc.fn(t, r, rd)
		})
	}
}

func ctxOf(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// csvReport is an error report of n rows, with CJK text and quoting.
func csvReport(n int, tag string) string {
	var b strings.Builder
	b.WriteString("batch_id,sheet,row,layer,reason,field,message\n")
	for i := range n {
		fmt.Fprintf(&b, "%s,-,%d,semantic,InvalidNumber,price,\"价格不是数字: %q\"\n", tag, i+2, fmt.Sprint(i))
	}
	return b.String()
}

// put stores content as the report name of batch and returns its location.
func put(t *testing.T, r finalize.Reports, batch, name, content string) string {
	t.Helper()
	loc, err := r.Put(ctxOf(t), batch, name, func(w io.Writer) error {
		// In pieces, as the report writer does.
		for s := range strings.Lines(content) {
			if _, err := io.WriteString(w, s); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Put(%s, %s): %v", batch, name, err)
	}
	return loc
}

// readBack checks that location holds want.
func readBack(t *testing.T, rd Reader, loc, want string) {
	t.Helper()
	got, err := rd.Read(ctxOf(t), loc)
	if err != nil {
		t.Fatalf("read %s: %v", loc, err)
	}
	if string(got) != want {
		t.Errorf("%s holds %d bytes (%.40q...), want %d (%.40q...)", loc, len(got), got, len(want), want)
	}
}

// listed checks the names in a batch's folder.
func listed(t *testing.T, rd Reader, batch string, want ...string) {
	t.Helper()
	got, err := rd.List(ctxOf(t), batch)
	if err != nil {
		t.Fatalf("list %s: %v", batch, err)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("folder of %s holds %q, want %q", batch, got, want)
	}
}

// inFolder checks that a location is the report's name in its batch's folder.
func inFolder(t *testing.T, loc, batch, name string) {
	t.Helper()
	if !strings.HasSuffix(loc, "/"+batch+"/"+name) {
		t.Errorf("location %q is not %s in the folder of batch %s", loc, name, batch)
	}
}

func testReadBack(t *testing.T, r finalize.Reports, rd Reader) {
	csv := csvReport(50, "b-read")
	html := "<!doctype html><title>批次报告</title><p>50 rows failed</p>\n"
	loc := put(t, r, "b-read", "errors.csv", csv)
	inFolder(t, loc, "b-read", "errors.csv")
	readBack(t, rd, loc, csv)
	hloc := put(t, r, "b-read", "report.html", html)
	inFolder(t, hloc, "b-read", "report.html")
	readBack(t, rd, hloc, html)
	readBack(t, rd, loc, csv)
	listed(t, rd, "b-read", "errors.csv", "report.html")
}

func testEmpty(t *testing.T, r finalize.Reports, rd Reader) {
	loc := put(t, r, "b-empty", "errors.csv", "")
	readBack(t, rd, loc, "")
	listed(t, rd, "b-empty", "errors.csv")
}

func testLarge(t *testing.T, r finalize.Reports, rd Reader) {
	// More than one part of an S3 multipart upload (5 MiB).
	csv := csvReport(150_000, "b-large")
	if len(csv) < 6<<20 {
		t.Fatalf("report of %d bytes; the case wants more than 6 MiB", len(csv))
	}
	readBack(t, rd, put(t, r, "b-large", "errors.csv", csv), csv)
}

func testReplace(t *testing.T, r finalize.Reports, rd Reader) {
	first := put(t, r, "b-again", "errors.csv", csvReport(20, "first"))
	want := csvReport(3, "second")
	second := put(t, r, "b-again", "errors.csv", want)
	if first != second {
		t.Errorf("the same report put again is at %q, first at %q", second, first)
	}
	readBack(t, rd, second, want)
	listed(t, rd, "b-again", "errors.csv")
}

func testBatches(t *testing.T, r finalize.Reports, rd Reader) {
	a := put(t, r, "b-one", "errors.csv", csvReport(2, "b-one"))
	b := put(t, r, "b-two", "errors.csv", csvReport(4, "b-two"))
	if a == b {
		t.Fatalf("two batches' reports at one location %q", a)
	}
	readBack(t, rd, a, csvReport(2, "b-one"))
	readBack(t, rd, b, csvReport(4, "b-two"))
	listed(t, rd, "b-one", "errors.csv")
	listed(t, rd, "b-none")
}

func testWriterFails(t *testing.T, r finalize.Reports, rd Reader) {
	boom := errors.New("boom")
	fail := func(batch string, size int) {
		t.Helper()
		_, err := r.Put(ctxOf(t), batch, "errors.csv", func(w io.Writer) error {
			if _, err := io.WriteString(w, csvReport(size, batch)); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Errorf("Put with a writer failing after %d rows: %v, want the writer's error", size, err)
		}
	}
	// Small, and past the first part of a multipart upload.
	fail("b-fail", 10)
	fail("b-fail", 150_000)
	listed(t, rd, "b-fail")

	want := csvReport(5, "b-kept")
	loc := put(t, r, "b-kept", "errors.csv", want)
	fail("b-kept", 10)
	readBack(t, rd, loc, want)
	listed(t, rd, "b-kept", "errors.csv")
}

func testConcurrent(t *testing.T, r finalize.Reports, rd Reader) {
	const n = 6
	locs := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			loc, err := r.Put(ctxOf(t), "b-many", fmt.Sprintf("part-%d.csv", i), func(w io.Writer) error {
				_, err := io.WriteString(w, csvReport(100+i, "b-many"))
				return err
			})
			if err != nil {
				t.Errorf("Put %d: %v", i, err)
			}
			locs[i] = loc
		})
	}
	wg.Wait()
	var names []string
	for i, loc := range locs {
		if loc != "" {
			readBack(t, rd, loc, csvReport(100+i, "b-many"))
		}
		names = append(names, fmt.Sprintf("part-%d.csv", i))
	}
	listed(t, rd, "b-many", names...)
}

// testStaysInFolder: a batch id or name that would leave the batch's
// folder (a path, "..", a backslash, a NUL, or nothing) is refused before
// anything is written, and nothing is stored.
func testStaysInFolder(t *testing.T, r finalize.Reports, rd Reader) {
	for _, tc := range []struct{ batch, name string }{
		{"..", "errors.csv"},
		{".", "errors.csv"},
		{"b-one/../b-two", "errors.csv"},
		{"b-one", "../errors.csv"},
		{"b-one", "sub/errors.csv"},
		{"b-one", `..\errors.csv`},
		{"b-one", "errors\x00.csv"},
		{"", "errors.csv"},
		{"b-one", ""},
		{"b-one", ".."},
	} {
		called := false
		_, err := r.Put(ctxOf(t), tc.batch, tc.name, func(w io.Writer) error {
			called = true
			_, err := io.WriteString(w, "sku\n")
			return err
		})
		if err == nil || called {
			t.Errorf("Put(%q, %q): error %v, writer called %v; want refused before writing", tc.batch, tc.name, err, called)
		}
	}
	listed(t, rd, "b-one")
}
