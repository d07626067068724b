"""The store's own metrics, published through ``closedloop._telemetry.meter()``.

``ClickHouseSpanExporter.stats()`` answers one exporter in one process; these counters go
wherever the app's MeterProvider sends its metrics, summed over every exporter, next to
the app's own: ``closedloop.store.spans`` by ``outcome`` (every span row ends up exported,
rejected or dropped; spooled and adopted ones on the way), ``closedloop.store.insert.failures``
(failed insert attempts), and the rescue's ``closedloop.store.rescued.traces`` and
``closedloop.store.rescued.spans``.
"""

from __future__ import annotations

from typing import Literal

from closedloop import _telemetry as telemetry

SPANS_METRIC = "closedloop.store.spans"
INSERT_FAILURES_METRIC = "closedloop.store.insert.failures"
RESCUED_TRACES_METRIC = "closedloop.store.rescued.traces"
RESCUED_SPANS_METRIC = "closedloop.store.rescued.spans"

SpanOutcome = Literal["exported", "spooled", "adopted", "rejected", "dropped"]

_meter = telemetry.meter()
_spans = _meter.create_counter(
    SPANS_METRIC,
    unit="{span}",
    description="Span rows handled by ClickHouseSpanExporter, by outcome (one per span and "
    "table): exported, spooled to disk, adopted from an earlier process's spool, rejected "
    "by the store (set aside as dead letters), or dropped.",
)
_insert_failures = _meter.create_counter(
    INSERT_FAILURES_METRIC,
    unit="{insert}",
    description="Failed insert attempts of ClickHouseSpanExporter (retried with backoff).",
)
_rescued_traces = _meter.create_counter(
    RESCUED_TRACES_METRIC,
    unit="{trace}",
    description="Traces copied back into otel_traces by the late-feedback rescue.",
)
_rescued_spans = _meter.create_counter(
    RESCUED_SPANS_METRIC,
    unit="{span}",
    description="Spans copied back into otel_traces by the late-feedback rescue.",
)


def count_spans(outcome: SpanOutcome, spans: int) -> None:
    _spans.add(spans, {"outcome": outcome})


def count_insert_failure() -> None:
    _insert_failures.add(1)


def count_rescued(traces: int, spans: int) -> None:
    _rescued_traces.add(traces)
    _rescued_spans.add(spans)
