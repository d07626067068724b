"""Real SDK spans covering every field OTLP carries, and their OTLP encodings as real
exporters send them (the Python SDK's protobuf encoder; JSON as the OTLP spec spells it)."""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

from google.protobuf import json_format
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)
from opentelemetry.trace.span import TraceState

from closedloop.sampling import SpanView
from closedloop.server import readable_spans
from closedloop.server._received import ReceivedSpan, Reception, received_spans
from closedloop.store._rows import ResourceColumns, encode_row, span_row

REMOTE_PARENT = SpanContext(
    trace_id=0x0AF7651916CD43DD8448EB211C80319C,
    span_id=0xB7AD6B7169203331,
    is_remote=True,
    trace_flags=TraceFlags(TraceFlags.SAMPLED),
    trace_state=TraceState([("vendor", "v1"), ("other", "x-2")]),
)
LINKED = SpanContext(
    trace_id=0x5B8EFFF798038103D269B633813FC60C,
    span_id=0xEEE19B7EC3C1B174,
    is_remote=True,
    trace_flags=TraceFlags(TraceFlags.SAMPLED),
    trace_state=TraceState([("linked", "yes")]),
)

EVERY_VALUE_TYPE: dict[str, Any] = {
    "str": "support-bot ✓",
    "empty.str": "",
    "bool": True,
    "int": -(2**63),
    "big.int": 2**63 - 1,
    "float": 0.1,
    "bytes": b"\x00\xffraw",
    "str.array": ["a", "b"],
    "bool.array": [True, False],
    "int.array": [1, 2, 3],
    "float.array": [1.5, -0.0],
    "empty.array": [],
    "mixed.array": ["a", 1, 2.5, False, None],
    "nested.array": [[1, 2], ["x"]],
    "kvlist": {"model": "gpt-4o", "usage": {"input": 12, "ratio": 0.5}, "tags": ["a"]},
}
"""Every AnyValue type, as the OTel SDK holds attribute values (it accepts all of them)."""


def sdk_spans() -> list[ReadableSpan]:
    """Finished spans of a real TracerProvider: every kind and status, local and remote
    parents, events, links, trace state, two scopes, and limits that drop attributes,
    events and links, so every counter OTLP carries is non-zero somewhere."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create(
            {"service.name": "support-bot", "deployment.environment.name": "test"},
            schema_url="https://opentelemetry.io/schemas/1.26.0",
        ),
        span_limits=SpanLimits(
            max_span_attributes=len(EVERY_VALUE_TYPE),
            max_events=2,
            max_links=1,
            max_event_attributes=1,
            max_link_attributes=1,
        ),
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer(
        "closedloop.tests",
        "1.2.3",
        schema_url="https://opentelemetry.io/schemas/1.21.0",
        attributes={"scope.attr": "s"},
    )
    bare_tracer = provider.get_tracer("bare")  # no version, schema or attributes

    with tracer.start_as_current_span(
        "chat gpt-4o",
        context=trace.set_span_in_context(NonRecordingSpan(REMOTE_PARENT)),
        kind=SpanKind.SERVER,
        attributes=EVERY_VALUE_TYPE,
        links=[Link(LINKED), Link(LINKED, {"link.attr": 1, "dropped.link.attr": 2})],
    ) as root:
        root.set_attribute("over.the.limit", "dropped")
        root.add_event("first (dropped by the limit)")
        root.add_event("second", {"n": 1})
        root.add_event("gen_ai.evaluation.result", {"score": 0.5, "dropped.attr": "x"})
        root.set_status(Status(StatusCode.ERROR, "upstream timed out"))
        with tracer.start_as_current_span("tool", kind=SpanKind.CLIENT) as child:
            child.set_status(Status(StatusCode.OK))
        for kind in (SpanKind.PRODUCER, SpanKind.CONSUMER, SpanKind.INTERNAL):
            with bare_tracer.start_as_current_span(f"{kind.name.lower()} step", kind=kind):
                pass
    return list(exporter.get_finished_spans())


def protobuf_request(spans: list[ReadableSpan]) -> ExportTraceServiceRequest:
    """What the SDK's OTLP/HTTP exporter sends for ``spans``."""
    return encode_spans(spans)


def spans_of(request: ExportTraceServiceRequest) -> list[Span]:
    """Every span of ``request``, in order."""
    return [
        span
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    ]


def otlp_json(request: ExportTraceServiceRequest) -> bytes:
    """``request`` in OTLP's JSON encoding: protobuf's JSON mapping, but ids in hex."""
    document = json_format.MessageToDict(request)
    for resource_spans in document.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for message in (span, *span.get("links", [])):
                    for key in ("traceId", "spanId", "parentSpanId"):
                        if key in message:
                            message[key] = base64.b64decode(message[key]).hex()
    return json.dumps(document).encode()


def shown(view: SpanView) -> str:
    """The view with its attribute maps as plain dicts, as text: NaN equals itself there,
    and True, 1 and 1.0 differ."""
    plain = dataclasses.replace(
        view,
        attributes=dict(view.attributes),
        resource=dict(view.resource),
        events=tuple((name, dict(attributes)) for name, attributes in view.events),
    )
    return repr(plain)


def received_both_ways(request: ExportTraceServiceRequest) -> Reception:
    """``received_spans`` of ``request``, checked against the SDK path."""
    reception = received_spans(request, with_sdk_spans=True)
    conversion = readable_spans(request)
    assert (reception.rejected, reception.error_message) == (
        conversion.rejected,
        conversion.error_message,
    )
    resources = ResourceColumns()
    expected = [
        (shown(SpanView.of(span)), encode_row(span_row(span, resources)))
        for span in conversion.spans
    ]
    sources = [view.source for view in reception.views if isinstance(view.source, ReceivedSpan)]
    assert len(sources) == len(reception.views)
    received = [
        (shown(view), source.row) for view, source in zip(reception.views, sources, strict=True)
    ]
    assert received == expected
    # the SDK span --forward-otlp sends is the one readable_spans makes
    forwarded = [encode_row(span_row(source.span)) for source in sources if source.span]
    assert forwarded == [row for _, row in expected]
    return reception
