package record

import (
	"bytes"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"
)

// replacement is U+FFFD in UTF-8.
var replacement = []byte("\uFFFD")

// gbFFFD is U+FFFD encoded in GB18030: a real replacement character in the
// input, as opposed to one the decoder wrote for bytes it could not decode.
var gbFFFD = []byte{0x84, 0x31, 0xA4, 0x37}

// decoder turns a record's bytes into UTF-8 and tells where the first byte
// sequence that does not decode is. The x/text decoders replace such
// sequences with U+FFFD silently, so a decoded record that contains U+FFFD is
// decoded again sequence by sequence to tell a real U+FFFD in the input from
// a replacement. A decoder is not safe for concurrent use.
type decoder struct {
	enc Encoding
	t   transform.Transformer // x/text decoder (gb18030, utf-16)
	buf []byte
}

func newDecoder(enc Encoding) *decoder {
	d := &decoder{enc: enc}
	switch enc {
	case GB18030:
		d.t = simplifiedchinese.GB18030.NewDecoder()
	case UTF16LE:
		d.t = unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM).NewDecoder()
	case UTF16BE:
		d.t = unicode.UTF16(unicode.BigEndian, unicode.IgnoreBOM).NewDecoder()
	}
	return d
}

// decode returns src as UTF-8, with every byte sequence that does not decode
// replaced by U+FFFD, and the index in the result of the first such
// replacement (-1 if src decodes cleanly). For valid UTF-8 input the result
// is src itself; otherwise it is valid until the next call.
func (d *decoder) decode(src []byte) ([]byte, int) {
	switch d.enc {
	case UTF8:
		if utf8.Valid(src) {
			return src, -1
		}
		return d.sanitizeUTF8(src)
	case GB18030:
		return d.decodeGB(src)
	default:
		return d.decode16(src)
	}
}

// sanitizeUTF8 replaces every byte that is not part of a valid UTF-8
// sequence with U+FFFD.
func (d *decoder) sanitizeUTF8(src []byte) ([]byte, int) {
	out := d.buf[:0]
	bad := -1
	for i := 0; i < len(src); {
		c := src[i]
		if c < utf8.RuneSelf {
			out = append(out, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(src[i:])
		if r == utf8.RuneError && n == 1 {
			if bad < 0 {
				bad = len(out)
			}
			out = append(out, replacement...)
		} else {
			out = append(out, src[i:i+n]...)
		}
		i += n
	}
	d.buf = out
	return out, bad
}

// transform runs the x/text decoder over all of src into d.buf.
func (d *decoder) transform(src []byte, size int) ([]byte, bool) {
	if cap(d.buf) < size {
		d.buf = make([]byte, size)
	}
	d.t.Reset()
	n, m, err := d.t.Transform(d.buf[:cap(d.buf)], src, true)
	return d.buf[:n], err == nil && m == len(src)
}

// decodeGB decodes GB18030. Output is at most 3 bytes per input byte.
func (d *decoder) decodeGB(src []byte) ([]byte, int) {
	if out, ok := d.transform(src, 3*len(src)+8); ok && !bytes.Contains(out, replacement) {
		return out, -1
	}
	// Slow path: one sequence at a time, with the sequence lengths of the
	// x/text decoder, so that ASCII bytes are always read as ASCII.
	out := make([]byte, 0, 3*len(src)+8)
	var tmp [8]byte
	bad := -1
	for i := 0; i < len(src); {
		c := src[i]
		if c < utf8.RuneSelf {
			out = append(out, c)
			i++
			continue
		}
		n := gbSeqLen(src[i:])
		if n > 0 {
			d.t.Reset()
			k, _, err := d.t.Transform(tmp[:], src[i:i+n], true)
			dec := tmp[:k]
			if err == nil && (!bytes.Equal(dec, replacement) || bytes.Equal(src[i:i+n], gbFFFD)) {
				out = append(out, dec...)
				i += n
				continue
			}
			if n == 4 { // x/text skips one byte of a 4-byte code it cannot map
				n = 1
			}
		} else {
			n = 1
		}
		if bad < 0 {
			bad = len(out)
		}
		out = append(out, replacement...)
		i += n
	}
	d.buf = out
	return out, bad
}

// gbSeqLen returns the length of the GB18030 byte sequence at the start of b
// (which starts with a byte >= 0x80), or 0 if its bytes are not of the shape
// of a GB18030 character.
func gbSeqLen(b []byte) int {
	c0 := b[0]
	switch {
	case c0 == 0x80:
		return 1 // the euro sign of code page 936
	case c0 == 0xFF || len(b) < 2:
		return 0
	}
	c1 := b[1]
	switch {
	case 0x40 <= c1 && c1 <= 0x7E, 0x80 <= c1 && c1 <= 0xFE:
		return 2
	case 0x30 <= c1 && c1 <= 0x39:
		if len(b) >= 4 && 0x81 <= b[2] && b[2] <= 0xFE && 0x30 <= b[3] && b[3] <= 0x39 {
			return 4
		}
	}
	return 0
}

// decode16 decodes UTF-16. Output is at most 3 bytes per 2 input bytes.
func (d *decoder) decode16(src []byte) ([]byte, int) {
	if out, ok := d.transform(src, 2*len(src)+8); ok && !bytes.Contains(out, replacement) {
		return out, -1
	}
	// Slow path: unpaired surrogates and a trailing odd byte are errors; a
	// U+FFFD code unit is a real character.
	out := make([]byte, 0, 2*len(src)+8)
	bad := -1
	for i := 0; i < len(src); {
		if i+1 >= len(src) {
			if bad < 0 {
				bad = len(out)
			}
			out = append(out, replacement...)
			break
		}
		r := d.unit(src, i)
		i += 2
		switch {
		case utf16.IsSurrogate(r):
			if r < 0xDC00 && i+1 < len(src) {
				if r2 := d.unit(src, i); 0xDC00 <= r2 && r2 <= 0xDFFF {
					out = utf8.AppendRune(out, utf16.DecodeRune(r, r2))
					i += 2
					continue
				}
			}
			if bad < 0 {
				bad = len(out)
			}
			out = append(out, replacement...)
		default:
			out = utf8.AppendRune(out, r)
		}
	}
	d.buf = out
	return out, bad
}

func (d *decoder) unit(b []byte, i int) rune {
	if d.enc == UTF16BE {
		return rune(b[i])<<8 | rune(b[i+1])
	}
	return rune(b[i+1])<<8 | rune(b[i])
}
