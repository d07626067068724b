PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

CONTRIB_RELEASE := $(shell cat collector/contrib-release.txt)
COLLECTOR := .build/otelcol-closedloop
JAEGER := .build/jaeger

.PHONY: demo test lint bench bench-instructions clean collector jaeger dashboards

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/closedloop demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

# Grafana dashboards JSON from dashboards/sql and dashboards/generate.py (checked in).
dashboards: $(STAMP)
	$(BIN)/python dashboards/generate.py

# The overhead benchmark runs in its own venv: openai-v2, its anchor, is never a dependency
# of closedloop. Everything else there is pinned to the dev venv's versions.
BENCH_VENV := .build/bench-venv
BENCH_STAMP := $(BENCH_VENV)/.installed
BENCH_ARGS ?=

$(BENCH_STAMP): $(STAMP) benchmarks/requirements-bench.txt
	rm -rf $(BENCH_VENV)
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip freeze --exclude-editable > $(BENCH_VENV)/constraints.txt
	$(BENCH_VENV)/bin/python -m pip install --quiet -c $(BENCH_VENV)/constraints.txt \
		-e '.[cli]' -r benchmarks/requirements-bench.txt
	touch $@

bench: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python benchmarks/instrumentation_overhead.py $(BENCH_ARGS)

# The same configurations counted in instructions by valgrind (which must be installed).
bench-instructions: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python benchmarks/instruction_counts.py

# The collector from upstream modules (Go's module and build caches are reused across runs).
collector: $(COLLECTOR)

$(COLLECTOR): collector/builder-config.yaml collector/contrib-release.txt
	GOBIN=$(CURDIR)/.build/bin go install go.opentelemetry.io/collector/cmd/builder@$(CONTRIB_RELEASE)
	.build/bin/builder --config collector/builder-config.yaml
	cp .build/otelcol-src/otelcol-closedloop $@

# Jaeger v2 from upstream modules, pinned by the tool directive in jaeger/go.mod (same caches).
jaeger: $(JAEGER)

$(JAEGER): jaeger/go.mod jaeger/go.sum
	go build -C jaeger -o $(CURDIR)/$@ github.com/jaegertracing/jaeger/cmd/jaeger

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# The openai SDK's own chat/responses tests, plain and with closedloop instrumented; fails
# listing every test that passes plain but not instrumented (cache: .build/sdk-suite/).
.PHONY: sdk-suite
sdk-suite: $(STAMP)
	$(BIN)/python scripts/sdk_suite/run.py
