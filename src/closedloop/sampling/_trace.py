"""The tail sampler's view of a trace: its spans in arrival order, typed as OTLP types them.

Policies read attribute values with pdata's coercions (an int read as a string is "",
a double read as an int is 0...), so the model keeps each value's OTLP type: Python
``bool``, ``int``, ``float``, ``str`` and sequences, exactly as the OTel SDK holds them.
This is the collector's ``sampling.TraceData``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.util.types import AttributeValue

from closedloop._pdata import SPAN_KIND_NUMBERS, STATUS_CODE_NUMBERS
from closedloop.sampling._decision import Decision

Attributes = Mapping[str, AttributeValue]
"""Span, resource or event attributes as the OTel SDK holds them."""
Event = tuple[str, Attributes]
"""A span event: its name and attributes."""


@dataclass(frozen=True)
class SpanView:
    """What policies may look at in one span (and its resource); numbers as in OTLP."""

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
    attributes: Attributes
    resource: Attributes
    events: tuple[Event, ...]
    source: object = field(default=None, compare=False, repr=False)
    """What the sampler's owner exports when the span is kept, handed back untouched: the
    SDK span by default; a receiver may attach the span's already-encoded row too."""

    def __reduce__(self) -> tuple[type[SpanView], tuple[object, ...]]:
        """Pickled as its values in field order (serve's mapping workers send a view per
        span): a dataclass's default pickles each view's field names too."""
        return (
            SpanView,
            (
                self.trace_id,
                self.span_id,
                self.parent_span_id,
                self.name,
                self.kind,
                self.start_ns,
                self.end_ns,
                self.status,
                self.flags,
                self.trace_state,
                self.attributes,
                self.resource,
                self.events,
                self.source,
            ),
        )

    @classmethod
    def of(cls, span: ReadableSpan, source: object = None) -> SpanView:
        """The view of a finished SDK span; ``source`` (default: the span) is handed back
        with it when it is kept."""
        context = span.context
        return cls(
            trace_id=context.trace_id,
            span_id=context.span_id,
            parent_span_id=span.parent.span_id if span.parent else 0,
            name=span.name,
            kind=SPAN_KIND_NUMBERS[span.kind],
            start_ns=span.start_time or 0,
            end_ns=span.end_time or 0,
            status=STATUS_CODE_NUMBERS[span.status.status_code],
            flags=int(context.trace_flags),
            trace_state=context.trace_state.to_header(),
            attributes=span.attributes or {},
            resource=span.resource.attributes if span.resource is not None else {},
            events=tuple((event.name, event.attributes or {}) for event in span.events),
            source=span if source is None else source,
        )


@dataclass
class BufferedTrace:
    """A trace held in memory: its spans, in the order they arrived, and its decision."""

    trace_id: int
    spans: list[SpanView] = field(default_factory=list)
    decision: Decision | None = None

    @property
    def trace_id_bytes(self) -> bytes:
        """The trace id as OTLP's 16 big-endian bytes (what probabilistic hashes)."""
        return self.trace_id.to_bytes(16, "big")


@dataclass(frozen=True)
class AttributesRead:
    """The attribute keys policies read, by where they read them: the sampler decides the
    same on views that hold only these (a receiver sends less between processes, and the
    sampler holds less while a trace waits)."""

    span: frozenset[str] = frozenset()
    resource: frozenset[str] = frozenset()
    event: frozenset[str] = frozenset()

    def __or__(self, other: AttributesRead) -> AttributesRead:
        return AttributesRead(
            self.span | other.span, self.resource | other.resource, self.event | other.event
        )


__all__ = ["Attributes", "AttributesRead", "BufferedTrace", "Event", "SpanView"]
