package emf_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/catalog-import/catalog-import/internal/aws/emf"
	"github.com/catalog-import/catalog-import/internal/failure"
	"github.com/catalog-import/catalog-import/internal/queue"
	"github.com/catalog-import/catalog-import/internal/shard"
	"github.com/catalog-import/catalog-import/internal/triage"
)

// TestTemplateUsesEmittedMetrics: every CatalogImport metric that
// template.yaml's alarms and dashboard read is one the Writer emits, under
// a dimension set it emits (a typo would leave a graph empty and an alarm
// silent forever).
func TestTemplateUsesEmittedMetrics(t *testing.T) {
	t.Parallel()
	// What the Writer emits: "Metric|Dim1,Dim2".
	var out bytes.Buffer
	w := emf.New(&out, "fn")
	ctx := context.Background()
	w.Checkpointed(ctx, shard.Checkpointed{Imported: 1, Failed: 1, ByReason: map[failure.Reason]int64{failure.InvalidNumber: 1}, Lag: time.Second})
	w.Retried(ctx, queue.Manifest{}, "write", failure.Throttled)
	w.BreakerChanged("closed", "open")
	w.Processed(ctx, queue.Manifest{}, shard.Result{Status: shard.Done}, nil, time.Second)
	w.TriageDecided(ctx, "b", 0, triage.Decision{Action: triage.Retry})
	emitted := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var v struct {
			AWS struct {
				CloudWatchMetrics []struct {
					Dimensions [][]string
					Metrics    []struct{ Name string }
				}
			} `json:"_aws"`
		}
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatal(err)
		}
		for _, d := range v.AWS.CloudWatchMetrics {
			for _, m := range d.Metrics {
				for _, set := range d.Dimensions {
					emitted[m.Name+"|"+strings.Join(slices.Sorted(slices.Values(set)), ",")] = true
				}
			}
		}
	}

	b, err := os.ReadFile("../../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var tpl struct {
		Resources map[string]struct {
			Type       string    `yaml:"Type"`
			Properties yaml.Node `yaml:"Properties"`
		} `yaml:"Resources"`
	}
	if err := yaml.Unmarshal(b, &tpl); err != nil {
		t.Fatal(err)
	}
	var used []string
	for name, r := range tpl.Resources {
		switch r.Type {
		case "AWS::CloudWatch::Alarm":
			var a struct {
				Namespace  string `yaml:"Namespace"`
				MetricName string `yaml:"MetricName"`
				Dimensions []struct {
					Name string `yaml:"Name"`
				} `yaml:"Dimensions"`
				Metrics []struct {
					MetricStat struct {
						Metric struct {
							Namespace  string `yaml:"Namespace"`
							MetricName string `yaml:"MetricName"`
							Dimensions []struct {
								Name string `yaml:"Name"`
							} `yaml:"Dimensions"`
						} `yaml:"Metric"`
					} `yaml:"MetricStat"`
				} `yaml:"Metrics"`
			}
			if err := r.Properties.Decode(&a); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			use := func(ns, metric string, dims []string) {
				if ns == emf.Namespace {
					slices.Sort(dims)
					used = append(used, metric+"|"+strings.Join(dims, ","))
				}
			}
			var dims []string
			for _, d := range a.Dimensions {
				dims = append(dims, d.Name)
			}
			use(a.Namespace, a.MetricName, dims)
			for _, m := range a.Metrics {
				dims = nil
				for _, d := range m.MetricStat.Metric.Dimensions {
					dims = append(dims, d.Name)
				}
				use(m.MetricStat.Metric.Namespace, m.MetricStat.Metric.MetricName, dims)
			}
		case "AWS::CloudWatch::Dashboard":
			var d struct {
				Body string `yaml:"DashboardBody"`
			}
			if err := r.Properties.Decode(&d); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			// ["CatalogImport", "Metric", "Dim", "value", ...]
			for _, m := range regexp.MustCompile(`\["CatalogImport", "(\w+)", "(\w+)", "[^"]*"`).FindAllStringSubmatch(d.Body, -1) {
				used = append(used, m[1]+"|"+m[2])
			}
			// SEARCH('{CatalogImport,Dim,Dim} MetricName=\"Metric\" ...
			for _, m := range regexp.MustCompile(`\{CatalogImport,([\w,]+)\} MetricName=\\"(\w+)\\"`).FindAllStringSubmatch(d.Body, -1) {
				dims := strings.Split(m[1], ",")
				slices.Sort(dims)
				used = append(used, m[2]+"|"+strings.Join(dims, ","))
			}
		}
	}
	if len(used) < 10 {
		t.Fatalf("found only %d uses of CatalogImport metrics in template.yaml: %v", len(used), used)
	}
	for _, u := range used {
		if !emitted[u] {
			t.Errorf("template.yaml reads metric|dimensions %s, which the Writer never emits (it emits %v)", u, emitted)
		}
	}
}
