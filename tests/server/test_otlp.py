"""OTLP/HTTP request bodies: media types, gzip, limits, protobuf and the spec's JSON."""

from __future__ import annotations

import gzip
import json
import tracemalloc
import zlib
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from closedloop import ClosedloopError
from closedloop.server import (
    DEFAULT_MAX_BODY_BYTES,
    OtlpFormat,
    OtlpRequestError,
    decode_request,
    readable_spans,
    request_format,
)
from closedloop.store._rows import span_row
from server.support import otlp_json, protobuf_request, sdk_spans

SPEC_EXAMPLE = Path(__file__).parent / "data" / "trace.json"
"""opentelemetry-proto's ``examples/trace.json``, verbatim."""

PROTOBUF = OtlpFormat.PROTOBUF
JSON = OtlpFormat.JSON


@pytest.fixture(scope="module")
def request_message() -> ExportTraceServiceRequest:
    return protobuf_request(sdk_spans())


@pytest.fixture(scope="module")
def body(request_message: ExportTraceServiceRequest) -> bytes:
    return request_message.SerializeToString()


def refused(status: int, *args: Any, **kwargs: Any) -> str:
    """The reason ``decode_request`` gives when it refuses with ``status``."""
    with pytest.raises(OtlpRequestError) as caught:
        decode_request(*args, **kwargs)
    assert caught.value.status == status, caught.value.reason
    return caught.value.reason


# --- media types --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/x-protobuf", PROTOBUF),
        ("application/json", JSON),
        ("application/json; charset=utf-8", JSON),
        ("Application/X-Protobuf ; foo=bar", PROTOBUF),
    ],
)
def test_request_format_reads_the_media_type(content_type: str, expected: OtlpFormat) -> None:
    assert request_format(content_type) is expected
    assert expected.value in ("application/x-protobuf", "application/json")


@pytest.mark.parametrize(
    "content_type", [None, "", "text/plain", "application/protobuf", "application/jsonl"]
)
def test_other_media_types_are_415(content_type: str | None) -> None:
    with pytest.raises(OtlpRequestError) as caught:
        request_format(content_type)
    assert caught.value.status == 415
    assert "application/x-protobuf or application/json" in caught.value.reason


def test_the_error_is_a_closedloop_error_and_a_value_error() -> None:
    error = OtlpRequestError(400, "why")
    assert isinstance(error, ClosedloopError)
    assert isinstance(error, ValueError)
    assert (error.status, error.reason, str(error)) == (400, "why", "why")


# --- protobuf -----------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", [None, "", "identity"])
def test_protobuf_from_the_sdk_decodes(
    encoding: str | None, body: bytes, request_message: ExportTraceServiceRequest
) -> None:
    assert decode_request(body, PROTOBUF, encoding) == request_message


@pytest.mark.parametrize("cut", [1, 7, 100])
def test_truncated_protobuf_is_400(cut: int, body: bytes) -> None:
    reason = refused(400, body[:-cut], PROTOBUF)
    assert "malformed protobuf" in reason


def test_protobuf_with_invalid_utf8_in_a_string_is_400() -> None:
    # resource_spans(1) { schema_url(3): "\xff" }
    reason = refused(400, b"\x0a\x03\x1a\x01\xff", PROTOBUF)
    assert reason.startswith("malformed protobuf")
    assert "UTF-8" in reason


def test_an_empty_body_is_an_empty_request() -> None:
    assert decode_request(b"", PROTOBUF) == ExportTraceServiceRequest()


# --- gzip and limits ----------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["gzip", "GZIP", "x-gzip", "identity, gzip"])
def test_gzip_bodies_decode(
    encoding: str, body: bytes, request_message: ExportTraceServiceRequest
) -> None:
    assert decode_request(gzip.compress(body), PROTOBUF, encoding) == request_message


def test_concatenated_gzip_members_decode_as_one_body(
    body: bytes, request_message: ExportTraceServiceRequest
) -> None:
    members = gzip.compress(body[:100]) + gzip.compress(body[100:])
    assert decode_request(members, PROTOBUF, "gzip") == request_message


@pytest.mark.parametrize("encoding", ["br", "deflate", "zstd", "gzip, gzip", "gzip, br"])
def test_other_content_encodings_are_415(encoding: str, body: bytes) -> None:
    assert "gzip or identity" in refused(415, body, PROTOBUF, encoding)


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"not gzip at all", "incorrect header check"),
        (b"", "truncated"),
        (gzip.compress(b"x" * 1000)[:-12], "truncated"),
        (gzip.compress(b"{}") + b"trailing garbage", "incorrect header check"),
    ],
)
def test_bad_gzip_is_400_with_the_reason(payload: bytes, why: str) -> None:
    reason = refused(400, payload, JSON, "gzip")
    assert reason.startswith("bad gzip body")
    assert why in reason


def test_gzip_with_a_corrupt_crc_is_400() -> None:
    packed = bytearray(gzip.compress(b"{}"))
    packed[-8] ^= 0xFF  # the CRC32 in the trailer
    assert "bad gzip body" in refused(400, bytes(packed), JSON, "gzip")


def gzip_bomb(inflated_size: int) -> bytes:
    """A small gzip body that inflates to ``inflated_size`` zero bytes."""
    deflater = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1024 * 1024)
    parts = [deflater.compress(block) for _ in range(inflated_size // len(block))]
    return b"".join([*parts, deflater.flush()])


def test_a_gzip_bomb_is_413_without_inflating_past_the_limit() -> None:
    limit = 2 * 1024 * 1024
    bomb = gzip_bomb(64 * limit)
    assert len(bomb) < limit // 8
    tracemalloc.start()
    try:
        reason = refused(413, bomb, PROTOBUF, "gzip", max_bytes=limit)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert f"{limit}-byte limit" in reason
    assert peak < 2 * limit  # inflating it all would take 64 times the limit


def test_a_body_over_the_limit_is_413_before_decompression(body: bytes) -> None:
    assert "request body is over" in refused(413, body, PROTOBUF, max_bytes=len(body) - 1)
    assert "decompressed body is over" in refused(
        413, gzip.compress(body), PROTOBUF, "gzip", max_bytes=len(body) - 1
    )


def test_a_body_exactly_at_the_limit_decodes(
    body: bytes, request_message: ExportTraceServiceRequest
) -> None:
    packed = gzip.compress(body)
    assert decode_request(packed, PROTOBUF, "gzip", max_bytes=len(body)) == request_message
    assert DEFAULT_MAX_BODY_BYTES == 20 * 1024 * 1024


# --- JSON ---------------------------------------------------------------------------------


def test_the_spec_json_example_decodes_with_hex_ids() -> None:
    (span,) = readable_spans(decode_request(SPEC_EXAMPLE.read_bytes(), JSON)).spans
    assert span.context.trace_id == 0x5B8EFFF798038103D269B633813FC60C
    assert span.context.span_id == 0xEEE19B7EC3C1B174
    assert span.parent is not None and span.parent.span_id == 0xEEE19B7EC3C1B173
    assert dict(span.resource.attributes) == {"service.name": "my.service"}
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name == "my.library"
    assert span.instrumentation_scope.version == "1.0.0"
    assert dict(span.instrumentation_scope.attributes) == {
        "my.scope.attribute": "some scope attribute"
    }
    row = span_row(span)
    assert row["TraceId"] == "5b8efff798038103d269b633813fc60c"
    assert row["SpanId"] == "eee19b7ec3c1b174"
    assert row["ParentSpanId"] == "eee19b7ec3c1b173"
    assert row["SpanName"] == "I'm a server span"
    assert row["SpanKind"] == "Server"
    assert row["ServiceName"] == "my.service"
    assert row["SpanAttributes"] == {"my.span.attr": "some value"}
    assert row["Timestamp"] == "1544712660.000000000"
    assert row["Duration"] == 1_000_000_000


def spec_example() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(SPEC_EXAMPLE.read_text())
    return document


def only_span(document: dict[str, Any]) -> dict[str, Any]:
    span: dict[str, Any] = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    return span


def decoded(document: object) -> ExportTraceServiceRequest:
    return decode_request(json.dumps(document).encode(), JSON)


def test_json_of_every_field_decodes_to_the_same_request(
    request_message: ExportTraceServiceRequest,
) -> None:
    assert decode_request(otlp_json(request_message), JSON) == request_message


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("startTimeUnixNano", 1544712660000000000),  # int64 as a number
        ("kind", "SPAN_KIND_SERVER"),  # enum by name
        ("traceId", "5b8efff798038103d269b633813fc60c"),  # lower-case hex
    ],
)
def test_json_spellings_otlp_allows_decode_alike(key: str, value: object) -> None:
    document = spec_example()
    only_span(document)[key] = value
    assert decoded(document) == decoded(spec_example())


def test_an_unknown_json_enum_name_is_ignored_like_an_unknown_field() -> None:
    document = spec_example()
    only_span(document)["kind"] = "SPAN_KIND_FROM_THE_FUTURE"
    assert decoded(document).resource_spans[0].scope_spans[0].spans[0].kind == 0


def test_json_ids_under_proto_field_names_are_hex_too() -> None:
    document = spec_example()
    span = only_span(document)
    span["trace_id"] = span.pop("traceId")
    span["parent_span_id"] = span.pop("parentSpanId")
    assert decoded(document) == decoded(spec_example())


def test_unknown_json_fields_are_ignored_at_every_level() -> None:
    document = spec_example()
    future = {"nested": [1, {"deep": True}], "text": "x"}
    document["futureTopLevel"] = future
    resource_spans = document["resourceSpans"][0]
    resource_spans["futureField"] = future
    resource_spans["resource"]["futureRefs"] = [future]
    resource_spans["scopeSpans"][0]["futureField"] = 7
    only_span(document)["futureField"] = future
    only_span(document)["attributes"][0]["value"]["futureValue"] = "x"
    assert decoded(document) == decoded(spec_example())


@pytest.mark.parametrize(
    ("key", "value", "why"),
    [
        ("startTimeUnixNano", "soon", "startTimeUnixNano"),
        ("startTimeUnixNano", 1.5, "startTimeUnixNano"),
        ("name", 42, "name"),
        ("traceId", "5B8EFFF7980381", None),  # decodes: the span is then rejected, not the body
        ("traceId", "not hex at all!", "traceId"),
        ("traceId", "5B8EFFF798038103D269B633813FC60", "traceId"),  # odd length
        ("traceId", 12345, "traceId"),
        ("spanId", "ÉÉÉÉ", "spanId"),
        ("attributes", {"key": "not a list"}, "attributes"),
        ("attributes", [{"key": "a", "value": {"intValue": "1.5"}}], "intValue"),
        ("attributes", [{"key": "a", "value": {"boolValue": "true"}}], "boolValue"),
        ("attributes", [{"key": "a", "value": {"stringValue": "a", "intValue": 1}}], "value"),
        ("events", [{"timeUnixNano": -1}], "timeUnixNano"),
        ("links", [{"traceId": "zz"}], "links[0].traceId"),
    ],
)
def test_json_of_the_wrong_type_is_400_naming_the_field(
    key: str, value: object, why: str | None
) -> None:
    document = spec_example()
    only_span(document)[key] = value
    if why is None:
        assert readable_spans(decoded(document)).rejected == 1
        return
    with pytest.raises(OtlpRequestError) as caught:
        decoded(document)
    assert caught.value.status == 400
    assert why in caught.value.reason


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"", "malformed JSON"),
        (b"{", "malformed JSON"),
        (b"[]", "JSON list, not an object"),
        (b'"resourceSpans"', "JSON str, not an object"),
        (b'{"resourceSpans": {"not": "a list"}}', "resourceSpans"),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"droppedEventsCount": NaN}]}]}]}', "NaN"),
        (b'{"resourceSpans": [' * 100_000, "nested too deeply"),
        ('{"resourceSpans": [{"schemaUrl": "é"}]}'.encode("latin-1"), "not UTF-8"),
    ],
)
def test_malformed_json_is_400_with_the_reason(payload: bytes, why: str) -> None:
    assert why in refused(400, payload, JSON)


def test_json_nesting_protobuf_cannot_hold_is_400() -> None:
    value: dict[str, Any] = {"stringValue": "leaf"}
    for _ in range(200):
        value = {"arrayValue": {"values": [value]}}
    document = spec_example()
    only_span(document)["attributes"] = [{"key": "deep", "value": value}]
    with pytest.raises(OtlpRequestError) as caught:
        decoded(document)
    assert caught.value.status == 400
    assert "malformed OTLP JSON" in caught.value.reason
