"""Span -> ``otel_traces`` row, written the way the collector's ClickHouse exporter writes it.

One mapping shared by closedloop's span exporter and its OTLP receiver, so rows are
interchangeable with the collector's: hex ids, nanosecond timestamps, pdata's
``Kind().String()`` / ``Code().String()`` spellings, and attribute values stringified as
pdata's ``Value.AsString`` does (ES6 number formatting, Go's JSON for arrays and maps).
Rows are serialised as ``JSONEachRow``, which chDB and ClickHouse server both ingest.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode, format_span_id, format_trace_id

from closedloop.goformat import shortest_fixed

SPAN_KINDS = {
    SpanKind.INTERNAL: "Internal",
    SpanKind.SERVER: "Server",
    SpanKind.CLIENT: "Client",
    SpanKind.PRODUCER: "Producer",
    SpanKind.CONSUMER: "Consumer",
}
STATUS_CODES = {StatusCode.UNSET: "Unset", StatusCode.OK: "Ok", StatusCode.ERROR: "Error"}
_JSON_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


class _NotFinite(ValueError):
    """Go's encoding/json refuses NaN and infinities; pdata then renders the value as ""."""


def format_double(value: float) -> str:
    """A float as pdata prints it: ES6 number-to-string, shortest round-trip digits."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        mantissa, exponent = repr(value).split("e")
        mantissa = mantissa.removesuffix(".0")
        power = int(exponent)
        return f"{mantissa}e{'-' if power < 0 else '+'}{abs(power)}"
    return shortest_fixed(value)


def _json_string(text: str) -> str:
    """Go encoding/json with HTML escaping off: raw UTF-8, control characters escaped."""
    out = ['"']
    for char in text:
        escaped = _JSON_ESCAPES.get(char)
        if escaped is not None:
            out.append(escaped)
        elif char < " ":
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _json_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _NotFinite
        return format_double(value)
    if isinstance(value, str):
        return _json_string(value)
    if isinstance(value, (bytes, bytearray)):
        return _json_string(base64.b64encode(value).decode("ascii")) if value else "null"
    if isinstance(value, Mapping):
        pairs = (f"{_json_string(key)}:{_json_value(value[key])}" for key in sorted(value))
        return "{" + ",".join(pairs) + "}"
    return "[" + ",".join(_json_value(item) for item in value) + "]"


def as_string(value: Any) -> str:
    """An attribute value as pdata's ``Value.AsString`` renders it (pdata v1.67)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_double(value)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    try:
        return _json_value(value)
    except _NotFinite:
        return ""


def attribute_map(attributes: Mapping[str, Any] | None) -> dict[str, str]:
    return {key: as_string(value) for key, value in (attributes or {}).items()}


def clickhouse_time(nanoseconds: int) -> str:
    """DateTime64(9) as unix seconds with nine decimals: exact, timezone-free."""
    return f"{nanoseconds // 1_000_000_000}.{nanoseconds % 1_000_000_000:09d}"


def span_row(span: ReadableSpan) -> dict[str, Any]:
    """One ``otel_traces`` row (column name -> JSON value)."""
    context = span.context
    resource = span.resource.attributes if span.resource is not None else {}
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
        "SpanKind": SPAN_KINDS.get(span.kind, "Unspecified"),
        "ServiceName": as_string(resource["service.name"]) if "service.name" in resource else "",
        "ResourceAttributes": attribute_map(resource),
        "ScopeName": scope.name if scope else "",
        "ScopeVersion": (scope.version or "") if scope else "",
        "SpanAttributes": attribute_map(span.attributes),
        "Duration": max(end - start, 0),
        "StatusCode": STATUS_CODES[span.status.status_code],
        "StatusMessage": span.status.description or "",
        "Events.Timestamp": [clickhouse_time(event.timestamp) for event in events],
        "Events.Name": [event.name for event in events],
        "Events.Attributes": [attribute_map(event.attributes) for event in events],
        "Links.TraceId": [format_trace_id(link.context.trace_id) for link in links],
        "Links.SpanId": [format_span_id(link.context.span_id) for link in links],
        "Links.TraceState": [link.context.trace_state.to_header() for link in links],
        "Links.Attributes": [attribute_map(link.attributes) for link in links],
    }


def encode_rows(rows: Iterable[Mapping[str, Any]]) -> bytes:
    """``JSONEachRow`` bytes for an INSERT.

    A Python string may hold a lone surrogate (half of a UTF-16 pair, e.g. from a sliced
    emoji), which UTF-8 cannot encode; it becomes U+FFFD, as Go's encoding/json writes
    invalid text, so one such string never fails the rows around it.
    """
    text = "".join(
        json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n" for row in rows
    )
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # paired surrogates join into their character, lone ones become U+FFFD
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode("utf-8")


def span_rows(spans: Sequence[ReadableSpan]) -> list[dict[str, Any]]:
    return [span_row(span) for span in spans]
