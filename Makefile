# Catalog Import. `make` lists the targets. Every target installs what it needs
# (idempotently), so a fresh clone needs only Go, make and apt.

SHELL       := /bin/bash
GO          ?= go
BIN         := bin
IMPORTCTL   := $(BIN)/importctl
STATICCHECK := $(shell $(GO) env GOPATH)/bin/staticcheck
STATICCHECK_VERSION := v0.8.2
FUZZTIME    ?= 50000x
BENCH_ROWS  ?= 1000000

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

.PHONY: build
build: ## build importctl into bin/
	$(GO) build -o $(IMPORTCTL) ./cmd/importctl

.PHONY: demo
demo: build ## import the bundled sample file into a fresh build/demo.db and show the outcome
	@mkdir -p build && rm -f build/demo.db build/demo.db-wal build/demo.db-shm && rm -rf build/reports
	@echo '$$ importctl preview -n 3 testdata/demo/products-gbk.csv'
	@$(IMPORTCTL) preview -n 3 testdata/demo/products-gbk.csv
	@echo; echo '$$ importctl run --db build/demo.db testdata/demo/products-gbk.csv'
	@$(IMPORTCTL) run --db build/demo.db testdata/demo/products-gbk.csv || test $$? -eq 1
	@echo; echo '$$ importctl failures --db build/demo.db --limit 8 <batch>'
	@$(IMPORTCTL) failures --db build/demo.db --limit 8 $$($(IMPORTCTL) status --db build/demo.db --json | sed -n 's/.*"batch_id":"\([^"]*\)".*/\1/p' | head -1)
	@echo; echo '$$ importctl retry-failures --db build/demo.db --dry-run <batch>   # after a rule fix: which failed rows would import now'
	@$(IMPORTCTL) retry-failures --db build/demo.db --dry-run $$($(IMPORTCTL) status --db build/demo.db --json | sed -n 's/.*"batch_id":"\([^"]*\)".*/\1/p' | head -1)
	@echo; echo '$$ importctl run --db build/demo.db testdata/demo/products-gbk.csv   # again: nothing is imported twice'
	@$(IMPORTCTL) run --db build/demo.db testdata/demo/products-gbk.csv || test $$? -eq 1

.PHONY: dev
dev: build ## the stack on this machine: importctl dev on its own moto emulator (Ctrl-C stops both); DEV_FLAGS=... adds flags
	$(IMPORTCTL) dev $(DEV_FLAGS)

# What the tests use beyond Go, make and apt. `make deps` installs each one
# only when its command is missing, says what it installs and why, and stops
# with what to do when it cannot (override a command name to use another).
SQLITE3          ?= sqlite3
CHROMIUM         ?= chromium
CFN_LINT         ?= cfn-lint
MOTO_SERVER      ?= moto_server
CFN_LINT_VERSION := 1.51.0
MOTO_VERSION     := 5.2.1

# need-apt COMMAND,PACKAGE,WHY installs the Debian PACKAGE when COMMAND is missing.
define need-apt
if ! command -v $(1) >/dev/null; then \
  echo "deps: $(1) not found: installing the Debian package $(2) ($(3))"; \
  if [ "$$(id -u)" != 0 ]; then echo "deps: cannot install $(2): apt-get needs root. Run 'sudo apt-get install $(2)' (or make deps as root), then make again" >&2; exit 1; fi; \
  log=$$(mktemp); { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2); } >$$log 2>&1 \
    || { tail -5 $$log >&2; echo "deps: apt-get install $(2) failed (above): install it, then make again" >&2; exit 1; }; \
  command -v $(1) >/dev/null || { echo "deps: $(2) is installed but $(1) is not on PATH" >&2; exit 1; }; \
fi
endef

# need-pip COMMAND,REQUIREMENT,WHY installs REQUIREMENT with pip when COMMAND is missing.
define need-pip
if ! command -v $(1) >/dev/null; then \
  echo "deps: $(1) not found: installing $(2) with pip ($(3))"; \
  python3 -m pip --version >/dev/null 2>&1 || { echo "deps: $(1) not found and there is no pip: install python3-pip (apt) or $(2) yourself with $(1) on PATH, then make again" >&2; exit 1; }; \
  index=$${PIP_INDEX_URL:-$$(python3 -m pip config get global.index-url 2>/dev/null || echo https://pypi.org/simple)}; \
  python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=10)' "$$index" >/dev/null 2>&1 \
    || { echo "deps: $(1) not found and pip cannot reach PyPI ($$index): install $(2) where it can (pip, pipx or a virtualenv) with $(1) on PATH, then make again" >&2; exit 1; }; \
  python3 -m pip install -q '$(2)' \
    || { echo "deps: pip install '$(2)' failed (above; a Debian Python refuses system-wide installs: use pipx or a virtualenv with $(1) on PATH), then make again" >&2; exit 1; }; \
  command -v $(1) >/dev/null || { echo "deps: $(2) is installed but $(1) is not on PATH" >&2; exit 1; }; \
fi
endef

.PHONY: deps
deps: ## install what the tests need when missing: sqlite3 and chromium (apt), staticcheck (go), cfn-lint and moto (pip)
	@$(call need-apt,$(SQLITE3),sqlite3,the tests read databases with the sqlite3 CLI)
	@$(call need-apt,$(CHROMIUM),chromium,the batch report's browser tests)
	@test -x $(STATICCHECK) || { echo "deps: staticcheck not found: installing staticcheck $(STATICCHECK_VERSION) with go install (make lint)"; \
	  $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) || { echo "deps: go install staticcheck failed (above): is the Go module proxy reachable?" >&2; exit 1; }; }
	@$(call need-pip,$(CFN_LINT),cfn-lint==$(CFN_LINT_VERSION),make lint checks template.yaml)
	@$(call need-pip,$(MOTO_SERVER),moto[server]==$(MOTO_VERSION),the AWS integration tests run against moto_server)
	@echo "deps: $(SQLITE3), $(CHROMIUM), staticcheck, $(CFN_LINT) and $(MOTO_SERVER) are installed"

.PHONY: lint
lint: deps ## gofmt, go vet, staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...
	cfn-lint template.yaml

.PHONY: test
test: deps lint unit fuzz ## every test: lint, unit + contract + integration, fuzz smoke

.PHONY: unit
unit: ## unit, contract and integration tests (go test -race)
	$(GO) test -race -count=1 -timeout 20m ./...

.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME executions (a count, not a duration: Go 1.26 fuzz coordinator can fail a timed run at its deadline, go.dev/issue/75804)
	@set -e; for pkg in $$($(GO) list ./...); do \
	  dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
	  for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/func //'); do \
	    echo "fuzz $$pkg $$f"; \
	    $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg > /tmp/fuzz-$$f.log 2>&1 || { cat /tmp/fuzz-$$f.log; exit 1; }; \
	  done; \
	done

.PHONY: bench
bench: deps build ## measure and write docs/performance.md and docs/scale.md's figures (BENCH_ROWS rows end to end)
	$(GO) run ./internal/bench/cmd -rows $(BENCH_ROWS) -importctl $(IMPORTCTL) -out docs/performance.md -scale-md docs/scale.md

# sam build (BuildMethod: makefile)
.PHONY: build-SplitterFunction build-ShardWorkerFunction build-TriageFunction
build-SplitterFunction:
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -trimpath -tags lambda.norpc -ldflags='-s -w' -o $(ARTIFACTS_DIR)/bootstrap ./functions/splitter

build-ShardWorkerFunction:
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -trimpath -tags lambda.norpc -ldflags='-s -w' -o $(ARTIFACTS_DIR)/bootstrap ./functions/shard-worker

build-TriageFunction:
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -trimpath -tags lambda.norpc -ldflags='-s -w' -o $(ARTIFACTS_DIR)/bootstrap ./functions/triage

.PHONY: clean
clean: ## remove build output
	rm -rf $(BIN) build
