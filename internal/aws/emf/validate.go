package emf

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Limits of the EMF specification.
const (
	MaxMetrics    = 100 // metric definitions per directive
	MaxDimensions = 30  // dimension keys per dimension set
)

// units is every unit CloudWatch accepts.
var units = map[string]bool{
	"Seconds": true, "Microseconds": true, "Milliseconds": true, "Bytes": true, "Kilobytes": true,
	"Megabytes": true, "Gigabytes": true, "Terabytes": true, "Bits": true, "Kilobits": true,
	"Megabits": true, "Gigabits": true, "Terabits": true, "Percent": true, "Count": true,
	"Bytes/Second": true, "Kilobytes/Second": true, "Megabytes/Second": true, "Gigabytes/Second": true,
	"Terabytes/Second": true, "Bits/Second": true, "Kilobits/Second": true, "Megabits/Second": true,
	"Gigabits/Second": true, "Terabits/Second": true, "Count/Second": true, "None": true,
}

// Validate checks that line is one EMF object as CloudWatch Logs reads it:
// an "_aws" member with a millisecond Timestamp and at least one directive;
// each directive has a Namespace, dimension sets of at most MaxDimensions
// keys that each name a string member, and 1..MaxMetrics metric definitions
// whose names are numeric members (a number, or an array of at most 100
// numbers) and whose units, when given, are CloudWatch units.
func Validate(line []byte) error {
	var root map[string]json.RawMessage
	if err := json.Unmarshal(line, &root); err != nil {
		return fmt.Errorf("not a JSON object: %w", err)
	}
	var meta struct {
		Timestamp         *json.Number `json:"Timestamp"`
		CloudWatchMetrics []struct {
			Namespace  string     `json:"Namespace"`
			Dimensions [][]string `json:"Dimensions"`
			Metrics    []struct {
				Name              string  `json:"Name"`
				Unit              *string `json:"Unit"`
				StorageResolution *int    `json:"StorageResolution"`
			} `json:"Metrics"`
		} `json:"CloudWatchMetrics"`
	}
	raw, ok := root["_aws"]
	if !ok {
		return errors.New(`no "_aws" member`)
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		return fmt.Errorf(`"_aws": %w`, err)
	}
	if meta.Timestamp == nil {
		return errors.New(`"_aws" has no Timestamp`)
	}
	if ts, err := meta.Timestamp.Int64(); err != nil || ts <= 0 {
		return fmt.Errorf(`"_aws".Timestamp %s: want milliseconds since the epoch`, *meta.Timestamp)
	}
	if len(meta.CloudWatchMetrics) == 0 {
		return errors.New(`"_aws".CloudWatchMetrics is empty`)
	}
	for i, d := range meta.CloudWatchMetrics {
		if d.Namespace == "" || len(d.Namespace) > 255 {
			return fmt.Errorf("directive %d: namespace %q", i, d.Namespace)
		}
		for _, set := range d.Dimensions {
			if len(set) > MaxDimensions {
				return fmt.Errorf("directive %d: %d dimensions in a set, at most %d", i, len(set), MaxDimensions)
			}
			for _, name := range set {
				var s string
				if v, ok := root[name]; !ok || json.Unmarshal(v, &s) != nil {
					return fmt.Errorf("directive %d: dimension %q is not a string member", i, name)
				}
			}
		}
		if len(d.Metrics) == 0 || len(d.Metrics) > MaxMetrics {
			return fmt.Errorf("directive %d: %d metrics, want 1..%d", i, len(d.Metrics), MaxMetrics)
		}
		for _, m := range d.Metrics {
			if m.Name == "" || len(m.Name) > 1024 {
				return fmt.Errorf("directive %d: metric name %q", i, m.Name)
			}
			if m.Unit != nil && !units[*m.Unit] {
				return fmt.Errorf("metric %s: unit %q is not a CloudWatch unit", m.Name, *m.Unit)
			}
			if m.StorageResolution != nil && *m.StorageResolution != 1 && *m.StorageResolution != 60 {
				return fmt.Errorf("metric %s: storage resolution %d, want 1 or 60", m.Name, *m.StorageResolution)
			}
			v, ok := root[m.Name]
			if !ok {
				return fmt.Errorf("metric %s has no member", m.Name)
			}
			var n float64
			var ns []float64
			if json.Unmarshal(v, &n) != nil && (json.Unmarshal(v, &ns) != nil || len(ns) > 100) {
				return fmt.Errorf("metric %s: member %s is not a number or an array of at most 100 numbers", m.Name, v)
			}
		}
	}
	return nil
}
