package iamcheck

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/catalog-import/catalog-import/internal/aws/s3store"
)

// cfnTemplate is the expanded template as CloudFormation sees it
// (intrinsics as they are: {"Ref": ...}, {"Fn::GetAtt": [...]}).
type cfnTemplate struct {
	Parameters map[string]map[string]any `json:"Parameters"`
	Conditions map[string]any            `json:"Conditions"`
	Resources  map[string]cfnResource    `json:"Resources"`
	Outputs    map[string]map[string]any `json:"Outputs"`
}

// cfnResource is one resource of the expanded template.
type cfnResource struct {
	Type                string         `json:"Type"`
	Condition           string         `json:"Condition"`
	DeletionPolicy      string         `json:"DeletionPolicy"`
	UpdateReplacePolicy string         `json:"UpdateReplacePolicy"`
	UpdatePolicy        map[string]any `json:"UpdatePolicy"`
	Properties          map[string]any `json:"Properties"`
}

// get walks v along keys (map keys, or list indexes as "0", "1", ...).
func get(v any, keys ...string) any {
	for _, k := range keys {
		switch x := v.(type) {
		case map[string]any:
			v = x[k]
		case []any:
			var i int
			if _, err := fmt.Sscan(k, &i); err != nil || i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

// same reports whether two JSON values are equal (after a round trip, so
// that numbers and strings compare as CloudFormation would read them).
func same(a, b any) bool {
	norm := func(v any) any {
		data, _ := json.Marshal(v)
		var out any
		_ = json.Unmarshal(data, &out)
		return out
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

func ref(name string) map[string]any { return map[string]any{"Ref": name} }

func getAtt(res, attr string) map[string]any {
	return map[string]any{"Fn::GetAtt": []any{res, attr}}
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

// ofType returns the logical ids of the resources of type typ, sorted.
func (c cfnTemplate) ofType(typ string) []string {
	var out []string
	for id, r := range c.Resources {
		if r.Type == typ {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// function is what the template tests know of each function.
type function struct {
	id, name, logGroup, errorsAlarm string
}

var functions = []function{
	{"SplitterFunction", "splitter", "SplitterLogGroup", "SplitterErrorsAlarm"},
	{"ShardWorkerFunction", "shard-worker", "ShardWorkerLogGroup", "WorkerErrorsAlarm"},
	{"TriageFunction", "triage", "TriageLogGroup", "TriageErrorsAlarm"},
}

// alarms are the stack's alarms; each has a section in infra/README.md's
// runbook.
var alarms = []string{
	"EscalationsAlarm", "DLQDepthAlarm", "FailureRatioAlarm", "WorkerErrorsAlarm", "WorkerThrottlesAlarm",
	"SplitterErrorsAlarm", "TriageErrorsAlarm", "SplitterThrottlesAlarm", "SplitterEventsDroppedAlarm",
	"SplitterFailedAlarm", "ShardQueueAgeAlarm", "StalledBatchesAlarm", "BreakerOpenAlarm",
	"ProductsThrottleAlarm", "StateThrottleAlarm", "AlarmNotificationsFailedAlarm", "EscalationNotificationsFailedAlarm",
}

// taggable are the resource types of the stack that take tags.
var taggable = []string{
	"AWS::S3::Bucket", "AWS::DynamoDB::Table", "AWS::SQS::Queue", "AWS::SNS::Topic", "AWS::KMS::Key",
	"AWS::Logs::LogGroup", "AWS::IAM::Role", "AWS::CloudWatch::Alarm", "AWS::Lambda::Function",
	"AWS::CodeDeploy::Application", "AWS::CodeDeploy::DeploymentGroup",
}

// tags returns a resource's tags (a Key/Value list, or a map).
func tags(r cfnResource) map[string]any {
	out := map[string]any{}
	switch ts := r.Properties["Tags"].(type) {
	case []any:
		for _, x := range ts {
			out[fmt.Sprint(get(x, "Key"))] = get(x, "Value")
		}
	case map[string]any:
		for k, v := range ts {
			out[k] = v
		}
	}
	return out
}

// templateChecks are the properties of the expanded template that moto
// cannot check and a review before a launch would (issue 12). Each reports
// what is wrong with errorf.
var templateChecks = []struct {
	name  string
	check func(c cfnTemplate, errorf func(string, ...any))
}{
	{"every alarm notifies AlarmTopic and says how it treats missing data", func(c cfnTemplate, errorf func(string, ...any)) {
		got := c.ofType("AWS::CloudWatch::Alarm")
		if want := slices.Sorted(slices.Values(alarms)); !slices.Equal(got, want) {
			errorf("alarms %v, want %v (a new alarm needs a runbook entry and a place in alarms)", got, want)
		}
		for _, id := range got {
			p := c.Resources[id].Properties
			if !slices.ContainsFunc(list(p["AlarmActions"]), func(a any) bool { return same(a, ref("AlarmTopic")) }) {
				errorf("%s: AlarmActions %v, want AlarmTopic", id, p["AlarmActions"])
			}
			if p["TreatMissingData"] == nil {
				errorf("%s: TreatMissingData not chosen", id)
			}
		}
	}},
	{"every alarm has a runbook entry in infra/README.md", func(c cfnTemplate, errorf func(string, ...any)) {
		b, err := os.ReadFile("../../../infra/README.md")
		if err != nil {
			errorf("%v", err)
			return
		}
		_, runbook, ok := strings.Cut(string(b), "\n## Runbook")
		if !ok {
			errorf("infra/README.md has no \"## Runbook\" section")
			return
		}
		for _, id := range c.ofType("AWS::CloudWatch::Alarm") {
			if !strings.Contains(runbook, "### "+id) {
				errorf("the runbook has no \"### %s\" entry", id)
			}
		}
	}},
	{"functions log JSON to a log group of their own with a retention", func(c cfnTemplate, errorf func(string, ...any)) {
		for _, f := range functions {
			lc := get(c.Resources[f.id].Properties, "LoggingConfig")
			if get(lc, "LogFormat") != "JSON" || !same(get(lc, "ApplicationLogLevel"), ref("LogLevel")) || get(lc, "SystemLogLevel") == nil {
				errorf("%s: LoggingConfig %v, want JSON with the application and system log levels", f.id, lc)
			}
			if !same(get(lc, "LogGroup"), ref(f.logGroup)) {
				errorf("%s logs to %v, want its log group %s", f.id, get(lc, "LogGroup"), f.logGroup)
			}
			g := c.Resources[f.logGroup]
			if g.Type != "AWS::Logs::LogGroup" || !same(g.Properties["RetentionInDays"], ref("LogRetentionDays")) {
				errorf("%s: %s %v, want a log group kept LogRetentionDays", f.id, f.logGroup, g)
			}
			if !same(g.Properties["LogGroupName"], map[string]any{"Fn::Sub": "/aws/lambda/${AWS::StackName}-" + f.name}) ||
				!same(c.Resources[f.id].Properties["FunctionName"], map[string]any{"Fn::Sub": "${AWS::StackName}-" + f.name}) {
				errorf("%s: function %v, log group %v: want <stack>-%s in /aws/lambda/<stack>-%s", f.id,
					c.Resources[f.id].Properties["FunctionName"], g.Properties["LogGroupName"], f.name, f.name)
			}
		}
		if d := c.Parameters["LogRetentionDays"]["Default"]; fmt.Sprint(d) != "30" {
			errorf("LogRetentionDays defaults to %v, want 30", d)
		}
	}},
	{"the topics' key lets CloudWatch publish alarms", func(c cfnTemplate, errorf func(string, ...any)) {
		for _, tp := range []string{"AlarmTopic", "EscalationTopic"} {
			if k := c.Resources[tp].Properties["KmsMasterKeyId"]; !same(k, ref("TopicKey")) {
				errorf("%s is encrypted with %v, want the customer-managed TopicKey", tp, k)
			}
		}
		var ok bool
		for _, st := range list(get(c.Resources["TopicKey"].Properties, "KeyPolicy", "Statement")) {
			acts := fmt.Sprint(get(st, "Action"))
			if get(st, "Effect") == "Allow" && get(st, "Principal", "Service") == "cloudwatch.amazonaws.com" && get(st, "Condition") == nil &&
				strings.Contains(acts, "kms:GenerateDataKey*") && strings.Contains(acts, "kms:Decrypt") {
				ok = true
			}
		}
		if !ok {
			errorf("TopicKey's policy does not let cloudwatch.amazonaws.com use kms:GenerateDataKey* and kms:Decrypt: %v",
				get(c.Resources["TopicKey"].Properties, "KeyPolicy"))
		}
		if get(c.Resources["TopicKey"].Properties, "EnableKeyRotation") != true {
			errorf("TopicKey does not rotate")
		}
	}},
	{"AlarmEmail subscribes to both topics, only when set", func(c cfnTemplate, errorf func(string, ...any)) {
		if d, ok := c.Parameters["AlarmEmail"]["Default"]; !ok || d != "" {
			errorf("AlarmEmail defaults to %v, want empty", d)
		}
		if want := map[string]any{"Fn::Not": []any{map[string]any{"Fn::Equals": []any{ref("AlarmEmail"), ""}}}}; !same(c.Conditions["HasAlarmEmail"], want) {
			errorf("condition HasAlarmEmail %v, want %v", c.Conditions["HasAlarmEmail"], want)
		}
		subscribed := map[string]bool{}
		for _, id := range c.ofType("AWS::SNS::Subscription") {
			r := c.Resources[id]
			if r.Condition != "HasAlarmEmail" || r.Properties["Protocol"] != "email" || !same(r.Properties["Endpoint"], ref("AlarmEmail")) {
				errorf("subscription %s: condition %q, %v", id, r.Condition, r.Properties)
				continue
			}
			subscribed[fmt.Sprint(get(r.Properties, "TopicArn", "Ref"))] = true
		}
		for _, tp := range []string{"AlarmTopic", "EscalationTopic"} {
			if !subscribed[tp] {
				errorf("no AlarmEmail subscription to %s", tp)
			}
		}
	}},
	{"both tables are protected; the state table is retained; gsi1 is keys only", func(c cfnTemplate, errorf func(string, ...any)) {
		for _, id := range []string{"StateTable", "ProductsTable"} {
			r := c.Resources[id]
			if r.Properties["DeletionProtectionEnabled"] != true {
				errorf("%s: DeletionProtectionEnabled %v", id, r.Properties["DeletionProtectionEnabled"])
			}
			if r.DeletionPolicy != "Retain" || r.UpdateReplacePolicy != "Retain" {
				errorf("%s: DeletionPolicy %q, UpdateReplacePolicy %q, want Retain", id, r.DeletionPolicy, r.UpdateReplacePolicy)
			}
		}
		st := c.Resources["StateTable"].Properties
		for _, g := range list(st["GlobalSecondaryIndexes"]) {
			if get(g, "IndexName") == "gsi1" && get(g, "Projection", "ProjectionType") != "KEYS_ONLY" {
				errorf("gsi1 projects %v, want KEYS_ONLY", get(g, "Projection"))
			}
		}
		if get(st, "TimeToLiveSpecification", "AttributeName") != "expires_at" || get(st, "TimeToLiveSpecification", "Enabled") != true {
			errorf("StateTable TTL %v, want expires_at", st["TimeToLiveSpecification"])
		}
	}},
	{"lifecycle rules expire incoming/, reports/, staging/, noncurrent versions and incomplete uploads", func(c cfnTemplate, errorf func(string, ...any)) {
		rules := list(get(c.Resources["ImportBucket"].Properties, "LifecycleConfiguration", "Rules"))
		has := func(what string, ok func(r any) bool) {
			if !slices.ContainsFunc(rules, func(r any) bool { return get(r, "Status") == "Enabled" && ok(r) }) {
				errorf("no enabled lifecycle rule %s: %v", what, rules)
			}
		}
		prefix := func(r any) any { return get(r, "Prefix") }
		has("expiring incoming/ after IncomingRetentionDays", func(r any) bool {
			return prefix(r) == s3store.IncomingPrefix && same(get(r, "ExpirationInDays"), ref("IncomingRetentionDays"))
		})
		has("expiring reports/ after ReportRetentionDays", func(r any) bool {
			return prefix(r) == s3store.ReportsPrefix && same(get(r, "ExpirationInDays"), ref("ReportRetentionDays"))
		})
		has("expiring staging/", func(r any) bool { return prefix(r) == s3store.StagingPrefix && get(r, "ExpirationInDays") != nil })
		has("expiring noncurrent versions of every prefix", func(r any) bool {
			return prefix(r) == nil && get(r, "Filter") == nil && same(get(r, "NoncurrentVersionExpiration", "NoncurrentDays"), ref("NoncurrentVersionDays"))
		})
		has("aborting incomplete multipart uploads of every prefix", func(r any) bool {
			return prefix(r) == nil && get(r, "Filter") == nil && get(r, "AbortIncompleteMultipartUpload", "DaysAfterInitiation") != nil
		})
	}},
	{"a write outside the prefixes the code uses is denied", func(c cfnTemplate, errorf func(string, ...any)) {
		var want []string
		for _, p := range []string{s3store.IncomingPrefix, s3store.ReportsPrefix, s3store.StagingPrefix, s3store.ProfilesPrefix} {
			want = append(want, "${ImportBucket.Arn}/"+p+"*")
		}
		var ok bool
		for _, st := range list(get(c.Resources["ImportBucketPolicy"].Properties, "PolicyDocument", "Statement")) {
			if get(st, "Effect") != "Deny" || get(st, "Principal") != "*" || get(st, "Action") != "s3:PutObject" {
				continue
			}
			var got []string
			for _, r := range list(get(st, "NotResource")) {
				got = append(got, fmt.Sprint(get(r, "Fn::Sub")))
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				errorf("the bucket policy denies s3:PutObject outside %v, want outside %v", got, want)
			}
			ok = true
		}
		if !ok {
			errorf("no bucket policy statement denies s3:PutObject outside the known prefixes")
		}
	}},
	{"the splitter's failed events go to an encrypted, alarmed queue", func(c cfnTemplate, errorf func(string, ...any)) {
		var cfg map[string]any
		for _, id := range c.ofType("AWS::Lambda::EventInvokeConfig") {
			if p := c.Resources[id].Properties; same(p["FunctionName"], ref("SplitterFunction")) {
				cfg = p
			}
		}
		switch {
		case cfg == nil:
			errorf("no EventInvokeConfig for SplitterFunction")
		case cfg["Qualifier"] != "live" || cfg["MaximumRetryAttempts"] == nil || cfg["MaximumEventAgeInSeconds"] == nil:
			errorf("SplitterFunction's EventInvokeConfig %v: want the live alias, MaximumRetryAttempts and MaximumEventAgeInSeconds", cfg)
		case !same(get(cfg, "DestinationConfig", "OnFailure", "Destination"), getAtt("SplitterFailedQueue", "Arn")):
			errorf("SplitterFunction's OnFailure destination %v, want SplitterFailedQueue", get(cfg, "DestinationConfig", "OnFailure"))
		}
		q := c.Resources["SplitterFailedQueue"].Properties
		if q["SqsManagedSseEnabled"] != true && q["KmsMasterKeyId"] == nil || !same(q["MessageRetentionPeriod"], 1209600) {
			errorf("SplitterFailedQueue %v: want encrypted, kept 14 days", q)
		}
		if !same(get(c.Resources["SplitterFailedAlarm"].Properties, "Metrics", "1", "MetricStat", "Metric", "Dimensions", "0", "Value"),
			getAtt("SplitterFailedQueue", "QueueName")) {
			errorf("SplitterFailedAlarm does not watch SplitterFailedQueue: %v", c.Resources["SplitterFailedAlarm"].Properties["Metrics"])
		}
		if !same(c.Outputs["SplitterFailedQueueUrl"]["Value"], ref("SplitterFailedQueue")) {
			errorf("no output SplitterFailedQueueUrl (importctl redrive --uploads reads it)")
		}
		if !same(get(c.Resources["SplitterFunction"].Properties, "Environment", "Variables", "MAX_UPLOAD_BYTES"), ref("MaxUploadBytes")) {
			errorf("the splitter's MAX_UPLOAD_BYTES is not the MaxUploadBytes parameter")
		}
	}},
	{"S3 invokes the splitter's live alias, for this bucket and account only", func(c cfnTemplate, errorf func(string, ...any)) {
		for _, id := range c.ofType("AWS::Lambda::Permission") {
			p := c.Resources[id].Properties
			if p["Principal"] == "s3.amazonaws.com" &&
				(p["SourceArn"] == nil || !same(p["SourceAccount"], ref("AWS::AccountId")) || !same(p["FunctionName"], ref("SplitterFunctionAliaslive"))) {
				errorf("permission %s: %v, want the live alias, SourceArn and SourceAccount", id, p)
			}
		}
		if got := get(c.Resources["SplitterS3Permission"].Properties, "SourceArn", "Fn::Sub"); got != "arn:${AWS::Partition}:s3:::${AWS::StackName}-${AWS::AccountId}-${AWS::Region}" {
			errorf("SplitterS3Permission's SourceArn %v, want the import bucket", got)
		}
		n := get(c.Resources["ImportBucket"].Properties, "NotificationConfiguration", "LambdaConfigurations", "0")
		if !same(get(n, "Function"), ref("SplitterFunctionAliaslive")) || get(n, "Filter", "S3Key", "Rules", "0", "Value") != s3store.IncomingPrefix {
			errorf("the bucket notifies %v, want the splitter's live alias for incoming/", n)
		}
	}},
	{"one parameter caps the workers", func(c cfnTemplate, errorf func(string, ...any)) {
		for _, old := range []string{"MaxConcurrency", "ReservedConcurrency"} {
			if _, ok := c.Parameters[old]; ok {
				errorf("parameter %s is back: WorkerConcurrency sets both caps", old)
			}
		}
		if r := c.Resources["ShardWorkerFunction"].Properties["ReservedConcurrentExecutions"]; !same(r, ref("WorkerConcurrency")) {
			errorf("the worker's ReservedConcurrentExecutions is %v, want WorkerConcurrency", r)
		}
		var n int
		for _, id := range c.ofType("AWS::Lambda::EventSourceMapping") {
			p := c.Resources[id].Properties
			if !same(p["EventSourceArn"], getAtt("ShardQueue", "Arn")) {
				continue
			}
			n++
			if !same(get(p, "ScalingConfig", "MaximumConcurrency"), ref("WorkerConcurrency")) {
				errorf("%s: MaximumConcurrency %v, want WorkerConcurrency", id, get(p, "ScalingConfig"))
			}
		}
		if n != 1 {
			errorf("%d event source mappings on the shard queue, want 1", n)
		}
		env := get(c.Resources["ShardWorkerFunction"].Properties, "Environment", "Variables")
		if !same(get(env, "WRITE_RATE"), ref("WriteRate")) || !same(get(env, "EVENT_BUS_NAME"), ref("EventBusName")) {
			errorf("the worker's WRITE_RATE and EVENT_BUS_NAME are %v and %v, want the WriteRate and EventBusName parameters",
				get(env, "WRITE_RATE"), get(env, "EVENT_BUS_NAME"))
		}
	}},
	{"each function deploys by canary and rolls back on its error alarm", func(c cfnTemplate, errorf func(string, ...any)) {
		for _, f := range functions {
			alias := f.id + "Aliaslive"
			a := c.Resources[alias]
			if a.Type != "AWS::Lambda::Alias" || !same(a.Properties["FunctionName"], ref(f.id)) {
				errorf("%s: no live alias", f.id)
				continue
			}
			group := fmt.Sprint(get(a.UpdatePolicy, "CodeDeployLambdaAliasUpdate", "DeploymentGroupName", "Ref"))
			g := c.Resources[group].Properties
			if !strings.Contains(fmt.Sprint(g["DeploymentConfigName"]), "Canary10Percent5Minutes") {
				errorf("%s deploys with %v, want Canary10Percent5Minutes", f.id, g["DeploymentConfigName"])
			}
			if get(g, "AlarmConfiguration", "Enabled") != true ||
				!slices.ContainsFunc(list(get(g, "AlarmConfiguration", "Alarms")), func(x any) bool { return same(get(x, "Name"), ref(f.errorsAlarm)) }) ||
				!slices.Contains(list(get(g, "AutoRollbackConfiguration", "Events")), any("DEPLOYMENT_STOP_ON_ALARM")) {
				errorf("%s's deployment group %v: want a rollback on %s", f.id, g, f.errorsAlarm)
			}
			if !same(g["ServiceRoleArn"], getAtt("CodeDeployRole", "Arn")) {
				errorf("%s deploys with the role %v, want CodeDeployRole (no managed policy)", f.id, g["ServiceRoleArn"])
			}
			e := c.Resources[f.errorsAlarm].Properties
			if e["Namespace"] != "AWS/Lambda" || e["MetricName"] != "Errors" ||
				!strings.HasSuffix(fmt.Sprint(get(e, "Dimensions", "0", "Value", "Fn::Sub")), "-"+f.name) {
				errorf("%s does not count %s's errors: %v", f.errorsAlarm, f.id, e)
			}
		}
		for _, id := range c.ofType("AWS::Lambda::EventSourceMapping") {
			if fn := fmt.Sprint(get(c.Resources[id].Properties, "FunctionName", "Ref")); !strings.HasSuffix(fn, "Aliaslive") {
				errorf("%s invokes %s, not a live alias", id, fn)
			}
		}
	}},
	{"every resource that takes tags has Application and CostCenter", func(c cfnTemplate, errorf func(string, ...any)) {
		for _, typ := range taggable {
			ids := c.ofType(typ)
			if len(ids) == 0 {
				errorf("no resource of type %s", typ)
			}
			for _, id := range ids {
				tg := tags(c.Resources[id])
				if tg["Application"] != "catalog-import" || !same(tg["CostCenter"], ref("CostCenter")) {
					errorf("%s (%s) has tags %v, want Application and CostCenter", id, typ, tg)
				}
			}
		}
	}},
}

// TestTemplate checks templateChecks on template.yaml as SAM expands it.
func TestTemplate(t *testing.T) {
	c := expand(t).Template
	for _, tc := range templateChecks {
		t.Run(tc.name, func(t *testing.T) { tc.check(c, t.Errorf) })
	}
}

// TestTemplateChecksCanFail: each of templateChecks reports the mistake it
// is about, made in a copy of the expanded template.
func TestTemplateChecksCanFail(t *testing.T) {
	orig := expand(t).Template
	props := func(c *cfnTemplate, id string) map[string]any { return c.Resources[id].Properties }
	mutations := map[string]func(c *cfnTemplate){
		"every alarm notifies AlarmTopic and says how it treats missing data": func(c *cfnTemplate) {
			delete(props(c, "FailureRatioAlarm"), "AlarmActions")
		},
		"every alarm has a runbook entry in infra/README.md": func(c *cfnTemplate) {
			c.Resources["UnexplainedAlarm"] = cfnResource{Type: "AWS::CloudWatch::Alarm", Properties: map[string]any{}}
		},
		"functions log JSON to a log group of their own with a retention": func(c *cfnTemplate) {
			props(c, "ShardWorkerFunction")["LoggingConfig"].(map[string]any)["LogFormat"] = "Text"
		},
		"the topics' key lets CloudWatch publish alarms": func(c *cfnTemplate) {
			props(c, "AlarmTopic")["KmsMasterKeyId"] = "alias/aws/sns"
		},
		"AlarmEmail subscribes to both topics, only when set": func(c *cfnTemplate) {
			r := c.Resources["EscalationEmailSubscription"]
			r.Condition = ""
			c.Resources["EscalationEmailSubscription"] = r
		},
		"both tables are protected; the state table is retained; gsi1 is keys only": func(c *cfnTemplate) {
			r := c.Resources["StateTable"]
			r.DeletionPolicy = "Delete"
			c.Resources["StateTable"] = r
		},
		"lifecycle rules expire incoming/, reports/, staging/, noncurrent versions and incomplete uploads": func(c *cfnTemplate) {
			lc := props(c, "ImportBucket")["LifecycleConfiguration"].(map[string]any)
			lc["Rules"] = slices.DeleteFunc(list(lc["Rules"]), func(r any) bool { return get(r, "Prefix") == "reports/" })
		},
		"a write outside the prefixes the code uses is denied": func(c *cfnTemplate) {
			for _, st := range list(get(props(c, "ImportBucketPolicy"), "PolicyDocument", "Statement")) {
				if m := st.(map[string]any); m["NotResource"] != nil {
					m["NotResource"] = append(list(m["NotResource"]), map[string]any{"Fn::Sub": "${ImportBucket.Arn}/tmp/*"})
				}
			}
		},
		"the splitter's failed events go to an encrypted, alarmed queue": func(c *cfnTemplate) {
			delete(props(c, "SplitterFunctionEventInvokeConfig"), "DestinationConfig")
		},
		"S3 invokes the splitter's live alias, for this bucket and account only": func(c *cfnTemplate) {
			delete(props(c, "SplitterS3Permission"), "SourceArn")
		},
		"one parameter caps the workers": func(c *cfnTemplate) {
			props(c, "ShardWorkerFunction")["ReservedConcurrentExecutions"] = 5
		},
		"each function deploys by canary and rolls back on its error alarm": func(c *cfnTemplate) {
			delete(props(c, "TriageFunctionDeploymentGroup"), "AlarmConfiguration")
		},
		"every resource that takes tags has Application and CostCenter": func(c *cfnTemplate) {
			delete(props(c, "ShardDLQ"), "Tags")
		},
	}
	for _, tc := range templateChecks {
		t.Run(tc.name, func(t *testing.T) {
			mutate, ok := mutations[tc.name]
			if !ok {
				t.Fatalf("no mutation shows that this check can fail: add one")
			}
			data, err := json.Marshal(orig)
			if err != nil {
				t.Fatal(err)
			}
			var c cfnTemplate
			if err := json.Unmarshal(data, &c); err != nil {
				t.Fatal(err)
			}
			mutate(&c)
			var reported []string
			tc.check(c, func(f string, args ...any) { reported = append(reported, fmt.Sprintf(f, args...)) })
			if len(reported) == 0 {
				t.Errorf("the check passes a template with the mistake")
			}
		})
	}
}
