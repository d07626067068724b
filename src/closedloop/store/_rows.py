"""Span -> ``otel_traces`` row, written the way the collector's ClickHouse exporter writes it.

One mapping shared by closedloop's span exporter and its OTLP receiver, so rows are
interchangeable with the collector's: hex ids, nanosecond timestamps, pdata's
``Kind().String()`` / ``Code().String()`` spellings, and attribute values stringified as
pdata's ``Value.AsString`` does (all three rules from ``closedloop._pdata``).
Rows are serialised as ``JSONEachRow``, which chDB and ClickHouse server both ingest.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import format_span_id, format_trace_id

from closedloop._pdata import (
    SPAN_KIND_NAMES,
    STATUS_CODE_NAMES,
    UNSPECIFIED_SPAN_KIND_NAME,
    as_string,
)


def attribute_map(attributes: Mapping[str, Any] | None) -> dict[str, str]:
    # Most values are strings already: skipping the call for them halves a span's mapping.
    return {
        key: value if value.__class__ is str else as_string(value)
        for key, value in (attributes or {}).items()
    }


def clickhouse_time(nanoseconds: int) -> str:
    """DateTime64(9) as unix seconds with nine decimals: exact, timezone-free."""
    return f"{nanoseconds // 1_000_000_000}.{nanoseconds % 1_000_000_000:09d}"


class ResourceColumns:
    """``ServiceName`` and ``ResourceAttributes`` of each resource, mapped once: the spans
    of a batch (an SDK export, an OTLP request) share a handful of resources."""

    def __init__(self) -> None:
        self._seen: dict[int, tuple[Resource | None, str, dict[str, str]]] = {}

    def of(self, resource: Resource | None) -> tuple[str, dict[str, str]]:
        seen = self._seen.get(id(resource))
        if seen is None or seen[0] is not resource:  # held, so an id is never reused
            attributes = resource.attributes if resource is not None else {}
            service = attributes.get("service.name")
            seen = (
                resource,
                "" if service is None else as_string(service),
                attribute_map(attributes),
            )
            self._seen[id(resource)] = seen
        return seen[1], seen[2]


def span_row(span: ReadableSpan, resources: ResourceColumns | None = None) -> dict[str, Any]:
    """One ``otel_traces`` row (column name -> JSON value); ``resources`` shares the
    resource columns among the rows of a batch."""
    context = span.context
    service, resource = (resources or ResourceColumns()).of(span.resource)
    scope = span.instrumentation_scope
    start = span.start_time or 0
    end = span.end_time or start
    events = span.events
    links = span.links
    return {
        "Timestamp": clickhouse_time(start),
        "TraceId": format_trace_id(context.trace_id) if context else "",
        "SpanId": format_span_id(context.span_id) if context else "",
        "ParentSpanId": format_span_id(span.parent.span_id) if span.parent else "",
        "TraceState": context.trace_state.to_header() if context else "",
        "SpanName": span.name,
        "SpanKind": SPAN_KIND_NAMES.get(span.kind, UNSPECIFIED_SPAN_KIND_NAME),
        "ServiceName": service,
        "ResourceAttributes": resource,
        "ScopeName": scope.name if scope else "",
        "ScopeVersion": (scope.version or "") if scope else "",
        "SpanAttributes": attribute_map(span.attributes),
        "Duration": max(end - start, 0),
        "StatusCode": STATUS_CODE_NAMES[span.status.status_code],
        "StatusMessage": span.status.description or "",
        "Events.Timestamp": [clickhouse_time(event.timestamp) for event in events],
        "Events.Name": [event.name for event in events],
        "Events.Attributes": [attribute_map(event.attributes) for event in events],
        "Links.TraceId": [format_trace_id(link.context.trace_id) for link in links],
        "Links.SpanId": [format_span_id(link.context.span_id) for link in links],
        "Links.TraceState": [link.context.trace_state.to_header() for link in links],
        "Links.Attributes": [attribute_map(link.attributes) for link in links],
    }


_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def encode_row(row: Mapping[str, Any]) -> bytes:
    """One ``JSONEachRow`` line, newline included.

    A Python string may hold a lone surrogate (half of a UTF-16 pair, e.g. from a sliced
    emoji), which UTF-8 cannot encode; it becomes U+FFFD, as Go's encoding/json writes
    invalid text, so one such string never fails the rows around it.
    """
    text = _dumps(row) + "\n"
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # paired surrogates join into their character, lone ones become U+FFFD
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode("utf-8")


def encode_rows(rows: Iterable[Mapping[str, Any]]) -> bytes:
    """``JSONEachRow`` bytes for an INSERT."""
    return b"".join(encode_row(row) for row in rows)


def span_rows(spans: Sequence[ReadableSpan]) -> list[dict[str, Any]]:
    resources = ResourceColumns()
    return [span_row(span, resources) for span in spans]
