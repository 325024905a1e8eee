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

.PHONY: deps
deps: ## install the tools the tests use (sqlite3, chromium, staticcheck, cfn-lint, moto), if missing
	@command -v sqlite3 >/dev/null || { echo "installing sqlite3"; (apt-get update -qq && apt-get install -y -qq sqlite3) >/dev/null; }
	@command -v chromium >/dev/null || { echo "installing chromium (the batch report's browser test)"; (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null; }
	@test -x $(STATICCHECK) || { echo "installing staticcheck $(STATICCHECK_VERSION)"; $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION); }
	@command -v cfn-lint >/dev/null || { echo "installing cfn-lint"; python3 -m pip install -q 'cfn-lint==1.51.0'; }
	@command -v moto_server >/dev/null || { echo "installing moto"; python3 -m pip install -q 'moto[server]==5.2.1'; }

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
bench: deps build ## measure and write docs/performance.md (BENCH_ROWS rows end to end)
	$(GO) run ./internal/bench/cmd -rows $(BENCH_ROWS) -importctl $(IMPORTCTL) -out docs/performance.md

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
