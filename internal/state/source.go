package state

import (
	"github.com/catalog-import/catalog-import/internal/object"
	"github.com/catalog-import/catalog-import/internal/record"
)

// Info is the object version s names, as the object port takes it (to
// Open the exact bytes the batch was split from).
func (s Source) Info() object.Info {
	return object.Info{URI: s.URI, Size: s.Size, ETag: s.ETag, Version: s.Version, ModTime: s.ModTime}
}

// Dialect is the record dialect of l: its format and encoding, and its
// delimiter when that is one character (otherwise the format's default).
func (l Layout) Dialect() record.Dialect {
	d := record.Dialect{Format: record.Format(l.Format), Encoding: record.Encoding(l.Encoding)}
	if r := []rune(l.Delimiter); len(r) == 1 {
		d.Delimiter = r[0]
	}
	return d
}
