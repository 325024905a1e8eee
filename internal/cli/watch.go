package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/catalog-import/catalog-import/internal/state"
)

// This file is `importctl status --watch`: live progress of running batches,
// read from the store every interval (SQLite with --db, DynamoDB with
// --stack), as redrawn bars on a terminal (mpb, several bars at once) and as
// plain periodic lines anywhere else.

// frame is one batch as the watch shows it at one moment.
type frame struct {
	ID      string
	Status  state.BatchStatus
	Counts  state.Counts
	Layers  state.LayerCounts // failed rows by layer: from the shards' progress while running, exact once finished
	Rate    float64           // rows/s over the last rateWindow; < 0 while unknown
	ETA     time.Duration     // < 0 while unknown
	Elapsed time.Duration     // since the batch was created
	Message string            // the batch's message (why a SUSPENDED batch stopped)
}

// watched is one batch under watch.
type watched struct {
	id       string
	meter    meter
	finished bool
}

// display shows frames: update every tick with the running batches, done
// once for each batch that finishes.
type display interface {
	update(fs []frame)
	done(f frame)
	close()
}

// watchOptions configure watch.
type watchOptions struct {
	batch    string        // one batch, or "" for the running batches among the latest limit
	limit    int           // batches to look at when batch is ""
	interval time.Duration // between refreshes
	bars     bool          // redraw bars (a terminal) instead of printing lines
	now      func() time.Time
}

// watch shows the batches' progress until every watched batch is finished
// or ctx is done, and returns the last frame of each finished batch.
func watch(ctx context.Context, w io.Writer, db reader, o watchOptions) ([]frame, error) {
	var list []*watched
	seen := map[string]bool{}
	discover := func() error {
		if o.batch != "" {
			if !seen[o.batch] {
				seen[o.batch] = true
				list = append(list, &watched{id: o.batch})
			}
			return nil
		}
		bs, err := db.ListBatches(ctx, o.limit)
		if err != nil {
			return err
		}
		for i := len(bs) - 1; i >= 0; i-- { // oldest first
			if b := bs[i]; b.Status == state.BatchRunning && !seen[b.ID] {
				seen[b.ID] = true
				list = append(list, &watched{id: b.ID})
			}
		}
		return nil
	}
	if err := discover(); err != nil {
		return nil, err
	}
	if len(list) == 0 {
		fmt.Fprintln(w, "no running batches (give a BATCH_ID to watch one)")
		return nil, nil
	}
	var d display = &lines{w: w}
	if o.bars {
		d = newBars(ctx, w)
	}
	defer d.close()
	var finals []frame
	tick := time.NewTicker(o.interval)
	defer tick.Stop()
	for {
		var running []frame
		for _, wb := range list {
			if wb.finished {
				continue
			}
			f, err := observe(ctx, db, wb, o.now())
			if errors.Is(err, context.Canceled) {
				return finals, nil
			}
			if err != nil {
				return finals, err
			}
			if f.Status.Stopped() { // finished, or SUSPENDED: nothing moves until a person acts
				wb.finished = true
				finals = append(finals, f)
				d.done(f)
				continue
			}
			running = append(running, f)
		}
		if len(running) > 0 {
			d.update(running)
		} else if len(finals) == len(list) {
			return finals, nil
		}
		select {
		case <-ctx.Done():
			return finals, nil // Ctrl-C: stop watching, the batches go on
		case <-tick.C:
		}
		if err := discover(); err != nil && ctx.Err() == nil {
			return finals, err
		}
	}
}

// observe reads one batch and its shards and makes its frame.
func observe(ctx context.Context, db reader, wb *watched, now time.Time) (frame, error) {
	b, err := db.GetBatch(ctx, wb.id)
	if err != nil {
		return frame{}, err // the store names the batch
	}
	f := frame{ID: b.ID, Status: b.Status, Counts: b.Counts, Rate: -1, ETA: -1, Message: b.Message}
	if !b.CreatedAt.IsZero() {
		end := now
		if b.Status.Finished() && !b.FinishedAt.IsZero() {
			end = b.FinishedAt
		}
		f.Elapsed = end.Sub(b.CreatedAt)
	}
	if b.Status == state.BatchSuspended {
		return f, nil
	}
	if b.Status.Finished() {
		for r, n := range b.ByReason { // exact: counted from the stored records
			f.Layers.Add(r.Layer(), n)
		}
		return f, nil
	}
	shards, err := db.ListShards(ctx, b.ID)
	if err != nil {
		return frame{}, err // the store names the batch
	}
	for _, s := range shards {
		if n := len(s.Progress); n > 0 {
			f.Layers = f.Layers.Plus(s.Progress[n-1].ByLayer)
		}
	}
	done := b.Counts.Done()
	if f.Rate = wb.meter.add(now, done); f.Rate < 0 && f.Elapsed > 0 && done > 0 {
		f.Rate = float64(done) / f.Elapsed.Seconds() // first look: the average since the batch began
	}
	f.ETA = eta(b.Counts.Total-done, f.Rate)
	return f, nil
}

// layersText is "syntax 2, semantic 10" (the layers with failed rows).
func layersText(l state.LayerCounts) string {
	var parts []string
	for _, layer := range state.Layers() {
		if n := l.Get(layer); n > 0 {
			parts = append(parts, fmt.Sprintf("%s %s", layer, num(n)))
		}
	}
	return strings.Join(parts, ", ")
}

func percent(c state.Counts) string {
	if c.Total == 0 {
		return "100.0%"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(c.Done())/float64(c.Total))
}

func rateText(f frame) string {
	if f.Rate < 0 {
		return "- rows/s"
	}
	return num(int64(f.Rate+0.5)) + " rows/s"
}

func etaText(f frame) string {
	if f.ETA < 0 {
		return "ETA -"
	}
	return "ETA " + f.ETA.Round(time.Second).String()
}

func failedText(f frame) string {
	s := "failed " + num(f.Counts.Failed)
	if l := layersText(f.Layers); l != "" {
		s += " (" + l + ")"
	}
	return s
}

// progressLine is a running batch's plain line.
func progressLine(f frame) string {
	return fmt.Sprintf("%s %s %s/%s rows %s, %s, %s, %s", f.ID, f.Status, num(f.Counts.Done()), num(f.Counts.Total),
		percent(f.Counts), rateText(f), etaText(f), failedText(f))
}

// finalLine is a finished batch's line: its final counts.
func finalLine(f frame) string {
	c := f.Counts
	s := fmt.Sprintf("%s %s %s rows: %s imported, %s%s, %s skipped", f.ID, f.Status, num(c.Total), num(c.Imported), supersededText(c), failedText(f), num(c.Skipped))
	if f.Elapsed > 0 {
		s += ", in " + f.Elapsed.Round(time.Millisecond).String()
	}
	if f.Status == state.BatchSuspended && f.Message != "" {
		s += ": " + f.Message
	}
	return s
}

// lines prints one line per running batch per refresh, and the final line
// of each batch that finishes: for pipes, logs and tests.
type lines struct{ w io.Writer }

func (l *lines) update(fs []frame) {
	for _, f := range fs {
		fmt.Fprintln(l.w, time.Now().Format(time.TimeOnly), progressLine(f))
	}
}

func (l *lines) done(f frame) { fmt.Fprintln(l.w, time.Now().Format(time.TimeOnly), finalLine(f)) }

func (l *lines) close() {}

// bars redraws one progress bar per batch in place (a terminal).
type bars struct {
	p    *mpb.Progress
	bars map[string]*mpb.Bar
	mu   sync.Mutex // last is read by mpb's rendering goroutine
	last map[string]frame
}

func (b *bars) set(f frame) {
	b.mu.Lock()
	b.last[f.ID] = f
	b.mu.Unlock()
}

func (b *bars) get(id string) frame {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last[id]
}

// newBars draws on w, which the caller knows to be a terminal (Env says
// so); AutoRefresh draws even when w only wraps one (redrawn in place only
// when mpb sees the terminal itself).
func newBars(ctx context.Context, w io.Writer) *bars {
	return &bars{p: mpb.NewWithContext(ctx, mpb.WithOutput(w), mpb.WithAutoRefresh(), mpb.WithRefreshRate(200*time.Millisecond)),
		bars: map[string]*mpb.Bar{}, last: map[string]frame{}}
}

func (b *bars) bar(f frame) *mpb.Bar {
	if bar, ok := b.bars[f.ID]; ok {
		return bar
	}
	id := f.ID
	// Total 0: the bar completes only when done says so, not when the rows
	// done reach the total (finalization comes after that).
	bar := b.p.AddBar(0, mpb.BarWidth(30),
		mpb.PrependDecorators(decor.Name(id, decor.WCSyncSpaceR), decor.CountersNoUnit("%d/%d rows", decor.WCSyncSpace)),
		mpb.AppendDecorators(decor.Any(func(decor.Statistics) string {
			f := b.get(id)
			if f.Status.Stopped() {
				return fmt.Sprintf(" %s, %s, in %s", f.Status, failedText(f), f.Elapsed.Round(time.Millisecond))
			}
			return fmt.Sprintf(" %s %s, %s, %s", percent(f.Counts), rateText(f), etaText(f), failedText(f))
		})))
	b.bars[f.ID] = bar
	return bar
}

func (b *bars) update(fs []frame) {
	for _, f := range fs {
		b.set(f)
		bar := b.bar(f)
		bar.SetTotal(f.Counts.Total, false)
		bar.SetCurrent(f.Counts.Done())
	}
}

func (b *bars) done(f frame) {
	b.set(f)
	bar := b.bar(f)
	bar.SetTotal(f.Counts.Total, false)
	bar.SetCurrent(f.Counts.Done())
	if f.Counts.Done() == f.Counts.Total {
		bar.SetTotal(f.Counts.Total, true)
		return
	}
	bar.Abort(false) // aborted, cancelled, failed, suspended: the bar stays where the batch stopped
}

func (b *bars) close() {
	for _, bar := range b.bars {
		if !bar.Completed() {
			bar.Abort(false)
		}
	}
	b.p.Wait()
}

// runWatch is status --watch.
func runWatch(ctx context.Context, env Env, db reader, where string, args []string, limit int, interval time.Duration, asJSON bool) error {
	if asJSON {
		return usage("--watch shows progress for people: use status --json without --watch to poll")
	}
	if interval <= 0 {
		return usage("--interval %v: want a positive duration", interval)
	}
	o := watchOptions{limit: limit, interval: interval, bars: env.StdoutTerminal, now: time.Now}
	if len(args) == 1 {
		o.batch = args[0]
		if _, err := findBatch(ctx, db, where, o.batch); err != nil {
			return err
		}
	}
	finals, err := watch(ctx, env.Stdout, db, o)
	if err != nil {
		return err
	}
	if o.batch != "" && len(finals) == 1 {
		if code := ExitFor(finals[0].Status); code != ExitOK {
			return &exitError{code: code}
		}
	}
	return nil
}
