package cli

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/catalog-import/catalog-import/internal/aws/dynamostate"
	"github.com/catalog-import/catalog-import/internal/aws/redrive"
)

func newRedriveCmd(env Env, g *global) *cobra.Command {
	var (
		cfg     redrive.Config
		shard   int
		rateArg string
		asJSON  bool
		uploads bool
	)
	cmd := &cobra.Command{
		Use:   "redrive --stack NAME [--uploads] [--batch B] [--shard N] [--reason R] [--max N] [--dry-run] [--rate N/s]",
		Short: "Move shard manifests from the DLQ, and those of ESCALATED shards, back to the shard queue (--uploads: split failed uploads again)",
		Long: `redrive puts failed shards back to work: it moves messages from the stack's shard
dead-letter queue to the shard queue, and re-sends the manifests of ESCALATED
shards of unfinished batches (a worker claims them again and resumes from the
checkpoint). A message is sent first and deleted from the DLQ only once the send
succeeded, so none is lost; one that does not match the filters, or whose body
is not a manifest, stays in the DLQ. Sends are limited to --rate per second.

Without filters and without --max, SQS moves the DLQ itself (StartMessageMoveTask)
where it can (not on moto); otherwise messages move one by one.

--batch B of a SUSPENDED batch (its object was overwritten after the split in an
unversioned bucket, and has been restored to the content it had) resumes it: the
batch is RUNNING again and the manifests of its unfinished shards are sent. If the
object is still not the registered version, the batch is SUSPENDED again and
nothing of the new content is written. 'importctl cancel' ends it instead.

--reason R is a reason code, in any case, as for 'importctl failures' (e.g.
AccessDenied or accessdenied): a shard is redriven when its last error has that
reason (its newest triage log entry's, else the code its message in the state
store begins with). An unknown code is refused with the list of codes.

--uploads redrives uploads instead: Lambda sends the S3 event of an upload the
splitter failed on after its retries (or after six hours of throttling) to the
splitter's OnFailure queue. redrive --uploads splits each of them in this
process, as the splitter would (with the splitter function's environment), and
deletes the record once the split succeeded; a record whose split fails again
stays. An upload that was split before its failure is found, not split twice.

  importctl redrive --stack prod --dry-run
  importctl redrive --stack prod --batch b-01J9ZQ6V3K --shard 3
  importctl redrive --stack prod --uploads --dry-run`,
		Args: cobra.NoArgs,
	}
	fl := cmd.Flags()
	fl.IntVar(&cfg.Max, "max", 0, "move at most N manifests (0: all)")
	fl.StringVar(&cfg.Filter.BatchID, "batch", "", "only manifests of this batch")
	fl.IntVar(&shard, "shard", 0, "only this shard index")
	fl.StringVar(&cfg.Filter.Reason, "reason", "", "only shards whose last error has this reason: "+reasonHelp)
	fl.BoolVar(&cfg.DryRun, "dry-run", false, "list what would move; move nothing")
	fl.StringVar(&rateArg, "rate", strconv.Itoa(redrive.DefaultRate), "most manifests sent per second (N or N/s)")
	fl.DurationVar(&cfg.Visibility, "hold", redrive.DefaultVisibility, "how long a DLQ message examined is hidden at most before it is visible again")
	fl.BoolVar(&asJSON, "json", false, "JSON lines: one per manifest, then the summary")
	fl.BoolVar(&uploads, "uploads", false, "split again the uploads the splitter failed on (its OnFailure queue), in this process")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if g.stack == "" {
			return usage("redrive needs --stack NAME")
		}
		if cfg.Max < 0 {
			return usage("--max %d: want 0 or more", cfg.Max)
		}
		if cfg.Filter.Reason != "" {
			code, err := reasonFlag(cfg.Filter.Reason)
			if err != nil {
				return err
			}
			cfg.Filter.Reason = string(code)
		}
		r, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rateArg), "/s"), 64)
		if err != nil || r <= 0 {
			return usage("--rate %q: want a positive number of messages per second, e.g. 10 or 10/s", rateArg)
		}
		cfg.Rate = r
		if cmd.Flags().Changed("shard") {
			if shard < 0 {
				return usage("--shard %d: want 0 or more", shard)
			}
			cfg.Filter.Shard = &shard
		}
		if cfg.Visibility < time.Second || cfg.Visibility > 12*time.Hour {
			return usage("--hold %v: want 1s to 12h", cfg.Visibility)
		}
		ctx := cmd.Context()
		if uploads {
			if !cfg.Filter.IsZero() {
				return usage("--uploads redrives whole uploads: --batch, --shard and --reason select shards")
			}
			return redriveUploads(ctx, env, g, cfg.Max, cfg.DryRun, asJSON, cfg.Visibility)
		}
		res, clients, err := g.resources(ctx)
		if err != nil {
			return err
		}
		if res.DLQURL == "" {
			return fmt.Errorf("stack %s has no shard DLQ output (ShardDLQUrl)", g.stack)
		}
		cfg.SQS, cfg.DLQURL, cfg.ShardQueueURL = clients.SQS, res.DLQURL, res.ShardQueueURL
		st := dynamostate.New(clients.DynamoDB, res.StateTable, dynamostate.Options{})
		cfg.Store, cfg.Log = st, st.TriageLog()
		cfg.ShortPoll = g.endpoint != "" // moto answers short polls exactly; AWS needs a long poll

		tw := newTable(env.Stdout)
		enc := json.NewEncoder(env.Stdout)
		if !asJSON {
			fmt.Fprintln(tw, "ACTION\tBATCH\tSHARD\tSOURCE\tNOTE")
		}
		cfg.Report = func(it redrive.Item) {
			if asJSON {
				enc.Encode(it)
				return
			}
			batch, sh := it.BatchID, strconv.Itoa(it.Shard)
			if batch == "" {
				batch, sh = "-", "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", it.Action, batch, sh, it.Source, noteLine(it.Note))
		}
		result, runErr := redrive.Run(ctx, cfg)
		if result.Fallback != "" {
			fmt.Fprintln(env.Stderr, "importctl:", result.Fallback)
		}
		if asJSON {
			enc.Encode(struct {
				Summary redrive.Result `json:"summary"`
			}{result})
		} else {
			tw.Flush()
			if result.MoveTask != "" {
				fmt.Fprintf(env.Stdout, "move task %s started: it moves the DLQ's ~%d messages at %d/s\n", result.MoveTask, result.Moved, int(min(max(cfg.Rate, 1), 500)))
			}
			if cfg.DryRun {
				fmt.Fprintf(env.Stdout, "dry run: would move %d\n", result.WouldMove)
			}
			fmt.Fprintf(env.Stdout, "moved %d, kept %d\n", result.Moved, result.Kept)
		}
		if runErr != nil {
			return runErr
		}
		if result.Failed > 0 {
			return &exitError{code: ExitFailed, err: fmt.Errorf("%d manifests could not be moved or deleted (see NOTE); nothing was lost, run again", result.Failed)}
		}
		return nil
	}
	return cmd
}

// noteLine keeps a note on one table line.
func noteLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
