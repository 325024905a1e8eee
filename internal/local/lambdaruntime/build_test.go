package lambdaruntime_test

import (
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/catalog-import/catalog-import/internal/local/lambdaruntime"
)

// TestMakefileRecipes: importctl invoke builds each function with its
// Makefile target's own command (the one `sam build` runs), for this
// machine: the flags that make the Lambda binary (-trimpath, the
// lambda.norpc tag, stripped, no cgo) are the Makefile's.
func TestMakefileRecipes(t *testing.T) {
	t.Parallel()
	mk, err := os.ReadFile("../../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	for fn, pkg := range map[string]string{
		"SplitterFunction":    "./functions/splitter",
		"ShardWorkerFunction": "./functions/shard-worker",
		"TriageFunction":      "./functions/triage",
	} {
		r, err := lambdaruntime.ReadRecipe(mk, "build-"+fn, "/out dir")
		if err != nil {
			t.Fatalf("%s: %v", fn, err)
		}
		want := []string{"go", "build", "-trimpath", "-tags", "lambda.norpc", "-ldflags=-s -w", "-o", "/out dir/bootstrap", pkg}
		if diff := cmp.Diff(want, r.Args); diff != "" {
			t.Errorf("%s: build command (-want +got):\n%s", fn, diff)
		}
		if diff := cmp.Diff([]string{"GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0"}, r.Env); diff != "" {
			t.Errorf("%s: variables (-want +got):\n%s", fn, diff)
		}
		here := r.ForThisMachine()
		if diff := cmp.Diff([]string{"CGO_ENABLED=0", "GOOS=" + runtime.GOOS, "GOARCH=" + runtime.GOARCH}, here.Env); diff != "" {
			t.Errorf("%s: for this machine (-want +got):\n%s", fn, diff)
		}
	}
}

func TestReadRecipe(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, makefile string
		env, args      []string
		err            string
	}{
		{name: "quotes", makefile: "build-F:\n\t@GOOS=linux go build -ldflags=\"-X a=b c\" -o '$(ARTIFACTS_DIR)/bootstrap' ./f\n",
			env: []string{"GOOS=linux"}, args: []string{"go", "build", "-ldflags=-X a=b c", "-o", "/a/bootstrap", "./f"}},
		{name: "other targets around", makefile: "x: y\n\techo x\n# sam\nbuild-F: ## doc\n\tgo build ./f\n\nbuild-G:\n\tgo build ./g\n",
			args: []string{"go", "build", "./f"}},
		{name: "missing target", makefile: "build-G:\n\tgo build ./g\n", err: "no target build-F"},
		{name: "two lines", makefile: "build-F:\n\tgo generate\n\tgo build ./f\n", err: "2 recipe lines"},
		{name: "no recipe", makefile: "build-F:\nother:\n\tgo build\n", err: "0 recipe lines"},
		{name: "another variable", makefile: "build-F:\n\t$(GO) build ./f\n", err: "unsupported shell syntax"},
		{name: "shell syntax", makefile: "build-F:\n\tgo build ./f && rm -rf /\n", err: "unsupported shell syntax"},
		{name: "expansion in double quotes", makefile: "build-F:\n\tgo build -ldflags=\"$$X\" ./f\n", err: "inside double quotes"},
		{name: "unterminated quote", makefile: "build-F:\n\tgo build -ldflags='-s ./f\n", err: "unterminated quote"},
		{name: "only variables", makefile: "build-F:\n\tA=1\n", err: "no command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := lambdaruntime.ReadRecipe([]byte(tc.makefile), "build-F", "/a")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.env, r.Env); diff != "" {
				t.Errorf("env (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.args, r.Args); diff != "" {
				t.Errorf("args (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzReadRecipe: any Makefile is read without a panic, and a recipe that
// is accepted has a command and nothing left for a shell to expand.
func FuzzReadRecipe(f *testing.F) {
	mk, _ := os.ReadFile("../../../Makefile")
	f.Add(string(mk))
	f.Add("build-SplitterFunction:\n\tGOOS=linux go build -ldflags='-s -w' -o $(ARTIFACTS_DIR)/bootstrap ./f\n")
	f.Add("build-SplitterFunction:\n\t\"go\" build\n")
	f.Fuzz(func(t *testing.T, makefile string) {
		r, err := lambdaruntime.ReadRecipe([]byte(makefile), "build-SplitterFunction", "/out")
		if err != nil {
			return
		}
		if len(r.Args) == 0 {
			t.Fatalf("accepted a recipe without a command: %+v", r)
		}
		for _, w := range append(r.Env, r.Args...) {
			if strings.Contains(strings.ReplaceAll(w, "/out", ""), "$") {
				t.Fatalf("word %q keeps a $ for a shell to expand", w)
			}
		}
	})
}
