package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/catalog-import/catalog-import/internal/aws/s3store"
	"github.com/catalog-import/catalog-import/internal/profile"
)

// newProfileCmd is `importctl profile` and `importctl profile push`.
func newProfileCmd(env Env, g *global) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "profile [FILE]",
		Short: "Print the built-in default profile, or check a profile file and print its effective rules",
		Long: `Print the effective rules of the built-in default profile, or of FILE after checking
it: the default profile's rules merged in, every rule spelled out (the SKU's
normalize, formula_text), each field's header names. A header matches a field by
the field's own name (sku, name, ...) or any of its columns, ignoring case and
surrounding spaces. The output is itself a valid profile with the same rule version.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p := profile.Default()
			if len(args) == 1 {
				var err error
				if p, err = profile.Load(args[0]); err != nil {
					return usage("%w", err) // "profile <path>: ..."
				}
			}
			fmt.Fprintf(env.Stdout, "# rule version %s\n", p.RuleVersion())
			fmt.Fprintf(env.Stdout, "# write mode %s: %s\n", p.WriteMode(), profile.WriteModeSummary(p.WriteMode()))
			_, err := env.Stdout.Write(p.Effective())
			return err
		},
	}
	cmd.AddCommand(newProfilePushCmd(env, g))
	return cmd
}

// newProfilePushCmd is `importctl profile push NAME FILE --stack S`.
func newProfilePushCmd(env Env, g *global) *cobra.Command {
	return &cobra.Command{
		Use:   "push NAME FILE --stack STACK",
		Short: "Check a profile and upload it to a stack's bucket as profiles/NAME.yaml, for uploads to pick",
		Long: `Check FILE as the splitter and the workers will (parse and compile; a bad file is
refused with its problems named) and upload it to the stack's bucket as
profiles/NAME.yaml. An upload then runs under it when its object metadata says
x-amz-meta-profile: NAME, or, without that metadata, when it lands in the folder
incoming/NAME/. Pushing a name again replaces the profile for later uploads;
batches already split keep the rules they were split with.

NAME is 1 to 64 lower-case letters, digits, '-' or '_' ("retries" is reserved for
importctl retry-failures), and the profile must call itself NAME (name: NAME), so
that a batch's stored profile names the profile it ran under (importctl
retry-failures --stack retries a batch under the current version of it).`,
		Args: exactArgs(2, "NAME FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, path := args[0], args[1]
			if g.stack == "" {
				return usage("profile push needs --stack: profiles live in a stack's bucket")
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return usage("%w", err) // "open <path>: ..."
			}
			if len(data) > profile.MaxSize {
				return usage("%s: larger than %d bytes", path, profile.MaxSize)
			}
			if err := profile.CheckName(name); err != nil {
				return usage("%w", err)
			}
			if _, err := profile.CheckNamed(name, data); err != nil {
				return usage("%s is not a valid profile %s:\n%w", path, name, err)
			}
			ctx := cmd.Context()
			res, clients, err := g.resources(ctx)
			if err != nil {
				return err
			}
			p, uri, err := s3store.NewProfiles(clients.S3, res.Bucket).Put(ctx, name, data)
			if err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "pushed    %s (rule version %s)\nuploads   s3://%s/%s%s/... or with x-amz-meta-profile: %s run under it\n",
				uri, p.RuleVersion(), res.Bucket, s3store.IncomingPrefix, name, name)
			return nil
		},
	}
}
