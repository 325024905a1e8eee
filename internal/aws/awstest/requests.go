package awstest

import (
	"context"
	"reflect"
	"slices"
	"sort"
	"sync"

	awsmw "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
)

// Call is one AWS operation a client sent, with the resource it named.
type Call struct {
	Service   string // the SDK's service id: "S3", "DynamoDB", "SQS", "SNS"
	Operation string // "GetObject", "TransactWriteItems", ...
	// Resource is the table, bucket (bucket/key for an object), queue URL
	// or topic ARN the request names ("" when it names none); a request naming several tables
	// (BatchGetItem, TransactWriteItems) is recorded once per table.
	Resource string
}

// Requests records the operations of the clients it is installed on (every
// call, before retries). The zero value is ready to use; it is safe for
// concurrent use.
type Requests struct {
	mu    sync.Mutex
	calls map[Call]int
}

// Option is the middleware to pass to Clients or awsclient.Settings.APIOptions.
func (r *Requests) Option(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("awstest-requests",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			svc, op := awsmw.GetServiceID(ctx), awsmw.GetOperationName(ctx)
			res := resources(in.Parameters)
			if len(res) == 0 {
				res = []string{""}
			}
			r.mu.Lock()
			if r.calls == nil {
				r.calls = map[Call]int{}
			}
			for _, name := range res {
				r.calls[Call{Service: svc, Operation: op, Resource: name}]++
			}
			r.mu.Unlock()
			return next.HandleInitialize(ctx, in)
		}), middleware.After)
}

// Take returns the calls recorded since the last Take and how often each
// was made, and forgets them.
func (r *Requests) Take() map[Call]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = map[Call]int{}
	if c == nil {
		c = map[Call]int{}
	}
	return c
}

// Count returns how many calls of service's operation were recorded since
// the last Take (any resource).
func (r *Requests) Count(service, operation string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for c, k := range r.calls {
		if c.Service == service && c.Operation == operation {
			n += k
		}
	}
	return n
}

// resources names the tables, bucket, queue or topic an input names.
func resources(params any) []string {
	v := reflect.ValueOf(params)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return nil
	}
	var out []string
	if b, k := str(v, "Bucket"), str(v, "Key"); b != "" && k != "" {
		return []string{b + "/" + k} // an object: bucket/key
	}
	for _, f := range []string{"TableName", "Bucket", "QueueUrl", "TopicArn"} {
		if fv := v.FieldByName(f); fv.IsValid() && fv.Kind() == reflect.Pointer && !fv.IsNil() && fv.Elem().Kind() == reflect.String {
			out = append(out, fv.Elem().String())
		}
	}
	if ri := v.FieldByName("RequestItems"); ri.IsValid() && ri.Kind() == reflect.Map {
		for _, k := range ri.MapKeys() {
			out = append(out, k.String())
		}
	}
	if ti := v.FieldByName("TransactItems"); ti.IsValid() && ti.Kind() == reflect.Slice {
		for i := range ti.Len() {
			it := ti.Index(i)
			for j := range it.NumField() {
				if a := it.Field(j); a.Kind() == reflect.Pointer && !a.IsNil() {
					out = append(out, resources(a.Interface())...)
				}
			}
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// str is the string field name of struct v, "" when unset.
func str(v reflect.Value, name string) string {
	if fv := v.FieldByName(name); fv.IsValid() && fv.Kind() == reflect.Pointer && !fv.IsNil() && fv.Elem().Kind() == reflect.String {
		return fv.Elem().String()
	}
	return ""
}
