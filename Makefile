# edge + app — run `make help` for the targets.
SHELL := /bin/bash
GO ?= go
BIN := bin
STATICCHECK_VERSION := v0.8.2
MINIO_VERSION := v0.0.0-20260212201848-7aac2a2c5b7c
OAUTH2_PROXY_VERSION := v7.15.6
PEBBLE_VERSION := v2.10.3
H2SPEC_VERSION := v2.2.1+incompatible
SES_LOCAL_VERSION := 2.10.2
# The current Caddy release, measured beside Debian's 2.6.2 by `make bench`.
CADDY_VERSION := v2.11.9
BENCH_TOOLS := $(CURDIR)/bin/bench-tools
# Race detection is on by default, as in CI; `make test RACE=` turns it off.
RACE ?= -race
# Whole-suite timeout: the suite is kept well under ~10 minutes on 2 cores.
TEST_TIMEOUT ?= 15m

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets.
	@grep -hE '^[a-z][a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

.PHONY: build
build: ## Build bin/edge, bin/app and bin/devrun.
	@mkdir -p $(BIN)
	@echo "building bin/edge, bin/app, bin/devrun (the first build downloads and compiles the dependencies: it may take a few minutes)"
	$(GO) build -trimpath -o $(BIN)/ ./cmd/...

.PHONY: run
run: build ## Start edge + app on the embedded defaults and print the URL to open (Ctrl-C stops both).
	./$(BIN)/devrun -bin $(BIN)

.PHONY: test
test: ## Run the whole test suite (with -race), fuzz seed corpora included.
	$(GO) test $(RACE) -count=1 -timeout $(TEST_TIMEOUT) ./...

.PHONY: e2e
e2e: ## End-to-end: real Prometheus + Alertmanager + app behind the edge, and a Chromium screenshot.
	$(GO) test -tags e2e -count=1 -timeout 10m -v ./e2e/

.PHONY: bench
bench: bench-tools ## The side-by-side harness: edge vs Caddy 2.6 and 2.11, nginx, HAProxy, direct (all scenarios, < 15 min).
	$(GO) run ./bench/cmd/harness -scenarios all -profile 10s

.PHONY: bench-tools
bench-tools: ## Install Caddy $(CADDY_VERSION) into bin/bench-tools for the harness (once; a few minutes to build).
	@# `caddy version` says "unknown" for a go-installed Caddy: read the module version instead.
	@if ! $(GO) version -m $(BENCH_TOOLS)/caddy 2>/dev/null | grep -qE '^\s+mod\s+github.com/caddyserver/caddy/v2\s+$(CADDY_VERSION)\s'; then \
		echo "go install caddy $(CADDY_VERSION) into $(BENCH_TOOLS)"; \
		GOBIN=$(BENCH_TOOLS) $(GO) install github.com/caddyserver/caddy/v2/cmd/caddy@$(CADDY_VERSION); \
	fi

.PHONY: bench-quick
bench-quick: ## Scenario 1 only (small GET), < 2 min.
	$(GO) run ./bench/cmd/harness -scenarios 1 -quick

.PHONY: bench-profile
bench-profile: ## Where the edge's CPU goes under scenario 1's load (go tool pprof -top).
	$(GO) run ./bench/cmd/harness -scenarios none -profile 10s -out bench/results/tmp/profile

.PHONY: gobench
gobench: ## Go micro-benchmarks (go test -bench) of the edge and the app.
	$(GO) test -run '^$$' -bench . -benchmem ./edge/ ./app/...

.PHONY: fuzz
fuzz: ## Fuzz path normalization, config loading and upstream responses on the fast path for a minute each.
	$(GO) test -run '^$$' -fuzz FuzzNormalizePath -fuzztime 60s ./edge/
	$(GO) test -run '^$$' -fuzz FuzzLoadConfig -fuzztime 60s ./edge/
	$(GO) test -run '^$$' -fuzz FuzzFastUpstreamResponse -fuzztime 60s -fuzzminimizetime 5s ./edge/

.PHONY: lint
lint: ## gofmt, go vet and staticcheck (pinned).
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

.PHONY: tools
tools: ## Install the pinned MinIO server, oauth2-proxy, Pebble (ACME) and h2spec used by the integration tests (a few minutes to build).
	$(GO) install github.com/minio/minio@$(MINIO_VERSION)
	$(GO) install github.com/oauth2-proxy/oauth2-proxy/v7@$(OAUTH2_PROXY_VERSION)
	$(GO) install github.com/letsencrypt/pebble/v2/cmd/pebble@$(PEBBLE_VERSION)
	$(GO) install github.com/summerwind/h2spec/cmd/h2spec@$(H2SPEC_VERSION)

.PHONY: ses-local
ses-local: ## Install the pinned aws-ses-v2-local (npm) the SES adapter's test sends to.
	command -v aws-ses-v2-local >/dev/null || npm install -g aws-ses-v2-local@$(SES_LOCAL_VERSION)

.PHONY: clean
clean: ## Remove build output and the run data directory.
	rm -rf $(BIN) data .run
