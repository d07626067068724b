"""The tail sampler's view of a trace: its spans in arrival order, typed as OTLP types them.

Policies read attribute values with pdata's coercions (an int read as a string is "",
a double read as an int is 0...), so the model keeps each value's OTLP type: Python
``bool``, ``int``, ``float``, ``str`` and sequences, exactly as the OTel SDK holds them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

STATUS_CODES = {StatusCode.UNSET: 0, StatusCode.OK: 1, StatusCode.ERROR: 2}


@dataclass(frozen=True)
class SpanView:
    """What policies may look at in one span (and its resource)."""

    trace_id: int
    span_id: int
    parent_span_id: int
    name: str
    kind: int
    start_ns: int
    end_ns: int
    status: int
    flags: int
    trace_state: str
    attributes: Mapping[str, Any]
    resource: Mapping[str, Any]
    events: tuple[tuple[str, Mapping[str, Any]], ...]
    source: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, span: ReadableSpan) -> SpanView:
        context = span.context
        return cls(
            trace_id=context.trace_id,
            span_id=context.span_id,
            parent_span_id=span.parent.span_id if span.parent else 0,
            name=span.name,
            kind=span.kind.value + 1,
            start_ns=span.start_time or 0,
            end_ns=span.end_time or 0,
            status=STATUS_CODES[span.status.status_code],
            flags=int(context.trace_flags),
            trace_state=context.trace_state.to_header(),
            attributes=span.attributes or {},
            resource=span.resource.attributes if span.resource is not None else {},
            events=tuple((event.name, event.attributes or {}) for event in span.events),
            source=span,
        )


def int_value(value: Any) -> int:
    """pdata ``Value.Int()``: the int, or 0 for any other type."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def str_value(value: Any) -> str:
    """pdata ``Value.Str()``: the string, or "" for any other type."""
    return value if isinstance(value, str) else ""


def bool_value(value: Any) -> bool:
    """pdata ``Value.Bool()``: the bool, or False for any other type."""
    return value if isinstance(value, bool) else False


@dataclass
class BufferedTrace:
    """A trace held in memory: its spans, in the order they arrived, and its decision."""

    trace_id: int
    spans: list[SpanView] = field(default_factory=list)
    decision: str | None = None

    @property
    def trace_id_bytes(self) -> bytes:
        return self.trace_id.to_bytes(16, "big")
