package shard

import (
	"context"
	"io"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/record"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/state"
)

// This file reads the shard's records from the checkpoint on, in chunks,
// checking the range's checksum when it is read from its start (invariant 7).
// A shard with block checksums (state.Shard.Blocks) is cut into chunks at
// block boundaries, and each chunk's blocks are verified before the chunk
// is handed on, so a chunk holding a byte the splitter did not see is never
// validated or committed: the read fails SourceChanged instead.

// read scans records and sends chunks to the pool (work) and, in the same
// order, to the committer (ordered). It stops early, setting *stopped, when
// the context's deadline is closer than the margin.
func (r *run) read(ctx context.Context, body io.Reader, from state.Checkpoint, sum *split.Checksum, work, ordered chan<- *chunk, stopped *bool) error {
	o := r.w.opt
	sc := record.NewScannerLimits(body, r.dialect, from.NextOffset, from.NextRow, split.ScanLimits(r.v.Profile(), o.MaxRecord))
	sent := from.NextOffset
	bufSize := 0 // the last chunk's bytes: the next one's buffer starts with room for about as many
	newChunk := func() *chunk {
		select {
		case s := <-r.spares: // a committed chunk's buffers (recycle)
			return &chunk{raws: s.raws[:0], buf: s.buf[:0], products: s.products[:0], snaps: s.snaps[:0], done: make(chan struct{})}
		default:
		}
		return &chunk{raws: make([]record.Raw, 0, o.CheckpointEvery), buf: make([]byte, 0, bufSize+bufSize/8), done: make(chan struct{})}
	}
	c := newChunk()
	blocks := r.shard.Blocks
	if r.shard.Staged != nil || (blocks != nil && blocks.Rows <= 0) {
		blocks = nil // a staged object is the splitter's own, written once
	}
	size := int64(o.CheckpointEvery) // rows of the next chunk
	var (
		block  *split.Checksum // checksum of the current block, nil: not verified
		index  int64           // the current block
		inRows int64           // rows of the current block read so far
	)
	if blocks != nil {
		done := from.Counts.Done() // the shard's rows before the checkpoint
		index, inRows = done/blocks.Rows, done%blocks.Rows
		size = blocks.Rows - inRows
		if inRows == 0 { // a checkpoint between blocks: verify from here
			block = split.NewChecksum()
		}
	}
	verify := func() error {
		if blocks == nil || inRows == 0 {
			return nil
		}
		if block != nil {
			want, ok := blocks.Sum(index)
			if got := block.Hex(); !ok || got != want {
				return failure.New(failure.SourceChanged, "", "shard %d of %s: rows %d-%d (block %d) now read with checksum %s, the split saw %q: the source changed after the split",
					r.m.Shard, r.m.BatchID, c.raws[0].Row, c.raws[len(c.raws)-1].Row, index, got, want)
			}
		}
		if block != nil {
			sum.Append(block) // the block's records, summed once
		}
		index, inRows, block = index+1, 0, split.NewChecksum()
		return nil
	}
	send := func() bool {
		c.end, c.nextRow = sc.Offset(), sc.Row()
		bufSize = len(c.buf)
		select {
		case ordered <- c:
		case <-ctx.Done():
			return false
		}
		r.pending.Add(1)
		work <- c
		sent = c.end
		c = newChunk()
		return true
	}
	for sc.Next() {
		raw := sc.Raw()
		if raw.Blank {
			continue
		}
		if block != nil {
			block.Add(raw.Bytes) // sum gets it with the block (verify)
		} else {
			sum.Add(raw.Bytes)
		}
		if blocks != nil {
			inRows++
		}
		start := len(c.buf)
		c.buf = append(c.buf, raw.Bytes...)
		raw.Bytes = c.buf[start:len(c.buf):len(c.buf)]
		c.raws = append(c.raws, raw)
		if int64(len(c.raws)) == size {
			if blocks != nil {
				if err := verify(); err != nil {
					return err
				}
				size = blocks.Rows
			}
			// Record slices point into c.buf, which may have moved while
			// growing: re-point them before handing the chunk over.
			c.fixup()
			if !send() {
				return ctx.Err()
			}
			if r.nearDeadline(ctx) {
				*stopped = true
				return nil
			}
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	c.fixup()
	if err := verify(); err != nil { // the last block, shorter than the others
		return err
	}
	if len(c.raws) > 0 || sc.Offset() > sent { // trailing blank lines move the checkpoint too
		send()
	}
	return ctx.Err()
}

// fixup re-points each record's bytes into the chunk's final buffer.
func (c *chunk) fixup() {
	off := 0
	for i := range c.raws {
		n := len(c.raws[i].Bytes)
		c.raws[i].Bytes = c.buf[off : off+n : off+n]
		off += n
	}
}
