// Package file is the local-file adapter of the object source port
// (internal/object), used by embedded runs (`importctl run FILE`), and of
// the splitter's staging area (Staging, split.Stager), of the report
// store of finalization (Reports, finalize.Reports) and of the named
// profiles port (Profiles, pipeline.Profiles: a folder of <name>.yaml).
//
// It keeps invariant 7 (source immutability) for local files: Open refuses a
// file whose version tag is no longer the one the splitter saw, and a reader
// checks the tag again when it reaches the end of its range or is closed
// early, so a file rewritten during a long read fails with
// failure.SourceChanged instead of ending cleanly with bytes of two versions.
//
// The version tag (object.Info.ETag) is NOT a content hash: it is the hex of
// the file's size, modification time (ns) and inode, which is cheap to read
// and changes whenever the content may have changed (a rewrite in place moves
// the mtime; a replacement by rename brings a new inode). It can miss a
// rewrite that keeps the size and lands within the file system's timestamp
// granularity, or one whose mtime is set back on purpose; and it changes on a
// `touch` that leaves the bytes alone (a false SourceChanged, which is safe).
package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/object"
	"github.com/catalog-import/catalog-import/internal/text"
)

// Source reads local files. URIs are paths as given (relative to the working
// directory or absolute) or file:// URLs (file:///abs/path or
// file://localhost/abs/path). The zero value is ready to use and safe for
// concurrent use; each reader it returns belongs to one goroutine.
type Source struct{}

var _ object.Source = (*Source)(nil)

// Stat returns the size and version tag of the file at uri. A missing file is
// an error that matches fs.ErrNotExist; a file that may not be read is an
// AccessDenied ImportError.
func (s *Source) Stat(ctx context.Context, uri string) (object.Info, error) {
	if err := ctx.Err(); err != nil {
		return object.Info{}, err
	}
	path, err := pathOf(uri)
	if err != nil {
		return object.Info{}, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return object.Info{}, statError(uri, err)
	}
	if fi.IsDir() {
		return object.Info{}, &fs.PathError{Op: "stat", Path: uri, Err: errIsDir}
	}
	if !fi.Mode().IsRegular() {
		return object.Info{}, &fs.PathError{Op: "stat", Path: uri, Err: errNotRegular}
	}
	return object.Info{URI: uri, Size: fi.Size(), ETag: ETag(fi), ModTime: fi.ModTime()}, nil
}

// Open streams bytes [start, end) of want.URI (end < 0: to the end of the
// file; an end past the file's end is clamped, and a start at or past it
// reads nothing). It fails with a SourceChanged ImportError when the file is
// gone or its tag is not want.ETag. start < 0 or 0 <= end < start is an
// error.
//
// The returned reader streams with ReadAt (no buffering, no whole file in
// memory) and honours ctx on every Read. When it reaches the end of its range
// it checks the file again: if the tag moved or the file was cut short, that
// Read returns a SourceChanged error instead of io.EOF, and the bytes read so
// far must be discarded. Close before the end checks too and reports
// SourceChanged the same way. A file replaced by rename while a reader is
// open is not a change for that reader: it keeps reading the version it
// opened, which is the version asked for.
func (s *Source) Open(ctx context.Context, want object.Info, start, end int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if start < 0 || (end >= 0 && end < start) {
		return nil, fmt.Errorf("open %s: invalid range [%d, %d)", want.URI, start, end)
	}
	path, err := pathOf(want.URI)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, openError(want.URI, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, pathError("stat", want.URI, err)
	}
	if tag := ETag(fi); tag != want.ETag {
		f.Close()
		return nil, changed(want, fi)
	}
	size := fi.Size()
	if end < 0 || end > size {
		end = size
	}
	start = min(start, end)
	return &reader{
		ctx:  ctx,
		f:    f,
		uri:  want.URI,
		want: want,
		sr:   io.NewSectionReader(f, start, end-start),
		left: end - start,
	}, nil
}

// ETag returns the version tag of a file: hex of its size, modification time
// in nanoseconds and inode ("size-mtime-inode"). It is not a content hash.
// The inode is 0 on systems that do not expose one.
func ETag(fi fs.FileInfo) string {
	return fmt.Sprintf("%x-%x-%x", fi.Size(), uint64(fi.ModTime().UnixNano()), inode(fi))
}

// reader is one ranged read of one version of a file.
type reader struct {
	ctx  context.Context
	f    *os.File
	uri  string
	want object.Info // the version asked for
	sr   *io.SectionReader
	left int64 // bytes of the range not yet returned

	mu     sync.Mutex // guards the fields below against a Close from another goroutine
	done   error      // sticky result once the end of the range was reached
	closed bool
}

func (r *reader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return 0, fmt.Errorf("read %s: %w", r.uri, fs.ErrClosed)
	}
	if r.done != nil {
		return 0, r.done
	}
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := r.sr.Read(p)
	r.left -= int64(n)
	switch {
	case err == nil:
		return n, nil
	case errors.Is(err, io.EOF):
		r.done = io.EOF
		if r.left != 0 {
			// The file ended before the range did: it was cut short.
			r.done = failure.New(failure.SourceChanged, "", "source %s: ended %d bytes before the range", r.uri, r.left)
		} else if cerr := r.check(); cerr != nil {
			r.done = cerr
		}
		return n, r.done
	default:
		return n, pathError("read", r.uri, err)
	}
}

// Close closes the file. Closed before the end of the range, it checks the
// tag and returns a SourceChanged error if the file changed. Closing twice is
// a no-op.
func (r *reader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	var err error
	if r.done == nil {
		err = r.check()
	}
	if cerr := r.f.Close(); err == nil && cerr != nil {
		err = pathError("close", r.uri, cerr)
	}
	return err
}

// check compares the open file's current tag with the one asked for.
func (r *reader) check() error {
	fi, err := r.f.Stat()
	if err != nil {
		return pathError("stat", r.uri, err)
	}
	if tag := ETag(fi); tag != r.want.ETag {
		return changed(r.want, fi)
	}
	return nil
}

// Errors of a path that is not a file to read.
var (
	errIsDir      = errors.New("is a directory, not a file")
	errNotRegular = errors.New("not a regular file")
)

// changed is the SourceChanged error of a file whose version is no longer
// want's: it says what a person can see moved (size, modification time, or
// the file itself replaced), not the version tags.
func changed(want object.Info, now fs.FileInfo) error {
	var what []string
	if now.Size() != want.Size {
		what = append(what, fmt.Sprintf("size %d -> %d bytes", want.Size, now.Size()))
	}
	if !want.ModTime.IsZero() && !now.ModTime().Equal(want.ModTime) {
		was, is := text.Moments(want.ModTime, now.ModTime())
		what = append(what, "modified "+was+" -> "+is)
	}
	if len(what) == 0 {
		what = append(what, "replaced by another file of the same size and time")
	}
	return failure.New(failure.SourceChanged, "", "%s changed while it was read (%s)", want.URI, strings.Join(what, ", "))
}

// pathError is err of op on uri naming uri once: the *fs.PathError of an os
// call carries the path it was given, which is the decoded path of uri, so
// it is named again as uri, the name the caller knows.
func pathError(op, uri string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return &fs.PathError{Op: op, Path: uri, Err: pe.Err}
	}
	return &fs.PathError{Op: op, Path: uri, Err: err}
}

func statError(uri string, err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return failure.Wrap(failure.AccessDenied, "", err, "")
	}
	return pathError("stat", uri, err)
}

// openError maps the error of opening a file that was seen by Stat: a file
// that is gone has changed.
func openError(uri string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return failure.Wrap(failure.SourceChanged, "", err, fmt.Sprintf("source %s no longer exists", uri))
	case errors.Is(err, fs.ErrPermission):
		return failure.Wrap(failure.AccessDenied, "", err, "")
	}
	return pathError("open", uri, err)
}

var scheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://`)

// pathOf turns a URI into a local path: file:// URLs are decoded, anything
// else with a scheme is refused, and plain paths are used as given.
func pathOf(uri string) (string, error) {
	if uri == "" {
		return "", errors.New("file: empty URI")
	}
	if !scheme.MatchString(uri) {
		return uri, nil
	}
	u, err := url.Parse(uri)
	if err != nil {
		return "", fmt.Errorf("file: parse %q: %w", uri, err)
	}
	if u.Scheme != "file" {
		return "", fmt.Errorf("file: %q is not a local path or file:// URL", uri)
	}
	if u.Host != "" && u.Host != "localhost" {
		return "", fmt.Errorf("file: %q names another host", uri)
	}
	if u.Path == "" {
		return "", fmt.Errorf("file: %q has no path", uri)
	}
	return u.Path, nil
}
