package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/catalog-import/catalog-import/internal/local/file"
	"github.com/catalog-import/catalog-import/internal/object"
	"github.com/catalog-import/catalog-import/internal/profile"
	"github.com/catalog-import/catalog-import/internal/record"
	"github.com/catalog-import/catalog-import/internal/split"
	"github.com/catalog-import/catalog-import/internal/xlsx"
)

// newPreviewCmd is `importctl preview`.
func newPreviewCmd(env Env) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "preview [flags] FILE",
		Short: "Show how a file is read: its format, encoding, and first rows as JSON Lines",
		Long: `Print the detected format and encoding on stderr, then the first rows as JSON
Lines keyed by the file's own header ("_row" is the row number as a spreadsheet
shows it). A row that cannot be read prints its error instead. For a workbook,
stderr then gives the warnings an import would give (hidden sheets left out, cells
without a header, numbers of 16 digits or more): preview reads the whole workbook
for them.`,
		Args: exactArgs(1, "FILE"),
	}
	cmd.Flags().IntVarP(&limit, "limit", "n", 10, "rows to show")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return preview(cmd.Context(), env, args[0], limit)
	}
	return cmd
}

// preview prints the detected layout of the file at path on stderr and its
// first limit rows as JSON Lines on stdout.
func preview(ctx context.Context, env Env, path string, limit int) error {
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
		return previewWorkbook(ctx, env, path, limit)
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
// imports, keyed by the sheet's header as the splitter finds it, then the
// warnings an import of the workbook would give.
func previewWorkbook(ctx context.Context, env Env, path string, limit int) error {
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
			continue // not imported; a hidden sheet with rows is in the warnings below
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
	plan, err := planWorkbook(ctx, path, v)
	if err != nil {
		return &exitError{code: ExitFailed, err: err}
	}
	if plan.Rejected != nil {
		fmt.Fprintf(env.Stderr, "%s: an import would reject the workbook: %v\n", path, plan.Rejected)
	}
	for _, w := range plan.Warnings {
		fmt.Fprintf(env.Stderr, "%s: warning: %s\n", path, w)
	}
	return nil
}

// planWorkbook splits the workbook at path as an import would, staging
// nothing: the plan says whether the import would reject it and carries
// the warnings the batch would (split.Plan's).
func planWorkbook(ctx context.Context, path string, v *profile.Validator) (split.Plan, error) {
	src := &file.Source{}
	abs, err := filepath.Abs(path)
	if err != nil {
		return split.Plan{}, err
	}
	info, err := src.Stat(ctx, abs)
	if err != nil {
		return split.Plan{}, err
	}
	p, err := split.PlanSource(ctx, src, info, v, split.Options{Staging: &split.Staging{Stager: discardStager{}, BatchID: "preview"}})
	if err != nil {
		return split.Plan{}, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// discardStager stages nothing: preview splits a workbook for its
// warnings only.
type discardStager struct{}

func (discardStager) Stage(_ context.Context, batchID, name string, data []byte) (object.Info, error) {
	return object.Info{URI: "preview:" + batchID + "/" + name, Size: int64(len(data))}, nil
}

func (discardStager) Unstage(context.Context, string) error { return nil }

// jsonString is s as a JSON string.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
