// Package stagetest is the contract suite of the staging port
// (split.Stager): the staging area where the splitter puts the normalized
// chunks of a workbook's sheets. Every adapter (internal/local/file,
// internal/aws/s3store) calls Run from its own test.
//
// The suite pins what workers and finalization rely on: a staged object is
// readable through the object source exactly as Stage reported it (URI,
// size, version tag), staging a name again replaces it (and the old version
// tag no longer reads), and Unstage removes one batch's objects and nothing
// else, idempotently.
package stagetest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/object"
	"github.com/catalog-import/catalog-import/internal/split"
)

// Run runs the suite. newStaging returns a fresh staging area and the
// object source that reads what it stages.
func Run(t *testing.T, newStaging func(t *testing.T) (split.Stager, object.Source)) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, st split.Stager, src object.Source)
	}{
		{"StagedObjectReadsBack", testReadBack},
		{"StageAgainReplaces", testReplace},
		{"UnstageRemovesOneBatch", testUnstage},
		{"UnstageNothingIsNoError", testUnstageNothing},
		{"ConcurrentStages", testConcurrent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st, src := newStaging(t)
			tc.fn(t, st, src)
		})
	}
}

func ctxOf(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func chunk(n int, tag string) []byte {
	var b bytes.Buffer
	b.WriteString("sku,name,price\n")
	for i := range n {
		fmt.Fprintf(&b, "%s-%d,名称 %d,\"1,%d\"\n", tag, i, i, i)
	}
	return b.Bytes()
}

func stage(t *testing.T, st split.Stager, batch, name string, data []byte) object.Info {
	t.Helper()
	info, err := st.Stage(ctxOf(t), batch, name, data)
	if err != nil {
		t.Fatalf("Stage(%s, %s): %v", batch, name, err)
	}
	return info
}

func read(ctx context.Context, src object.Source, info object.Info, start, end int64) ([]byte, error) {
	rc, err := src.Open(ctx, info, start, end)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func testReadBack(t *testing.T, st split.Stager, src object.Source) {
	ctx := ctxOf(t)
	data := chunk(500, "a")
	info := stage(t, st, "b-read", "0000-000000.csv", data)
	if !strings.Contains(info.URI, "b-read") || !strings.HasSuffix(info.URI, "0000-000000.csv") {
		t.Errorf("URI %q does not name the batch and the object", info.URI)
	}
	if info.Size != int64(len(data)) || info.ETag == "" {
		t.Errorf("Stage returned size %d, ETag %q; want %d and a version tag", info.Size, info.ETag, len(data))
	}
	stat, err := src.Stat(ctx, info.URI)
	if err != nil {
		t.Fatalf("Stat of the staged object: %v", err)
	}
	if stat.Size != info.Size || stat.ETag != info.ETag {
		t.Errorf("Stat says size %d ETag %q, Stage said %d %q", stat.Size, stat.ETag, info.Size, info.ETag)
	}
	got, err := read(ctx, src, info, 0, -1)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, %v; want the %d staged", len(got), err, len(data))
	}
	got, err = read(ctx, src, info, 15, 115)
	if err != nil || !bytes.Equal(got, data[15:115]) {
		t.Fatalf("ranged read %q, %v; want %q", got, err, data[15:115])
	}
}

func testReplace(t *testing.T, st split.Stager, src object.Source) {
	ctx := ctxOf(t)
	old := stage(t, st, "b-replace", "0001-000000.csv", chunk(10, "old"))
	data := chunk(20, "new")
	info := stage(t, st, "b-replace", "0001-000000.csv", data)
	if info.URI != old.URI || info.ETag == old.ETag {
		t.Errorf("staged again: URI %q ETag %q; first %q %q: want the same URI, a new version", info.URI, info.ETag, old.URI, old.ETag)
	}
	if got, err := read(ctx, src, info, 0, -1); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read the replaced object: %d bytes, %v", len(got), err)
	}
	old.Version = "" // by tag: a version id would pin the first version (object.Source.Open)
	if _, err := read(ctx, src, old, 0, -1); failure.ReasonOf(err) != failure.SourceChanged {
		t.Errorf("read with the first version's tag: %v, want SourceChanged", err)
	}
}

func testUnstage(t *testing.T, st split.Stager, src object.Source) {
	ctx := ctxOf(t)
	gone := []object.Info{
		stage(t, st, "b-gone", "0000-000000.csv", chunk(3, "x")),
		stage(t, st, "b-gone", "0000-000001.csv", chunk(3, "y")),
		stage(t, st, "b-gone", "0002-000000.csv", chunk(3, "z")),
	}
	keep := stage(t, st, "b-gone2", "0000-000000.csv", chunk(3, "k"))
	if err := st.Unstage(ctx, "b-gone"); err != nil {
		t.Fatalf("Unstage: %v", err)
	}
	for _, info := range gone {
		if _, err := read(ctx, src, info, 0, -1); failure.ReasonOf(err) != failure.SourceChanged {
			t.Errorf("read %s after Unstage: %v, want SourceChanged (gone)", info.URI, err)
		}
	}
	if got, err := read(ctx, src, keep, 0, -1); err != nil || len(got) == 0 {
		t.Errorf("another batch's object after Unstage: %d bytes, %v", len(got), err)
	}
	if err := st.Unstage(ctx, "b-gone"); err != nil {
		t.Errorf("Unstage again: %v", err)
	}
}

func testUnstageNothing(t *testing.T, st split.Stager, _ object.Source) {
	if err := st.Unstage(ctxOf(t), "b-never-staged"); err != nil {
		t.Errorf("Unstage of a batch that staged nothing: %v", err)
	}
}

func testConcurrent(t *testing.T, st split.Stager, src object.Source) {
	ctx := ctxOf(t)
	var wg sync.WaitGroup
	infos := make([]object.Info, 8)
	errs := make([]error, 8)
	for i := range infos {
		wg.Go(func() {
			infos[i], errs[i] = st.Stage(ctx, "b-conc", fmt.Sprintf("0000-%06d.csv", i), chunk(50, fmt.Sprint(i)))
		})
	}
	wg.Wait()
	for i, info := range infos {
		if errs[i] != nil {
			t.Fatalf("Stage %d: %v", i, errs[i])
		}
		if got, err := read(ctx, src, info, 0, -1); err != nil || !bytes.Equal(got, chunk(50, fmt.Sprint(i))) {
			t.Errorf("object %d: %d bytes, %v", i, len(got), err)
		}
	}
}
