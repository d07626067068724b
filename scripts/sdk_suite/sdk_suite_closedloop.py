"""pytest plugin: run the openai SDK's tests with closedloop instrumented, as an app would.

``closedloop.instrument()`` is called in ``pytest_configure``, before the test modules are
imported, exactly like an app that instruments at start-up; ``uninstrument()`` at the end
flushes the spans. A suite that passes only because the instrumentation never ran proves
nothing, so each pytest process (each xdist worker too) writes how many spans it exported,
by operation and API, and ``closedloop.stats()`` (internal failures are swallowed by
design, so they are only visible there) to ``$SDK_SUITE_SPANS_DIR/<process>.json``;
``run.py`` sums them and fails when no span at all was exported.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import closedloop

SPANS_DIR_ENV = "SDK_SUITE_SPANS_DIR"
API_TYPE = "openai.api.type"  # chat_completions or responses; embeddings spans have none

_exporter = InMemorySpanExporter()


def pytest_configure(config: pytest.Config) -> None:
    closedloop.instrument(exporter=_exporter, service_name="sdk-suite")


def pytest_unconfigure(config: pytest.Config) -> None:
    closedloop.uninstrument()
    names = Counter(
        f"{span.name.split(' ')[0]}/{(span.attributes or {}).get(API_TYPE, '-')}"
        for span in _exporter.get_finished_spans()
    )
    process = os.environ.get("PYTEST_XDIST_WORKER", "main")
    target = os.environ.get(SPANS_DIR_ENV)
    if target:
        summary = {
            "spans": sum(names.values()),
            "by_name": names,
            "stats": closedloop.stats(),
            "closedloop": closedloop.__file__,
        }
        Path(target, f"{process}.json").write_text(json.dumps(summary, indent=1, default=str))
