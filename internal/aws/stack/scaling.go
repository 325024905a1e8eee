package stack

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/catalog-import/catalog-import/internal/aws/awsclient"
	"github.com/catalog-import/catalog-import/internal/aws/awserr"
)

// Bounds of the worker cap: an SQS event source mapping's
// MaximumConcurrency is 2 to 1000.
const (
	MinWorkerCap = 2
	MaxWorkerCap = 1000
)

// WorkerCap is how many shard workers may run at once: the worker
// function's reserved concurrency (the hard cap on its invocations) and its
// shard queue mapping's ScalingConfig.MaximumConcurrency (how many the
// event source starts). The mapping must never exceed the reserve: the
// invocations over it are throttled, and each throttle counts as a receive
// that pushes the message toward the DLQ.
type WorkerCap struct {
	Function string `json:"function"`
	Mapping  string `json:"mapping"` // the event source mapping's UUID
	// MaximumConcurrency is the mapping's; 0: the mapping has none (the
	// event source scales up to 1000).
	MaximumConcurrency int `json:"maximum_concurrency"`
	// Reserved is the function's reserved concurrency; -1: none (the
	// function shares the account's unreserved pool).
	Reserved int `json:"reserved_concurrency"`
}

// Effective is how many workers can run at once: the smaller of the two
// caps that are set (MaxWorkerCap when neither is).
func (w WorkerCap) Effective() int {
	n := MaxWorkerCap
	if w.MaximumConcurrency > 0 {
		n = min(n, w.MaximumConcurrency)
	}
	if w.Reserved >= 0 {
		n = min(n, w.Reserved)
	}
	return n
}

// ReadWorkerCap reads the worker cap of the stack r: the reserved
// concurrency of r.WorkerFunction and the mapping that feeds it from the
// shard queue.
func ReadWorkerCap(ctx context.Context, c *awsclient.Clients, r Resources) (WorkerCap, error) {
	if r.WorkerFunction == "" {
		return WorkerCap{}, fmt.Errorf("stack %s names no worker function (output ShardWorkerFunctionName)", r.Stack)
	}
	w := WorkerCap{Function: r.WorkerFunction, Reserved: -1}
	m, err := workerMapping(ctx, c, r)
	if err != nil {
		return w, err
	}
	w.Mapping = aws.ToString(m.UUID)
	if m.ScalingConfig != nil && m.ScalingConfig.MaximumConcurrency != nil {
		w.MaximumConcurrency = int(*m.ScalingConfig.MaximumConcurrency)
	}
	fc, err := c.Lambda.GetFunctionConcurrency(ctx, &lambda.GetFunctionConcurrencyInput{FunctionName: aws.String(r.WorkerFunction)})
	if err != nil {
		return w, awserr.Wrap(err, "get the reserved concurrency of "+r.WorkerFunction)
	}
	if fc.ReservedConcurrentExecutions != nil {
		w.Reserved = int(*fc.ReservedConcurrentExecutions)
	}
	return w, nil
}

// workerMapping finds the event source mapping from the shard queue to
// the worker function (or one of its versions or aliases: AutoPublishAlias
// maps the alias).
func workerMapping(ctx context.Context, c *awsclient.Clients, r Resources) (lambdatypes.EventSourceMappingConfiguration, error) {
	queue, err := queueARN(ctx, c.SQS, r.ShardQueueURL)
	if err != nil {
		return lambdatypes.EventSourceMappingConfiguration{}, err
	}
	pages := lambda.NewListEventSourceMappingsPaginator(c.Lambda, &lambda.ListEventSourceMappingsInput{EventSourceArn: aws.String(queue)})
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if err != nil {
			return lambdatypes.EventSourceMappingConfiguration{}, awserr.Wrap(err, "list the event source mappings of "+queue)
		}
		for _, m := range out.EventSourceMappings {
			if functionName(aws.ToString(m.FunctionArn)) == r.WorkerFunction {
				return m, nil
			}
		}
	}
	return lambdatypes.EventSourceMappingConfiguration{}, fmt.Errorf("no event source mapping from the shard queue %s to %s", queue, r.WorkerFunction)
}

// functionName is the function's name in a function ARN, with or without a
// version or alias qualifier.
func functionName(arn string) string {
	_, rest, ok := strings.Cut(arn, ":function:")
	if !ok {
		return arn
	}
	name, _, _ := strings.Cut(rest, ":")
	return name
}

// ScaleStep is one change Scale made.
type ScaleStep struct {
	What string `json:"what"` // "reserved concurrency" or "MaximumConcurrency"
	From int    `json:"from"` // -1: none was set
	To   int    `json:"to"`
}

// Scale sets the stack's worker cap to n (MinWorkerCap..MaxWorkerCap) while
// batches run: the function's reserved concurrency and the mapping's
// MaximumConcurrency both become n. The order keeps the mapping at or under
// the reserve at every moment: raising, the reserve first; lowering, the
// mapping first. If the second change fails, the first stays and the cap is
// still consistent (the error says which is left). It returns the cap
// before, and the steps taken.
func Scale(ctx context.Context, c *awsclient.Clients, r Resources, n int) (WorkerCap, []ScaleStep, error) {
	if n < MinWorkerCap || n > MaxWorkerCap {
		return WorkerCap{}, nil, fmt.Errorf("concurrency %d: want %d to %d (an SQS event source's MaximumConcurrency)", n, MinWorkerCap, MaxWorkerCap)
	}
	before, err := ReadWorkerCap(ctx, c, r)
	if err != nil {
		return before, nil, err
	}
	reserve := func() error {
		_, err := c.Lambda.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{
			FunctionName: aws.String(before.Function), ReservedConcurrentExecutions: aws.Int32(int32(n))})
		return awserr.Wrap(err, fmt.Sprintf("set the reserved concurrency of %s to %d", before.Function, n))
	}
	mapping := func() error {
		_, err := c.Lambda.UpdateEventSourceMapping(ctx, &lambda.UpdateEventSourceMappingInput{UUID: aws.String(before.Mapping),
			ScalingConfig: &lambdatypes.ScalingConfig{MaximumConcurrency: aws.Int32(int32(n))}})
		return awserr.Wrap(err, fmt.Sprintf("set MaximumConcurrency of mapping %s to %d", before.Mapping, n))
	}
	type change struct {
		step ScaleStep
		do   func() error
	}
	res := change{ScaleStep{"reserved concurrency", before.Reserved, n}, reserve}
	from := before.MaximumConcurrency
	if from == 0 {
		from = -1 // none
	}
	mapp := change{ScaleStep{"MaximumConcurrency", from, n}, mapping}
	order := []change{res, mapp} // raising: room first
	if before.MaximumConcurrency == 0 || n < before.MaximumConcurrency {
		order = []change{mapp, res} // lowering: fewer started first
	}
	var done []ScaleStep
	for i, ch := range order {
		if ch.step.From == n {
			continue
		}
		if err := ch.do(); err != nil {
			if i > 0 && len(done) > 0 {
				err = fmt.Errorf("%w (the %s is already %d: the cap is consistent; run scale again)", err, done[0].What, n)
			}
			return before, done, err
		}
		done = append(done, ch.step)
	}
	return before, done, nil
}

// RegisterWorker registers, on an emulator (importctl dev), the shard worker
// function of the stack r with an execution role, its reserved concurrency
// and a mapping from the shard queue, both set to s.MaxConcurrency, so that
// importctl scale finds what it finds on AWS. The function is a stub never
// invoked and the mapping is disabled: importctl dev plays the event source
// itself (eventsource.Config.Concurrency follows the cap). Running it again
// sets the cap to s.MaxConcurrency.
func RegisterWorker(ctx context.Context, c *awsclient.Clients, r Resources, s Settings) error {
	if r.WorkerFunction == "" {
		return errors.New("no worker function name")
	}
	n := DevNames(r.Stack, "", "")
	roleARN, err := ensureRole(ctx, iam.NewFromConfig(c.Config), n.WorkerRole)
	if err != nil {
		return err
	}
	if _, err := c.Lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(r.WorkerFunction)}); err != nil {
		var missing *lambdatypes.ResourceNotFoundException
		if !errors.As(err, &missing) {
			return awserr.Wrap(err, "get function "+r.WorkerFunction)
		}
		code, err := stubZip()
		if err != nil {
			return err
		}
		if _, err := c.Lambda.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String(r.WorkerFunction),
			Role: aws.String(roleARN), Runtime: lambdatypes.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
			Architectures: []lambdatypes.Architecture{lambdatypes.ArchitectureArm64},
			Timeout:       aws.Int32(int32(s.WorkerTimeout.Seconds())),
			Description:   aws.String("importctl dev: stands for the shard worker (dev runs the handler itself)"),
			Code:          &lambdatypes.FunctionCode{ZipFile: code}}); err != nil {
			return awserr.Wrap(err, "create function "+r.WorkerFunction)
		}
	}
	limit := int32(min(max(s.MaxConcurrency, MinWorkerCap), MaxWorkerCap))
	if _, err := c.Lambda.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{
		FunctionName: aws.String(r.WorkerFunction), ReservedConcurrentExecutions: aws.Int32(limit)}); err != nil {
		return awserr.Wrap(err, "set the reserved concurrency of "+r.WorkerFunction)
	}
	m, err := workerMapping(ctx, c, r)
	if err == nil {
		_, err = c.Lambda.UpdateEventSourceMapping(ctx, &lambda.UpdateEventSourceMappingInput{UUID: m.UUID,
			ScalingConfig: &lambdatypes.ScalingConfig{MaximumConcurrency: aws.Int32(limit)}})
		return awserr.Wrap(err, "set MaximumConcurrency of "+r.WorkerFunction+"'s mapping")
	}
	queue, err := queueARN(ctx, c.SQS, r.ShardQueueURL)
	if err != nil {
		return err
	}
	_, err = c.Lambda.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{
		FunctionName: aws.String(r.WorkerFunction), EventSourceArn: aws.String(queue), Enabled: aws.Bool(false),
		BatchSize: aws.Int32(int32(max(s.BatchSize, 1))), FunctionResponseTypes: []lambdatypes.FunctionResponseType{lambdatypes.FunctionResponseTypeReportBatchItemFailures},
		ScalingConfig: &lambdatypes.ScalingConfig{MaximumConcurrency: aws.Int32(limit)}})
	return awserr.Wrap(err, "map the shard queue to "+r.WorkerFunction)
}

// ensureRole creates the role Lambda may assume, if missing, and returns
// its ARN.
func ensureRole(ctx context.Context, c *iam.Client, name string) (string, error) {
	out, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
	if err == nil {
		return aws.ToString(out.Role.Arn), nil
	}
	var missing *iamtypes.NoSuchEntityException
	if !errors.As(err, &missing) {
		return "", awserr.Wrap(err, "get role "+name)
	}
	created, err := c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(name),
		AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)})
	if err != nil {
		return "", awserr.Wrap(err, "create role "+name)
	}
	return aws.ToString(created.Role.Arn), nil
}

// stubZip is a deployment package with an empty bootstrap.
func stubZip() ([]byte, error) {
	var buf bytes.Buffer
	z := zip.NewWriter(&buf)
	w, err := z.Create("bootstrap")
	if err == nil {
		_, err = w.Write([]byte("#!/bin/sh\nexit 1\n"))
	}
	if err == nil {
		err = z.Close()
	}
	return buf.Bytes(), err
}
