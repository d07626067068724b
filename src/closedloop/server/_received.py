"""OTLP spans -> ``otel_traces`` rows and sampler views, read straight from the messages.

The receiver's hot path. Converting to SDK spans first (``readable_spans``) builds
contexts, trace states, statuses and events only to read them back, which cost more than
the rest of serve's work per span. Here each message field is read once: the row is the
exporter's own mapping (``closedloop.store._rows.row``) given the message's values, and the
view holds what ``SpanView.of`` reads from the SDK span ``readable_spans`` would make,
with the same normalisations (tests compare both ways on the same requests). The SDK span
itself is made only when ``--forward-otlp`` needs it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final, NamedTuple

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from closedloop import _health as health
from closedloop._pdata import (
    SPAN_KIND_NAMES,
    SPAN_KIND_NUMBERS,
    STATUS_CODE_NAMES,
    STATUS_CODE_NUMBERS,
    as_string,
    format_double,
)
from closedloop.sampling import AttributesRead, SpanView
from closedloop.server._spans import (
    KINDS,
    TRACE_FLAGS_MASK,
    problem_summary,
    readable_span,
    sdk_resource,
    sdk_scope,
    span_problem,
    trace_state_header,
    typed_value,
)
from closedloop.store._rows import encode_row, row

_KIND_NUMBERS: Final = {n: SPAN_KIND_NUMBERS[kind] for n, kind in KINDS.items()}
"""OTLP kind -> the number of the SDK span's kind (``KINDS``)."""
_KIND_NAMES: Final = {SPAN_KIND_NUMBERS[kind]: name for kind, name in SPAN_KIND_NAMES.items()}
_STATUS_NAMES: Final = {STATUS_CODE_NUMBERS[code]: name for code, name in STATUS_CODE_NAMES.items()}
_ERROR: Final = 2
_ROOT: Final = bytes(8)
_NONE: Final[frozenset[str]] = frozenset()


class ReceivedSpan(NamedTuple):
    """What the pipeline writes when the sampler keeps a span: its row, as stored in the
    recent tier already, and for ``--forward-otlp`` the SDK span. A tuple: mapping workers
    send one per span, and a tuple unpickles several times faster than a dataclass."""

    row: bytes
    span: ReadableSpan | None = None


class Reception(NamedTuple):
    """A request's spans as sampler views (each ``source`` a ``ReceivedSpan``), and what
    OTLP partial success must report."""

    views: list[SpanView]
    rejected: int
    """``ExportTracePartialSuccess.rejected_spans``."""
    error_message: str
    """``ExportTracePartialSuccess.error_message``: the first problems, "" when none."""


class _Origin(NamedTuple):
    """What the spans of one resource and scope share."""

    resource: dict[str, Any]
    columns: tuple[str, dict[str, str]]
    scope: tuple[str, str]
    sdk: tuple[Resource, InstrumentationScope] | None
    reads: AttributesRead | None


def received_spans(
    request: ExportTraceServiceRequest,
    *,
    with_sdk_spans: bool,
    reads: AttributesRead | None = None,
) -> Reception:
    """Every valid span of ``request`` as a view with its row; invalid ones, and any the row
    mapping fails on, counted and named. ``with_sdk_spans``: each also as an SDK span.
    ``reads``: the views hold only these attributes (what the policies read; the rows hold
    all); None: every attribute."""
    views: list[SpanView] = []
    problems: list[str] = []
    for i, resource_spans in enumerate(request.resource_spans):
        rendered, resource = _attributes(
            resource_spans.resource.attributes, None if reads is None else reads.resource
        )
        columns = (rendered.get("service.name", ""), rendered)
        for j, scope_spans in enumerate(resource_spans.scope_spans):
            scope = scope_spans.scope
            sdk = (
                (
                    sdk_resource(resource_spans.resource, resource_spans.schema_url),
                    sdk_scope(scope, scope_spans.schema_url),
                )
                if with_sdk_spans
                else None
            )
            origin = _Origin(resource, columns, (scope.name, scope.version), sdk, reads)
            for k, span in enumerate(scope_spans.spans):
                problem = span_problem(span)
                if problem is None:
                    try:
                        views.append(_view(span, origin))
                        continue
                    except Exception as error:  # a defect: reported back, never acknowledged
                        health.record_failure("server.receive.map", error)
                        problem = f"could not be stored as a row ({type(error).__name__})"
                problems.append(f"resourceSpans[{i}].scopeSpans[{j}].spans[{k}]: {problem}")
    return Reception(views, len(problems), problem_summary(problems))


def _view(span: Span, origin: _Origin) -> SpanView:
    trace_id = span.trace_id
    span_id = span.span_id
    parent = span.parent_span_id
    if parent == _ROOT:
        parent = b""
    kind = _KIND_NUMBERS[span.kind]
    status = span.status
    code = status.code
    reads = origin.reads
    attributes, viewed = _attributes(span.attributes, None if reads is None else reads.span)
    event_keys = None if reads is None else reads.event
    events = [
        (event.time_unix_nano, event.name, *_attributes(event.attributes, event_keys))
        for event in span.events
    ]
    trace_state = trace_state_header(span.trace_state)
    start, end = span.start_time_unix_nano, span.end_time_unix_nano
    line = encode_row(
        row(
            trace_id=trace_id.hex(),
            span_id=span_id.hex(),
            parent_span_id=parent.hex(),
            trace_state=trace_state,
            name=span.name,
            kind=_KIND_NAMES[kind],
            resource=origin.columns,
            scope=origin.scope,
            attributes=attributes,
            start_ns=start,
            end_ns=end,
            status=(_STATUS_NAMES[code], status.message if code == _ERROR else ""),
            events=[(time, name, rendered) for time, name, rendered, _ in events],
            links=[
                (
                    link.trace_id.hex(),
                    link.span_id.hex(),
                    trace_state_header(link.trace_state),
                    _attributes(link.attributes, _NONE)[0],
                )
                for link in span.links
            ],
        )
    )
    sdk = origin.sdk
    return SpanView(
        trace_id=int.from_bytes(trace_id, "big"),
        span_id=int.from_bytes(span_id, "big"),
        parent_span_id=int.from_bytes(parent, "big"),
        name=span.name,
        kind=kind,
        start_ns=start,
        end_ns=end,
        status=code,
        flags=span.flags & TRACE_FLAGS_MASK,
        trace_state=trace_state,
        attributes=viewed,
        resource=origin.resource,
        events=tuple((name, typed) for _, name, _, typed in events),
        source=ReceivedSpan(line, None if sdk is None else readable_span(span, *sdk)),
    )


def _attributes(
    key_values: Iterable[KeyValue], viewed_keys: frozenset[str] | None
) -> tuple[dict[str, str], dict[str, Any]]:
    """Attributes as the row renders them and, typed, as the view holds them (the keys in
    ``viewed_keys`` only; all when None), in one pass over the messages. Keys as
    ``plain_attributes`` keeps them, and rendered as ``attribute_map`` renders them.

    The receiver's costliest loop (a dozen values per span): a non-empty string, most
    values, is read without asking which field is set, and the scalar types are rendered
    inline rather than through ``typed_value`` and ``as_string``."""
    rendered: dict[str, str] = {}
    typed: dict[str, Any] = {}
    for key_value in key_values:
        key = key_value.key
        if not key:
            continue
        value = key_value.value
        held: Any = value.string_value
        if held:
            rendered[key] = held
        else:
            which = value.WhichOneof("value")
            if which == "int_value":
                held = value.int_value
                rendered[key] = str(held)
            elif which == "double_value":
                held = value.double_value
                rendered[key] = format_double(held)
            elif which == "bool_value":
                held = value.bool_value
                rendered[key] = "true" if held else "false"
            else:
                held = typed_value(value, which)
                rendered[key] = as_string(held)
        if viewed_keys is None or key in viewed_keys:
            typed[key] = held
    return rendered, typed


__all__ = ["ReceivedSpan", "Reception", "received_spans"]
