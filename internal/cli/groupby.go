package cli

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"

	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/report"
	"github.com/catalog-import/catalog-import/internal/state"
)

// checkGroupBy validates failures' --group-by against --format.
func checkGroupBy(g, format string) error {
	switch report.Group(g) {
	case "":
		return nil
	case report.ByReason, report.ByLayer, report.ByField:
	default:
		return usage("unknown --group-by %q (reason, layer, field)", g)
	}
	if format == "fixfile" {
		return usage("--group-by counts records: use --format table, csv or jsonl")
	}
	return nil
}

// writeGroups counts the failure records f selects by g, reading them once
// in pages (report.Collect), and writes the groups largest first: a table
// with each group's share, csv or jsonl. A reason carries its layer. limit,
// when positive, keeps the largest groups.
func writeGroups(ctx context.Context, w io.Writer, db reader, b state.Batch, f state.FailureFilter, g report.Group, format string, limit int) error {
	agg, err := report.Collect(ctx, db, b.ID, f)
	if err != nil {
		return err
	}
	groups := agg.Groups(g)
	if limit > 0 && len(groups) > limit {
		groups = groups[:limit]
	}
	layerOf := func(c report.Count) string { return string(failure.Reason(c.Key).Layer()) }
	switch format {
	case "csv":
		cw := csv.NewWriter(w)
		head := []string{string(g), "count"}
		if g == report.ByReason {
			head = []string{"reason", "layer", "count"}
		}
		if err := cw.Write(head); err != nil {
			return err
		}
		for _, c := range groups {
			line := []string{failure.Neutralize(c.Key), strconv.FormatInt(c.Count, 10)}
			if g == report.ByReason {
				line = []string{c.Key, layerOf(c), strconv.FormatInt(c.Count, 10)}
			}
			if err := cw.Write(line); err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	case "jsonl":
		for _, c := range groups {
			line := fmt.Sprintf("{%s:%s", jsonString(string(g)), jsonString(c.Key))
			if g == report.ByReason {
				line += fmt.Sprintf(`,"layer":%s`, jsonString(layerOf(c)))
			}
			if _, err := fmt.Fprintf(w, "%s,\"count\":%d}\n", line, c.Count); err != nil {
				return err
			}
		}
		return nil
	}
	tw := newTable(w)
	share := func(n int64) string {
		if agg.Total == 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(agg.Total))
	}
	if g == report.ByReason {
		fmt.Fprintln(tw, "REASON\tLAYER\tCOUNT\tSHARE")
		for _, c := range groups {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Key, layerOf(c), num(c.Count), share(c.Count))
		}
		fmt.Fprintf(tw, "TOTAL\t\t%s\t%s\n", num(agg.Total), share(agg.Total))
		return tw.Flush()
	}
	fmt.Fprintf(tw, "%s\tCOUNT\tSHARE\n", map[report.Group]string{report.ByLayer: "LAYER", report.ByField: "FIELD"}[g])
	for _, c := range groups {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Key, num(c.Count), share(c.Count))
	}
	fmt.Fprintf(tw, "TOTAL\t%s\t%s\n", num(agg.Total), share(agg.Total))
	return tw.Flush()
}
