"""Span -> ``otel_traces`` row, written the way the collector's ClickHouse exporter writes it.

One mapping shared by closedloop's span exporter and its OTLP receiver, so rows are
interchangeable with the collector's: hex ids, nanosecond timestamps, pdata's
``Kind().String()`` / ``Code().String()`` spellings, and attribute values stringified as
pdata's ``Value.AsString`` does (all three rules from ``closedloop._pdata``).
Rows are serialised as ``JSONEachRow``, which chDB and ClickHouse server both ingest.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from types import ModuleType
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import format_span_id, format_trace_id

from closedloop._extras import require
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


def row(
    *,
    trace_id: str,
    span_id: str,
    parent_span_id: str,
    trace_state: str,
    name: str,
    kind: str,
    resource: tuple[str, dict[str, str]],
    scope: tuple[str, str],
    attributes: dict[str, str],
    start_ns: int,
    end_ns: int,
    status: tuple[str, str],
    events: Sequence[tuple[int, str, dict[str, str]]],
    links: Sequence[tuple[str, str, str, dict[str, str]]],
) -> dict[str, Any]:
    """One ``otel_traces`` row (column name -> JSON value) from a span's plain values: the
    one mapping, whichever model the span came in (an SDK span, an OTLP message).

    Ids are hex, ``kind`` and ``status[0]`` pdata's spellings, ``resource`` what
    ``ResourceColumns`` made of it, ``scope`` its name and version; attribute maps are
    rendered already (``attribute_map``, or ``_pdata.as_string`` per value). Events are
    (time, name, attributes), links (trace id, span id, trace state, attributes).
    """
    return {
        "Timestamp": clickhouse_time(start_ns),
        "TraceId": trace_id,
        "SpanId": span_id,
        "ParentSpanId": parent_span_id,
        "TraceState": trace_state,
        "SpanName": name,
        "SpanKind": kind,
        "ServiceName": resource[0],
        "ResourceAttributes": resource[1],
        "ScopeName": scope[0],
        "ScopeVersion": scope[1],
        "SpanAttributes": attributes,
        "Duration": max(end_ns - start_ns, 0),
        "StatusCode": status[0],
        "StatusMessage": status[1],
        "Events.Timestamp": [clickhouse_time(event[0]) for event in events],
        "Events.Name": [event[1] for event in events],
        "Events.Attributes": [event[2] for event in events],
        "Links.TraceId": [link[0] for link in links],
        "Links.SpanId": [link[1] for link in links],
        "Links.TraceState": [link[2] for link in links],
        "Links.Attributes": [link[3] for link in links],
    }


def span_row(span: ReadableSpan, resources: ResourceColumns | None = None) -> dict[str, Any]:
    """The row of an SDK span; ``resources`` shares the resource columns among the rows of
    a batch."""
    context = span.context
    scope = span.instrumentation_scope
    start = span.start_time or 0
    return row(
        trace_id=format_trace_id(context.trace_id) if context else "",
        span_id=format_span_id(context.span_id) if context else "",
        parent_span_id=format_span_id(span.parent.span_id) if span.parent else "",
        trace_state=context.trace_state.to_header() if context else "",
        name=span.name,
        kind=SPAN_KIND_NAMES.get(span.kind, UNSPECIFIED_SPAN_KIND_NAME),
        resource=(resources or ResourceColumns()).of(span.resource),
        scope=(scope.name, scope.version or "") if scope else ("", ""),
        attributes=attribute_map(span.attributes),
        start_ns=start,
        end_ns=span.end_time or start,
        status=(STATUS_CODE_NAMES[span.status.status_code], span.status.description or ""),
        events=[
            (event.timestamp, event.name, attribute_map(event.attributes)) for event in span.events
        ],
        links=[
            (
                format_trace_id(link.context.trace_id),
                format_span_id(link.context.span_id),
                link.context.trace_state.to_header(),
                attribute_map(link.attributes),
            )
            for link in span.links
        ],
    )


_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


@functools.cache
def _orjson() -> ModuleType:
    """orjson comes with the store extra: a core install names that extra on first use."""
    return require("orjson", "store", "Writing store rows")


def encode_row(row: Mapping[str, Any]) -> bytes:
    """One ``JSONEachRow`` line, newline included, by orjson (a third of the standard
    library's time for a row, which serve pays per span).

    A Python string may hold a lone surrogate (half of a UTF-16 pair, e.g. from a sliced
    emoji), which UTF-8 cannot encode and orjson refuses; it becomes U+FFFD, as Go's
    encoding/json writes invalid text, so one such string never fails the rows around it.
    """
    orjson = _orjson()
    try:
        return orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE)  # type: ignore[no-any-return]
    except orjson.JSONEncodeError:
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
