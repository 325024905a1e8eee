package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestStatusJSONKeys pins `importctl status --json` (docs/status-json.md):
// the key paths of its JSON and their types, read from the Go types it
// prints, are testdata/golden/status-json-keys.txt (go test -update
// rewrites it: a change there is a change of a stable format, see the
// doc); every key an embedded `status --json BATCH_ID` and `status --json`
// really print is among them; and the doc names every one.
func TestStatusJSONKeys(t *testing.T) {
	t.Parallel()
	keys := map[string]string{}
	jsonKeys(reflect.TypeFor[StatusJSON](), "", keys)
	var lines []string
	for k, typ := range keys {
		lines = append(lines, k+" "+typ)
	}
	slices.Sort(lines)
	got := strings.Join(lines, "\n") + "\n"
	path := filepath.Join("testdata", "golden", "status-json-keys.txt")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if got != string(want) {
		t.Errorf("status --json keys changed: a stable format (docs/status-json.md). If the change is meant (a new key), "+
			"run go test -update and document it; a rename or removal breaks scripts.\n got:\n%s\nwant:\n%s", got, want)
	}

	// What the command really prints (a batch with failures, a check phase
	// and an error report) uses only those keys.
	dir := t.TempDir()
	prof := filepath.Join(dir, "checked.yaml")
	if err := os.WriteFile(prof, []byte("name: checked\nmax_error_ratio: 0.9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "s.db")
	_, sum := runImport(t, db, "testdata/input/gbk-excel.csv", "--profile", prof, "--shard-rows", "3")
	if sum.RowsFailed == 0 {
		t.Fatalf("the sample should fail some rows: %+v", sum)
	}
	printed := map[string]bool{}
	for _, args := range [][]string{{"status", "--json", "--db", db, sum.BatchID}, {"status", "--json", "--db", db}} {
		code, stdout, stderr := importctl(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d %s", args, code, stderr)
		}
		var v any
		if err := json.Unmarshal([]byte(stdout), &v); err != nil {
			t.Fatal(err)
		}
		if list, ok := v.([]any); ok {
			for _, b := range list {
				walkJSON(b, "", keys, printed)
			}
		} else {
			walkJSON(v, "", keys, printed)
		}
	}
	for k := range printed {
		if _, ok := keys[k]; !ok {
			t.Errorf("status --json printed %s, which the types do not declare", k)
		}
	}
	for _, k := range []string{"batch_id", "status", "counts.rows_total", "failures_by_reason.*", "report", "check.shards",
		"shard_list[].checkpoint.counts.rows_failed", "shard_list[].check.failed", "triage_log"} {
		if !printed[k] {
			t.Errorf("status --json did not print %s", k)
		}
	}

	doc, err := os.ReadFile("../../docs/status-json.md")
	if err != nil {
		t.Fatal(err)
	}
	for k := range keys {
		if !strings.Contains(string(doc), "`"+k+"`") {
			t.Errorf("docs/status-json.md does not document `%s`", k)
		}
	}
}

var timeType = reflect.TypeFor[time.Time]()

// jsonKeys adds to keys the JSON key paths of t under prefix and their
// types: struct fields by their json name (embedded structs flattened),
// "[]" for a slice's elements, "*" for a map's.
func jsonKeys(t reflect.Type, prefix string, keys map[string]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			jsonKeys(f.Type, prefix, keys)
			continue
		}
		if name == "" {
			name = f.Name
		}
		typeKeys(f.Type, prefix+name, strings.Contains(opts, "omit"), keys)
	}
}

func typeKeys(t reflect.Type, path string, omitted bool, keys map[string]string) {
	opt := ""
	if omitted {
		opt = ", omitted when empty"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
		opt = ", omitted when empty"
	}
	switch {
	case t == timeType:
		keys[path] = "string (RFC 3339 time)" + opt
	case t.Kind() == reflect.Struct:
		keys[path] = "object" + opt
		jsonKeys(t, path+".", keys)
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
		keys[path] = "string (base64)" + opt
	case t.Kind() == reflect.Slice:
		keys[path] = "array" + opt
		typeKeys(t.Elem(), path+"[]", false, keys)
	case t.Kind() == reflect.Map:
		keys[path] = "object" + opt
		typeKeys(t.Elem(), path+".*", false, keys)
	case t.Kind() == reflect.String:
		keys[path] = "string" + opt
	case t.Kind() == reflect.Bool:
		keys[path] = "boolean" + opt
	default:
		keys[path] = "number" + opt
	}
}

// walkJSON records the key paths of v, named as jsonKeys names them.
func walkJSON(v any, path string, keys map[string]string, seen map[string]bool) {
	if path != "" {
		seen[path] = true
	}
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			p := path + "." + k
			if path == "" {
				p = k
			}
			if _, isMap := keys[path+".*"]; isMap && path != "" {
				p = path + ".*"
			}
			walkJSON(e, p, keys, seen)
		}
	case []any:
		for _, e := range v {
			walkJSON(e, path+"[]", keys, seen)
		}
	}
}
