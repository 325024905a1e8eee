package samtemplate

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// EnvVars is a `sam local invoke --env-vars` file: values for the
// functions' variables, under "Parameters" for every function and under a
// function's logical id for that one (those win).
type EnvVars struct {
	Parameters map[string]string
	Functions  map[string]map[string]string
}

// ParseEnvVars parses an --env-vars file: a JSON object of objects. Values
// are turned into strings as SAM does: true and false as such, numbers as
// written, null, objects and arrays as "".
func ParseEnvVars(data []byte) (EnvVars, error) {
	var raw map[string]map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return EnvVars{}, fmt.Errorf("env vars: want {\"Parameters\": {\"VAR\": \"value\"}, \"FunctionName\": {...}}: %w", err)
	}
	e := EnvVars{Parameters: map[string]string{}, Functions: map[string]map[string]string{}}
	for section, vars := range raw {
		m := make(map[string]string, len(vars))
		for k, v := range vars {
			m[k] = stringify(v)
		}
		if section == "Parameters" {
			e.Parameters = m
		} else {
			e.Functions[section] = m
		}
	}
	return e, nil
}

// For returns the overrides for function: the Parameters, then the
// function's own section over them.
func (e EnvVars) For(function string) map[string]string {
	out := make(map[string]string, len(e.Parameters)+len(e.Functions[function]))
	for k, v := range e.Parameters {
		out[k] = v
	}
	for k, v := range e.Functions[function] {
		out[k] = v
	}
	return out
}

func stringify(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return ""
	}
	switch v[0] {
	case '"':
		var s string
		if json.Unmarshal(v, &s) == nil {
			return s
		}
		return ""
	case '{', '[', 'n': // object, array, null
		return ""
	}
	return string(v) // a number as written, true, false
}
