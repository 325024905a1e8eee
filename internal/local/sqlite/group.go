package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/catalog-import/catalog-import/internal/failure"
)

// This file runs write calls in transactions, and lets Write and Checkpoint
// calls share one (Options.GroupRows): a shard worker's products, failure
// records and checkpoints are then committed together, every few thousand
// rows instead of twice per chunk (decision 28).
//
// A group is one open BEGIN IMMEDIATE transaction. Each call joining it runs
// in a SAVEPOINT, so a call that fails undoes only its own statements and
// the calls before it stay in the group. A group is committed by the
// Checkpoint that finds it full (GroupRows products) or old (GroupWait), by
// any other write (which joins it first: its effects are committed with the
// group's, in order), before any read (a read sees every write that
// returned before it), by the checkpointer goroutine when no call came for
// GroupWait, and by Close. Invariant 3 holds because a checkpoint is in the
// same transaction as the products and failure records it covers: a crash
// loses both, and the rerun resumes from the last committed checkpoint.
//
// A group that cannot be committed (or that SQLite rolled back itself, on
// an I/O error or a full disk) lost calls that had returned success: the
// DB then fails every call with that error, as if the process had crashed
// there; a new Open resumes from what was committed.

// callKind says when a write call's transaction is committed.
type callKind int

const (
	commitCall     callKind = iota // committed when the call returns (with the group it joined)
	writeCall                      // Write: leaves a group open
	checkpointCall                 // Checkpoint: commits the group when it is full or old
)

// group is the transaction calls share, under DB.mu.
type group struct {
	open  bool
	rows  int       // products written in it
	since time.Time // when it began
	undo  []func()  // of its calls, run when it does not commit
}

// run runs fn in a write transaction: a new one, or the open group's (in a
// savepoint); kind and rows (products written by fn) decide whether it
// commits when fn returns.
func (db *DB) run(ctx context.Context, op string, kind callKind, rows int, fn func(tx *wtx) error) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.readOnly {
		return fmt.Errorf("%s: %w", op, failure.New(failure.Internal, "", "database %s is open read-only", db.path))
	}
	if db.wc == nil {
		return fmt.Errorf("%s: %w", op, failure.New(failure.Internal, "", "database is closed"))
	}
	if db.lost != nil {
		return fmt.Errorf("%s: %w", op, db.lost)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	tx := &wtx{db: db, ctx: ctx, dctx: context.WithoutCancel(ctx), c: db.wc}
	joined := db.group.open
	begin := "BEGIN IMMEDIATE"
	if joined {
		begin = "SAVEPOINT call"
	}
	if _, err := tx.exec(begin); err != nil {
		if joined {
			db.lose(err)
		}
		return wrapErr(ctx, op, err)
	}
	err := fn(tx)
	if err != nil {
		if joined {
			// Undo this call only; the group's earlier calls stay.
			if _, rerr := db.wc.ExecContext(tx.dctx, "ROLLBACK TO call"); rerr != nil {
				db.lose(fmt.Errorf("%w (and the transaction is gone: %v)", err, rerr))
			} else if _, rerr := db.wc.ExecContext(tx.dctx, "RELEASE call"); rerr != nil {
				db.lose(rerr)
			}
		} else {
			// The rollback must run even when ctx is done; it fails
			// harmlessly when SQLite has already rolled back.
			_, _ = db.wc.ExecContext(tx.dctx, "ROLLBACK")
		}
		for _, f := range tx.undo {
			f()
		}
		return wrapErr(ctx, op, err)
	}
	if joined {
		if _, err := tx.exec("RELEASE call"); err != nil {
			for _, f := range tx.undo {
				f()
			}
			db.lose(err)
			return wrapErr(ctx, op, err)
		}
	} else {
		db.group = group{open: true, since: time.Now()}
		db.grouped.Store(true)
	}
	g := &db.group
	g.rows += rows
	g.undo = append(g.undo, tx.undo...)
	full := g.rows >= db.opts.GroupRows || time.Since(g.since) >= db.opts.GroupWait
	// A Write never commits: the Checkpoint after it does, or the
	// checkpointer once the group is GroupWait old.
	switch {
	case db.opts.GroupRows == 0, kind == commitCall, kind == checkpointCall && full:
		if err := db.commitGroup(ctx); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
	}
	return nil
}

// commitGroup commits the open group. It is called with db.mu held.
func (db *DB) commitGroup(ctx context.Context) error {
	if !db.group.open {
		return nil
	}
	if _, err := db.wc.ExecContext(context.WithoutCancel(ctx), "COMMIT"); err != nil {
		_, _ = db.wc.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		db.lose(err)
		return mapErr(err)
	}
	db.group = group{}
	db.grouped.Store(false)
	db.committed()
	return nil
}

// lose records that the open group's transaction is gone with calls that
// had returned success. It is called with db.mu held.
func (db *DB) lose(err error) {
	for _, f := range db.group.undo {
		f()
	}
	wasOpen := db.group.open
	db.group = group{}
	db.grouped.Store(false)
	if wasOpen {
		db.lost = failure.Wrap(failure.Internal, "", err, "the write transaction of the last calls was lost (reopen the database to resume from what is committed): "+err.Error())
		db.broken.Store(true)
	}
}

// flush commits the open group, if any.
func (db *DB) flush() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.lost != nil {
		return db.lost
	}
	if db.wc == nil {
		return failure.New(failure.Internal, "", "database is closed")
	}
	return db.commitGroup(context.Background())
}

// expire commits a group older than GroupWait (the checkpointer, when no
// call came to commit it).
func (db *DB) expire() {
	if !db.grouped.Load() {
		return
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.group.open && db.wc != nil && time.Since(db.group.since) >= db.opts.GroupWait {
		_ = db.commitGroup(context.Background()) // a failure is kept in db.lost
	}
}
