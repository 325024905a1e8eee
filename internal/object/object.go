// Package object is the object source port: the size and version of a
// source file, streaming reads of byte ranges, and the immutability check of
// invariant 7 (a source that changed after the split fails with the
// SourceChanged reason, never mixing two versions). Adapters:
// internal/local/file (a local file, ReadAt) and internal/aws/s3store (GetObject
// with Range and VersionId, or IfMatch in an unversioned bucket); objecttest is the contract suite both pass.
package object

import (
	"context"
	"io"
	"time"
)

// Info describes one version of an object.
type Info struct {
	URI     string
	Size    int64
	ETag    string // changes whenever the content may have changed
	Version string // version id where the store keeps versions
	ModTime time.Time
	// Metadata is the object's user metadata where the store keeps some
	// (S3: the x-amz-meta-* headers, keys in lower case without the
	// prefix); nil where it keeps none.
	Metadata map[string]string
}

// Source reads objects.
type Source interface {
	// Stat returns the current size and version of uri.
	Stat(ctx context.Context, uri string) (Info, error)
	// Open streams bytes [start, end) of the object version want (end < 0
	// means to the end of the object). When want.Version is set (a store
	// that keeps versions), that version is read, also after the object
	// was overwritten; a version that is gone fails with a
	// failure.SourceChanged ImportError. Otherwise, if the object's current
	// ETag is not want.ETag, Open (or a later Read) fails with SourceChanged.
	// Reading past the object's end is io.EOF, not an error.
	Open(ctx context.Context, want Info, start, end int64) (io.ReadCloser, error)
}
