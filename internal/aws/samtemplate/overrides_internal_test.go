package samtemplate

import (
	"strings"
	"testing"
)

// FuzzSplitOverrides: any --parameter-overrides value is split without a
// panic, and pairs that split written back in the ParameterKey form, every
// value quoted, split to the same pairs.
func FuzzSplitOverrides(f *testing.F) {
	for _, s := range []string{"A=1 B=2", `ParameterKey=A,ParameterValue="x \"y\"" B=`, `A="a\\b"  B=c`, `A="unclosed`, "=x", "A=\"\"\"", "ParameterKey=,ParameterValue=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		pairs, err := splitOverrides(s)
		if err != nil {
			return
		}
		var b strings.Builder
		for _, p := range pairs {
			if !validName(p[0]) {
				t.Fatalf("%q: name %q", s, p[0])
			}
			b.WriteString("ParameterKey=" + p[0] + `,ParameterValue="` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(p[1]) + `" `)
		}
		again, err := splitOverrides(b.String())
		if err != nil {
			t.Fatalf("%q split to %q, written back as %q: %v", s, pairs, b.String(), err)
		}
		if len(again) != len(pairs) {
			t.Fatalf("%q split to %q, written back as %q: %q", s, pairs, b.String(), again)
		}
		for i := range pairs {
			if again[i] != pairs[i] {
				t.Fatalf("%q split to %q, written back as %q: %q", s, pairs, b.String(), again)
			}
		}
	})
}
