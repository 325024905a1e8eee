package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/catalog-import/catalog-import/internal/aws/awsclient"
	"github.com/catalog-import/catalog-import/internal/aws/handler"
	"github.com/catalog-import/catalog-import/internal/aws/redrive"
	"github.com/catalog-import/catalog-import/internal/aws/stack"
)

// redriveUploads is `importctl redrive --uploads`: the splitter's failed
// upload events, split again in this process.
func redriveUploads(ctx context.Context, env Env, g *global, max int, dryRun, asJSON bool, hold time.Duration) error {
	res, clients, err := g.resources(ctx)
	if err != nil {
		return err
	}
	if res.SplitterFailedQueueURL == "" {
		return fmt.Errorf("stack %s has no splitter OnFailure queue (output SplitterFailedQueueUrl): deploy the current template", g.stack)
	}
	fns, note, err := splitterHere(ctx, env, g, clients, res)
	if err != nil {
		return err
	}
	if note != "" {
		fmt.Fprintln(env.Stderr, "importctl:", note)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	enc := json.NewEncoder(env.Stdout)
	if !asJSON {
		fmt.Fprintln(tw, "ACTION\tUPLOAD\tBATCH\tLAMBDA GAVE UP\tNOTE")
	}
	result, runErr := redrive.Uploads(ctx, redrive.UploadsConfig{SQS: clients.SQS, QueueURL: res.SplitterFailedQueueURL, Split: fns.Splitter,
		BatchOf: func(r events.S3EventRecord) string {
			o := r.S3.Object
			return handler.BatchID(r.S3.Bucket.Name, unescapeKey(o.Key), o.VersionID, o.Sequencer, o.ETag)
		},
		Max: max, DryRun: dryRun, Visibility: hold, ShortPoll: g.endpoint != "",
		Report: func(it redrive.UploadItem) {
			if asJSON {
				enc.Encode(it)
				return
			}
			upload := dash(it.Key)
			if it.Bucket != "" {
				upload = "s3://" + it.Bucket + "/" + it.Key
			}
			why := dash(it.Condition)
			if it.LastError != "" {
				why += ": " + it.LastError
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", it.Action, upload, dash(it.BatchID), noteLine(oneLine(why, 80)), noteLine(it.Note))
		}})
	if asJSON {
		enc.Encode(struct {
			Summary redrive.UploadsResult `json:"summary"`
		}{result})
	} else {
		tw.Flush()
		if dryRun {
			fmt.Fprintf(env.Stdout, "dry run: would split %d\n", result.WouldSplit)
		}
		fmt.Fprintf(env.Stdout, "split %d, kept %d\n", result.Split, result.Kept)
	}
	if runErr != nil {
		return runErr
	}
	if result.Failed > 0 {
		return &exitError{code: ExitFailed, err: fmt.Errorf("%d uploads could not be split or their records deleted (see NOTE); their records stay, run again", result.Failed)}
	}
	return nil
}

// splitterHere builds the handlers to split with in this process: with the
// splitter function's own environment when the stack names the function
// (shard sizes, size limit, event bus), else the template's defaults.
func splitterHere(ctx context.Context, env Env, g *global, clients *awsclient.Clients, res stack.Resources) (*handler.Functions, string, error) {
	vars, note := map[string]string{}, ""
	if res.SplitterFunction != "" {
		out, err := clients.Lambda.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(res.SplitterFunction)})
		switch {
		case err != nil:
			note = fmt.Sprintf("the splitter's settings are unknown (%v): splitting with the template's defaults", err)
		case out.Environment != nil:
			vars = out.Environment.Variables
		}
	}
	if p := vars["PROFILE_FILE"]; p != "" {
		note = fmt.Sprintf("the splitter's PROFILE_FILE %s is inside its package: uploads that name no stored profile run under the built-in default profile", p)
		delete(vars, "PROFILE_FILE")
	}
	d := stack.Defaults()
	for k, v := range map[string]string{"BUCKET": res.Bucket, "STATE_TABLE": res.StateTable, "PRODUCTS_TABLE": res.ProductsTable,
		"SHARD_QUEUE_URL": res.ShardQueueURL, "DLQ_URL": res.DLQURL, "STACK_NAME": res.Stack,
		"SHARD_ROWS": fmt.Sprint(d.ShardRows), "SHARD_BYTES": fmt.Sprint(d.ShardBytes), "MAX_UPLOAD_BYTES": fmt.Sprint(d.MaxUploadBytes)} {
		if vars[k] == "" {
			vars[k] = v
		}
	}
	c, err := handler.ConfigFromEnv(func(k string) string { return vars[k] })
	if err != nil {
		return nil, note, fmt.Errorf("the splitter's environment: %w", err)
	}
	c.AWS = g.awsSettings()
	c.Options.Log, c.Options.Metrics = g.logger(env), nil
	fns, err := handler.Build(ctx, c)
	return fns, note, err
}

// unescapeKey decodes an S3 event's object key (URL-encoded, '+' for a
// space), as the splitter does.
func unescapeKey(k string) string {
	if u, err := url.QueryUnescape(k); err == nil {
		return u
	}
	return k
}
