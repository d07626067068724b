"""Malformed OTLP bodies: whatever arrives, the receiver either refuses the request with an
``OtlpRequestError`` (400/413/415 and a reason) or yields spans the store and the sampler
take, alike through the receiver's direct path and the SDK path. Anything else raised,
here or downstream, fails the test; so would a hang, since every example must finish for
the test to.

Valid but odd OTLP (absurd timestamps, huge values) goes to a real serve on a chDB store:
each span is stored, or rejected by name through partial success, and never takes its
neighbours with it. ``benchmarks/serve_fuzz.py`` sends ten thousand of all of these."""

from __future__ import annotations

import base64
import copy
import functools
import gzip
import itertools
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from closedloop.server import (
    EARLIEST_NS,
    LATEST_NS,
    OtlpFormat,
    OtlpRequestError,
    decode_request,
)
from server.serving import JSON, PROTOBUF, Serve, keys, running, traffic
from server.support import otlp_json, protobuf_request, received_both_ways, sdk_spans, spans_of

LIMIT = 64 * 1024
FUZZ = settings(max_examples=200, deadline=None)


@functools.cache
def valid_protobuf() -> bytes:
    return protobuf_request(sdk_spans()).SerializeToString()


@functools.cache
def valid_json() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(otlp_json(protobuf_request(sdk_spans())))
    return document


def paths(node: object, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every place in a JSON document a value sits."""
    found = [prefix]
    if isinstance(node, dict):
        for key, child in node.items():
            found += paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += paths(child, (*prefix, index))
    return found


def replaced(
    document: dict[str, Any], path: tuple[str | int, ...], value: object
) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    parent: Any = changed
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return changed


OTLP_KEYS = sorted(
    {str(step) for path in paths(valid_json()) for step in path if isinstance(step, str)}
)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(
        ["", "00" * 16, "ff" * 8, "NaN", "-1", str(2**64), "AAAA", "SPAN_KIND_SERVER"]
    )
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(OTLP_KEYS) | st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


def accepted_or_refused(body: bytes, fmt: OtlpFormat, encoding: str | None = None) -> None:
    try:
        request = decode_request(body, fmt, encoding, max_bytes=LIMIT)
    except OtlpRequestError as error:
        assert error.status in (400, 413, 415)
        assert error.reason
        return
    # the receiver's rows and views, the same as the exporter and sampler make of SDK spans
    reception = received_both_ways(request)
    assert (reception.rejected == 0) == (reception.error_message == "")


@FUZZ
@given(st.binary(max_size=4096), st.sampled_from(list(OtlpFormat)), st.sampled_from([None, "gzip"]))
def test_arbitrary_bytes(body: bytes, fmt: OtlpFormat, encoding: str | None) -> None:
    accepted_or_refused(body, fmt, encoding)


@FUZZ
@given(st.data())
def test_bit_flipped_and_truncated_protobuf(data: st.DataObject) -> None:
    body = bytearray(valid_protobuf())
    for bit in data.draw(st.lists(st.integers(0, len(body) * 8 - 1), min_size=1, max_size=8)):
        body[bit // 8] ^= 1 << (bit % 8)
    cut = data.draw(st.none() | st.integers(0, len(body)))
    accepted_or_refused(bytes(body[:cut]), OtlpFormat.PROTOBUF)


@FUZZ
@given(st.data())
def test_bit_flipped_gzip(data: st.DataObject) -> None:
    body = bytearray(gzip.compress(valid_protobuf()))
    for bit in data.draw(st.lists(st.integers(0, len(body) * 8 - 1), min_size=1, max_size=4)):
        body[bit // 8] ^= 1 << (bit % 8)
    accepted_or_refused(bytes(body), OtlpFormat.PROTOBUF, "gzip")


@FUZZ
@given(json_values)
def test_random_json(document: object) -> None:
    accepted_or_refused(json.dumps(document).encode(), OtlpFormat.JSON)


@FUZZ
@given(st.data())
def test_otlp_json_with_values_of_the_wrong_type(data: st.DataObject) -> None:
    document = valid_json()
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths(document)[1:]))  # [0]: the whole body
        document = replaced(document, path, data.draw(json_values))
    accepted_or_refused(json.dumps(document).encode(), OtlpFormat.JSON)


# --- through a running serve: valid OTLP with absurd timestamps or huge values -------------
#
# Such requests are well-formed, so they are not refused whole: each span is stored, or
# rejected on its own and named in the partial-success message. These run against a real
# serve on a chDB store, where the question is also whether one odd span can break the
# insert of the spans around it.

SERVE_FUZZ = settings(max_examples=60, deadline=None)
TIME_FIELDS = ("startTimeUnixNano", "endTimeUnixNano")
HOUR_NS = 3600 * 10**9
NOW_NS = time.time_ns()
_fresh = itertools.count(1)


@functools.cache
def call_with_feedback() -> ExportTraceServiceRequest:
    """A real SDK trace of three spans (a call, its tool and a feedback span with an event):
    few enough that a partial-success message names every rejected one."""
    return protobuf_request(traffic(seed=31, plain_traces=0)[1])


def fresh_request() -> ExportTraceServiceRequest:
    """The trace under ids no other request of the run has, so each can be found alone."""
    request = ExportTraceServiceRequest()
    request.CopyFrom(call_with_feedback())
    n = next(_fresh)
    spans = spans_of(request)
    renamed = {span.span_id: (n << 8 | k + 1).to_bytes(8, "big") for k, span in enumerate(spans)}
    for span in spans:
        span.trace_id = (0xF << 124 | n).to_bytes(16, "big")
        span.span_id = renamed[span.span_id]
        if span.parent_span_id:
            span.parent_span_id = renamed.get(span.parent_span_id, span.parent_span_id)
    return request


def key(span: Span) -> tuple[str, str]:
    """(trace id, span id) as the store writes them."""
    return span.trace_id.hex(), span.span_id.hex()


def sane(*times: int) -> bool:
    """The receiver's documented window for every time a span carries."""
    return all(EARLIEST_NS <= t < LATEST_NS for t in times)


def rejected_indices(response: ExportTraceServiceResponse) -> set[int]:
    """The spans a partial-success message names (``...spans[k]: <problem>``)."""
    return {int(k) for k in re.findall(r"spans\[(\d+)\]", response.partial_success.error_message)}


absurd_ns = (
    st.sampled_from(
        [0, 1, 1_700_000_000, 1_700_000_000_000, EARLIEST_NS - 1, LATEST_NS, 2**63, 2**64 - 1]
    )
    | st.integers(0, EARLIEST_NS - 1)
    | st.integers(LATEST_NS, 2**64 - 1)
)
"""Before 2000 (zero, a time in seconds or milliseconds) or after 2200, up to uint64's end."""
near_now_ns = st.integers(NOW_NS - HOUR_NS, NOW_NS + HOUR_NS)
"""Sane, and well inside the recent tier's retention."""
not_uint64 = st.sampled_from(
    [-1, "-1", -(2**63), 2**64, str(2**64), 10**30, 1.5, "1.5", "abc", "", True, [], {}]
)
"""JSON values no uint64 field can hold: the proto3 JSON mapping refuses each."""


@dataclass
class Expectation:
    """What a run of requests must leave in the recent tier."""

    stored: set[tuple[str, str]] = field(default_factory=set)
    absent: set[tuple[str, str]] = field(default_factory=set)


def test_absurd_timestamps_are_rejected_by_name_and_the_rest_stored(tmp_path: Path) -> None:
    expected = Expectation()
    with running(tmp_path) as serve:

        @SERVE_FUZZ
        @given(st.data())
        def send(data: st.DataObject) -> None:
            request = fresh_request()
            spans = spans_of(request)
            for span in spans:
                span.start_time_unix_nano = data.draw(near_now_ns | absurd_ns)
                span.end_time_unix_nano = data.draw(near_now_ns | absurd_ns)
                for event in span.events:
                    event.time_unix_nano = data.draw(near_now_ns | absurd_ns)
            invalid = {
                k
                for k, span in enumerate(spans)
                if not sane(
                    span.start_time_unix_nano,
                    span.end_time_unix_nano,
                    *(event.time_unix_nano for event in span.events),
                )
                or span.end_time_unix_nano < span.start_time_unix_nano
            }
            if data.draw(st.booleans(), label="as JSON"):
                document = json.loads(otlp_json(request))
                if data.draw(st.booleans(), label="a time no uint64 holds"):
                    spans_json = document["resourceSpans"][0]["scopeSpans"][0]["spans"]
                    span_json = data.draw(st.sampled_from(spans_json))
                    span_json[data.draw(st.sampled_from(TIME_FIELDS))] = data.draw(not_uint64)
                    reply = serve.post(json.dumps(document).encode(), JSON)
                    assert reply.status == 400, reply
                    assert "timeunixnano" in reply.status_message().message.lower()
                    expected.absent.update(key(span) for span in spans)
                    return
                reply = serve.post(json.dumps(document).encode(), JSON)
                assert reply.status == 200, reply
                response = json_format.Parse(reply.body, ExportTraceServiceResponse())
            else:
                reply = serve.post(request.SerializeToString(), PROTOBUF)
                assert reply.status == 200, reply
                response = ExportTraceServiceResponse.FromString(reply.body)
            assert response.partial_success.rejected_spans == len(invalid)
            assert rejected_indices(response) == invalid
            if invalid:
                assert "timeunixnano" in response.partial_success.error_message.lower()
            for k, span in enumerate(spans):
                (expected.absent if k in invalid else expected.stored).add(key(span))

        send()
        after = traffic(seed=32, plain_traces=1)[3]
        serve.export(after)  # and it still takes a plain request
        assert serve.stop() == 0
    stored = set(serve.span_ids("otel_traces_recent"))
    assert expected.stored <= stored
    assert not expected.absent & stored
    assert set(keys(after)) <= stored


HUGE_BYTES = 10 * 2**20
"""Half the default body limit: the whole request is still taken."""
LARGE_BYTES = 2**20
"""The most the drawn examples put at one place; a 10 MiB value is sent on its own."""
HUGE_PLACES = (
    "attribute value",
    "bytes value",
    "attribute key",
    "span name",
    "event attribute",
    "resource attribute",
    "status message",
    "many attributes",
)
HUGE_COLUMNS = (
    "TraceId, SpanId, length(SpanName) AS `span name`,"
    " length(SpanAttributes['huge']) AS `attribute value`,"
    " length(SpanAttributes['huge']) AS `bytes value`,"
    " arrayMax(arrayMap(k -> length(k), mapKeys(SpanAttributes))) AS `attribute key`,"
    " arraySum(arrayMap(a -> length(a['huge']), `Events.Attributes`)) AS `event attribute`,"
    " length(ResourceAttributes['huge']) AS `resource attribute`,"
    " length(StatusMessage) AS `status message`,"
    " length(mapKeys(SpanAttributes)) AS `many attributes`"
)
"""How much of each huge part a stored row holds, by place."""


@dataclass(frozen=True)
class Huge:
    """A request's call span with ``size`` bytes at ``place`` (for "many attributes", one
    attribute per 100 bytes), and what its row's ``HUGE_COLUMNS`` must show for it."""

    place: str
    size: int
    span: tuple[str, str]
    stored_length: int


def with_huge(request: ExportTraceServiceRequest, place: str, size: int) -> Huge:
    span = next(s for s in spans_of(request) if s.name.startswith("chat"))
    text = "x" * size
    stored_length = size
    if place == "attribute value":
        span.attributes.add(key="huge").value.string_value = text
    elif place == "bytes value":
        span.attributes.add(key="huge").value.bytes_value = bytes(range(256)) * (size // 256)
        stored_length = len(base64.b64encode(bytes(size // 256 * 256)))  # pdata's AsString
    elif place == "attribute key":
        stored_length = max(size, *(len(kv.key) for kv in span.attributes))
        span.attributes.add(key=text).value.string_value = "v"
    elif place == "span name":
        span.name = text
    elif place == "event attribute":
        event = span.events.add(name="huge", time_unix_nano=span.start_time_unix_nano)
        event.attributes.add(key="huge").value.string_value = text
    elif place == "resource attribute":
        request.resource_spans[0].resource.attributes.add(key="huge").value.string_value = text
    elif place == "status message":
        span.status.code = Status.STATUS_CODE_ERROR
        span.status.message = text
    else:
        for n in range(size // 100):
            span.attributes.add(key=f"attribute.{n}").value.int_value = n
        stored_length = len(span.attributes)
    return Huge(place, size, key(span), stored_length)


def test_huge_values_are_stored_whole_with_their_neighbours(tmp_path: Path) -> None:
    sent: list[Huge] = []
    neighbours: set[tuple[str, str]] = set()

    def send(serve: Serve, place: str, size: int) -> None:
        request = fresh_request()
        huge = with_huge(request, place, size)
        reply = serve.post(request.SerializeToString(), PROTOBUF)
        assert reply.status == 200, reply
        assert not ExportTraceServiceResponse.FromString(reply.body).HasField("partial_success")
        sent.append(huge)
        neighbours.update(key(span) for span in spans_of(request) if key(span) != huge.span)

    with running(tmp_path) as serve:
        send(serve, "attribute value", HUGE_BYTES)

        @settings(max_examples=16, deadline=None)
        @given(st.sampled_from(HUGE_PLACES), st.integers(1, LARGE_BYTES))
        def any_size(place: str, size: int) -> None:
            send(serve, place, size)

        any_size()
        after = traffic(seed=33, plain_traces=1)[3]
        serve.export(after)  # and it still takes a plain request
        assert serve.stop() == 0
    rows = {
        (row["TraceId"], row["SpanId"]): row
        for row in serve.rows("otel_traces_recent", HUGE_COLUMNS)
    }
    for huge in sent:
        assert rows[huge.span][huge.place] == huge.stored_length, huge
    assert neighbours | set(keys(after)) <= set(rows)


# --- what the fuzzing found: every acknowledged span must reach the store ---------------------

DAY_NS = 86_400 * 10**9


def test_a_request_spanning_more_than_100_days_is_stored_whole(tmp_path: Path) -> None:
    request = fresh_request()
    scope_spans = request.resource_spans[0].scope_spans[0]
    template = scope_spans.spans[0]
    for day in range(1, 102):  # days ahead: inside the accepted window and every TTL
        span = scope_spans.spans.add()
        span.CopyFrom(template)
        span.span_id = (0xD << 60 | day).to_bytes(8, "big")
        span.start_time_unix_nano = template.start_time_unix_nano + day * DAY_NS
        span.end_time_unix_nano = span.start_time_unix_nano
    with running(tmp_path) as serve:
        reply = serve.post(request.SerializeToString(), PROTOBUF)
        assert reply.status == 200, reply
        assert not ExportTraceServiceResponse.FromString(reply.body).HasField("partial_success")
        assert serve.stop() == 0
    assert {key(span) for span in spans_of(request)} <= set(serve.span_ids("otel_traces_recent"))


def test_a_span_after_2106_is_stored_or_rejected_by_name(tmp_path: Path) -> None:
    request = fresh_request()
    spans = spans_of(request)
    for span, year_2106_or_later in zip(
        spans, (4_294_967_296, 5_680_281_600, 7_258_032_000), strict=True
    ):  # 2106-02-07T06:28:16Z, 2150-01-01, 2199-12-31
        span.start_time_unix_nano = span.end_time_unix_nano = year_2106_or_later * 10**9
        for event in span.events:
            event.time_unix_nano = span.start_time_unix_nano
    with running(tmp_path) as serve:
        reply = serve.post(request.SerializeToString(), PROTOBUF)
        assert reply.status == 200, reply
        assert serve.stop() == 0
    rejected = rejected_indices(ExportTraceServiceResponse.FromString(reply.body))
    stored = set(serve.span_ids("otel_traces_recent"))
    for k, span in enumerate(spans):
        assert k in rejected or key(span) in stored, span.start_time_unix_nano
