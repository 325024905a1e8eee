package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/lineage"
	"github.com/catalog-import/catalog-import/internal/record"
	"github.com/catalog-import/catalog-import/internal/report"
	"github.com/catalog-import/catalog-import/internal/state"
)

// newFailuresCmd is `importctl failures`.
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
original file had them (header, column order, delimiter, encoding) plus _marked,
_source_row, _error and _batch columns (cells Excel would take as formulas get a
leading ' that _marked names and the import removes): fix the cells in Excel and
import the file again
('importctl run fix.csv', or drop it in the stack's bucket); the rows that import
mark their failures here resolved. DuplicateSKU rows are left out of it (imported
again unchanged, such a row would replace the product of its SKU's first row)
unless --reason DuplicateSKU asks for them.
--reason takes reason codes, in any case (duplicatesku is DuplicateSKU), as
retry-failures and redrive do; an unknown one is refused with the list:
MalformedRow, SchemaMismatch, InvalidEncoding, RowTooLarge (syntax);
MissingField, InvalidNumber, OutOfRange, InvalidValue (semantic); DuplicateSKU,
BannedCategory, SKUExists, UnknownSKU (business); NetworkTimeout, Throttled,
ServiceUnavailable, AccessDenied, SourceChanged, CircuitOpen, Internal
(infrastructure).
--group-by reason|layer|field counts the records instead (largest first; table,
csv or jsonl), reading them once whatever their number; --limit then keeps the
largest groups.`,
		Args: exactArgs(1, "BATCH_ID"),
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&reasons, "reason", nil, "only these reasons (repeatable): "+reasonHelp)
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
		n, err := writeFailures(cmd.Context(), env.Stdout, db, b, f, format, limit)
		if err != nil || n > 0 || format != "fixfile" {
			return err
		}
		// A fix file of no row is its header alone: say why.
		why, err := leftOut(cmd.Context(), db, b.ID, reasons, f, true, "fix")
		if err != nil {
			return err
		}
		fmt.Fprintln(env.Stderr, "importctl:", why)
		return nil
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
		code, err := reasonFlag(r)
		if err != nil {
			return f, err
		}
		f.Reasons = append(f.Reasons, code)
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

// writeFailures pages through the records so memory stays flat, and
// returns how many it wrote.
func writeFailures(ctx context.Context, w io.Writer, db reader, b state.Batch, f state.FailureFilter, format string, limit int) (int, error) {
	out, err := newFailureWriter(w, b, format)
	if err != nil {
		return 0, err
	}
	const page = 5000
	n := 0
	for {
		f.Limit = page
		if limit > 0 {
			f.Limit = min(page, limit-n)
		}
		recs, err := db.Failures(ctx, b.ID, f)
		if err != nil {
			return n, err
		}
		for _, r := range recs {
			if err := out.write(r); err != nil {
				return n, err
			}
		}
		n += len(recs)
		if len(recs) < f.Limit || (limit > 0 && n >= limit) || len(recs) == 0 {
			break
		}
		f.AfterSheet, f.AfterRow = recs[len(recs)-1].Sheet, recs[len(recs)-1].Row
	}
	return n, out.close()
}

// failureWriter writes failure records in one of the formats of
// `failures --format`; close ends the output.
type failureWriter struct {
	write func(failure.Record) error
	close func() error
}

// newFailureWriter starts the output of batch b's failures in format
// (fixfile, csv, jsonl, or else a table) on w.
func newFailureWriter(w io.Writer, b state.Batch, format string) (failureWriter, error) {
	sheets := b.Layout.Format == string(record.XLSX)
	switch format {
	case "fixfile":
		fw, err := lineage.NewFixWriter(w, b.Layout)
		if err != nil {
			return failureWriter{}, err
		}
		return failureWriter{write: fw.Write, close: fw.Close}, nil
	case "csv":
		header := b.Layout.Header
		if b.Layout.Format == string(record.JSONL) {
			header = nil
		}
		rw, err := failure.NewReportWriter(w, header, sheets)
		if err != nil {
			return failureWriter{}, err
		}
		return failureWriter{write: rw.Write, close: rw.Flush}, nil
	case "jsonl":
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		return failureWriter{write: func(r failure.Record) error { return enc.Encode(r) }, close: func() error { return nil }}, nil
	}
	return newFailureTable(w, sheets), nil
}

// newFailureTable writes failure records as an aligned table, with their
// sheet for a workbook.
func newFailureTable(w io.Writer, sheets bool) failureWriter {
	tw := newTable(w)
	if sheets {
		fmt.Fprint(tw, "SHEET\t")
	}
	fmt.Fprintln(tw, "ROW\tREASON\tFIELD\tRESOLVED BY\tMESSAGE")
	write := func(r failure.Record) error {
		if sheets {
			if _, err := fmt.Fprintf(tw, "%s\t", r.Sheet); err != nil {
				return err
			}
		}
		_, err := fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", r.Row, r.Reason, r.Field, dash(r.ResolvedBy), oneLine(r.Message, 120))
		return err
	}
	return failureWriter{write: write, close: tw.Flush}
}

// reasonHelp is the rule of every --reason flag, for their helps.
const reasonHelp = "a reason code (DuplicateSKU, AccessDenied, ...; see 'importctl failures --help'), in any case"

// reasonFlag parses a --reason value: a known reason code, in any case
// (the one rule of failures, retry-failures and redrive).
func reasonFlag(s string) (failure.Reason, error) {
	code, ok := failure.ParseReason(strings.TrimSpace(s))
	if !ok {
		return "", usage("unknown reason %q (known: %v)", s, failure.Reasons())
	}
	return code, nil
}
