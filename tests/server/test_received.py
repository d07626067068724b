"""The receiver's direct path (``received_spans``: OTLP message -> row and sampler view) gives
exactly what the SDK path gives (``readable_spans`` -> the exporter's ``span_row`` and
``SpanView.of``) on the same requests: same rows byte for byte, same views, same partial
success. Real SDK spans, generated LLM traffic, and hypothesis-made spans with every odd
field OTLP allows."""

from __future__ import annotations

import dataclasses
import math

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from _support.traffic import generate_traffic
from closedloop.sampling import AttributesRead
from closedloop.server._received import ReceivedSpan, received_spans
from server.support import protobuf_request, received_both_ways, sdk_spans

START = 1_700_000_000 * 10**9


def test_sdk_spans_give_the_same_rows_and_views() -> None:
    reception = received_both_ways(protobuf_request(sdk_spans()))
    assert len(reception.views) == len(sdk_spans())


def test_generated_llm_traffic_gives_the_same_rows_and_views() -> None:
    for seed in (3, 17):
        spans = generate_traffic(40, seed=seed, days=2).spans
        received_both_ways(protobuf_request(spans))


def test_without_sdk_spans_none_is_made() -> None:
    reception = received_spans(protobuf_request(sdk_spans()), with_sdk_spans=False)
    assert reception.views
    assert all(
        isinstance(view.source, ReceivedSpan) and view.source.span is None
        for view in reception.views
    )


# --- odd spans, as any OTLP sender may send them ---------------------------------------------

scalars = (
    st.builds(lambda v: AnyValue(string_value=v), st.text(max_size=8))
    | st.builds(lambda v: AnyValue(bool_value=v), st.booleans())
    | st.builds(lambda v: AnyValue(int_value=v), st.integers(-(2**63), 2**63 - 1))
    | st.builds(
        lambda v: AnyValue(double_value=v),
        st.floats() | st.sampled_from([math.nan, math.inf, -0.0, 1e-7, 1e21, 0.1]),
    )
    | st.builds(lambda v: AnyValue(bytes_value=v), st.binary(max_size=6))
    | st.just(AnyValue())
)


def _array(values: list[AnyValue]) -> AnyValue:
    value = AnyValue()
    value.array_value.values.extend(values)
    return value


def _kvlist(pairs: list[tuple[str, AnyValue]]) -> AnyValue:
    value = AnyValue()
    value.kvlist_value.values.extend(KeyValue(key=k, value=v) for k, v in pairs)
    return value


any_values = st.recursive(
    scalars,
    lambda children: (
        st.builds(_array, st.lists(children, max_size=3))
        | st.builds(_kvlist, st.lists(st.tuples(st.text(max_size=3), children), max_size=3))
    ),
    max_leaves=6,
)
attributes = st.lists(
    st.builds(
        lambda k, v: KeyValue(key=k, value=v),
        st.sampled_from(["", "a", "b", "gen_ai.x"]),
        any_values,
    ),
    max_size=5,
)


def mostly(valid: st.SearchStrategy[object], odd: st.SearchStrategy[object]) -> st.SearchStrategy:
    """``valid`` nine times in ten, else ``odd``: most spans pass validation and reach the
    mapping, some are rejected (and must be rejected alike)."""
    return st.integers(0, 9).flatmap(lambda n: odd if n == 0 else valid)


ids16 = mostly(
    st.binary(min_size=16, max_size=16).filter(any), st.sampled_from([bytes(16), b"\x01" * 15])
)
ids8 = mostly(st.binary(min_size=8, max_size=8).filter(any), st.sampled_from([b"\x01" * 7]))
parent_ids = st.sampled_from([b"", bytes(8)]) | ids8
trace_states = st.sampled_from(
    ["", "a=1", " a=1 ,\t, b=2\t", "Upper=1", "a=1,a=2", "t@v=x y", "a=x,y"]
) | st.text(max_size=12)
durations = mostly(st.integers(0, 10**9), st.sampled_from([-1, 2**63]))
flags = st.integers(0, 2**32 - 1)


@st.composite
def odd_spans(draw: st.DrawFn) -> Span:
    start = START + draw(st.integers(-(10**9), 10**9))
    span = Span(
        trace_id=draw(ids16),
        span_id=draw(ids8),
        parent_span_id=draw(parent_ids),
        trace_state=draw(trace_states),
        flags=draw(flags),
        name=draw(st.text(max_size=8)),
        kind=draw(mostly(st.integers(0, 5), st.just(6))),
        start_time_unix_nano=start,
        end_time_unix_nano=max(0, start + draw(durations)),
        attributes=draw(attributes),
        dropped_attributes_count=draw(st.integers(0, 3)),
        dropped_events_count=draw(st.integers(0, 3)),
        dropped_links_count=draw(st.integers(0, 3)),
        status=Status(
            code=draw(mostly(st.integers(0, 2), st.just(3))),
            message=draw(st.text(max_size=6)),
        ),
    )
    for _ in range(draw(st.integers(0, 2))):
        event = span.events.add(name=draw(st.text(max_size=5)), time_unix_nano=start)
        event.attributes.extend(draw(attributes))
    for _ in range(draw(st.integers(0, 2))):
        link = span.links.add(
            trace_id=draw(ids16),
            span_id=draw(ids8),
            trace_state=draw(trace_states),
            flags=draw(flags),
        )
        link.attributes.extend(draw(attributes))
    return span


@st.composite
def odd_requests(draw: st.DrawFn) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    for _ in range(draw(st.integers(1, 2))):
        resource_spans = ResourceSpans()
        resource_spans.resource.attributes.extend(draw(attributes))
        if draw(st.booleans()):
            resource_spans.resource.attributes.add(key="service.name").value.CopyFrom(
                draw(any_values)
            )
        for _ in range(draw(st.integers(1, 2))):
            scope_spans = ScopeSpans()
            scope_spans.scope.name = draw(st.text(max_size=4))
            scope_spans.scope.version = draw(st.text(max_size=4))
            scope_spans.spans.extend(draw(st.lists(odd_spans(), max_size=3)))
            resource_spans.scope_spans.append(scope_spans)
        request.resource_spans.append(resource_spans)
    return request


@settings(max_examples=300, deadline=None)
@given(odd_requests())
def test_odd_spans_give_the_same_rows_views_and_rejections(
    request: ExportTraceServiceRequest,
) -> None:
    received_both_ways(request)


def test_views_for_a_policy_hold_what_it_reads_and_rows_hold_everything() -> None:
    reads = AttributesRead(
        span=frozenset({"gen_ai.request.model", "closedloop.user.new", "absent"}),
        resource=frozenset({"service.name"}),
        event=frozenset({"gen_ai.evaluation.score.value"}),
    )
    request = protobuf_request(generate_traffic(40, seed=9, days=1).spans + sdk_spans())
    full = received_spans(request, with_sdk_spans=False)
    projected = received_spans(request, with_sdk_spans=False, reads=reads)
    assert [view.source for view in projected.views] == [view.source for view in full.views]
    for narrow, wide in zip(projected.views, full.views, strict=True):
        assert narrow.attributes == {
            key: value for key, value in wide.attributes.items() if key in reads.span
        }
        assert narrow.resource == {
            key: value for key, value in wide.resource.items() if key in reads.resource
        }
        assert narrow.events == tuple(
            (name, {key: value for key, value in values.items() if key in reads.event})
            for name, values in wide.events
        )
        assert (
            dataclasses.replace(
                narrow, attributes=wide.attributes, resource=wide.resource, events=wide.events
            )
            == wide
        )
    assert any(view.attributes for view in projected.views)
    assert any(values for view in projected.views for _, values in view.events)
