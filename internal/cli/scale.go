package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/catalog-import/catalog-import/internal/aws/stack"
)

// newScaleCmd is `importctl scale`.
func newScaleCmd(env Env, g *global) *cobra.Command {
	var (
		n      int
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "scale --stack NAME --concurrency N",
		Short: "Change how many shard workers run at once, while batches run",
		Long: fmt.Sprintf(`scale sets the shard worker's cap to N (%d..%d): the worker function's reserved
concurrency and the MaximumConcurrency of its shard queue's event source mapping,
kept equal. Raising, the reserve is raised first; lowering, the mapping is lowered
first: at no moment can the event source start more workers than the reserve
admits (those would be throttled, and each throttle counts as a receive toward
the DLQ). Running batches follow at once: more workers take shards, or fewer do
as invocations end. On a provisioned products table keep N x WriteRate within its
write capacity.

A deploy sets both again from the WorkerConcurrency parameter: make a lasting
change there.

  importctl scale --stack prod --concurrency 40
  importctl scale --stack dev --endpoint http://127.0.0.1:5000 --concurrency 2`, stack.MinWorkerCap, stack.MaxWorkerCap),
		Args: cobra.NoArgs,
	}
	cmd.Flags().IntVar(&n, "concurrency", 0, fmt.Sprintf("worker cap, %d..%d", stack.MinWorkerCap, stack.MaxWorkerCap))
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the cap before and the steps taken as JSON")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if g.stack == "" {
			return usage("scale needs --stack NAME")
		}
		if n < stack.MinWorkerCap || n > stack.MaxWorkerCap {
			return usage("--concurrency %d: want %d to %d (an SQS event source's MaximumConcurrency)", n, stack.MinWorkerCap, stack.MaxWorkerCap)
		}
		ctx := cmd.Context()
		res, clients, err := g.resources(ctx)
		if err != nil {
			return err
		}
		before, steps, err := stack.Scale(ctx, clients, res, n)
		if asJSON {
			if steps == nil {
				steps = []stack.ScaleStep{}
			}
			if werr := writeJSON(env.Stdout, struct {
				Before stack.WorkerCap   `json:"before"`
				Steps  []stack.ScaleStep `json:"steps"`
			}{before, steps}); werr != nil {
				return werr
			}
		} else {
			for _, s := range steps {
				fmt.Fprintf(env.Stdout, "%s of %s: %s -> %d\n", s.What, before.Function, capName(s.From), s.To)
			}
			if err == nil && len(steps) == 0 {
				fmt.Fprintf(env.Stdout, "%s already runs at most %d workers\n", before.Function, n)
			} else if err == nil {
				fmt.Fprintf(env.Stdout, "worker cap of %s: %d (a deploy resets it to WorkerConcurrency)\n", g.stack, n)
			}
		}
		return err
	}
	return cmd
}

// capName shows a cap, "none" for an unset one (-1).
func capName(n int) string {
	if n < 0 {
		return "none"
	}
	return fmt.Sprint(n)
}
