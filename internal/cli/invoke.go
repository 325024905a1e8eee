package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/spf13/cobra"

	"github.com/catalog-import/catalog-import/internal/aws/awsclient"
	"github.com/catalog-import/catalog-import/internal/aws/awserr"
	"github.com/catalog-import/catalog-import/internal/aws/handler"
	"github.com/catalog-import/catalog-import/internal/aws/samtemplate"
	"github.com/catalog-import/catalog-import/internal/aws/stack"
	"github.com/catalog-import/catalog-import/internal/local/lambdaruntime"
)

// defaultInvokeStack is the stack invoke resolves names for without
// --stack: samconfig.toml's stack_name, the one events/*.json name.
const defaultInvokeStack = "catalog-import"

func newInvokeCmd(env Env, g *global) *cobra.Command {
	var (
		eventPath, envVarsPath, templatePath, buildDir string
		timeout                                        int
		parameterOverrides                             []string
	)
	cmd := &cobra.Command{
		Use:   "invoke FUNCTION [--event FILE] [--env-vars FILE] [--parameter-overrides 'Name=value ...'] [--endpoint URL] [--stack NAME]",
		Short: "Run a function's real Lambda binary on one event, as sam local invoke does, without Docker",
		Long: `invoke builds FUNCTION (SplitterFunction, ShardWorkerFunction or TriageFunction) as
sam build does, with its Makefile target build-FUNCTION but for this machine, and runs
its bootstrap under a local Lambda Runtime API with one event: the response is printed
on stdout, the function's logs (and Lambda's START, END, REPORT lines) on stderr.

The environment is the one template.yaml gives the function (Globals and its own),
with !Ref and !Sub resolved to the stack's resources: on --endpoint the names
'importctl dev' provisions for --stack (default catalog-import, the stack
events/*.json name), else the deployed stack's outputs. As with sam local invoke, a
declared variable takes the shell's value, then the --env-vars file's
({"Parameters": {"VAR": "value"}, "FUNCTION": {"VAR": "value"}}); variables the
template does not declare are not passed. --parameter-overrides sets the template's
parameters as sam does ('PoolSize=32 WorkerMemory=2048', or
'ParameterKey=PoolSize,ParameterValue=32'; double-quote a value with spaces), checked
against their declarations (Type, MinValue, MaxValue, AllowedValues, ...) as
CloudFormation would at deploy time; the others keep their defaults. Lambda's own variables are set too
(AWS_LAMBDA_FUNCTION_NAME, _MEMORY_SIZE, _TIMEOUT, AWS_REGION), with dummy credentials
and AWS_ENDPOINT_URL on --endpoint. The timeout is the template's (--timeout
overrides it); a timed-out function is stopped.

Exit status: 0 when the function returned a response, 2 when it returned an error,
failed to start (init error), or timed out.

  importctl dev --endpoint http://127.0.0.1:5000 --stack catalog-import --until-idle   # provisions the stack
  aws --endpoint-url http://127.0.0.1:5000 s3 cp testdata/demo/products-gbk.csv \
      s3://catalog-import-123456789012-us-east-1/incoming/products-gbk.csv
  importctl invoke SplitterFunction --event events/s3-put.json \
      --env-vars events/env.json --endpoint http://127.0.0.1:5000`,
		Args: cobra.ExactArgs(1),
	}
	fl := cmd.Flags()
	fl.StringVarP(&eventPath, "event", "e", "", "the event: a JSON file, or - for stdin (default {})")
	fl.StringVarP(&envVarsPath, "env-vars", "n", "", "JSON file of values for the function's variables (sam local invoke's format)")
	fl.StringVarP(&templatePath, "template", "t", "template.yaml", "the SAM template (its directory holds the Makefile)")
	fl.StringArrayVar(&parameterOverrides, "parameter-overrides", nil, "values of the template's parameters, 'Name=value ...' (sam's format; may be repeated)")
	fl.IntVar(&timeout, "timeout", 0, "the function's timeout in seconds (default: the template's)")
	fl.StringVar(&buildDir, "build-dir", "", "where the bootstraps are built (default: the user's cache directory)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		name := args[0]
		if timeout < 0 {
			return usage("--timeout %d: want seconds > 0", timeout)
		}
		data, err := os.ReadFile(templatePath)
		if err != nil {
			return usage("template: %v", err)
		}
		tpl, err := samtemplate.Parse(data)
		if err != nil {
			return usage("%s: %v", templatePath, err)
		}
		if !slices.Contains(tpl.FunctionNames(), name) {
			return usage("%s has no function %s (it has %s)", templatePath, name, strings.Join(tpl.FunctionNames(), ", "))
		}
		params, err := tpl.ParameterOverrides(parameterOverrides)
		if err != nil {
			return usage("--parameter-overrides: %v", err)
		}
		payload, err := readEvent(eventPath, env.Stdin)
		if err != nil {
			return usage("%v", err)
		}
		var overrides samtemplate.EnvVars
		if envVarsPath != "" {
			b, err := os.ReadFile(envVarsPath)
			if err != nil {
				return usage("--env-vars: %v", err)
			}
			if overrides, err = samtemplate.ParseEnvVars(b); err != nil {
				return usage("%s: %v", envVarsPath, err)
			}
		}

		stackName := g.stack
		if stackName == "" {
			stackName = defaultInvokeStack
		}
		clients, err := awsclient.New(ctx, g.awsSettings())
		if err != nil {
			return err
		}
		region := clients.Config.Region
		refs, account, err := stackRefs(ctx, clients, stackName, g.endpoint != "")
		if err != nil {
			return err
		}
		refs.Parameters = params
		fn, err := tpl.Function(name, refs)
		if err != nil {
			return err
		}
		if fn.BuildMethod != "makefile" {
			return fmt.Errorf("%s: BuildMethod %q; invoke builds with the Makefile (BuildMethod: makefile) only", name, fn.BuildMethod)
		}
		if timeout > 0 {
			fn.Timeout = time.Duration(timeout) * time.Second
		}

		vars := fn.Environment(os.LookupEnv, overrides.For(name))
		var unresolved []string
		for k, why := range fn.Unresolved {
			if vars[k] == "" {
				unresolved = append(unresolved, fmt.Sprintf("%s is empty: %s (give it a value with --env-vars)", k, why))
			}
		}
		sort.Strings(unresolved)
		for _, u := range unresolved {
			fmt.Fprintln(env.Stderr, "note:", u)
		}
		lambdaEnv, err := lambdaEnvironment(ctx, clients, fn, region, g.endpoint)
		if err != nil {
			return err
		}
		for k, v := range vars { // the template's variables win, as under SAM
			lambdaEnv[k] = v
		}

		if buildDir == "" {
			cache, err := os.UserCacheDir()
			if err != nil {
				return fmt.Errorf("no --build-dir and no cache directory: %w", err)
			}
			buildDir = filepath.Join(cache, "catalog-import", "invoke")
		}
		if _, err := exec.LookPath("go"); err != nil {
			return fmt.Errorf("invoke builds the function with Go, and go is not on PATH: %w", err)
		}
		codeDir := filepath.Join(filepath.Dir(templatePath), fn.CodeURI)
		fmt.Fprintf(env.Stderr, "Building %s (make target build-%s, for %s/%s)\n", name, name, runtime.GOOS, runtime.GOARCH)
		bootstrap, err := lambdaruntime.Build(ctx, codeDir, name, filepath.Join(buildDir, name), env.Stderr)
		if err != nil {
			return err
		}
		lambdaEnv["LAMBDA_TASK_ROOT"] = filepath.Dir(bootstrap)

		fmt.Fprintf(env.Stderr, "Invoking %s (%s) on stack %s at %s\n", fn.Handler, fn.Runtime, stackName, endpointName(g.endpoint))
		sampled := "0"
		if fn.Tracing {
			sampled = "1"
		}
		inv := lambdaruntime.Invocation{
			RequestID:   newRequestID(),
			Payload:     payload,
			FunctionARN: fmt.Sprintf("arn:%s:lambda:%s:%s:function:%s", refs.Pseudo["AWS::Partition"], region, account, name),
			TraceID:     "Root=" + handler.NewTraceID(time.Now()) + ";Parent=" + randomHex(8) + ";Sampled=" + sampled,
		}
		res, err := lambdaruntime.Run(ctx, lambdaruntime.Function{Name: name, Bootstrap: bootstrap, Env: lambdaEnv,
			Timeout: fn.Timeout, MemoryMB: fn.MemoryMB, Tracing: fn.Tracing, Logs: env.Stderr}, inv)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "%s\n", res.Payload)
		switch res.Outcome {
		case lambdaruntime.Succeeded:
			return nil
		case lambdaruntime.TimedOut:
			return &exitError{code: ExitFailed, err: fmt.Errorf("function '%s' timed out after %s seconds", name, strconv.FormatFloat(fn.Timeout.Seconds(), 'f', -1, 64))}
		case lambdaruntime.InitError:
			return &exitError{code: ExitFailed, err: fmt.Errorf("function '%s' failed to initialize (%s); its log above says why", name, res.ErrorType)}
		case lambdaruntime.RuntimeExited:
			return &exitError{code: ExitFailed, err: fmt.Errorf("function '%s' exited during the invocation (%s)", name, res.ErrorType)}
		default:
			return &exitError{code: ExitFailed, err: fmt.Errorf("function '%s' returned an error (%s)", name, res.ErrorType)}
		}
	}
	return cmd
}

// stackRefs returns what the template's references resolve to for the
// stack: its resources (on an emulator, the names importctl dev gives
// them; on AWS, the stack's outputs) and the pseudo parameters, and the
// account id.
func stackRefs(ctx context.Context, c *awsclient.Clients, name string, emulator bool) (samtemplate.Refs, string, error) {
	id, err := c.STS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return samtemplate.Refs{}, "", awserr.Wrap(err, "get caller identity")
	}
	account := aws.ToString(id.Account)
	var res stack.Resources
	if emulator {
		res, err = stack.Find(ctx, c, name)
	} else {
		res, err = stack.Lookup(ctx, c, name)
	}
	if err != nil {
		return samtemplate.Refs{}, "", err
	}
	region := c.Config.Region
	partition := "aws"
	switch {
	case strings.HasPrefix(region, "cn-"):
		partition = "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		partition = "aws-us-gov"
	}
	suffix := "amazonaws.com"
	if partition == "aws-cn" {
		suffix = "amazonaws.com.cn"
	}
	return samtemplate.Refs{
		Pseudo: map[string]string{"AWS::StackName": name, "AWS::AccountId": account, "AWS::Region": region,
			"AWS::Partition": partition, "AWS::URLSuffix": suffix},
		Resources: map[string]string{"ImportBucket": res.Bucket, "StateTable": res.StateTable, "ProductsTable": res.ProductsTable,
			"ShardQueue": res.ShardQueueURL, "ShardDLQ": res.DLQURL},
	}, account, nil
}

// lambdaEnvironment is what Lambda (and sam local invoke) sets in every
// function's environment, with credentials: dummy ones on an endpoint,
// else the caller's.
func lambdaEnvironment(ctx context.Context, c *awsclient.Clients, fn samtemplate.Function, region, endpoint string) (map[string]string, error) {
	e := map[string]string{
		"AWS_LAMBDA_FUNCTION_NAME":        fn.Name,
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": strconv.Itoa(fn.MemoryMB),
		"AWS_LAMBDA_FUNCTION_TIMEOUT":     strconv.FormatFloat(fn.Timeout.Seconds(), 'f', -1, 64),
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"AWS_LAMBDA_LOG_GROUP_NAME":       "/aws/lambda/" + fn.Name,
		"AWS_LAMBDA_LOG_STREAM_NAME":      "$LATEST",
		"AWS_REGION":                      region,
		"AWS_DEFAULT_REGION":              region,
		"_HANDLER":                        fn.Handler,
		"TZ":                              ":UTC",
		"LANG":                            "en_US.UTF-8",
		"PATH":                            "/usr/local/bin:/usr/bin/:/bin:/opt/bin",
	}
	if endpoint != "" {
		e["AWS_ENDPOINT_URL"] = endpoint
		e["AWS_ACCESS_KEY_ID"], e["AWS_SECRET_ACCESS_KEY"] = "test", "test"
		return e, nil
	}
	creds, err := c.Config.Credentials.Retrieve(ctx)
	if err != nil {
		return nil, fmt.Errorf("credentials for the function: %w", err)
	}
	e["AWS_ACCESS_KEY_ID"], e["AWS_SECRET_ACCESS_KEY"] = creds.AccessKeyID, creds.SecretAccessKey
	if creds.SessionToken != "" {
		e["AWS_SESSION_TOKEN"] = creds.SessionToken
	}
	return e, nil
}

// readEvent reads the event (path "-": stdin; "": an empty object, as sam
// local invoke sends without one), which must be JSON.
func readEvent(path string, stdin io.Reader) ([]byte, error) {
	var (
		b   []byte
		err error
	)
	switch path {
	case "":
		return []byte("{}"), nil
	case "-":
		if stdin == nil {
			return nil, errors.New("--event -: no stdin")
		}
		b, err = io.ReadAll(stdin)
	default:
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("event: %w", err)
	}
	if !json.Valid(b) {
		return nil, fmt.Errorf("event %s is not JSON", path)
	}
	return b, nil
}

// newRequestID returns a random request id in Lambda's form (a UUID).
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// endpointName is how a message names where requests go: the endpoint, or
// AWS without one.
func endpointName(ep string) string {
	if ep == "" {
		return "AWS"
	}
	return ep
}
