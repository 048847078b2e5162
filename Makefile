# Bulwark — the two commands a newcomer needs are `make run` and `make test`; both install what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help
IMAGE ?= ghcr.io/bulwark-dev/bulwark:$(shell node -p 'require("./package.json").version' 2>/dev/null)

STAMP := node_modules/.bulwark-installed
TOOLS := .bulwark/bin/kubectl
SOURCES := $(shell find operator -name '*.ts' 2>/dev/null)

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

# npm ci only when the lock changed since the last install.
$(STAMP): package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

$(TOOLS): $(STAMP)
	./scripts/install-tools.sh

install: $(STAMP) $(TOOLS) ## install npm packages and the pinned kubectl/helm

dist/.built: $(STAMP) $(SOURCES) tsconfig.json tsconfig.build.json
	rm -rf dist && npx tsc -p tsconfig.build.json && touch $@

build: dist/.built ## compile TypeScript to dist/

lint: $(STAMP) ## eslint + prettier check
	npx eslint . && npx prettier --check .

typecheck: $(STAMP) ## tsc over sources, tests and benches
	npx tsc -p tsconfig.json --noEmit

crds: $(STAMP) ## regenerate crds/, the chart's copy, the API reference, the dashboard and the alert rules
	npx tsx operator/api/generate-crd.ts
	npx tsx operator/observability/generate.ts

crds-check: $(STAMP) ## fail when committed generated files (CRD, API reference, dashboard, rules) drift from their sources
	npx tsx operator/api/generate-crd.ts --check
	npx tsx operator/observability/generate.ts --check

test: install build lint typecheck crds-check ## lint, type-check, CRD drift check, all vitest suites
	npx vitest run --exclude 'test/demo/**'
	@# The whole-demo end-to-end run last and alone: it asserts live-traffic ratios a busy machine would skew.
	npx vitest run test/demo

chaos: install build ## the long chaos suites (minutes): API-server, operator, agent and upstream faults, load
	CHAOS_LONG=1 npx vitest run test/chaos

audit: $(STAMP) ## npm audit of production dependencies: high/critical fail unless excepted (docs/security.md)
	./scripts/audit.sh

run: install build ## the main job: dev cluster, operator, demo workload with agents (bulwark up)
	node dist/operator/cli/main.js up

bench: install build ## benchmarks against the peers; writes bench/results/latest.json and BENCHMARKS.md
	@command -v haproxy >/dev/null && command -v nginx >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy nginx)
	npx tsx bench/run.ts

bench-quick: install build ## a smoke run of every suite (minutes, not a measurement to quote)
	npx tsx bench/run.ts --quick

bench-check: install build ## regression guard: a quick run's ratios vs the committed bench/results/latest.json; tolerances from bench/results/noise.json (not part of make test)
	@command -v haproxy >/dev/null && command -v nginx >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy nginx)
	npx tsx bench/check.ts

bench-noise: install build ## re-measure the noise bench-check's tolerances come from (5 quick runs; writes bench/results/noise.json)
	npx tsx bench/check.ts --noise 5 --only data-plane,overload

image: ## build the container image (needs a Docker engine; not available on dev machines here)
	docker build -t $(IMAGE) .

clean: ## remove build output and local state
	rm -rf dist .bulwark

.PHONY: help install build lint typecheck crds crds-check test chaos audit run bench bench-quick bench-check bench-noise image clean
