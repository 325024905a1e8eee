package iamcheck

import (
	"encoding/json"
	"errors"
	"os/exec"
	"path"
	"testing"
)

const (
	stackName = "catalog-import"
	account   = "123456789012"
	region    = "us-east-1"
)

// statement is one Allow statement of a role, intrinsics resolved.
type statement struct {
	Effect      string   `json:"effect"`
	Actions     []string `json:"actions"`
	Resources   []string `json:"resources"`
	Conditional bool     `json:"conditional"` // has a Condition (not evaluated here)
}

// role is a function's role as the expanded template gives it.
type role struct {
	Managed    []string    `json:"managed"`
	Statements []statement `json:"statements"`
}

// managed are the statements of the AWS managed policies SAM attaches, as
// AWS documents them (the translator names them by ARN only).
var managed = map[string][]statement{
	"arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": {
		{Effect: "Allow", Actions: []string{"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"}, Resources: []string{"*"}}},
	"arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess": {
		{Effect: "Allow", Actions: []string{"xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules",
			"xray:GetSamplingTargets", "xray:GetSamplingStatisticSummaries"}, Resources: []string{"*"}}},
	"arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole": {
		{Effect: "Allow", Actions: []string{"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
			"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"}, Resources: []string{"*"}}},
}

// expand runs testdata/expand.py on template.yaml. It skips the test when
// python3 or aws-sam-translator is missing (`make deps` installs cfn-lint,
// which brings the translator).
func expand(t *testing.T) map[string]role {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed: the IAM check needs it with aws-sam-translator (make deps installs cfn-lint, which brings it)")
	}
	cmd := exec.Command("python3", "testdata/expand.py", "../../../template.yaml", stackName, account, region)
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 3 {
		t.Skip("aws-sam-translator is not installed (make deps installs cfn-lint, which brings it)")
	}
	if err != nil {
		t.Fatalf("expand template.yaml: %v\n%s", err, stderr(err))
	}
	var roles map[string]role
	if err := json.Unmarshal(out, &roles); err != nil {
		t.Fatal(err)
	}
	return roles
}

func stderr(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return ""
}

// match reports whether s matches an IAM pattern (* and ?; case-sensitive,
// as resources are; actions are compared as written).
func match(pattern, s string) bool {
	ok, err := path.Match(pattern, s)
	if err == nil && ok {
		return true
	}
	// path.Match's * stops at '/'; IAM's does not.
	return globIAM(pattern, s)
}

func globIAM(p, s string) bool {
	if p == "" {
		return s == ""
	}
	switch p[0] {
	case '*':
		for i := 0; i <= len(s); i++ {
			if globIAM(p[1:], s[i:]) {
				return true
			}
		}
		return false
	case '?':
		return s != "" && globIAM(p[1:], s[1:])
	}
	return s != "" && p[0] == s[0] && globIAM(p[1:], s[1:])
}

// allows reports whether r allows action on resource (unconditionally or
// under a condition, which the caller's request is assumed to meet).
func (r role) allows(action, resource string) bool {
	sts := r.Statements
	for _, arn := range r.Managed {
		sts = append(sts, managed[arn]...)
	}
	for _, st := range sts {
		if st.Effect != "Allow" {
			continue
		}
		for _, a := range st.Actions {
			if !match(a, action) {
				continue
			}
			for _, res := range st.Resources {
				if match(res, resource) {
					return true
				}
			}
		}
	}
	return false
}

// need is an AWS action a function makes on a resource, and why.
type need struct {
	function, action, resource, why string
}

var (
	bucketARN   = "arn:aws:s3:::" + stackName + "-" + account + "-" + region
	stateTable  = "arn:aws:dynamodb:" + region + ":" + account + ":table/" + stackName + "-state"
	productsARN = "arn:aws:dynamodb:" + region + ":" + account + ":table/" + stackName + "-products"
	shardQueue  = "arn:aws:sqs:" + region + ":" + account + ":" + stackName + "-shards"
	dlq         = "arn:aws:sqs:" + region + ":" + account + ":" + stackName + "-shards-dlq"
	topic       = "arn:aws:sns:" + region + ":" + account + ":" + stackName + "-escalations"
)

// needs are the operations each function is known to make (a first list,
// written by hand from the code; see the package documentation for the
// recorded one it should become).
var needs = []need{
	{"SplitterFunction", "s3:GetObject", bucketARN + "/incoming/products.csv", "the split reads the upload"},
	{"SplitterFunction", "s3:PutObject", bucketARN + "/staging/b-1/sheet-0.csv", "a workbook's sheets are staged"},
	{"SplitterFunction", "dynamodb:PutItem", stateTable, "CreateBatch"},
	{"SplitterFunction", "sqs:SendMessage", shardQueue, "the manifests"},
	{"ShardWorkerFunction", "s3:GetObject", bucketARN + "/incoming/products.csv", "the shard's range"},
	{"ShardWorkerFunction", "dynamodb:UpdateItem", stateTable, "Claim, Checkpoint"},
	{"ShardWorkerFunction", "dynamodb:PutItem", productsARN, "the products"},
	{"ShardWorkerFunction", "sqs:SendMessage", shardQueue, "a continuation manifest (hand-on)"},
	{"ShardWorkerFunction", "s3:PutObject", bucketARN + "/reports/b-1/report.html", "the error report"},
	{"TriageFunction", "sqs:ReceiveMessage", dlq, "the event source mapping"},
	{"TriageFunction", "sqs:ChangeMessageVisibility", dlq, "park(): a message kept for redrive stays invisible for ParkFor (sqsqueue.Retry)"},
	{"TriageFunction", "sqs:SendMessage", shardQueue, "a retried shard goes back to the shard queue"},
	{"TriageFunction", "sns:Publish", topic, "an escalation"},
	{"TriageFunction", "dynamodb:UpdateItem", stateTable, "skip or escalate a shard; the triage log"},
}

// TestRolesAllowWhatTheFunctionsDo: every operation in needs is allowed by
// its function's role in the template as SAM expands it.
func TestRolesAllowWhatTheFunctionsDo(t *testing.T) {
	roles := expand(t)
	for _, n := range needs {
		r, ok := roles[n.function]
		if !ok {
			t.Errorf("no function %s in the expanded template", n.function)
			continue
		}
		if !r.allows(n.action, n.resource) {
			t.Errorf("%s's role does not allow %s on %s (%s)", n.function, n.action, n.resource, n.why)
		}
	}
}
