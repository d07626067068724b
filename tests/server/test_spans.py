"""OTLP spans -> SDK ReadableSpans: the round trip from the SDK's own encoder, and per-span
validation reported as partial success."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import (
    ResourceSpans,
    ScopeSpans,
    Span,
    SpanFlags,
    Status,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from closedloop.sampling import SpanView
from closedloop.server import EARLIEST_NS, LATEST_NS, OtlpFormat, decode_request, readable_spans
from closedloop.store._rows import span_row
from server.support import EVERY_VALUE_TYPE, otlp_json, protobuf_request, sdk_spans

START = 1_700_000_000 * 10**9
TRACE_ID = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SPAN_ID = bytes.fromhex("eee19b7ec3c1b174")


def typed(attributes: Mapping[str, object] | None) -> str:
    """Attributes with their Python types visible (``True == 1`` and ``1 == 1.0`` hide them)."""
    return repr(dict(attributes or {}))


def observed(span: ReadableSpan) -> dict[str, object]:
    """Everything the store and the sampler read of a span, plus what OTLP carries on."""
    scope = span.instrumentation_scope
    assert scope is not None
    # The SDK's encoder sends neither a link's trace state nor any W3C trace flags (only
    # the is-remote bits), so those cannot survive its round trip; the links test below
    # shows a sent link trace state is kept. The sampler's views read no flags.
    row = span_row(span) | {"Links.TraceState": None}
    return {
        "row": row,
        "view": dataclasses.replace(SpanView.of(span), flags=0),
        "attributes": typed(span.attributes),
        "resource": (typed(span.resource.attributes), span.resource.schema_url),
        "scope": (scope.name, scope.version, scope.schema_url, typed(scope.attributes)),
        "parent": (span.parent.span_id, span.parent.is_remote) if span.parent else None,
        "status": (span.status.status_code, span.status.description),
        "events": [
            (e.name, e.timestamp, typed(e.attributes), e.dropped_attributes) for e in span.events
        ],
        "links": [
            (
                link.context.trace_id,
                link.context.span_id,
                link.context.is_remote,
                typed(link.attributes),
                link.dropped_attributes,
            )
            for link in span.links
        ],
        "dropped": (span.dropped_attributes, span.dropped_events, span.dropped_links),
    }


def by_span_id(spans: list[ReadableSpan]) -> dict[int, dict[str, object]]:
    return {span.context.span_id: observed(span) for span in spans}


@pytest.mark.parametrize("fmt", list(OtlpFormat))
def test_sdk_spans_survive_the_otlp_round_trip(fmt: OtlpFormat) -> None:
    originals = sdk_spans()
    request = protobuf_request(originals)
    body = request.SerializeToString() if fmt is OtlpFormat.PROTOBUF else otlp_json(request)

    conversion = readable_spans(decode_request(body, fmt))

    assert (conversion.rejected, conversion.error_message) == (0, "")
    assert by_span_id(conversion.spans) == by_span_id(originals)
    # and what a forwarder would send on is what the app sent
    assert protobuf_request(conversion.spans) == request


def test_the_round_trip_covers_what_it_claims() -> None:
    """Guards the test above against a fixture that stopped exercising a field."""
    spans = {span.name: span for span in sdk_spans()}
    root = spans["chat gpt-4o"]
    assert {s.kind for s in spans.values()} == set(SpanKind)
    assert root.parent is not None and root.parent.is_remote
    assert root.context.trace_state.to_header() == "vendor=v1,other=x-2"
    assert root.status.description == "upstream timed out"
    assert (root.dropped_attributes, root.dropped_events, root.dropped_links) == (1, 1, 1)
    assert [e.dropped_attributes for e in root.events] == [0, 1]
    assert [link.dropped_attributes for link in root.links] == [1]
    assert set(EVERY_VALUE_TYPE) - set(root.attributes or {}) == {"str"}  # the one dropped
    assert spans["tool"].status.status_code is StatusCode.OK


def test_every_any_value_type_is_held_as_the_sdk_holds_it() -> None:
    def value(**kwargs: object) -> AnyValue:
        return AnyValue(**kwargs)  # type: ignore[arg-type]

    attributes = [
        KeyValue(key="empty", value=AnyValue()),
        KeyValue(key="bytes", value=value(bytes_value=b"\x01\x02")),
        KeyValue(
            key="array",
            value=value(
                array_value=ArrayValue(
                    values=[value(int_value=1), value(string_value="a"), AnyValue()]
                )
            ),
        ),
        KeyValue(
            key="kvlist",
            value=value(
                kvlist_value=KeyValueList(
                    values=[
                        KeyValue(key="b", value=value(double_value=0.5)),
                        KeyValue(key="a", value=value(bool_value=True)),
                    ]
                )
            ),
        ),
    ]
    (span,) = readable_spans(request_of(make_span(attributes=attributes))).spans

    assert typed(span.attributes) == typed(
        {
            "empty": None,
            "bytes": b"\x01\x02",
            "array": (1, "a", None),
            "kvlist": {"b": 0.5, "a": True},
        }
    )
    # stored as the collector's ClickHouse exporter stores them (pdata's Value.AsString)
    assert span_row(span)["SpanAttributes"] == {
        "empty": "",
        "bytes": "AQI=",
        "array": '[1,"a",null]',
        "kvlist": '{"a":true,"b":0.5}',
    }


def test_what_the_sdk_cannot_hold_is_normalised() -> None:
    span = make_span(kind=Span.SpanKind.SPAN_KIND_UNSPECIFIED)
    span.status.CopyFrom(Status(code=Status.StatusCode.STATUS_CODE_OK, message="fine"))
    (converted,) = readable_spans(request_of(span)).spans
    assert converted.kind is SpanKind.INTERNAL  # OTLP lets a receiver assume INTERNAL
    assert converted.status.status_code is StatusCode.OK
    assert converted.status.description is None  # the SDK keeps a message only on ERROR


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("vendor=v1,tenant@system=x y", "vendor=v1,tenant@system=x y"),
        (" a=1 ,\t, b=2\t", "a=1,b=2"),  # optional whitespace and empty members
        ("Upper=1", ""),
        ("a=1,a=2", ""),  # a repeated key
        ("a=1,b", ""),
        ("a=x,y", ""),
        (",".join(f"k{n}=v" for n in range(33)), ""),  # over W3C's 32 members
    ],
)
def test_trace_state_is_kept_when_valid_and_dropped_whole_when_not(
    sent: str, kept: str, caplog: pytest.LogCaptureFixture
) -> None:
    (span,) = readable_spans(request_of(make_span(trace_state=sent))).spans
    assert span.context.trace_state.to_header() == kept
    assert span_row(span)["TraceState"] == kept
    assert caplog.records == []  # no log line per span for a client to flood


def test_empty_attribute_keys_are_dropped_quietly(caplog: pytest.LogCaptureFixture) -> None:
    kept = KeyValue(key="kept", value=AnyValue(string_value="x"))
    empty = KeyValue(key="", value=AnyValue(string_value="y"))
    span = make_span(attributes=[empty, kept], dropped_attributes_count=2)
    span.events.add(name="e", time_unix_nano=START, attributes=[empty, kept])
    request = request_of(span)
    request.resource_spans[0].resource.attributes.extend([empty, kept])
    request.resource_spans[0].scope_spans[0].scope.attributes.extend([empty, kept])
    (converted,) = readable_spans(request).spans
    assert dict(converted.attributes or {}) == {"kept": "x"}
    assert converted.dropped_attributes == 2
    assert dict(converted.events[0].attributes or {}) == {"kept": "x"}
    assert dict(converted.resource.attributes) == {"kept": "x"}
    assert converted.instrumentation_scope is not None
    assert dict(converted.instrumentation_scope.attributes) == {"kept": "x"}
    assert caplog.records == []


def test_links_keep_their_trace_state_and_remoteness() -> None:
    remote = (
        SpanFlags.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK
        | SpanFlags.SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK
    )
    span = make_span()
    span.links.add(trace_id=TRACE_ID, span_id=SPAN_ID, trace_state="a=1,b=2", flags=remote | 1)
    span.links.add(trace_id=TRACE_ID, span_id=SPAN_ID)
    (converted,) = readable_spans(request_of(span)).spans
    remote_link, plain_link = converted.links
    assert remote_link.context.trace_state.to_header() == "a=1,b=2"
    assert remote_link.context.is_remote and remote_link.context.trace_flags.sampled
    assert not plain_link.context.is_remote and not plain_link.context.trace_flags.sampled
    assert span_row(converted)["Links.TraceState"] == ["a=1,b=2", ""]


def test_an_all_zero_parent_span_id_means_a_root_span() -> None:
    (span,) = readable_spans(request_of(make_span(parent_span_id=bytes(8)))).spans
    assert span.parent is None
    assert span_row(span)["ParentSpanId"] == ""


# --- validation and partial success ----------------------------------------------------------


def make_span(**fields: object) -> Span:
    defaults: dict[str, object] = {
        "trace_id": TRACE_ID,
        "span_id": SPAN_ID,
        "name": "ok",
        "kind": Span.SpanKind.SPAN_KIND_CLIENT,
        "start_time_unix_nano": START,
        "end_time_unix_nano": START + 1,
    }
    return Span(**(defaults | fields))  # type: ignore[arg-type]


def request_of(*spans: Span) -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=list(spans))])]
    )


Mutation = Callable[[Span], None]


def with_event_at(nanoseconds: int) -> Mutation:
    def mutate(span: Span) -> None:
        span.events.add(name="e", time_unix_nano=nanoseconds)

    return mutate


def with_link(trace_id: bytes, span_id: bytes) -> Mutation:
    def mutate(span: Span) -> None:
        span.links.add(trace_id=trace_id, span_id=span_id)

    return mutate


def setting(field: str, value: object) -> Mutation:
    def mutate(span: Span) -> None:
        setattr(span, field, value)

    return mutate


def with_status_code(code: int) -> Mutation:
    def mutate(span: Span) -> None:
        span.status.code = code  # type: ignore[assignment]

    return mutate


INVALID: dict[str, tuple[Mutation, str]] = {
    "no trace id": (setting("trace_id", b""), "traceId must be 16 bytes"),
    "short trace id": (setting("trace_id", TRACE_ID[:8]), "traceId must be 16 bytes"),
    "zero trace id": (setting("trace_id", bytes(16)), "traceId must be 16 bytes, not all zero"),
    "long span id": (setting("span_id", SPAN_ID + b"\x01"), "spanId must be 8 bytes"),
    "zero span id": (setting("span_id", bytes(8)), "spanId must be 8 bytes, not all zero"),
    "short parent": (setting("parent_span_id", b"\x01\x02"), "parentSpanId must be empty or 8"),
    "unknown kind": (setting("kind", 9), "kind 9 is not a SpanKind"),
    "unknown status": (with_status_code(3), "status.code 3 is not a StatusCode"),
    "no start": (setting("start_time_unix_nano", 0), "startTimeUnixNano 0 is not between"),
    "start in 1999": (setting("start_time_unix_nano", EARLIEST_NS - 1), "startTimeUnixNano"),
    "end in 2200": (setting("end_time_unix_nano", LATEST_NS), "endTimeUnixNano"),
    "end at uint64 max": (setting("end_time_unix_nano", 2**64 - 1), "endTimeUnixNano"),
    "end before start": (setting("end_time_unix_nano", START - 1), "is before startTimeUnixNano"),
    "event at 0": (with_event_at(0), "events[0].timeUnixNano 0 is not between"),
    "link without ids": (with_link(b"", SPAN_ID), "links[0].traceId must be 16 bytes"),
    "link zero span": (with_link(TRACE_ID, bytes(8)), "links[0].spanId must be 8 bytes"),
}


@pytest.mark.parametrize("case", list(INVALID))
def test_an_invalid_span_is_rejected_alone_and_named(case: str) -> None:
    mutate, why = INVALID[case]
    bad = make_span(name="bad")
    mutate(bad)
    conversion = readable_spans(request_of(make_span(name="before"), bad, make_span(name="after")))
    assert [span.name for span in conversion.spans] == ["before", "after"]
    assert conversion.rejected == 1
    assert conversion.error_message.startswith(
        "1 spans rejected: resourceSpans[0].scopeSpans[0].spans[1]: "
    )
    assert why in conversion.error_message


def test_the_edges_of_the_time_range_are_valid() -> None:
    span = make_span(start_time_unix_nano=EARLIEST_NS, end_time_unix_nano=LATEST_NS - 1)
    with_event_at(EARLIEST_NS)(span)
    conversion = readable_spans(request_of(span, make_span(end_time_unix_nano=START)))
    assert (len(conversion.spans), conversion.rejected) == (2, 0)


def test_the_message_names_the_first_three_problems_and_counts_the_rest() -> None:
    cases = list(INVALID.values())
    spans = []
    for mutate, _ in cases:
        span = make_span()
        mutate(span)
        spans.append(span)
    conversion = readable_spans(request_of(*spans))
    assert conversion.spans == []
    assert conversion.rejected == len(cases)
    assert conversion.error_message.count("resourceSpans[0]") == 3
    assert conversion.error_message.startswith(f"{len(cases)} spans rejected: ")
    assert conversion.error_message.endswith(f"; and {len(cases) - 3} more")
    for _, why in cases[:3]:
        assert why in conversion.error_message
