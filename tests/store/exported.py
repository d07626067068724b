"""Spans for the exporter's tests, and what the store holds of them."""

from __future__ import annotations

from collections.abc import Iterable

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import format_span_id

from closedloop.store import Store

NS = 1_000_000_000


def finished_spans(count: int, *, start_ns: int | None = None, **attributes) -> list[ReadableSpan]:
    """Spans made by the real OTel SDK, as an app's provider would hand them over."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "durability"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("durability")
    for n in range(count):
        span = tracer.start_span(f"call {n}", attributes=attributes or None, start_time=start_ns)
        span.end(end_time=None if start_ns is None else start_ns + 1000)
    return list(memory.get_finished_spans())


def span_ids(spans: Iterable[ReadableSpan]) -> set[str]:
    return {format_span_id(span.context.span_id) for span in spans if span.context}


def stored(store: Store, table: str = "otel_traces") -> dict[str, int]:
    """Span id -> how many rows ``table`` holds for it."""
    rows = store.query(f"SELECT SpanId AS id, count() AS n FROM closedloop.{table} GROUP BY id")
    return {row["id"]: row["n"] for row in rows}
