package iamcheck

import (
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
)

const (
	stackName = "catalog-import"
	account   = "123456789012"
	region    = "us-east-1"
)

// statement is one statement of a role, intrinsics resolved.
type statement struct {
	Sid       string   `json:"sid"`
	Effect    string   `json:"effect"`
	Actions   []string `json:"actions"`
	Resources []string `json:"resources"`
	// Condition is the statement's condition block: operator -> key ->
	// value or values (nil: none).
	Condition map[string]map[string]any `json:"condition"`
}

// role is a function's role as the expanded template gives it.
type role struct {
	Name       string      `json:"role"` // the role's logical id
	Managed    []string    `json:"managed"`
	Statements []statement `json:"statements"`
}

// expansion is what testdata/expand.py prints.
type expansion struct {
	Roles    map[string]role `json:"roles"` // by function logical id
	Template cfnTemplate     `json:"template"`
}

var (
	expandOnce sync.Once
	expanded   expansion
	expandErr  error
	expandSkip string
)

// expand runs testdata/expand.py on template.yaml (once per test binary).
// It skips the test when python3 or aws-sam-translator is missing (`make
// deps` installs cfn-lint, which brings the translator).
func expand(t *testing.T) expansion {
	t.Helper()
	expandOnce.Do(func() {
		if _, err := exec.LookPath("python3"); err != nil {
			expandSkip = "python3 is not installed: the IAM check needs it with aws-sam-translator (make deps installs cfn-lint, which brings it)"
			return
		}
		cmd := exec.Command("python3", "testdata/expand.py", "../../../template.yaml", stackName, account, region)
		out, err := cmd.Output()
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 3 {
			expandSkip = "aws-sam-translator is not installed (make deps installs cfn-lint, which brings it)"
			return
		}
		if err != nil {
			expandErr = fmt.Errorf("expand template.yaml: %v\n%s", err, stderr(err))
			return
		}
		expandErr = json.Unmarshal(out, &expanded)
	})
	if expandSkip != "" {
		t.Skip(expandSkip)
	}
	if expandErr != nil {
		t.Fatal(expandErr)
	}
	return expanded
}

func stderr(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return ""
}

// match reports whether s matches an IAM pattern: * matches any run of
// characters ('/' and ':' included), ? one character; case-sensitive, as
// resources are (actions are compared as written).
func match(p, s string) bool {
	if p == "" {
		return s == ""
	}
	switch p[0] {
	case '*':
		for i := 0; i <= len(s); i++ {
			if match(p[1:], s[i:]) {
				return true
			}
		}
		return false
	case '?':
		return s != "" && match(p[1:], s[1:])
	}
	return s != "" && p[0] == s[0] && match(p[1:], s[1:])
}

// values is a condition value as a list.
func values(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, x := range v {
			out = append(out, fmt.Sprint(x))
		}
		return out
	}
	return []string{fmt.Sprint(v)}
}

// holds reports whether a statement's condition holds for a request with
// the condition keys ctx. Only the operators the template uses are known:
// any other makes the condition fail (and the test with it), so a new one
// is noticed rather than waved through.
func (st statement) holds(ctx map[string]string) bool {
	for op, keys := range st.Condition {
		for key, want := range keys {
			got, ok := ctx[key]
			if !ok {
				return false // IAM: a missing key fails String* operators
			}
			var any bool
			for _, w := range values(want) {
				switch op {
				case "StringLike":
					any = any || match(w, got)
				case "StringEquals":
					any = any || w == got
				default:
					return false
				}
			}
			if !any {
				return false
			}
		}
	}
	return true
}

// grants reports whether st allows action on resource for a request with
// the condition keys ctx.
func (st statement) grants(action, resource string, ctx map[string]string) bool {
	if st.Effect != "Allow" {
		return false
	}
	return slices.ContainsFunc(st.Actions, func(a string) bool { return match(a, action) }) &&
		slices.ContainsFunc(st.Resources, func(r string) bool { return match(r, resource) }) &&
		st.holds(ctx)
}

// allows reports whether r allows action on resource for a request with
// the condition keys ctx (the roles have no Deny statements: a test checks).
func (r role) allows(action, resource string, ctx map[string]string) bool {
	return slices.ContainsFunc(r.Statements, func(st statement) bool { return st.grants(action, resource, ctx) })
}

var (
	bucketARN   = "arn:aws:s3:::" + stackName + "-" + account + "-" + region
	shardQueue  = "arn:aws:sqs:" + region + ":" + account + ":" + stackName + "-shards"
	dlq         = "arn:aws:sqs:" + region + ":" + account + ":" + stackName + "-shards-dlq"
	failedQueue = "arn:aws:sqs:" + region + ":" + account + ":" + stackName + "-splitter-failed"
	topic       = "arn:aws:sns:" + region + ":" + account + ":" + stackName + "-escalations"
	topicKey    = "arn:aws:kms:" + region + ":" + account + ":key/TopicKey" // expand.py's name for the key
)

func logGroup(fn string) string {
	return "arn:aws:logs:" + region + ":" + account + ":log-group:/aws/lambda/" + stackName + "-" + fn + ":log-stream:2026/01/01/[$LATEST]0123"
}

// TestRoleMatching: the evaluator the IAM tests rely on allows and refuses
// as IAM does for the patterns and conditions the template uses.
func TestRoleMatching(t *testing.T) {
	r := role{Statements: []statement{
		{Effect: "Allow", Actions: []string{"s3:GetObject"}, Resources: []string{bucketARN + "/incoming/*"}},
		{Effect: "Allow", Actions: []string{"s3:ListBucketVersions"}, Resources: []string{bucketARN},
			Condition: map[string]map[string]any{"StringLike": {"s3:prefix": "staging/*"}}},
		{Effect: "Allow", Actions: []string{"kms:GenerateDataKey*"}, Resources: []string{topicKey}},
	}}
	tests := []struct {
		action, resource string
		ctx              map[string]string
		want             bool
	}{
		{"s3:GetObject", bucketARN + "/incoming/a/b.csv", nil, true},
		{"s3:GetObject", bucketARN + "/reports/b.csv", nil, false},
		{"s3:GetObject", bucketARN + "-other/incoming/b.csv", nil, false},
		{"s3:PutObject", bucketARN + "/incoming/b.csv", nil, false},
		{"s3:ListBucketVersions", bucketARN, map[string]string{"s3:prefix": "staging/b-1/"}, true},
		{"s3:ListBucketVersions", bucketARN, map[string]string{"s3:prefix": "incoming/"}, false},
		{"s3:ListBucketVersions", bucketARN, nil, false},
		{"kms:GenerateDataKey", topicKey, nil, true},
		{"kms:Decrypt", topicKey, nil, false},
	}
	for _, tt := range tests {
		if got := r.allows(tt.action, tt.resource, tt.ctx); got != tt.want {
			t.Errorf("allows(%s, %s, %v) = %v, want %v", tt.action, tt.resource, tt.ctx, got, tt.want)
		}
	}
}

// TestRolesAreWrittenOut: each function has a role of its own, written out
// in the template: no managed policy (SAM adds none when a function names
// its role), no Deny (allows() would not see it), no wildcard action.
func TestRolesAreWrittenOut(t *testing.T) {
	x := expand(t)
	seen := map[string]string{}
	for _, fn := range []string{"SplitterFunction", "ShardWorkerFunction", "TriageFunction"} {
		r, ok := x.Roles[fn]
		if !ok {
			t.Errorf("no function %s in the expanded template", fn)
			continue
		}
		if other, dup := seen[r.Name]; dup {
			t.Errorf("%s and %s share the role %s", fn, other, r.Name)
		}
		seen[r.Name] = fn
		if len(r.Managed) != 0 {
			t.Errorf("%s's role has managed policies %v", fn, r.Managed)
		}
		for _, st := range r.Statements {
			if st.Effect != "Allow" {
				t.Errorf("%s's statement %s: effect %s", fn, st.Sid, st.Effect)
			}
			if st.Sid == "" {
				t.Errorf("%s's role has a statement without a Sid (%v): the explanations name statements by Sid", fn, st.Actions)
			}
			for _, a := range st.Actions {
				if strings.Contains(a, "*") && a != "kms:GenerateDataKey*" { // GenerateDataKey and its WithoutPlaintext form
					t.Errorf("%s's statement %s allows the wildcard action %s", fn, st.Sid, a)
				}
			}
			if slices.Contains(st.Resources, "*") && st.Sid != "Traces" { // X-Ray has no resource-level permissions
				t.Errorf("%s's statement %s allows %v on every resource", fn, st.Sid, st.Actions)
			}
		}
	}
}
