package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/catalog-import/catalog-import/internal/profile"
)

// newProfileCmd is `importctl profile`.
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
