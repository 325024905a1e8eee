package shard

import (
	"github.com/catalog-import/catalog-import/internal/catalog"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/lineage"
	"github.com/catalog-import/catalog-import/internal/record"
	"github.com/catalog-import/catalog-import/internal/split"
)

// This file parses and validates the records of a chunk (a pool goroutine).

// validate parses and validates every record of c (pool goroutine). The
// cells of a marked fix file are validated without the marks its writer
// added (lineage.UnmarkRow); the snapshot keeps the row as the file has it.
func (r *run) validate(parser *record.Parser, c *chunk) {
	if cap(c.products) < len(c.raws) || cap(c.snaps) < len(c.raws) {
		c.products = make([]catalog.Product, 0, len(c.raws))
		c.snaps = make([]snapshot, 0, len(c.raws))
	}
	c.products, c.snaps = c.products[:0], c.snaps[:0] // a spare's (recycle) or new
	for _, raw := range c.raws {
		row := parser.Parse(raw)
		err := row.Err
		if r.shard.Staged != nil { // a workbook's formula nobody computed (decision 14)
			if ferr := split.UncomputedFormula(r.header, &row); err == nil {
				err = ferr
			}
		}
		// The product is validated in place, in the next slot of
		// c.products (its capacity is one per record), kept if it passes.
		n := len(c.products)
		p := &c.products[:n+1][n]
		if err == nil {
			cols := r.header
			if cols == nil {
				cols = r.v.Names(row.Names)
			}
			values := row.Values
			if r.marked {
				values = lineage.UnmarkRow(values)
			}
			err = r.v.ValidateInto(p, cols, values)
		}
		if err != nil {
			*p = catalog.Product{}
			c.failures = append(c.failures, r.failureRecord(row, err))
			continue
		}
		p.BatchID, p.Order = r.m.BatchID, r.m.Order
		p.Source = catalog.Position{SheetIndex: r.m.SheetIndex, Sheet: r.m.Sheet, Row: row.Num}
		p.Offset, p.Length = row.Offset, row.Length
		c.products = c.products[:n+1]
		c.snaps = append(c.snaps, snapshot{text: row.Text, cells: row.Cells})
	}
	if r.w.prep != nil && r.checking == nil && len(c.products) > 0 {
		c.prepared = []any{r.w.prep.Prepare(r.p.WriteMode(), c.products)}
	}
}

func (r *run) failureRecord(row record.Row, err error) failure.Record {
	rec := failure.Record{
		BatchID: r.m.BatchID, Sheet: r.m.Sheet, Row: row.Num,
		RawLine: row.Text, Cells: row.Cells, FieldMapping: r.mapping,
		RuleVersion: r.m.RuleVersion, RetryCount: r.m.RetryCount,
		FailureAt: r.w.now().UTC(), TraceID: r.m.TraceID, Shard: r.m.Shard,
	}
	if rec.FieldMapping == nil && row.Names != nil {
		rec.FieldMapping = r.v.Names(row.Names).Mapping()
	}
	rec.FromError(err)
	return rec
}
