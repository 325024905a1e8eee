package stack_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"go.yaml.in/yaml/v3"

	"github.com/catalog-import/catalog-import/internal/aws/awstest"
	"github.com/catalog-import/catalog-import/internal/aws/dynamocatalog"
	"github.com/catalog-import/catalog-import/internal/aws/dynamostate"
	"github.com/catalog-import/catalog-import/internal/aws/stack"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// template is template.yaml with CloudFormation's short-form tags dropped
// (!Ref X reads as "X", !FindInMap [a, b, c] as [a b c]).
type template struct {
	Parameters map[string]struct {
		Default any `yaml:"Default"`
	} `yaml:"Parameters"`
	Mappings  map[string]map[string]map[string]any `yaml:"Mappings"`
	Resources map[string]struct {
		Type       string         `yaml:"Type"`
		Properties map[string]any `yaml:"Properties"`
	} `yaml:"Resources"`
}

func readTemplate(t *testing.T) template {
	t.Helper()
	b, err := os.ReadFile("../../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var tpl template
	if err := yaml.Unmarshal(b, &tpl); err != nil {
		t.Fatal(err)
	}
	return tpl
}

func num(t *testing.T, v any) int64 {
	t.Helper()
	n, err := strconv.ParseInt(fmt.Sprint(v), 10, 64)
	if err != nil {
		t.Fatalf("%v is not a number", v)
	}
	return n
}

// TestDefaultsAreTheTemplates: stack.Defaults (what importctl dev uses) is
// template.yaml's parameter defaults.
func TestDefaultsAreTheTemplates(t *testing.T) {
	tpl := readTemplate(t)
	d := stack.Defaults()
	want := map[string]int64{
		"WorkerTimeout": int64(d.WorkerTimeout / time.Second), "MaxReceiveCount": int64(d.MaxReceiveCount),
		"BatchSize": int64(d.BatchSize), "WorkerConcurrency": int64(d.MaxConcurrency), "PoolSize": int64(d.PoolSize),
		"CheckpointEvery": int64(d.CheckpointEvery), "ShardRows": d.ShardRows, "ShardBytes": d.ShardBytes,
		"FailureTTLDays": int64(d.FailureTTLDays), "WriteRate": int64(d.WriteRate), "MaxUploadBytes": d.MaxUploadBytes,
	}
	for name, v := range want {
		p, ok := tpl.Parameters[name]
		if !ok {
			t.Errorf("template.yaml has no parameter %s", name)
			continue
		}
		if got := num(t, p.Default); got != v {
			t.Errorf("parameter %s defaults to %d in template.yaml, %d in stack.Defaults", name, got, v)
		}
	}
	for timeout, m := range tpl.Mappings["WorkerVisibility"] {
		s := stack.Settings{WorkerTimeout: time.Duration(num(t, timeout)) * time.Second}
		if got := num(t, m["VisibilityTimeout"]); time.Duration(got)*time.Second != s.VisibilityTimeout() {
			t.Errorf("WorkerTimeout %s: visibility %d in template.yaml, %v in stack", timeout, got, s.VisibilityTimeout())
		}
	}
}

// TestVisibilityOverride: Settings.Visibility (importctl dev
// --visibility-timeout) replaces the template's 6x the worker timeout.
func TestVisibilityOverride(t *testing.T) {
	s := stack.Settings{WorkerTimeout: 3 * time.Second}
	if got := s.VisibilityTimeout(); got != 18*time.Second {
		t.Errorf("visibility %v, want 6 x 3s", got)
	}
	s.Visibility = 5 * time.Second
	if got := s.VisibilityTimeout(); got != 5*time.Second {
		t.Errorf("visibility %v with Visibility 5s", got)
	}
}

// keys summarises a table definition for comparison.
type keys struct {
	Attrs []string // name:type
	Key   []string // name:keytype
	GSIs  []string // name(key...)projection[include...]
}

func fromInput(in *dynamodb.CreateTableInput) keys {
	var k keys
	for _, a := range in.AttributeDefinitions {
		k.Attrs = append(k.Attrs, aws.ToString(a.AttributeName)+":"+string(a.AttributeType))
	}
	for _, e := range in.KeySchema {
		k.Key = append(k.Key, aws.ToString(e.AttributeName)+":"+string(e.KeyType))
	}
	for _, g := range in.GlobalSecondaryIndexes {
		s := aws.ToString(g.IndexName) + "("
		for _, e := range g.KeySchema {
			s += aws.ToString(e.AttributeName) + ":" + string(e.KeyType) + " "
		}
		s += ")" + string(g.Projection.ProjectionType) + fmt.Sprint(g.Projection.NonKeyAttributes)
		k.GSIs = append(k.GSIs, s)
	}
	slices.Sort(k.Attrs)
	slices.Sort(k.GSIs)
	return k
}

func fromDescription(d *ddbtypes.TableDescription) keys {
	in := &dynamodb.CreateTableInput{AttributeDefinitions: d.AttributeDefinitions, KeySchema: d.KeySchema}
	for _, g := range d.GlobalSecondaryIndexes {
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, ddbtypes.GlobalSecondaryIndex{IndexName: g.IndexName, KeySchema: g.KeySchema, Projection: g.Projection})
	}
	return fromInput(in)
}

func fromTemplate(t *testing.T, props map[string]any) keys {
	t.Helper()
	b, _ := json.Marshal(props)
	var in dynamodb.CreateTableInput
	var raw struct {
		AttributeDefinitions   []struct{ AttributeName, AttributeType string }
		KeySchema              []struct{ AttributeName, KeyType string }
		GlobalSecondaryIndexes []struct {
			IndexName  string
			KeySchema  []struct{ AttributeName, KeyType string }
			Projection struct {
				ProjectionType   string
				NonKeyAttributes []string
			}
		}
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	for _, a := range raw.AttributeDefinitions {
		in.AttributeDefinitions = append(in.AttributeDefinitions, ddbtypes.AttributeDefinition{AttributeName: aws.String(a.AttributeName), AttributeType: ddbtypes.ScalarAttributeType(a.AttributeType)})
	}
	ks := func(es []struct{ AttributeName, KeyType string }) []ddbtypes.KeySchemaElement {
		var out []ddbtypes.KeySchemaElement
		for _, e := range es {
			out = append(out, ddbtypes.KeySchemaElement{AttributeName: aws.String(e.AttributeName), KeyType: ddbtypes.KeyType(e.KeyType)})
		}
		return out
	}
	in.KeySchema = ks(raw.KeySchema)
	for _, g := range raw.GlobalSecondaryIndexes {
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, ddbtypes.GlobalSecondaryIndex{IndexName: aws.String(g.IndexName), KeySchema: ks(g.KeySchema),
			Projection: &ddbtypes.Projection{ProjectionType: ddbtypes.ProjectionType(g.Projection.ProjectionType), NonKeyAttributes: g.Projection.NonKeyAttributes}})
	}
	return fromInput(&in)
}

// TestDevResourcesAgreeWithTemplate: what importctl dev provisions on moto
// is what template.yaml declares: table keys, indexes and TTL, queue
// visibility timeouts, retention and redrive, a versioned bucket notifying
// incoming/ uploads.
func TestDevResourcesAgreeWithTemplate(t *testing.T) {
	tpl := readTemplate(t)
	ctx := context.Background()
	c := awstest.Clients(t)
	s := stack.Defaults()
	res, err := stack.Provision(ctx, c, awstest.Name("tpl"), s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stack.Provision(ctx, c, res.Stack, s); err != nil { // idempotent
		t.Fatalf("second provision: %v", err)
	}
	if found, err := stack.Find(ctx, c, res.Stack); err != nil || found != res {
		t.Errorf("Find: %+v %v, want %+v", found, err, res)
	}

	for _, tc := range []struct {
		resource, table, ttl string
		code                 *dynamodb.CreateTableInput
	}{
		{"StateTable", res.StateTable, "expires_at", dynamostate.TableInput("x")},
		{"ProductsTable", res.ProductsTable, "", dynamocatalog.TableInput("x")},
	} {
		r := tpl.Resources[tc.resource]
		want := fromTemplate(t, r.Properties)
		if got := fromInput(tc.code); !slices.Equal(got.Attrs, want.Attrs) || !slices.Equal(got.Key, want.Key) || !slices.Equal(got.GSIs, want.GSIs) {
			t.Errorf("%s: the code creates %+v, template.yaml declares %+v", tc.resource, got, want)
		}
		d, err := c.DynamoDB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(tc.table)})
		if err != nil {
			t.Fatal(err)
		}
		if got := fromDescription(d.Table); !slices.Equal(got.Key, want.Key) || !slices.Equal(got.GSIs, want.GSIs) {
			t.Errorf("%s on moto: %+v, template.yaml declares %+v", tc.resource, got, want)
		}
		spec, _ := r.Properties["TimeToLiveSpecification"].(map[string]any)
		if fmt.Sprint(spec["AttributeName"]) != tc.ttl && !(tc.ttl == "" && spec == nil) {
			t.Errorf("%s: TTL attribute %v in template.yaml, %q in code", tc.resource, spec["AttributeName"], tc.ttl)
		}
		if tc.ttl != "" {
			ttl, err := c.DynamoDB.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(tc.table)})
			if err != nil || ttl.TimeToLiveDescription.TimeToLiveStatus != ddbtypes.TimeToLiveStatusEnabled || aws.ToString(ttl.TimeToLiveDescription.AttributeName) != tc.ttl {
				t.Errorf("%s on moto: TTL %+v %v", tc.resource, ttl, err)
			}
		}
	}

	attrs := func(url string) map[string]string {
		out, err := c.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll}})
		if err != nil {
			t.Fatal(err)
		}
		return out.Attributes
	}
	sq, dlq := attrs(res.ShardQueueURL), attrs(res.DLQURL)
	visibility := tpl.Mappings["WorkerVisibility"][fmt.Sprint(num(t, tpl.Parameters["WorkerTimeout"].Default))]["VisibilityTimeout"]
	sqT, dlqT := tpl.Resources["ShardQueue"].Properties, tpl.Resources["ShardDLQ"].Properties
	checks := []struct {
		what      string
		got, want any
	}{
		{"shard queue visibility", sq["VisibilityTimeout"], visibility},
		{"shard queue retention", sq["MessageRetentionPeriod"], sqT["MessageRetentionPeriod"]},
		{"DLQ visibility", dlq["VisibilityTimeout"], dlqT["VisibilityTimeout"]},
		{"DLQ retention", dlq["MessageRetentionPeriod"], dlqT["MessageRetentionPeriod"]},
	}
	var redrive struct {
		DeadLetterTargetArn string `json:"deadLetterTargetArn"`
		MaxReceiveCount     any    `json:"maxReceiveCount"`
	}
	json.Unmarshal([]byte(sq["RedrivePolicy"]), &redrive)
	checks = append(checks, struct {
		what      string
		got, want any
	}{"maxReceiveCount", redrive.MaxReceiveCount, tpl.Parameters["MaxReceiveCount"].Default},
		struct {
			what      string
			got, want any
		}{"dead-letter target", redrive.DeadLetterTargetArn, dlq["QueueArn"]})
	for _, ch := range checks {
		if fmt.Sprint(ch.got) != fmt.Sprint(ch.want) {
			t.Errorf("%s: %v on moto, %v in template.yaml", ch.what, ch.got, ch.want)
		}
	}

	v, err := c.S3.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String(res.Bucket)})
	if err != nil || v.Status != "Enabled" {
		t.Errorf("bucket versioning: %+v %v", v, err)
	}
	n, err := c.S3.GetBucketNotificationConfiguration(ctx, &s3.GetBucketNotificationConfigurationInput{Bucket: aws.String(res.Bucket)})
	if err != nil || len(n.QueueConfigurations) != 1 || aws.ToString(n.QueueConfigurations[0].Filter.Key.FilterRules[0].Value) != "incoming/" {
		t.Errorf("bucket notifications: %+v %v", n, err)
	}
}
