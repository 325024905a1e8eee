package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
)

// This file runs the product writes' statements on the write connection's
// driver connection (database/sql's Conn.Raw), without database/sql: no
// conversion and checking of every argument, no statement bookkeeping per
// call. They are run as queries because mattn's driver binds a query's
// arguments and takes its first step in one cgo call (an Exec makes one
// call per argument); modernc's runs them the same way. Measured in
// decision 28.

// rawStmts are the driver statements prepared on the write connection, by
// query text. They live as long as the connection; DB.Close closes them.
type rawStmts struct {
	stmts map[string]driver.Stmt
	args  []driver.NamedValue // scratch for arguments, reused under DB.mu
	dest  []driver.Value
}

// rawConn is the write connection's driver connection inside wtx.raw.
type rawConn struct {
	dc  driver.Conn
	s   *rawStmts
	ctx context.Context // never done (see wtx)
}

// raw runs fn with the write connection's driver connection. fn must not
// use the transaction's database/sql methods.
func (tx *wtx) raw(fn func(rc *rawConn) error) error {
	if err := tx.ctx.Err(); err != nil {
		return err
	}
	return tx.c.Raw(func(dc any) error {
		c, ok := dc.(driver.Conn)
		if !ok {
			return fmt.Errorf("driver connection %T is not a driver.Conn", dc)
		}
		return fn(&rawConn{dc: c, s: &tx.db.raw, ctx: tx.dctx})
	})
}

// stmt returns the driver statement of query, prepared once.
func (rc *rawConn) stmt(query string) (driver.StmtQueryContext, error) {
	st, ok := rc.s.stmts[query]
	if !ok {
		var err error
		if p, ok := rc.dc.(driver.ConnPrepareContext); ok {
			st, err = p.PrepareContext(rc.ctx, query)
		} else {
			st, err = rc.dc.Prepare(query)
		}
		if err != nil {
			return nil, err
		}
		if rc.s.stmts == nil {
			rc.s.stmts = map[string]driver.Stmt{}
		}
		rc.s.stmts[query] = st
	}
	q, ok := st.(driver.StmtQueryContext)
	if !ok {
		return nil, fmt.Errorf("driver statement %T cannot query", st)
	}
	return q, nil
}

// exec runs query, a statement that returns no rows, with vals.
func (rc *rawConn) exec(query string, vals []any) error {
	_, err := rc.query(query, vals, false)
	return err
}

// queryInt runs query, which returns one integer.
func (rc *rawConn) queryInt(query string, vals []any) (int64, error) {
	v, err := rc.query(query, vals, true)
	if err != nil {
		return 0, err
	}
	n, ok := v.(int64)
	if !ok {
		return 0, fmt.Errorf("%s: got %T, want an integer", query, v)
	}
	return n, nil
}

// query runs query with args and returns the first column of its first row
// when first is set, reading every row.
func (rc *rawConn) query(query string, vals []any, first bool) (driver.Value, error) {
	st, err := rc.stmt(query)
	if err != nil {
		return nil, err
	}
	// The scratch keeps its ordinals from call to call; only the values
	// are set, and dropped after the call: 1.7 us for a 100-product INSERT,
	// against 10.5 us building and clearing whole NamedValues.
	for n := len(rc.s.args); n < len(vals); n++ {
		rc.s.args = append(rc.s.args, driver.NamedValue{Ordinal: n + 1})
	}
	args := rc.s.args[:len(vals)]
	for i, v := range vals {
		args[i].Value = v
	}
	defer func() {
		for i := range args {
			args[i].Value = nil
		}
	}()
	rows, err := st.QueryContext(rc.ctx, args)
	if err != nil {
		return nil, err
	}
	var v driver.Value
	cols := len(rows.Columns())
	if cap(rc.s.dest) < cols {
		rc.s.dest = make([]driver.Value, cols)
	}
	dest := rc.s.dest[:cols]
	for n := 0; ; n++ {
		err = rows.Next(dest)
		if err != nil {
			break
		}
		if n == 0 && first && cols > 0 {
			v = dest[0]
		}
	}
	clear(dest)
	if !errors.Is(err, io.EOF) {
		rows.Close()
		return nil, err
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	if first && v == nil {
		return nil, sql.ErrNoRows
	}
	return v, nil
}

// close closes the statements on the write connection c.
func (s *rawStmts) close(c *sql.Conn) error {
	if len(s.stmts) == 0 {
		return nil
	}
	var errs []error
	err := c.Raw(func(any) error {
		for _, st := range s.stmts {
			errs = append(errs, st.Close())
		}
		return nil
	})
	s.stmts = nil
	return errors.Join(append(errs, err)...)
}
