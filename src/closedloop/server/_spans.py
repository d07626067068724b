"""OTLP spans -> the OTel SDK's ``ReadableSpan``, and the validation every received span
passes first.

A received span is what the app's own would be: the SDK span this module makes is what
``--forward-otlp`` sends, and the model the receiver's direct path (``_received``, which
skips building it) must match field for field. Attribute values keep their
OTLP type as the SDK's ``AnyValue`` holds it: str, bool, int, float, bytes, arrays as
tuples (mixed and nested too), kvlists as dicts and an empty value as None; the store then
renders them exactly as pdata does (``closedloop._pdata.as_string``). Dropped counts ride in
the SDK's own ``BoundedAttributes``/``BoundedList``, where ``ReadableSpan`` reads them.

What the SDK types cannot hold is normalised: kind UNSPECIFIED becomes INTERNAL (as the
OTLP proto allows receivers to assume), a status message is kept only on ERROR (the SDK's
``Status`` drops it otherwise), an invalid ``trace_state`` becomes empty (as the SDK's W3C
propagator treats one), and empty attribute keys are dropped. A span the store or sampler
could not use (bad ids, absurd timestamps, an unknown kind or status code) is rejected on
its own and reported back as OTLP partial success; the rest of the request goes on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Final, NamedTuple, TypeVar

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as ProtoResource
from opentelemetry.proto.trace.v1.trace_pb2 import Span, SpanFlags
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope as SdkScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState
from opentelemetry.util import types

from closedloop._pdata import SPAN_KIND_NUMBERS, STATUS_CODE_NUMBERS
from closedloop._time_range import EARLIEST_NS, LATEST_NS

_PROBLEMS_NAMED: Final = 3
"""How many rejected spans the partial-success message names, so it stays short."""

KINDS: Final = {0: SpanKind.INTERNAL} | {n: kind for kind, n in SPAN_KIND_NUMBERS.items()}
"""OTLP kind number -> the SDK span's kind: UNSPECIFIED becomes INTERNAL."""
_STATUS_CODES: Final = {n: code for code, n in STATUS_CODE_NUMBERS.items()}
TRACE_FLAGS_MASK: Final = 0xFF
_HAS_IS_REMOTE: Final = SpanFlags.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK
_IS_REMOTE: Final = SpanFlags.SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK
_ZERO_TRACE_ID: Final = bytes(16)
_ZERO_SPAN_ID: Final = bytes(8)

_T = TypeVar("_T")

# W3C Trace Context's tracestate grammar (https://www.w3.org/TR/trace-context/#tracestate-header)
_TRACE_STATE_KEY: Final = (
    r"[a-z][_0-9a-z\-*/]{0,255}|[a-z0-9][_0-9a-z\-*/]{0,240}@[a-z][_0-9a-z\-*/]{0,13}"
)
_TRACE_STATE_VALUE: Final = r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]"
_TRACE_STATE_MEMBER: Final = re.compile(f"({_TRACE_STATE_KEY})=({_TRACE_STATE_VALUE})")
_TRACE_STATE_MAX_MEMBERS: Final = 32


class Conversion(NamedTuple):
    """The spans a request carried, and what OTLP partial success must report."""

    spans: list[ReadableSpan]
    rejected: int
    """``ExportTracePartialSuccess.rejected_spans``."""
    error_message: str
    """``ExportTracePartialSuccess.error_message``: the first problems, "" when none."""


def readable_spans(request: ExportTraceServiceRequest) -> Conversion:
    """Every valid span of ``request`` as a ``ReadableSpan``; invalid ones counted and named."""
    spans: list[ReadableSpan] = []
    problems: list[str] = []
    for i, resource_spans in enumerate(request.resource_spans):
        resource = sdk_resource(resource_spans.resource, resource_spans.schema_url)
        for j, scope_spans in enumerate(resource_spans.scope_spans):
            scope = sdk_scope(scope_spans.scope, scope_spans.schema_url)
            for k, span in enumerate(scope_spans.spans):
                problem = span_problem(span)
                if problem is None:
                    spans.append(readable_span(span, resource, scope))
                else:
                    problems.append(f"resourceSpans[{i}].scopeSpans[{j}].spans[{k}]: {problem}")
    return Conversion(spans, len(problems), problem_summary(problems))


def problem_summary(problems: Sequence[str]) -> str:
    if not problems:
        return ""
    named = "; ".join(problems[:_PROBLEMS_NAMED])
    more = len(problems) - _PROBLEMS_NAMED
    suffix = f"; and {more} more" if more > 0 else ""
    return f"{len(problems)} spans rejected: {named}{suffix}"


# --- validation ---------------------------------------------------------------------------


def span_problem(span: Span) -> str | None:
    """Why the span cannot be stored as it is, or None."""
    if len(span.trace_id) != 16 or span.trace_id == _ZERO_TRACE_ID:
        return "traceId must be 16 bytes, not all zero"
    if len(span.span_id) != 8 or span.span_id == _ZERO_SPAN_ID:
        return "spanId must be 8 bytes, not all zero"
    if len(span.parent_span_id) not in (0, 8):
        return "parentSpanId must be empty or 8 bytes"
    if span.kind not in KINDS:
        return f"kind {span.kind} is not a SpanKind"
    if span.status.code not in _STATUS_CODES:
        return f"status.code {span.status.code} is not a StatusCode"
    start, end = span.start_time_unix_nano, span.end_time_unix_nano
    if not _sane_time(start):
        return _insane_time("startTimeUnixNano", start)
    if not _sane_time(end):
        return _insane_time("endTimeUnixNano", end)
    if end < start:
        return f"endTimeUnixNano {end} is before startTimeUnixNano {start}"
    for n, event in enumerate(span.events):
        if not _sane_time(event.time_unix_nano):
            return _insane_time(f"events[{n}].timeUnixNano", event.time_unix_nano)
    for n, link in enumerate(span.links):
        if len(link.trace_id) != 16 or link.trace_id == _ZERO_TRACE_ID:
            return f"links[{n}].traceId must be 16 bytes, not all zero"
        if len(link.span_id) != 8 or link.span_id == _ZERO_SPAN_ID:
            return f"links[{n}].spanId must be 8 bytes, not all zero"
    return None


def _sane_time(nanoseconds: int) -> bool:
    return EARLIEST_NS <= nanoseconds < LATEST_NS


def _insane_time(field: str, nanoseconds: int) -> str:
    return f"{field} {nanoseconds} is not between years 2000 and 2100"


# --- conversion ---------------------------------------------------------------------------


def readable_span(span: Span, resource: Resource, scope: SdkScope) -> ReadableSpan:
    trace_id = int.from_bytes(span.trace_id, "big")
    trace_flags = TraceFlags(span.flags & TRACE_FLAGS_MASK)
    parent_id = int.from_bytes(span.parent_span_id, "big")
    parent = (
        SpanContext(trace_id, parent_id, _is_remote(span.flags), trace_flags) if parent_id else None
    )
    code = _STATUS_CODES[span.status.code]
    return ReadableSpan(
        name=span.name,
        context=SpanContext(
            trace_id,
            int.from_bytes(span.span_id, "big"),
            False,
            trace_flags,
            _trace_state(span.trace_state),
        ),
        parent=parent,
        resource=resource,
        attributes=_attributes(span.attributes, span.dropped_attributes_count),
        events=_bounded(
            [
                Event(
                    event.name,
                    _attributes(event.attributes, event.dropped_attributes_count),
                    event.time_unix_nano,
                )
                for event in span.events
            ],
            span.dropped_events_count,
        ),
        links=_bounded([_link(link) for link in span.links], span.dropped_links_count),
        kind=KINDS[span.kind],
        status=Status(code, span.status.message if code is StatusCode.ERROR else None),
        start_time=span.start_time_unix_nano,
        end_time=span.end_time_unix_nano,
        instrumentation_scope=scope,
    )


def _link(link: Span.Link) -> Link:
    context = SpanContext(
        int.from_bytes(link.trace_id, "big"),
        int.from_bytes(link.span_id, "big"),
        _is_remote(link.flags),
        TraceFlags(link.flags & TRACE_FLAGS_MASK),
        _trace_state(link.trace_state),
    )
    return Link(context, _attributes(link.attributes, link.dropped_attributes_count))


def _is_remote(flags: int) -> bool:
    """OTLP's span flags say whether the parent (or linked) context was remote."""
    return bool(flags & _HAS_IS_REMOTE) and bool(flags & _IS_REMOTE)


def _trace_state(header: str) -> TraceState:
    """The W3C tracestate; an invalid one is dropped whole, as the SDK's propagator drops
    it, but without the SDK's warning per span, which a client could flood the log with."""
    return TraceState(list(_trace_state_members(header).items())) if header else TraceState()


def trace_state_header(header: str) -> str:
    """The tracestate an SDK span converted from ``header`` holds, as its ``to_header()``
    writes it: valid members without whitespace, or "" for an invalid one."""
    if not header:
        return ""
    return ",".join(f"{key}={value}" for key, value in _trace_state_members(header).items())


def _trace_state_members(header: str) -> dict[str, str]:
    """Key -> value of a valid tracestate, in order; empty when it is invalid."""
    pairs: dict[str, str] = {}
    for raw_member in header.split(","):
        member = raw_member.strip(" \t")  # optional whitespace, RFC 9110 5.6.3
        if not member:
            continue
        match = _TRACE_STATE_MEMBER.fullmatch(member)
        if match is None or match[1] in pairs:
            return {}
        pairs[match[1]] = match[2]
    return pairs if len(pairs) <= _TRACE_STATE_MAX_MEMBERS else {}


def sdk_resource(resource: ProtoResource, schema_url: str) -> Resource:
    return Resource(plain_attributes(resource.attributes), schema_url)


def sdk_scope(scope: InstrumentationScope, schema_url: str) -> SdkScope:
    return SdkScope(scope.name, scope.version, schema_url, plain_attributes(scope.attributes))


def _bounded(items: list[_T], dropped: int) -> Sequence[_T]:
    if not dropped:
        return items
    bounded: BoundedList[_T] = BoundedList.from_seq(None, items)
    bounded.dropped = dropped
    return bounded


def _attributes(key_values: Iterable[KeyValue], dropped: int) -> Mapping[str, types.AnyValue]:
    """A plain dict; the SDK's ``BoundedAttributes`` only when it must carry a dropped count
    (it re-validates every value, which the common case can skip)."""
    attributes = plain_attributes(key_values)
    if not dropped:
        return attributes
    bounded = BoundedAttributes(attributes=attributes, immutable=True)
    bounded.dropped += dropped
    return bounded


def any_value(value: AnyValue) -> types.AnyValue:
    """An OTLP value as the SDK holds it."""
    return typed_value(value, value.WhichOneof("value"))


def typed_value(value: AnyValue, which: str | None) -> types.AnyValue:
    """``any_value`` for a caller that has read ``value.WhichOneof("value")`` already."""
    if which == "string_value":
        return value.string_value
    if which == "bool_value":
        return value.bool_value
    if which == "int_value":
        return value.int_value
    if which == "double_value":
        return value.double_value
    if which == "bytes_value":
        return value.bytes_value
    if which == "array_value":
        return tuple(any_value(item) for item in value.array_value.values)
    if which == "kvlist_value":
        return plain_attributes(value.kvlist_value.values)
    return None


def plain_attributes(key_values: Iterable[KeyValue]) -> dict[str, types.AnyValue]:
    """Keys as OTLP sent them, but for two the OTel data model forbids: an empty key is
    dropped (the SDK's containers would drop it too, logging each time) and a repeated key
    keeps its last value."""
    return {kv.key: any_value(kv.value) for kv in key_values if kv.key}


__all__ = ["EARLIEST_NS", "LATEST_NS", "Conversion", "readable_spans"]
