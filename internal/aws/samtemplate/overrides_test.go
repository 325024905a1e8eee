package samtemplate_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestParameterOverrides: --parameter-overrides as sam reads it, checked
// against the project's template.yaml as CloudFormation would check it.
func TestParameterOverrides(t *testing.T) {
	t.Parallel()
	tpl := parse(t, "../../../template.yaml")
	for _, tc := range []struct {
		name   string
		values []string
		want   map[string]string
		err    string
	}{
		{"none", nil, map[string]string{}, ""},
		{"name=value pairs", []string{"WorkerMemory=2048 PoolSize=32"}, map[string]string{"WorkerMemory": "2048", "PoolSize": "32"}, ""},
		{"ParameterKey form", []string{"ParameterKey=LogLevel,ParameterValue=DEBUG ParameterKey=PoolSize,ParameterValue=4"}, map[string]string{"LogLevel": "DEBUG", "PoolSize": "4"}, ""},
		{"quoted with spaces and escapes", []string{`AlarmEmail="ops team <a@b.c>" CostCenter="say \"hi\""`}, map[string]string{"AlarmEmail": "ops team <a@b.c>", "CostCenter": `say "hi"`}, ""},
		{"empty value", []string{"AlarmEmail="}, map[string]string{"AlarmEmail": ""}, ""},
		{"repeated flag, the later wins", []string{"PoolSize=4", "PoolSize=8  WorkerTimeout=60"}, map[string]string{"PoolSize": "8", "WorkerTimeout": "60"}, ""},
		{"unknown parameter", []string{"PoolSise=4"}, nil, "the template has no parameter PoolSise (it has AlarmEmail, BatchSize,"},
		{"not a number", []string{"PoolSize=many"}, nil, `parameter PoolSize="many": want a number (Type: Number)`},
		{"below MinValue", []string{"PoolSize=0"}, nil, `parameter PoolSize="0": want at least 1 (MinValue)`},
		{"above MaxValue", []string{"PoolSize=257"}, nil, `parameter PoolSize="257": want at most 256 (MaxValue)`},
		{"not allowed", []string{"WorkerTimeout=100"}, nil, `parameter WorkerTimeout="100": want one of 60, 120,`},
		{"not allowed string", []string{"LogLevel=WARN"}, nil, `parameter LogLevel="WARN": want one of DEBUG, INFO (AllowedValues)`},
		{"under MinLength", []string{"CostCenter="}, nil, `parameter CostCenter="": want at least 1 characters (MinLength)`},
		{"no equals sign", []string{"PoolSize"}, nil, `"PoolSize": want Name=value`},
		{"bad ParameterKey form", []string{"ParameterKey=PoolSize"}, nil, `"ParameterKey=PoolSize": want ParameterKey=Name,ParameterValue=value`},
		{"unclosed quote", []string{`AlarmEmail="a b`}, nil, "AlarmEmail: the quoted value \"a b has no closing quote"},
		{"text after the quote", []string{`AlarmEmail="a"b`}, nil, `AlarmEmail: text "b" right after the closing quote`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tpl.ParameterOverrides(tc.values)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParameterOverrides(%q) = %v, %v; want an error with %q", tc.values, got, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("ParameterOverrides(%q) (-want +got):\n%s", tc.values, d)
			}
		})
	}
}

// TestOverridesResolve: an overridden parameter reaches the function's
// configuration and environment (!Ref of the parameter), the others keep
// their defaults.
func TestOverridesResolve(t *testing.T) {
	t.Parallel()
	tpl := parse(t, "../../../template.yaml")
	params, err := tpl.ParameterOverrides([]string{"WorkerMemory=2048 PoolSize=32 WorkerTimeout=60"})
	if err != nil {
		t.Fatal(err)
	}
	r := refs
	r.Parameters = params
	fn, err := tpl.Function("ShardWorkerFunction", r)
	if err != nil {
		t.Fatal(err)
	}
	if fn.MemoryMB != 2048 || fn.Timeout.Seconds() != 60 || fn.Variables["POOL_SIZE"] != "32" || fn.Variables["LEASE_TTL_SECONDS"] != "60" || fn.Variables["CHECKPOINT_EVERY"] != "1000" {
		t.Errorf("worker: %d MB, %s, POOL_SIZE %q, LEASE_TTL_SECONDS %q, CHECKPOINT_EVERY %q; want 2048 MB, 1m0s, 32, 60 and the default 1000",
			fn.MemoryMB, fn.Timeout, fn.Variables["POOL_SIZE"], fn.Variables["LEASE_TTL_SECONDS"], fn.Variables["CHECKPOINT_EVERY"])
	}
}
