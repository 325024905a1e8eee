// Package objecttest is the contract suite of the object source port
// (internal/object). Every adapter (internal/local/file, internal/aws/s3store)
// calls Run from its own test with a small Harness, in the manner of
// watermill's tests.TestPubSub and go-cloud's drivertest.
//
// The suite pins the port's semantics: size and ETag from Stat, exact bytes
// for every byte range Open is asked for, and the immutability check of
// invariant 7: an object that changed after it was Stat-ed is reported with
// the failure.SourceChanged reason and is never served as a mix of two
// versions.
package objecttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/object"
)

// Harness gives the suite an adapter and a way to write objects behind its
// back. Run calls it from one goroutine at a time.
type Harness interface {
	// Source returns the adapter under test.
	Source() object.Source
	// Put creates or overwrites the object called name with data and returns
	// its URI, which ends with name. Overwriting must give the object a new version that the
	// adapter can see (for a local file: a new mtime or size), even when the
	// new data has the same size as the old.
	Put(t *testing.T, name string, data []byte) string
}

// MetadataHarness is a Harness of an adapter whose store keeps user
// metadata (S3). The suite's StatMetadata case runs only on such a harness;
// on others it checks that Stat reports none.
type MetadataHarness interface {
	Harness
	// PutWithMetadata is Put, with user metadata on the object (keys as a
	// user sends them, in any case).
	PutWithMetadata(t *testing.T, name string, data []byte, meta map[string]string) string
}

// timeout bounds every call the suite makes.
const timeout = 30 * time.Second

// Run runs the contract suite against h. Object names used by the suite are
// plain names without slashes ("ranges.csv"); each subtest uses its own names.
func Run(t *testing.T, h Harness) {
	t.Helper()

	t.Run("StatSizeAndETag", func(t *testing.T) { testStat(t, h) })
	t.Run("ETagChangesOnOverwrite", func(t *testing.T) { testETagChanges(t, h) })
	t.Run("OpenRanges", func(t *testing.T) { testOpenRanges(t, h) })
	t.Run("OpenEmptyObject", func(t *testing.T) { testEmptyObject(t, h) })
	t.Run("OpenInvalidRange", func(t *testing.T) { testInvalidRange(t, h) })
	t.Run("OpenStaleInfo", func(t *testing.T) { testStaleInfo(t, h) })
	t.Run("PinnedVersionAfterOverwrite", func(t *testing.T) { testPinnedVersion(t, h) })
	t.Run("OverwrittenDuringRead", func(t *testing.T) { testOverwrittenDuringRead(t, h) })
	t.Run("StatMissing", func(t *testing.T) { testStatMissing(t, h) })
	t.Run("StatMetadata", func(t *testing.T) { testStatMetadata(t, h) })
	t.Run("ConcurrentRangedReads", func(t *testing.T) { testConcurrentReads(t, h) })
}

func testStat(t *testing.T, h Harness) {
	ctx := testContext(t)
	data := content(1, 10_000)
	uri := h.Put(t, "stat.csv", data)

	info, err := h.Source().Stat(ctx, uri)
	if err != nil {
		t.Fatalf("Stat(%q): %v", uri, err)
	}
	if info.URI != uri {
		t.Errorf("Stat(%q).URI = %q, want the URI asked for", uri, info.URI)
	}
	if info.Size != int64(len(data)) {
		t.Errorf("Stat(%q).Size = %d, want %d", uri, info.Size, len(data))
	}
	if info.ETag == "" {
		t.Errorf("Stat(%q).ETag is empty", uri)
	}
	again, err := h.Source().Stat(ctx, uri)
	if err != nil {
		t.Fatalf("second Stat(%q): %v", uri, err)
	}
	if again.ETag != info.ETag {
		t.Errorf("ETag of an unchanged object changed between two Stats: %q then %q", info.ETag, again.ETag)
	}
}

func testETagChanges(t *testing.T, h Harness) {
	ctx := testContext(t)
	v1 := content(2, 4096)
	v2 := content(3, 4096) // same size, other bytes
	v3 := content(4, 5000) // other size
	uri := h.Put(t, "etag.csv", v1)
	i1 := mustStat(ctx, t, h, uri)

	h.Put(t, "etag.csv", v2)
	i2 := mustStat(ctx, t, h, uri)
	if i2.ETag == i1.ETag {
		t.Errorf("ETag %q unchanged after the content was overwritten with other bytes of the same size", i1.ETag)
	}
	if i2.Size != int64(len(v2)) {
		t.Errorf("Size = %d after overwrite, want %d", i2.Size, len(v2))
	}

	h.Put(t, "etag.csv", v3)
	i3 := mustStat(ctx, t, h, uri)
	if i3.ETag == i1.ETag || i3.ETag == i2.ETag {
		t.Errorf("ETag %q after overwrite with another size repeats an earlier one (%q, %q)", i3.ETag, i1.ETag, i2.ETag)
	}
	if i3.Size != int64(len(v3)) {
		t.Errorf("Size = %d after overwrite, want %d", i3.Size, len(v3))
	}
}

func testOpenRanges(t *testing.T, h Harness) {
	ctx := testContext(t)
	data := content(5, 70_001) // spans several read buffers
	size := int64(len(data))
	uri := h.Put(t, "ranges.csv", data)
	info := mustStat(ctx, t, h, uri)

	tests := []struct {
		name       string
		start, end int64
		want       []byte
	}{
		{"Full", 0, size, data},
		{"OpenEnded", 0, -1, data},
		{"OpenEndedFromMiddle", 12_345, -1, data[12_345:]},
		{"Middle", 100, 200, data[100:200]},
		{"MiddleLarge", 1_000, 65_000, data[1_000:65_000]},
		{"OneByte", 42, 43, data[42:43]},
		{"FirstByte", 0, 1, data[:1]},
		{"LastByte", size - 1, size, data[size-1:]},
		{"Tail", size - 10, size, data[size-10:]},
		{"TailOpenEnded", size - 10, -1, data[size-10:]},
		{"EmptyRangeInMiddle", 500, 500, nil},
		{"StartAtSize", size, -1, nil},
		{"StartAtSizeClosed", size, size, nil},
		{"EndPastSize", size - 5, size + 100, data[size-5:]},
		{"StartPastSize", size + 10, -1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustRead(ctx, t, h.Source(), info, tt.start, tt.end)
			if !bytes.Equal(got, tt.want) {
				t.Errorf("Open(%d, %d) read %d bytes, want %d%s", tt.start, tt.end, len(got), len(tt.want), firstDiff(got, tt.want))
			}
		})
	}

	// Reads of odd sizes, repeated reads at EOF: the io.Reader contract.
	t.Run("ReaderContract", func(t *testing.T) {
		r, err := h.Source().Open(ctx, info, 777, 9_999)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if err := iotest.TestReader(r, data[777:9_999]); err != nil {
			t.Error(err)
		}
		if err := r.Close(); err != nil {
			t.Errorf("Close after reading to the end: %v", err)
		}
	})
}

func testEmptyObject(t *testing.T, h Harness) {
	ctx := testContext(t)
	uri := h.Put(t, "empty.csv", []byte{})
	info := mustStat(ctx, t, h, uri)
	if info.Size != 0 {
		t.Fatalf("Size of an empty object = %d", info.Size)
	}
	for _, end := range []int64{-1, 0} {
		if got := mustRead(ctx, t, h.Source(), info, 0, end); len(got) != 0 {
			t.Errorf("Open(0, %d) of an empty object read %d bytes", end, len(got))
		}
	}
}

func testInvalidRange(t *testing.T, h Harness) {
	ctx := testContext(t)
	uri := h.Put(t, "invalid-range.csv", content(6, 100))
	info := mustStat(ctx, t, h, uri)
	for _, rg := range [][2]int64{{-1, 10}, {50, 10}} {
		r, err := h.Source().Open(ctx, info, rg[0], rg[1])
		if err == nil {
			r.Close()
			t.Errorf("Open(%d, %d) succeeded, want an error for an invalid range", rg[0], rg[1])
		}
	}
}

func testStaleInfo(t *testing.T, h Harness) {
	tests := []struct {
		name     string
		old, new []byte
	}{
		{"SameSize", content(7, 8192), content(8, 8192)},
		{"Shorter", content(9, 8192), content(10, 100)},
		{"Longer", content(11, 8192), content(12, 20_000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testContext(t)
			name := "stale-" + tt.name + ".csv"
			uri := h.Put(t, name, tt.old)
			stale := mustStat(ctx, t, h, uri)
			h.Put(t, name, tt.new)
			stale.Version = "" // by ETag only (PinnedVersionAfterOverwrite reads by version)

			for _, rg := range [][2]int64{{0, -1}, {10, 90}} {
				r, err := h.Source().Open(ctx, stale, rg[0], rg[1])
				if err != nil {
					wantSourceChanged(t, fmt.Sprintf("Open(%d, %d) with a stale Info", rg[0], rg[1]), err)
					continue
				}
				got, err := io.ReadAll(r)
				r.Close()
				if err == nil {
					t.Errorf("Open(%d, %d) with a stale Info read %d bytes without error, want SourceChanged", rg[0], rg[1], len(got))
					continue
				}
				wantSourceChanged(t, fmt.Sprintf("reading range (%d, %d) with a stale Info", rg[0], rg[1]), err)
				end := rg[1]
				if end < 0 {
					end = int64(len(tt.old))
				}
				if !bytes.HasPrefix(tt.old[rg[0]:end], got) {
					t.Errorf("reading range (%d, %d) with a stale Info returned %d bytes that are not of the version asked for", rg[0], rg[1], len(got))
				}
			}
		})
	}
}

// testPinnedVersion: an Info with a Version (a store that keeps versions)
// reads exactly that version after the object was overwritten, for every
// range, so a batch registered with a version completes with the
// registered content; an adapter without versions (Version "") fails
// SourceChanged as for a stale ETag, never serving the new bytes.
func testPinnedVersion(t *testing.T, h Harness) {
	for _, tt := range []struct {
		name     string
		old, new []byte
	}{
		{"SameSize", content(21, 8192), content(22, 8192)},
		{"Shorter", content(23, 8192), content(24, 100)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testContext(t)
			name := "pinned-" + tt.name + ".csv"
			uri := h.Put(t, name, tt.old)
			registered := mustStat(ctx, t, h, uri)
			h.Put(t, name, tt.new)
			for _, rg := range [][2]int64{{0, -1}, {10, 90}, {8000, 8192}, {50, 50}} {
				r, err := h.Source().Open(ctx, registered, rg[0], rg[1])
				if err != nil {
					if registered.Version != "" {
						t.Errorf("Open(%d, %d) of version %s after an overwrite: %v, want the registered bytes", rg[0], rg[1], registered.Version, err)
					} else {
						wantSourceChanged(t, "Open of an overwritten object without a version", err)
					}
					continue
				}
				got, err := io.ReadAll(r)
				r.Close()
				end := rg[1]
				if end < 0 {
					end = int64(len(tt.old))
				}
				switch {
				case registered.Version == "" && err == nil:
					t.Errorf("Open(%d, %d) of an overwritten object without a version read %d bytes without error, want SourceChanged", rg[0], rg[1], len(got))
				case registered.Version == "":
					wantSourceChanged(t, "reading an overwritten object without a version", err)
				case err != nil:
					t.Errorf("reading range (%d, %d) of version %s: %v", rg[0], rg[1], registered.Version, err)
				case !bytes.Equal(got, tt.old[rg[0]:end]):
					t.Errorf("range (%d, %d) of version %s: not the registered bytes%s", rg[0], rg[1], registered.Version, firstDiff(got, tt.old[rg[0]:end]))
				}
			}
		})
	}
}

// testOverwrittenDuringRead overwrites an object between two Reads. An
// adapter may keep serving the version it opened (S3 does) or fail with
// SourceChanged no later than the Read that would return io.EOF (a local
// file does); it may never end a read cleanly with other bytes.
func testOverwrittenDuringRead(t *testing.T, h Harness) {
	ctx := testContext(t)
	old := content(13, 64*1024)
	uri := h.Put(t, "during.csv", old)
	info := mustStat(ctx, t, h, uri)

	r, err := h.Source().Open(ctx, info, 0, -1)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	head := make([]byte, 1024)
	if _, err := io.ReadFull(r, head); err != nil {
		r.Close()
		t.Fatalf("read the first KiB: %v", err)
	}
	h.Put(t, "during.csv", content(14, len(old)))
	rest, err := io.ReadAll(r)
	cerr := r.Close()
	if err != nil {
		wantSourceChanged(t, "reading an object overwritten during the read", err)
		return
	}
	if got := append(head, rest...); !bytes.Equal(got, old) {
		t.Errorf("reading an object overwritten during the read ended without error but returned other bytes%s", firstDiff(got, old))
	}
	if cerr != nil {
		wantSourceChanged(t, "Close after reading an object overwritten during the read", cerr)
	}
}

func testStatMissing(t *testing.T, h Harness) {
	ctx := testContext(t)
	uri := h.Put(t, "present.csv", []byte("sku\n1\n"))
	// The missing object lives next to a present one, so the URI is
	// well-formed and only the object is missing.
	prefix, ok := strings.CutSuffix(uri, "present.csv")
	if !ok {
		t.Fatalf("Put returned %q, which does not end with the object's name", uri)
	}
	missing := prefix + "missing.csv"
	if _, err := h.Source().Stat(ctx, missing); err == nil {
		t.Errorf("Stat(%q) of a missing object succeeded", missing)
	}
}

func testConcurrentReads(t *testing.T, h Harness) {
	ctx := testContext(t)
	data := content(15, 256*1024)
	size := int64(len(data))
	uri := h.Put(t, "concurrent.csv", data)
	info := mustStat(ctx, t, h, uri)

	src := h.Source()
	const readers, readsEach = 8, 12
	var wg sync.WaitGroup
	for g := range readers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 99))
			for range readsEach {
				start := rng.Int64N(size)
				end := start + rng.Int64N(size-start+1)
				r, err := src.Open(ctx, info, start, end)
				if err != nil {
					t.Errorf("reader %d: Open(%d, %d): %v", g, start, end, err)
					return
				}
				got, err := io.ReadAll(r)
				if cerr := r.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					t.Errorf("reader %d: read (%d, %d): %v", g, start, end, err)
					return
				}
				if !bytes.Equal(got, data[start:end]) {
					t.Errorf("reader %d: range (%d, %d) returned wrong bytes%s", g, start, end, firstDiff(got, data[start:end]))
					return
				}
			}
		})
	}
	wg.Wait()
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	t.Cleanup(cancel)
	return ctx
}

func mustStat(ctx context.Context, t *testing.T, h Harness, uri string) object.Info {
	t.Helper()
	info, err := h.Source().Stat(ctx, uri)
	if err != nil {
		t.Fatalf("Stat(%q): %v", uri, err)
	}
	return info
}

// mustRead reads the whole range and closes the reader, failing t on any error.
func mustRead(ctx context.Context, t *testing.T, src object.Source, info object.Info, start, end int64) []byte {
	t.Helper()
	r, err := src.Open(ctx, info, start, end)
	if err != nil {
		t.Fatalf("Open(%d, %d): %v", start, end, err)
	}
	got, err := io.ReadAll(r)
	if err != nil {
		r.Close()
		t.Fatalf("read (%d, %d): %v", start, end, err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("Close after reading (%d, %d): %v", start, end, err)
	}
	return got
}

func wantSourceChanged(t *testing.T, what string, err error) {
	t.Helper()
	var ie *failure.ImportError
	if !errors.As(err, &ie) || ie.Reason != failure.SourceChanged {
		t.Errorf("%s: error %v has reason %s, want %s", what, err, failure.ReasonOf(err), failure.SourceChanged)
	}
}

// content returns n deterministic pseudo-random bytes; different seeds give
// different bytes at almost every position.
func content(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// firstDiff describes where got first differs from want, for messages.
func firstDiff(got, want []byte) string {
	n := min(len(got), len(want))
	for i := range n {
		if got[i] != want[i] {
			return fmt.Sprintf(" (first difference at byte %d of the range)", i)
		}
	}
	if len(got) != len(want) {
		return fmt.Sprintf(" (%d bytes, want %d)", len(got), len(want))
	}
	return ""
}

// testStatMetadata: Stat returns the object's user metadata with lower-case
// keys, and none (nil) for an object that has none.
func testStatMetadata(t *testing.T, h Harness) {
	ctx := testContext(t)
	plain := h.Put(t, "plain.csv", content(5, 100))
	info, err := h.Source().Stat(ctx, plain)
	if err != nil {
		t.Fatalf("Stat(%q): %v", plain, err)
	}
	if info.Metadata != nil {
		t.Errorf("Stat(%q).Metadata = %v, want nil for an object without metadata", plain, info.Metadata)
	}
	mh, ok := h.(MetadataHarness)
	if !ok {
		return
	}
	uri := mh.PutWithMetadata(t, "meta.csv", content(6, 100), map[string]string{"Profile": "stock", "owner": "ops"})
	info, err = h.Source().Stat(ctx, uri)
	if err != nil {
		t.Fatalf("Stat(%q): %v", uri, err)
	}
	want := map[string]string{"profile": "stock", "owner": "ops"}
	if len(info.Metadata) != len(want) {
		t.Fatalf("Stat(%q).Metadata = %v, want %v", uri, info.Metadata, want)
	}
	for k, v := range want {
		if info.Metadata[k] != v {
			t.Errorf("Stat(%q).Metadata[%q] = %q, want %q", uri, k, info.Metadata[k], v)
		}
	}
}
