package file_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/local/file"
	"github.com/catalog-import/catalog-import/internal/object"
	"github.com/catalog-import/catalog-import/internal/object/objecttest"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/split/stagetest"
)

// harness writes files in place (same inode, O_TRUNC) and gives every write
// its own mtime, so an overwrite with the same size is still a new version
// even on file systems with coarse timestamps.
type harness struct {
	dir string
	src file.Source

	mu    sync.Mutex
	mtime time.Time
}

func newHarness(t *testing.T) *harness {
	return &harness{dir: t.TempDir(), mtime: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (h *harness) Source() object.Source { return &h.src }

func (h *harness) Put(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(h.dir, name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	h.touch(t, path)
	return path
}

// touch sets a new, never used mtime on path.
func (h *harness) touch(t *testing.T, path string) {
	t.Helper()
	h.mu.Lock()
	h.mtime = h.mtime.Add(time.Second + time.Millisecond)
	mt := h.mtime
	h.mu.Unlock()
	if err := os.Chtimes(path, mt, mt); err != nil {
		t.Fatalf("chtimes %s: %v", path, err)
	}
}

func TestContract(t *testing.T) {
	objecttest.Run(t, newHarness(t))
}

var _ split.Stager = file.Staging{}

func TestStagingContract(t *testing.T) {
	stagetest.Run(t, func(t *testing.T) (split.Stager, object.Source) {
		return file.Staging{Dir: filepath.Join(t.TempDir(), "staging")}, &file.Source{}
	})
}

func TestFileURI(t *testing.T) {
	h := newHarness(t)
	path := h.Put(t, "uri.csv", []byte("sku,name\nA1,Widget\n"))
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, uri := range []string{"file://" + abs, "file://localhost" + abs} {
		info, err := h.src.Stat(t.Context(), uri)
		if err != nil {
			t.Fatalf("Stat(%q): %v", uri, err)
		}
		if info.URI != uri || info.Size != 19 {
			t.Errorf("Stat(%q) = %+v", uri, info)
		}
		r, err := h.src.Open(t.Context(), info, 4, 8)
		if err != nil {
			t.Fatalf("Open(%q): %v", uri, err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || string(got) != "name" {
			t.Errorf("read (4, 8) of %q = %q, %v; want \"name\"", uri, got, err)
		}
	}
	for _, uri := range []string{"s3://bucket/key.csv", "file://otherhost" + abs, ""} {
		if _, err := h.src.Stat(t.Context(), uri); err == nil {
			t.Errorf("Stat(%q) succeeded, want an error", uri)
		}
	}
}

func TestETagIsVersionNotContent(t *testing.T) {
	h := newHarness(t)
	data := []byte("sku\nA1\n")
	path := h.Put(t, "tag.csv", data)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	before := file.ETag(fi)

	// Replaced by rename with the same bytes and the same mtime: a new inode.
	tmp := filepath.Join(h.dir, "tag.tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	fi2, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if after := file.ETag(fi2); after == before {
		t.Errorf("ETag %q unchanged after the file was replaced by rename", before)
	}

	// A touch that leaves the bytes alone is a new version too (safe side).
	info, err := h.src.Stat(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	h.touch(t, path)
	_, err = h.src.Open(t.Context(), info, 0, -1)
	if failure.ReasonOf(err) != failure.SourceChanged {
		t.Errorf("Open after touch: %v, want SourceChanged", err)
	}
}

// openPart opens a 64 KiB file and reads its first KiB.
func openPart(t *testing.T, h *harness, name string) (string, object.Info, io.ReadCloser) {
	t.Helper()
	path := h.Put(t, name, []byte(strings.Repeat("0123456789abcdef", 4096)))
	info, err := h.src.Stat(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := h.src.Open(t.Context(), info, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(r, make([]byte, 1024)); err != nil {
		t.Fatal(err)
	}
	return path, info, r
}

func TestChangedDuringRead(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, h *harness, path string)
	}{
		{"RewrittenSameSize", func(t *testing.T, h *harness, path string) {
			h.Put(t, filepath.Base(path), []byte(strings.Repeat("fedcba9876543210", 4096)))
		}},
		{"Truncated", func(t *testing.T, h *harness, path string) {
			if err := os.Truncate(path, 2048); err != nil {
				t.Fatal(err)
			}
		}},
		{"Appended", func(t *testing.T, h *harness, path string) {
			f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteString("more\n"); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/ReadToEnd", func(t *testing.T) {
			h := newHarness(t)
			path, _, r := openPart(t, h, "during.csv")
			defer r.Close()
			tt.change(t, h, path)
			_, err := io.ReadAll(r)
			if failure.ReasonOf(err) != failure.SourceChanged {
				t.Errorf("read to the end after the change: %v, want SourceChanged", err)
			}
			if _, err := r.Read(make([]byte, 8)); failure.ReasonOf(err) != failure.SourceChanged {
				t.Errorf("Read after the failed end: %v, want SourceChanged again", err)
			}
		})
		t.Run(tt.name+"/CloseEarly", func(t *testing.T) {
			h := newHarness(t)
			path, _, r := openPart(t, h, "during.csv")
			tt.change(t, h, path)
			if err := r.Close(); failure.ReasonOf(err) != failure.SourceChanged {
				t.Errorf("Close before the end after the change: %v, want SourceChanged", err)
			}
		})
	}
}

func TestRenamedDuringReadKeepsVersion(t *testing.T) {
	h := newHarness(t)
	path, _, r := openPart(t, h, "renamed.csv")
	defer r.Close()
	tmp := filepath.Join(h.dir, "renamed.tmp")
	if err := os.WriteFile(tmp, []byte("other"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("reading the opened version after a rename over it: %v", err)
	}
	if want := strings.Repeat("0123456789abcdef", 4096)[1024:]; string(rest) != want {
		t.Errorf("read %d bytes of the opened version, want %d", len(rest), len(want))
	}
}

func TestClose(t *testing.T) {
	h := newHarness(t)
	_, _, r := openPart(t, h, "close.csv")
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := r.Read(make([]byte, 8)); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("Read after Close: %v, want fs.ErrClosed", err)
	}
}

func TestContextCancelStopsReads(t *testing.T) {
	h := newHarness(t)
	path := h.Put(t, "ctx.csv", []byte(strings.Repeat("x", 10_000)))
	info, err := h.src.Stat(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	r, err := h.src.Open(ctx, info, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Read(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := r.Read(make([]byte, 100)); !errors.Is(err, context.Canceled) {
		t.Errorf("Read after cancel: %v, want context.Canceled", err)
	}
}

func TestMissing(t *testing.T) {
	h := newHarness(t)
	path := h.Put(t, "gone.csv", []byte("sku\n"))
	info, err := h.src.Stat(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := h.src.Stat(t.Context(), path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat of a missing file: %v, want fs.ErrNotExist", err)
	}
	if _, err := h.src.Open(t.Context(), info, 0, -1); failure.ReasonOf(err) != failure.SourceChanged {
		t.Errorf("Open of a file deleted after Stat: %v, want SourceChanged", err)
	}
	if _, err := h.src.Stat(t.Context(), h.dir); err == nil {
		t.Errorf("Stat of a directory succeeded")
	}
}

// TestMessages pins what a person reads when a file is missing, not a file,
// or changed: the file is named once, and a change is told by its size and
// modification time, not by version tags.
func TestMessages(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "products.csv")
	at := time.Date(2024, 3, 1, 10, 2, 11, 0, time.Local)
	put := func(data string, mtime time.Time) {
		t.Helper()
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	var src file.Source
	stat := func() object.Info {
		t.Helper()
		info, err := src.Stat(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		return info
	}
	for _, tc := range []struct {
		name string
		err  func() error
		want string
	}{
		{"missing", func() error {
			_, err := src.Stat(t.Context(), filepath.Join(dir, "nosuch.csv"))
			return err
		}, "stat " + filepath.Join(dir, "nosuch.csv") + ": no such file or directory"},
		{"a folder", func() error {
			_, err := src.Stat(t.Context(), dir)
			return err
		}, "stat " + dir + ": is a directory, not a file"},
		{"grown and modified", func() error {
			put("sku\nA\n", at)
			info := stat()
			put("sku\nA\nB\n", at.Add(3*time.Minute+29*time.Second))
			_, err := src.Open(t.Context(), info, 0, -1)
			return err
		}, "SourceChanged: " + path + " changed while it was read (size 6 -> 8 bytes, modified 10:02:11 -> 10:05:40)"},
		{"touched within the second", func() error {
			put("sku\nA\n", at)
			info := stat()
			put("sku\nB\n", at.Add(5*time.Millisecond))
			_, err := src.Open(t.Context(), info, 0, -1)
			return err
		}, "SourceChanged: " + path + " changed while it was read (modified 10:02:11.000000000 -> 10:02:11.005000000)"},
		{"modified on another day, read to the end", func() error {
			put("sku\nA\n", at)
			info := stat()
			r, err := src.Open(t.Context(), info, 0, -1)
			if err != nil {
				return err
			}
			defer r.Close()
			put("sku\nC\n", at.AddDate(0, 0, 1))
			_, err = io.ReadAll(r)
			return err
		}, "SourceChanged: " + path + " changed while it was read (modified 2024-03-01 10:02:11 -> 2024-03-02 10:02:11)"},
	} {
		err := tc.err()
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: %v\nwant %s", tc.name, err, tc.want)
		}
	}
}
