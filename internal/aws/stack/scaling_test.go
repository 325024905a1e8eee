package stack_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	awsmw "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"

	"github.com/catalog-import/catalog-import/internal/aws/awstest"
	"github.com/catalog-import/catalog-import/internal/aws/stack"
)

// lambdaCalls records the Lambda writes in order, and fails the operation
// named in fail.
type lambdaCalls struct {
	mu   sync.Mutex
	ops  []string
	fail string
}

func (l *lambdaCalls) option(st *middleware.Stack) error {
	return st.Initialize.Add(middleware.InitializeMiddlewareFunc("lambdaCalls",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			op := awsmw.GetOperationName(ctx)
			if awsmw.GetServiceID(ctx) == "Lambda" && (strings.HasPrefix(op, "Put") || strings.HasPrefix(op, "Update")) {
				l.mu.Lock()
				l.ops = append(l.ops, op)
				fail := l.fail == op
				l.mu.Unlock()
				if fail {
					return middleware.InitializeOutput{}, middleware.Metadata{}, errors.New("injected: " + op + " refused")
				}
			}
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
}

func (l *lambdaCalls) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	ops := l.ops
	l.ops = nil
	return ops
}

// TestScale on moto: importctl dev's worker function and mapping have the
// cap of --max-concurrency; Scale raises the reserve before the mapping and
// lowers the mapping before the reserve (so the mapping never exceeds the
// reserve), leaves both equal, refuses caps outside 2..1000, changes
// nothing at the same cap, and when its second change fails leaves a
// consistent cap and says so.
func TestScale(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	calls := &lambdaCalls{}
	c := awstest.Clients(t, calls.option)
	s := stack.Defaults()
	s.MaxConcurrency = 10
	name := awstest.Name("scale")
	res, err := stack.Provision(ctx, c, name, s)
	if err != nil {
		t.Fatal(err)
	}
	if err := stack.RegisterWorker(ctx, c, res, s); err != nil {
		t.Fatal(err)
	}
	if err := stack.RegisterWorker(ctx, c, res, s); err != nil { // dev started again
		t.Fatalf("registering again: %v", err)
	}
	found, err := stack.Find(ctx, c, name)
	if err != nil || found.WorkerFunction != res.WorkerFunction || found.SplitterFailedQueueURL != res.SplitterFailedQueueURL || found.SplitterFailedQueueURL == "" {
		t.Fatalf("Find = %+v, %v; want the worker function and the OnFailure queue of %+v", found, err, res)
	}
	read := func() stack.WorkerCap {
		t.Helper()
		w, err := stack.ReadWorkerCap(ctx, c, found)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	if w := read(); w.MaximumConcurrency != 10 || w.Reserved != 10 || w.Effective() != 10 || w.Mapping == "" {
		t.Fatalf("registered cap %+v, want 10 and 10", w)
	}
	calls.take()
	for _, tc := range []struct {
		n     int
		order []string
	}{
		{25, []string{"PutFunctionConcurrency", "UpdateEventSourceMapping"}}, // raising: room first
		{4, []string{"UpdateEventSourceMapping", "PutFunctionConcurrency"}},  // lowering: fewer started first
		{4, nil}, // nothing to change
	} {
		before, steps, err := stack.Scale(ctx, c, found, tc.n)
		if err != nil {
			t.Fatalf("scale to %d: %v", tc.n, err)
		}
		if got := calls.take(); !slices.Equal(got, tc.order) {
			t.Errorf("scale %d -> %d: calls %v, want %v", before.MaximumConcurrency, tc.n, got, tc.order)
		}
		if len(steps) != len(tc.order) {
			t.Errorf("scale to %d: steps %+v", tc.n, steps)
		}
		if w := read(); w.MaximumConcurrency != tc.n || w.Reserved != tc.n {
			t.Errorf("after scale to %d: %+v", tc.n, w)
		}
	}
	for _, n := range []int{0, 1, 1001} {
		if _, _, err := stack.Scale(ctx, c, found, n); err == nil || !strings.Contains(err.Error(), "want 2 to 1000") {
			t.Errorf("scale to %d: %v, want refused", n, err)
		}
	}
	if got := calls.take(); len(got) != 0 {
		t.Errorf("refused scales called %v", got)
	}

	// The mapping's update fails after the reserve was raised: the reserve
	// is 8, the mapping still 4 (under it), and the error says so.
	calls.fail = "UpdateEventSourceMapping"
	_, steps, err := stack.Scale(ctx, c, found, 8)
	if err == nil || !strings.Contains(err.Error(), "reserved concurrency is already 8: the cap is consistent") || len(steps) != 1 {
		t.Errorf("failed raise: steps %+v, error %v", steps, err)
	}
	if w := read(); w.Reserved != 8 || w.MaximumConcurrency != 4 {
		t.Errorf("after a failed raise: %+v, want reserve 8, mapping 4", w)
	}
	// Lowering with the reserve's update failing: the mapping is lowered.
	calls.fail = "PutFunctionConcurrency"
	if _, _, err := stack.Scale(ctx, c, found, 3); err == nil {
		t.Error("a failed lower succeeded")
	}
	if w := read(); w.MaximumConcurrency != 3 || w.Reserved != 8 {
		t.Errorf("after a failed lower: %+v, want mapping 3 under reserve 8", w)
	}
}
