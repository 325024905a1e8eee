package samtemplate_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/catalog-import/catalog-import/internal/aws/samtemplate"
)

func parse(t *testing.T, path string) *samtemplate.Template {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := samtemplate.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

var refs = samtemplate.Refs{
	Pseudo:    map[string]string{"AWS::StackName": "st", "AWS::AccountId": "123456789012", "AWS::Region": "us-east-1", "AWS::Partition": "aws"},
	Resources: map[string]string{"Table": "st-table", "Queue": "http://q/st-queue", "Bucket": "st-bucket"},
}

// TestFunction reads testdata/template.yaml's functions: Globals merged
// under each function's own properties, SAM's defaults, and every form of
// intrinsic the environment may hold.
func TestFunction(t *testing.T) {
	t.Parallel()
	tpl := parse(t, "testdata/template.yaml")
	if diff := cmp.Diff([]string{"Bad", "Plain", "Timed"}, tpl.FunctionNames()); diff != "" {
		t.Errorf("functions (-want +got):\n%s", diff)
	}
	globalVars := map[string]string{"LEVEL": "info", "TABLE": "st-table", "BUCKET": "st-123456789012-us-east-1", "OVERRIDDEN": "global"}
	for _, tc := range []struct {
		name string
		refs samtemplate.Refs
		want samtemplate.Function
	}{
		{name: "Plain", refs: refs, want: samtemplate.Function{
			Name: "Plain", Runtime: "go1.x", Handler: "bootstrap", Architectures: []string{"arm64"}, CodeURI: ".",
			Timeout: samtemplate.DefaultTimeout, MemoryMB: 512, Tracing: false,
			Variables: map[string]string{
				"LEVEL": "info", "TABLE": "st-table", "BUCKET": "st-123456789012-us-east-1", "OVERRIDDEN": "own",
				"ROWS": "500", "QUEUE": "http://q/st-queue", "LONG_SUB": "arn:aws:s3:::st-bucket",
				"LIST_SUB": "500-us-east-1-${Literal}", "ATTR": "", "ATTR_SUB": "", "TOPIC": "", "NEEDS_PARAM": "",
				"COUNT": "3", "FLAG": "true", "EMPTY": "", "UNCLOSED": "a-${b",
			},
			Unresolved: map[string]string{
				"ATTR":        "!GetAtt Table.Arn cannot be resolved",
				"ATTR_SUB":    "${Table.Arn} (an attribute) cannot be resolved",
				"TOPIC":       "!Ref Topic cannot be resolved",
				"NEEDS_PARAM": "!Ref NoDefault (a parameter without a default or a value) cannot be resolved",
			},
		}},
		{name: "Timed", refs: samtemplate.Refs{Parameters: map[string]string{"Timeout": "2"}, Pseudo: refs.Pseudo, Resources: refs.Resources}, want: samtemplate.Function{
			Name: "Timed", Runtime: "provided.al2023", Handler: "bootstrap", Architectures: []string{"arm64"}, CodeURI: "fn/", BuildMethod: "makefile",
			Timeout: 2 * time.Second, MemoryMB: 1024, Tracing: true, Variables: globalVars, Unresolved: map[string]string{},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tpl.Function(tc.name, tc.refs)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	if _, err := tpl.Function("Bad", refs); err == nil || !strings.Contains(err.Error(), `Timeout "soon"`) {
		t.Errorf("Bad: %v, want an error naming its Timeout", err)
	}
	if _, err := tpl.Function("Nope", refs); err == nil || !strings.Contains(err.Error(), "has no function Nope (it has Bad, Plain, Timed)") {
		t.Errorf("Nope: %v", err)
	}
}

// TestProjectTemplate: template.yaml's functions, resolved against a
// stack's names, get every variable handler.ConfigFromEnv requires, their
// timeouts and memory (from the parameters' defaults where they are
// references), and only the escalation topic (which importctl dev does not
// provision) stays unresolved.
func TestProjectTemplate(t *testing.T) {
	t.Parallel()
	tpl := parse(t, "../../../template.yaml")
	r := samtemplate.Refs{
		Pseudo: map[string]string{"AWS::StackName": "catalog-import", "AWS::AccountId": "123456789012", "AWS::Region": "us-east-1", "AWS::Partition": "aws"},
		Resources: map[string]string{"StateTable": "catalog-import-state", "ProductsTable": "catalog-import-products",
			"ShardQueue": "http://sqs/catalog-import-shards", "ShardDLQ": "http://sqs/catalog-import-shards-dlq", "ImportBucket": "catalog-import-123456789012-us-east-1"},
	}
	for _, tc := range []struct {
		name       string
		timeout    time.Duration
		memory     int
		own        map[string]string
		unresolved []string
	}{
		{name: "SplitterFunction", timeout: 900 * time.Second, memory: 1024, own: map[string]string{"SHARD_ROWS": "50000", "SHARD_BYTES": "16777216", "MAX_UPLOAD_BYTES": "10737418240", "EVENT_BUS_NAME": "default"}},
		{name: "ShardWorkerFunction", timeout: 300 * time.Second, memory: 1769, own: map[string]string{"POOL_SIZE": "16", "CHECKPOINT_EVERY": "1000", "LEASE_TTL_SECONDS": "300", "FAILURE_TTL_DAYS": "30", "WRITE_RATE": "0", "EVENT_BUS_NAME": "default"}},
		{name: "TriageFunction", timeout: 60 * time.Second, memory: 256, own: map[string]string{"STACK_NAME": "catalog-import", "ESCALATION_TOPIC_ARN": ""}, unresolved: []string{"ESCALATION_TOPIC_ARN"}},
	} {
		f, err := tpl.Function(tc.name, r)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{
			"LOG_LEVEL": "INFO", "BATCH_TTL_DAYS": "90", "STATE_TABLE": "catalog-import-state", "PRODUCTS_TABLE": "catalog-import-products",
			"BUCKET": "catalog-import-123456789012-us-east-1", "SHARD_QUEUE_URL": "http://sqs/catalog-import-shards",
			"DLQ_URL": "http://sqs/catalog-import-shards-dlq", "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
		}
		for k, v := range tc.own {
			want[k] = v
		}
		if diff := cmp.Diff(want, f.Variables); diff != "" {
			t.Errorf("%s variables (-want +got):\n%s", tc.name, diff)
		}
		var unresolved []string
		for k := range f.Unresolved {
			unresolved = append(unresolved, k)
		}
		if diff := cmp.Diff(tc.unresolved, unresolved); diff != "" {
			t.Errorf("%s unresolved (-want +got):\n%s", tc.name, diff)
		}
		if f.Timeout != tc.timeout || f.MemoryMB != tc.memory || !f.Tracing || f.BuildMethod != "makefile" || f.CodeURI != "." {
			t.Errorf("%s: %+v", tc.name, f)
		}
	}
}

// TestEnvironment: a declared variable takes the shell's value over the
// template's and the --env-vars file's over both (its function section over
// its Parameters); undeclared variables are not passed.
func TestEnvironment(t *testing.T) {
	t.Parallel()
	ev, err := samtemplate.ParseEnvVars([]byte(`{
		"Parameters": {"A": "params", "B": "params", "UNDECLARED": "x", "N": 400, "T": true, "Z": null, "O": {"k": 1}},
		"Fn": {"B": "function", "C": ""},
		"Other": {"A": "other"}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	f := samtemplate.Function{Variables: map[string]string{"A": "tpl", "B": "tpl", "C": "tpl", "D": "tpl", "E": "tpl", "N": "", "T": "", "Z": "tpl", "O": "tpl"}}
	shell := func(k string) (string, bool) {
		v, ok := map[string]string{"D": "shell", "A": "shell", "UNDECLARED2": "shell"}[k]
		return v, ok
	}
	got := f.Environment(shell, ev.For("Fn"))
	want := map[string]string{"A": "params", "B": "function", "C": "", "D": "shell", "E": "tpl", "N": "400", "T": "true", "Z": "", "O": ""}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, bad := range []string{`[]`, `{"Parameters": []}`, `{"Parameters": {"A": "x"}`, `"x"`} {
		if _, err := samtemplate.ParseEnvVars([]byte(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

// TestEventsEnvVars: events/env.json (what the README passes to sam local
// invoke and importctl invoke) parses, and sets variables the template
// declares.
func TestEventsEnvVars(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../../events/env.json")
	if err != nil {
		t.Fatal(err)
	}
	ev, err := samtemplate.ParseEnvVars(b)
	if err != nil {
		t.Fatal(err)
	}
	tpl := parse(t, "../../../template.yaml")
	declared := map[string]bool{}
	for _, name := range tpl.FunctionNames() {
		f, err := tpl.Function(name, samtemplate.Refs{})
		if err != nil {
			t.Fatal(err)
		}
		for k := range f.Variables {
			declared[k] = true
		}
	}
	for k := range ev.Parameters {
		if !declared[k] {
			t.Errorf("events/env.json sets %s, which no function declares: sam local invoke and importctl invoke ignore it", k)
		}
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"", "- a\n- b\n", "Parameters: {}\n", "a: [\n"} {
		if _, err := samtemplate.Parse([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// FuzzTemplate: any template is parsed and its functions resolved without
// a panic (anchors, aliases, tags on any node).
func FuzzTemplate(f *testing.F) {
	for _, p := range []string{"testdata/template.yaml"} {
		b, _ := os.ReadFile(p)
		f.Add(string(b))
	}
	f.Add("Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Environment:\n        Variables:\n          A: !Sub [\"${x}\", {x: !Ref y}]\n          B: &a {Ref: B}\n          C: *a\n")
	f.Add("Globals: {Function: {Timeout: !Sub '${AWS::NoValue}'}}\nResources: {F: {Type: AWS::Serverless::Function}}\n")
	f.Fuzz(func(t *testing.T, text string) {
		tpl, err := samtemplate.Parse([]byte(text))
		if err != nil {
			return
		}
		for _, name := range tpl.FunctionNames() {
			fn, err := tpl.Function(name, refs)
			if err == nil && fn.Timeout <= 0 {
				t.Fatalf("%s: timeout %s", name, fn.Timeout)
			}
		}
	})
}

// FuzzEnvVars: any --env-vars file is parsed without a panic.
func FuzzEnvVars(f *testing.F) {
	b, _ := os.ReadFile("../../../events/env.json")
	f.Add(string(b))
	f.Add(`{"F": {"A": 1.5e3, "B": false, "C": "\u00e9"}}`)
	f.Fuzz(func(t *testing.T, text string) {
		ev, err := samtemplate.ParseEnvVars([]byte(text))
		if err == nil {
			_ = ev.For("F")
		}
	})
}
