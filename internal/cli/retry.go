package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/spf13/cobra"

	"github.com/catalog-import/catalog-import/internal/aws/handler"
	"github.com/catalog-import/catalog-import/internal/aws/s3store"
	"github.com/catalog-import/catalog-import/internal/embedded"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/lineage"
	"github.com/catalog-import/catalog-import/internal/profile"
	"github.com/catalog-import/catalog-import/internal/report"
	"github.com/catalog-import/catalog-import/internal/state"
)

// retryFlags are retry-failures' flags.
type retryFlags struct {
	reasons, layers []string
	dry             bool
	profile         string
	wait            time.Duration
}

func newRetryCmd(env Env, g *global) *cobra.Command {
	f := &retryFlags{}
	cmd := &cobra.Command{
		Use:   "retry-failures [flags] BATCH_ID",
		Short: "Re-import only a finished batch's failed rows, as a child batch under the current rules",
		Long: `After a rule or data fix, re-import only the failed rows of a finished batch, from
the snapshots its failure records keep, as a child batch linked to it (status shows
"parent"), under the current profile (--profile, or the stack's). Rows that import
now mark their failures in the parent resolved; the rest fail again in the child,
with the current rules' reasons. Only unresolved failures are retried, and no
--reason means every reason but DuplicateSKU (such a row, imported again, would
replace the product of its SKU's first row).

Locally (--db) the child runs at once, like 'importctl run', from a file written
to reports/<batch>/retry-<time>.<ext> beside the database; an interrupted retry is
resumed by running the command again. With --stack the file is uploaded to
incoming/retries/<batch>/ in the stack's bucket, where the splitter picks it up,
under the current version of the stored profile the parent ran under (its name,
when the bucket has profiles/<name>.yaml; else the function's profile);
--wait follows the child to its end.

--dry-run writes nothing: it checks the rows against the current rules in memory
and says how many would import (SKUExists cannot be found in a dry run).`,
		Args: exactArgs(1, "BATCH_ID"),
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&f.reasons, "reason", nil, "only failures of these reasons (repeatable): "+reasonHelp)
	fl.StringSliceVar(&f.layers, "layer", nil, "only failures of these layers: syntax, semantic, business, infrastructure")
	fl.BoolVar(&f.dry, "dry-run", false, "check the rows under the current rules; import nothing")
	fl.StringVarP(&f.profile, "profile", "p", "", "profile YAML for a local retry or a dry run (default: the built-in default profile)")
	fl.DurationVar(&f.wait, "wait", 0, "with --stack: wait up to this long for the child batch to finish")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		filter, err := failureFilter(f.reasons, f.layers, true)
		if err != nil {
			return err
		}
		filter.Unresolved = true
		if g.stack != "" {
			return retryOnStack(cmd.Context(), env, g, f, filter, args[0])
		}
		return retryLocal(cmd.Context(), env, g, f, filter, args[0])
	}
	return cmd
}

// retried says what a retry re-imports: "N rows (Reason n, ...)".
func retried(r lineage.Retried) string { return num(r.Rows) + " rows" + reasonList(r.ByReason) }

// parentBatch reads the batch whose failures are retried; it must have finished.
func parentBatch(ctx context.Context, db reader, where, id string) (state.Batch, error) {
	b, err := findBatch(ctx, db, where, id)
	if err != nil {
		return b, err
	}
	if !b.Status.Finished() {
		return b, usage("batch %s is still %s: retry its failures once it has finished", id, b.Status)
	}
	return b, nil
}

func retryLocal(ctx context.Context, env Env, g *global, f *retryFlags, filter state.FailureFilter, id string) error {
	p, err := loadProfile(f.profile)
	if err != nil {
		return err
	}
	db, err := openExisting(g.db)
	if err != nil {
		return err
	}
	parent, err := parentBatch(ctx, db, g.db, id)
	if err != nil {
		db.Close()
		return err
	}
	// An earlier retry that was interrupted is resumed, not started again.
	var resume string
	if !f.dry {
		bs, err := db.ListBatches(ctx, 1000)
		if err != nil {
			db.Close()
			return err
		}
		for _, b := range bs {
			if b.Parent == id && !b.Status.Finished() && strings.HasPrefix(filepath.Base(b.Source.URI), lineage.RetryPrefix) {
				if _, err := os.Stat(b.Source.URI); err == nil {
					resume = b.Source.URI
					break
				}
			}
		}
	}
	path := resume
	var what lineage.Retried
	if path == "" {
		dir, err := filepath.Abs(filepath.Join(filepath.Dir(g.db), "reports", id))
		if f.dry {
			dir, err = os.TempDir(), nil
		}
		if err != nil {
			db.Close()
			return err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			db.Close()
			return err
		}
		path = filepath.Join(dir, lineage.RetryName(parent.Layout, time.Now()))
		if what, err = writeRetryPath(path, func(w io.Writer) (lineage.Retried, error) {
			return lineage.WriteRetryFile(ctx, w, db, parent, filter)
		}); err != nil {
			db.Close()
			return err
		}
	}
	var left string
	if path != resume {
		if left, err = leftOut(ctx, db, id, f.reasons, filter, what.Rows == 0, "retry"); err != nil {
			db.Close()
			os.Remove(path)
			return err
		}
	}
	db.Close() // the run below opens (and locks) the database itself
	if path != resume && what.Rows == 0 {
		os.Remove(path)
		fmt.Fprintln(env.Stdout, left)
		return nil
	}
	cfg := embedded.Config{DB: g.db, Profile: p, Salt: filepath.Base(path), Log: g.logger(env)}
	if f.dry {
		defer os.Remove(path)
		cfg.DB, cfg.Salt = ":memory:", ""
		sum, err := embedded.Run(ctx, cfg, path)
		if err != nil {
			return &exitError{code: ExitFailed, err: err}
		}
		c := sum.Batch.Counts
		fmt.Fprintf(env.Stdout, "would retry %s of batch %s\n%s", retried(what), id, left)
		fmt.Fprintf(env.Stdout, "under the current rules (%s): %s would import, %s would fail again%s\n",
			sum.Batch.RuleVersion, num(c.Imported), num(c.Failed), reasonList(sum.Batch.ByReason))
		fmt.Fprintln(env.Stdout, "dry run: nothing was written (SKUExists cannot be found in a dry run)")
		return nil
	}
	if resume != "" {
		fmt.Fprintf(env.Stdout, "resuming the interrupted retry %s\n", resume)
	} else {
		fmt.Fprintf(env.Stdout, "retrying %s of batch %s from %s\n%s", retried(what), id, path, left)
	}
	start := time.Now()
	sum, err := embedded.Run(ctx, cfg, path)
	if err != nil {
		return &exitError{code: ExitFailed, err: err}
	}
	printSummary(env.Stdout, path, sum, false, time.Since(start))
	return afterRetry(ctx, env, g, id, sum.Batch)
}

// afterRetry prints what the child resolved in the parent and sets the exit
// code by the child's outcome.
func afterRetry(ctx context.Context, env Env, g *global, parentID string, child state.Batch) error {
	db, _, closeDB, err := g.openReader(ctx)
	if err != nil {
		return err
	}
	defer closeDB()
	parent, err := db.GetBatch(ctx, parentID)
	if err != nil {
		return err
	}
	left, err := db.Failures(ctx, parentID, state.FailureFilter{Unresolved: true, Limit: 1})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "parent    %s: %s of %s failed rows resolved", parentID, num(parent.Resolved), num(parent.Counts.Failed))
	if len(left) > 0 {
		fmt.Fprintf(env.Stdout, " ('importctl failures --unresolved %s' lists the rest)", parentID)
	}
	fmt.Fprintln(env.Stdout)
	if code := ExitFor(child.Status); code != ExitOK {
		return &exitError{code: code}
	}
	return nil
}

func reasonList(m map[failure.Reason]int64) string {
	if len(m) == 0 {
		return ""
	}
	reasons := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(reasons))
	for i, r := range reasons {
		parts[i] = fmt.Sprintf("%s %s", r, num(m[r]))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// writeRetryPath creates path and fills it with write; a failed write leaves no file.
func writeRetryPath(path string, write func(io.Writer) (lineage.Retried, error)) (lineage.Retried, error) {
	fh, err := os.Create(path)
	if err != nil {
		return lineage.Retried{}, err
	}
	what, err := write(fh)
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return what, err
}

// retryProfile returns the stored profile the parent batch ran under: its
// profile's name, when the stack's bucket holds profiles/<name>.yaml. The
// retry upload names it in its metadata (x-amz-meta-profile), so that the
// child runs under that profile's current rules; "" leaves the child to the
// function's profile, as an upload directly under incoming/.
func retryProfile(ctx context.Context, profiles *s3store.Profiles, parent state.Batch) (string, error) {
	p, err := profile.Parse(parent.Profile)
	if err != nil || profile.CheckName(p.Name()) != nil {
		return "", nil
	}
	if _, err := profiles.Get(ctx, p.Name()); errors.Is(err, profile.ErrNotFound) {
		return "", nil
	} else if err != nil {
		return "", fmt.Errorf("batch %s ran under profile %s: %w", parent.ID, p.Name(), err)
	}
	return p.Name(), nil
}

func retryOnStack(ctx context.Context, env Env, g *global, f *retryFlags, filter state.FailureFilter, id string) error {
	db, where, closeDB, err := g.openReader(ctx)
	if err != nil {
		return err
	}
	defer closeDB()
	parent, err := parentBatch(ctx, db, where, id)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	what, err := lineage.WriteRetryFile(ctx, &buf, db, parent, filter)
	if err != nil {
		return err
	}
	left, err := leftOut(ctx, db, id, f.reasons, filter, what.Rows == 0, "retry")
	if err != nil {
		return err
	}
	if what.Rows == 0 {
		fmt.Fprintln(env.Stdout, left)
		return nil
	}
	if f.dry {
		tmp, err := os.CreateTemp("", lineage.RetryPrefix+"*"+lineage.RetryExt(parent.Layout))
		if err != nil {
			return err
		}
		defer os.Remove(tmp.Name())
		if _, err := tmp.Write(buf.Bytes()); err != nil {
			tmp.Close()
			return err
		}
		tmp.Close()
		p, err := loadProfile(f.profile)
		if err != nil {
			return err
		}
		sum, err := embedded.Run(ctx, embedded.Config{DB: ":memory:", Profile: p, Log: g.logger(env)}, tmp.Name())
		if err != nil {
			return &exitError{code: ExitFailed, err: err}
		}
		c := sum.Batch.Counts
		fmt.Fprintf(env.Stdout, "would retry %s of batch %s\n%s", retried(what), id, left)
		fmt.Fprintf(env.Stdout, "under the rules of %s (%s): %s would import, %s would fail again%s\n",
			dash(f.profile), sum.Batch.RuleVersion, num(c.Imported), num(c.Failed), reasonList(sum.Batch.ByReason))
		fmt.Fprintln(env.Stdout, "dry run: nothing was uploaded (SKUExists cannot be found in a dry run)")
		return nil
	}
	res, clients, err := g.resources(ctx)
	if err != nil {
		return err
	}
	named, err := retryProfile(ctx, s3store.NewProfiles(clients.S3, res.Bucket), parent)
	if err != nil {
		return err
	}
	in := &s3.PutObjectInput{Bucket: aws.String(res.Bucket), Body: bytes.NewReader(buf.Bytes()),
		Key: aws.String(fmt.Sprintf("%sretries/%s/%s", s3store.IncomingPrefix, id, lineage.RetryName(parent.Layout, time.Now())))}
	if named != "" {
		in.Metadata = map[string]string{handler.ProfileMetadata: named}
	}
	key := aws.ToString(in.Key)
	out, err := clients.S3.PutObject(ctx, in)
	if err != nil {
		return fmt.Errorf("upload the retry file: %w", err)
	}
	if named != "" {
		fmt.Fprintf(env.Stdout, "profile   %s (the current %s)\n", named, s3store.URI(res.Bucket, s3store.ProfileKey(named)))
	}
	child := handler.BatchID(res.Bucket, key, aws.ToString(out.VersionId), "", aws.ToString(out.ETag))
	fmt.Fprintf(env.Stdout, "retrying %s of batch %s\n%suploaded  s3://%s/%s\nbatch     %s (the splitter picks it up; 'importctl status %s' follows it)\n",
		retried(what), id, left, res.Bucket, key, child, child)
	if f.wait <= 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, f.wait)
	defer cancel()
	for {
		b, err := db.GetBatch(ctx, child)
		if err == nil && b.Status.Finished() {
			printSummary(env.Stdout, "s3://"+res.Bucket+"/"+key, embedded.Summary{Batch: b}, false, 0)
			return afterRetry(context.WithoutCancel(ctx), env, g, id, b)
		}
		if err != nil && !errors.Is(err, state.ErrNotFound) {
			return err
		}
		select {
		case <-ctx.Done():
			return &exitError{code: ExitFailed, err: fmt.Errorf("batch %s did not finish within %v (it goes on; see 'importctl status %s')", child, f.wait, child)}
		case <-time.After(time.Second):
		}
	}
}

// leftOut says which unresolved failures of batch id a retry ("retry") or
// a fix file ("fix") with filter leaves out: with nothing to do (none),
// the line that says why; else a line about the DuplicateSKU rows left out
// because no --reason asked for them, or "" when it takes every unresolved
// failure of its layers.
func leftOut(ctx context.Context, db reader, id string, asked []string, filter state.FailureFilter, none bool, job string) (string, error) {
	agg, err := report.Collect(ctx, db, id, state.FailureFilter{Unresolved: true, Layers: filter.Layers})
	if err != nil {
		return "", err
	}
	out := map[failure.Reason]int64{}
	for r, n := range agg.ByReason {
		if !slices.Contains(filter.Reasons, r) {
			out[r] = n
		}
	}
	layers := ""
	for i, l := range filter.Layers {
		layers += map[bool]string{true: " in layer ", false: ", "}[i == 0] + string(l)
	}
	nothing, leaves := "nothing to retry", "a retry leaves out"
	if job == "fix" {
		nothing, leaves = "no row to fix", "a fix file leaves out"
	}
	dups := out[failure.DuplicateSKU]
	switch {
	case none && agg.Total == 0:
		return fmt.Sprintf("%s: batch %s has no unresolved failures%s", nothing, id, layers), nil
	case none && len(asked) == 0 && dups == agg.Total:
		return fmt.Sprintf("%s: the %s unresolved failures of batch %s%s are DuplicateSKU, which %s "+
			"unless --reason DuplicateSKU asks for them (imported again, such a row would replace the product of its SKU's first row)",
			nothing, num(dups), id, layers, leaves), nil
	case none:
		which := "the reasons asked for"
		if len(asked) > 0 {
			which = strings.Join(asked, ", ")
		}
		return fmt.Sprintf("%s: batch %s has no unresolved failures of %s%s (its unresolved failures: %s)",
			nothing, id, which, layers, strings.TrimSuffix(strings.TrimPrefix(reasonList(agg.ByReason), " ("), ")")), nil
	case len(asked) == 0 && dups > 0:
		rows := "rows"
		if dups == 1 {
			rows = "row"
		}
		return fmt.Sprintf("left out %s DuplicateSKU %s: --reason DuplicateSKU retries them (imported again, such a row would replace the product of its SKU's first row)\n", num(dups), rows), nil
	}
	return "", nil
}
