package shard

import (
	"context"
	"io"

	"github.com/catalog-import/catalog-import/internal/record"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/state"
)

// This file reads the shard's records from the checkpoint on, in chunks,
// checking the range's checksum when it is read from its start (invariant 7).

// read scans records and sends chunks to the pool (work) and, in the same
// order, to the committer (ordered). It stops early, setting *stopped, when
// the context's deadline is closer than the margin.
func (r *run) read(ctx context.Context, body io.Reader, from state.Checkpoint, sum *split.Checksum, work, ordered chan<- *chunk, stopped *bool) error {
	o := r.w.opt
	sc := record.NewScannerLimits(body, r.dialect, from.NextOffset, from.NextRow, split.ScanLimits(r.v.Profile(), o.MaxRecord))
	sent := from.NextOffset
	newChunk := func() *chunk {
		return &chunk{raws: make([]record.Raw, 0, o.CheckpointEvery), done: make(chan struct{})}
	}
	c := newChunk()
	send := func() bool {
		c.end, c.nextRow = sc.Offset(), sc.Row()
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
		sum.Add(raw.Bytes)
		start := len(c.buf)
		c.buf = append(c.buf, raw.Bytes...)
		raw.Bytes = c.buf[start:len(c.buf):len(c.buf)]
		c.raws = append(c.raws, raw)
		if len(c.raws) == o.CheckpointEvery {
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
