package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/catalog-import/catalog-import/internal/aws/dynamostate"
	"github.com/catalog-import/catalog-import/internal/embedded"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/lineage"
	"github.com/catalog-import/catalog-import/internal/local/sqlite"
	"github.com/catalog-import/catalog-import/internal/profile"
	"github.com/catalog-import/catalog-import/internal/record"
	"github.com/catalog-import/catalog-import/internal/report"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/state"
	"github.com/catalog-import/catalog-import/internal/triage"
	"github.com/catalog-import/catalog-import/internal/xlsx"
)

// openExisting opens a database that must already exist (reading commands
// never create one by accident).
func openExisting(path string) (*sqlite.DB, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, usage("no database at %s (run an import first, or pass --db)", path)
	}
	return sqlite.Open(path, sqlite.Options{})
}

// reader is the part of a state store the reading commands use.
type reader interface {
	GetBatch(ctx context.Context, id string) (state.Batch, error)
	ListBatches(ctx context.Context, limit int) ([]state.Batch, error)
	ListShards(ctx context.Context, batchID string) ([]state.Shard, error)
	Failures(ctx context.Context, batchID string, f state.FailureFilter) ([]failure.Record, error)
}

// openReader opens the stack's DynamoDB state table when --stack is given,
// else the SQLite database; where names it in messages.
func (g *global) openReader(ctx context.Context) (r reader, where string, closeFn func(), err error) {
	if g.stack == "" {
		db, err := openExisting(g.db)
		if err != nil {
			return nil, "", nil, err
		}
		return db, g.db, func() { db.Close() }, nil
	}
	res, clients, err := g.resources(ctx)
	if err != nil {
		return nil, "", nil, err
	}
	return dynamostate.New(clients.DynamoDB, res.StateTable, dynamostate.Options{}), "stack " + g.stack, func() {}, nil
}

func newStatusCmd(env Env, g *global) *cobra.Command {
	var asJSON, watching bool
	var limit int
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "status [BATCH_ID]",
		Short: "List recent batches, or show one batch with its shards; --watch follows running batches live",
		Long: `List recent batches, or show one batch with its shards and triage log.

--watch follows the running batches (or BATCH_ID) until they finish or Ctrl-C:
rows done of total, rows/s, ETA and failed rows by layer, refreshed every
--interval. On a terminal it redraws one bar per batch; otherwise it prints one
line per batch per refresh, then each batch's final counts. With a BATCH_ID it
exits as 'run' does for the batch's final status (0, 1 or 2).`,
		Args: cobra.MaximumNArgs(1),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "JSON output")
	cmd.Flags().IntVar(&limit, "limit", 20, "batches to list")
	cmd.Flags().BoolVarP(&watching, "watch", "w", false, "follow running batches live until they finish")
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "refresh interval of --watch")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		db, where, closeDB, err := g.openReader(ctx)
		if err != nil {
			return err
		}
		defer closeDB()
		if watching {
			return runWatch(ctx, env, db, where, args, limit, interval, asJSON)
		}
		if len(args) == 0 {
			bs, err := db.ListBatches(ctx, limit)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(env.Stdout, bs)
			}
			tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "BATCH\tSTATUS\tROWS\tIMPORTED\tFAILED\tSKIPPED\tCREATED\tFILE")
			for _, b := range bs {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", b.ID, b.Status, b.Counts.Total, b.Counts.Imported,
					b.Counts.Failed, b.Counts.Skipped, b.CreatedAt.Local().Format(time.DateTime), b.Source.URI)
			}
			return tw.Flush()
		}
		b, err := findBatch(ctx, db, where, args[0])
		if err != nil {
			return err
		}
		shards, err := db.ListShards(ctx, b.ID)
		if err != nil {
			return err
		}
		entries, err := triageEntries(ctx, db, b.ID)
		if err != nil {
			return err
		}
		if asJSON {
			return writeJSON(env.Stdout, struct {
				state.Batch
				ShardList []state.Shard  `json:"shard_list"`
				TriageLog []triage.Entry `json:"triage_log"`
			}{b, shards, entries})
		}
		printSummary(env.Stdout, b.Source.URI, embedded.Summary{Batch: b}, false, 0)
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		sheets := b.Layout.Format == string(record.XLSX)
		if sheets { // a workbook: the byte ranges are those of each shard's staged chunk
			fmt.Fprintln(tw, "\nSHARD\tSHEET\tSTATUS\tROWS\tFIRST ROW\tBYTES\tDONE\tIMPORTED\tFAILED\tATTEMPTS\tEPOCH")
		} else {
			fmt.Fprintln(tw, "\nSHARD\tSTATUS\tROWS\tFIRST ROW\tBYTES\tDONE\tIMPORTED\tFAILED\tATTEMPTS\tEPOCH")
		}
		for _, s := range shards {
			c := s.Checkpoint.Counts
			fmt.Fprintf(tw, "%d\t", s.Index)
			if sheets {
				fmt.Fprintf(tw, "%s\t", s.Sheet)
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d-%d\t%d\t%d\t%d\t%d\t%d\n", s.Status, s.Rows, s.FirstRow, s.Start, s.End,
				c.Done(), c.Imported, c.Failed, s.Attempts, s.Epoch)
		}
		if len(entries) > 0 {
			fmt.Fprintln(tw, "\nTRIAGE LOG\tSHARD\tKIND\tACTION\tREASON\tRECEIVES\tRETRIES\tMESSAGE")
			for _, e := range entries {
				action := string(e.Action)
				if e.Action == triage.Retry {
					action += " in " + e.Delay.String()
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%d\t%d\t%s\n", e.At.Local().Format(time.DateTime), e.Shard, e.Kind,
					dash(action), dash(string(e.Reason)), e.ReceiveCount, e.RetryCount, oneLine(e.Message, 120))
			}
		}
		return tw.Flush()
	}
	return cmd
}

// findBatch reads batch id from the store opened at where; an unknown id is
// a usage error naming both.
func findBatch(ctx context.Context, db reader, where, id string) (state.Batch, error) {
	b, err := db.GetBatch(ctx, id)
	if errors.Is(err, state.ErrNotFound) {
		return b, usage("no batch %s in %s", id, where)
	}
	return b, err
}

// triageEntries returns the batch's triage log (oldest first) from the
// store r was opened on.
func triageEntries(ctx context.Context, r reader, batchID string) ([]triage.Entry, error) {
	var l triage.Log
	switch r := r.(type) {
	case *sqlite.DB:
		l = r.TriageLog()
	case *dynamostate.Store:
		l = r.TriageLog()
	default:
		return nil, nil
	}
	es, err := l.List(ctx, batchID)
	if es == nil {
		es = []triage.Entry{}
	}
	return es, err
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newFailuresCmd(env Env, g *global) *cobra.Command {
	var (
		reasons    []string
		layers     []string
		format     string
		limit      int
		unresolved bool
		groupBy    string
	)
	cmd := &cobra.Command{
		Use:   "failures [flags] BATCH_ID",
		Short: "List a batch's failed rows (table, csv or jsonl)",
		Long: `List the failure records of a batch in row order. --format csv writes the same
columns as the error report (row, reason, layer, field, message, then the row's
original cells), with spreadsheet formulas neutralised; jsonl writes every field
of each record. --format fixfile writes only the unresolved failed rows as the
original file had them (header, column order, delimiter, encoding) plus _source_row,
_error and _batch columns: fix the cells in Excel and import the file again
('importctl run fix.csv', or drop it in the stack's bucket); the rows that import
mark their failures here resolved. DuplicateSKU rows are left out of it (imported
again unchanged, such a row would replace the product of its SKU's first row)
unless --reason DuplicateSKU asks for them.
--group-by reason|layer|field counts the records instead (largest first; table,
csv or jsonl), reading them once whatever their number; --limit then keeps the
largest groups.`,
		Args: exactArgs(1, "BATCH_ID"),
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&reasons, "reason", nil, "only these reasons (repeatable, e.g. DuplicateSKU)")
	fl.StringSliceVar(&layers, "layer", nil, "only these layers: syntax, semantic, business, infrastructure")
	fl.StringVar(&format, "format", "table", "table, csv, jsonl, or fixfile (the failed rows as the original file: fix them and import the file again)")
	fl.IntVar(&limit, "limit", 0, "at most this many records (0: all)")
	fl.BoolVar(&unresolved, "unresolved", false, "only failures no later batch (retry-failures, a fix file) has imported")
	fl.StringVar(&groupBy, "group-by", "", "count the records by reason, layer or field instead of listing them")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if format != "table" && format != "csv" && format != "jsonl" && format != "fixfile" {
			return usage("unknown format %q (table, csv, jsonl, fixfile)", format)
		}
		if err := checkGroupBy(groupBy, format); err != nil {
			return err
		}
		f, err := failureFilter(reasons, layers, format == "fixfile")
		if err != nil {
			return err
		}
		f.Unresolved = unresolved || format == "fixfile"
		db, where, closeDB, err := g.openReader(cmd.Context())
		if err != nil {
			return err
		}
		defer closeDB()
		b, err := findBatch(cmd.Context(), db, where, args[0])
		if err != nil {
			return err
		}
		if groupBy != "" {
			return writeGroups(cmd.Context(), env.Stdout, db, b, f, report.Group(groupBy), format, limit)
		}
		return writeFailures(cmd.Context(), env.Stdout, db, b, f, format, limit)
	}
	return cmd
}

// failureFilter parses --reason and --layer. For a file that is imported
// again (fix file, retry-failures) no --reason means every reason but
// DuplicateSKU: a duplicate row imported again unchanged would replace the
// product of its SKU's first row.
func failureFilter(reasons, layers []string, reimport bool) (state.FailureFilter, error) {
	f := state.FailureFilter{}
	for _, r := range reasons {
		if !failure.Reason(r).Known() {
			return f, usage("unknown reason %q (known: %v)", r, failure.Reasons())
		}
		f.Reasons = append(f.Reasons, failure.Reason(r))
	}
	for _, l := range layers {
		switch failure.Layer(l) {
		case failure.LayerSyntax, failure.LayerSemantic, failure.LayerBusiness, failure.LayerInfrastructure:
			f.Layers = append(f.Layers, failure.Layer(l))
		default:
			return f, usage("unknown layer %q (syntax, semantic, business, infrastructure)", l)
		}
	}
	if reimport && len(f.Reasons) == 0 {
		for _, r := range failure.Reasons() {
			if r != failure.DuplicateSKU {
				f.Reasons = append(f.Reasons, r)
			}
		}
	}
	return f, nil
}

// writeFailures pages through the records so memory stays flat.
func writeFailures(ctx context.Context, w io.Writer, db reader, b state.Batch, f state.FailureFilter, format string, limit int) error {
	var (
		rw *failure.ReportWriter
		tw *tabwriter.Writer
		fw *lineage.FixWriter
	)
	sheets := b.Layout.Format == string(record.XLSX)
	switch format {
	case "fixfile":
		var err error
		if fw, err = lineage.NewFixWriter(w, b.Layout); err != nil {
			return err
		}
	case "csv":
		header := b.Layout.Header
		if b.Layout.Format == string(record.JSONL) {
			header = nil
		}
		var err error
		if rw, err = failure.NewReportWriter(w, header, b.Layout.Format == string(record.XLSX)); err != nil {
			return err
		}
	case "table":
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		if sheets {
			fmt.Fprint(tw, "SHEET\t")
		}
		fmt.Fprintln(tw, "ROW\tREASON\tFIELD\tRESOLVED BY\tMESSAGE")
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	const page = 5000
	n := 0
	for {
		f.Limit = page
		if limit > 0 {
			f.Limit = min(page, limit-n)
		}
		recs, err := db.Failures(ctx, b.ID, f)
		if err != nil {
			return err
		}
		for _, r := range recs {
			switch format {
			case "fixfile":
				err = fw.Write(r)
			case "csv":
				err = rw.Write(r)
			case "jsonl":
				err = enc.Encode(r)
			default:
				if sheets {
					_, err = fmt.Fprintf(tw, "%s\t", r.Sheet)
				}
				if err == nil {
					_, err = fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", r.Row, r.Reason, r.Field, dash(r.ResolvedBy), oneLine(r.Message, 120))
				}
			}
			if err != nil {
				return err
			}
		}
		n += len(recs)
		if len(recs) < f.Limit || (limit > 0 && n >= limit) || len(recs) == 0 {
			break
		}
		f.AfterSheet, f.AfterRow = recs[len(recs)-1].Sheet, recs[len(recs)-1].Row
	}
	switch format {
	case "fixfile":
		return fw.Close()
	case "csv":
		return rw.Flush()
	case "table":
		return tw.Flush()
	}
	return nil
}

func oneLine(s string, max int) string {
	b := []rune(strings.ReplaceAll(s, "\n", " "))
	if len(b) > max {
		return string(b[:max-1]) + "…"
	}
	return string(b)
}

func newPreviewCmd(env Env) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "preview [flags] FILE",
		Short: "Show how a file is read: its format, encoding, and first rows as JSON Lines",
		Long: `Print the detected format and encoding on stderr, then the first rows as JSON
Lines keyed by the file's own header ("_row" is the row number as a spreadsheet
shows it). A row that cannot be read prints its error instead.`,
		Args: exactArgs(1, "FILE"),
	}
	cmd.Flags().IntVarP(&limit, "limit", "n", 10, "rows to show")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return preview(env, args[0], limit)
	}
	return cmd
}

func preview(env Env, path string, limit int) error {
	f, err := os.Open(path)
	if err != nil {
		return &exitError{code: ExitFailed, err: err}
	}
	defer f.Close()
	prefix := make([]byte, record.SniffSize)
	n, err := io.ReadFull(f, prefix)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return err
	}
	d, err := record.Detect(path, prefix[:n])
	if err != nil {
		return &exitError{code: ExitFailed, err: fmt.Errorf("%s: %w", path, err)}
	}
	if d.Format == record.XLSX {
		return previewWorkbook(env, path, limit)
	}
	header, start, row, err := record.Header(bytes.NewReader(prefix[:n]), d, n)
	if err != nil {
		return &exitError{code: ExitFailed, err: fmt.Errorf("%s: %w", path, err)}
	}
	fmt.Fprintf(env.Stderr, "%s: format %s, encoding %s, delimiter %q, header %d columns\n", path, d.Format, d.Encoding, d.Delimiter, len(header))
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		return err
	}
	sc := record.NewScanner(f, d, start, row, 1<<20)
	p := record.NewParser(d, header)
	for shown := 0; shown < limit && sc.Next(); {
		raw := sc.Raw()
		if raw.Blank {
			continue
		}
		shown++
		r := p.Parse(raw)
		var buf bytes.Buffer
		fmt.Fprintf(&buf, `{"_row":%d`, r.Num)
		if r.Err != nil {
			fmt.Fprintf(&buf, `,"_error":%s`, jsonString(r.Err.Error()))
		}
		for i, name := range r.Names {
			if i < len(r.Values) {
				fmt.Fprintf(&buf, ",%s:%s", jsonString(name), jsonString(r.Values[i]))
			}
		}
		buf.WriteString("}\n")
		if _, err := env.Stdout.Write(buf.Bytes()); err != nil {
			return err
		}
	}
	return sc.Err()
}

// previewWorkbook shows the first rows of each sheet the default profile
// imports, keyed by the sheet's header as the splitter finds it.
func previewWorkbook(env Env, path string, limit int) error {
	wb, err := xlsx.Open(path, xlsx.Limits{})
	if err != nil {
		return &exitError{code: ExitFailed, err: fmt.Errorf("%s: %w", path, err)}
	}
	defer wb.Close()
	v, err := profile.Default().Compile()
	if err != nil {
		return err
	}
	for _, s := range wb.Sheets() {
		if s.Hidden || !s.Worksheet {
			fmt.Fprintf(env.Stderr, "%s: sheet %q: not imported (hidden, or not a worksheet)\n", path, s.Name)
			continue
		}
		header, hrow, found, err := split.SheetHeader(wb, s, v)
		switch {
		case err != nil:
			fmt.Fprintf(env.Stderr, "%s: sheet %q: %v\n", path, s.Name, err)
			continue
		case !found:
			fmt.Fprintf(env.Stderr, "%s: sheet %q: no rows\n", path, s.Name)
			continue
		}
		fmt.Fprintf(env.Stderr, "%s: format xlsx, sheet %q, header row %d, %d columns\n", path, s.Name, hrow, len(header))
		rows, err := wb.Rows(s)
		if err != nil {
			return &exitError{code: ExitFailed, err: fmt.Errorf("%s: %w", path, err)}
		}
		for shown := 0; shown < limit && rows.Next(); {
			if rows.Row() <= hrow {
				continue
			}
			shown++
			var buf bytes.Buffer
			fmt.Fprintf(&buf, `{"_sheet":%s,"_row":%d`, jsonString(s.Name), rows.Row())
			for i, c := range rows.Cells() {
				name := fmt.Sprintf("_column_%d", i+1)
				if i < len(header) && header[i] != "" {
					name = header[i]
				}
				if c != "" {
					fmt.Fprintf(&buf, ",%s:%s", jsonString(name), jsonString(c))
				}
			}
			buf.WriteString("}\n")
			if _, err := env.Stdout.Write(buf.Bytes()); err != nil {
				rows.Close()
				return err
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return &exitError{code: ExitFailed, err: fmt.Errorf("%s: %w", path, err)}
		}
	}
	return nil
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func newProfileCmd(env Env) *cobra.Command {
	return &cobra.Command{
		Use:   "profile [FILE]",
		Short: "Print the built-in default profile, or check a profile file and print its effective rules",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p := profile.Default()
			if len(args) == 1 {
				var err error
				if p, err = profile.Load(args[0]); err != nil {
					return usage("%s: %w", args[0], err)
				}
			}
			fmt.Fprintf(env.Stdout, "# rule version %s\n", p.RuleVersion())
			_, err := env.Stdout.Write(p.Canonical())
			return err
		},
	}
}
