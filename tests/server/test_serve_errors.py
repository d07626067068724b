"""What serve answers when it cannot take a request whole: partial success for invalid
spans, a ``google.rpc.Status`` with the reason for 400/413/415, and 503 with Retry-After
when it is busy or its pipeline is full."""

from __future__ import annotations

import gzip
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from _support.stores import dead_store_url
from _support.waiting import wait_for
from server.serving import JSON, PROTOBUF, Serve, keys, running, traffic
from server.support import otlp_json, protobuf_request

LIMIT = 4096
"""serve's --max-body-bytes in this module."""
INVALID = "resourceSpans[0].scopeSpans[0].spans[1]: traceId must be 16 bytes, not all zero"


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    """One serve for the tests that only look at replies: a small body limit, and one
    request decoded at a time."""
    options = (f"--max-body-bytes={LIMIT}", "--max-concurrent-requests=1")
    with running(tmp_path_factory.mktemp("serve"), *options) as shared:
        yield shared


def small_body() -> bytes:
    return protobuf_request(traffic(seed=21, plain_traces=1)[3]).SerializeToString()


def held_request(serve: Serve, content_type: str, declared_length: int) -> socket.socket:
    """A connection that sent its headers and no body: serve would wait for ever if it
    read the body before answering."""
    connection = socket.create_connection(("127.0.0.1", serve.port), timeout=60)
    connection.sendall(
        f"POST /v1/traces HTTP/1.1\r\nHost: serve\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {declared_length}\r\n\r\n".encode()
    )
    return connection


def head_of_reply(connection: socket.socket) -> str:
    reply = b""
    while b"\r\n\r\n" not in reply:
        chunk = connection.recv(4096)
        assert chunk, f"serve closed the connection without a reply: {reply!r}"
        reply += chunk
    return reply.decode("latin-1")


def test_a_request_with_invalid_spans_is_a_partial_success(tmp_path: Path) -> None:
    first, second = traffic(seed=22, plain_traces=2)[3:]
    request = protobuf_request(first)
    request.resource_spans[0].scope_spans[0].spans[1].trace_id = bytes(16)
    json_request = protobuf_request(second)
    json_request.resource_spans[0].scope_spans[0].spans[1].trace_id = bytes(16)
    with running(tmp_path) as serve:
        reply = serve.post(request.SerializeToString(), PROTOBUF)
        json_reply = serve.post(otlp_json(json_request), JSON)
        assert serve.stop() == 0

    assert reply.status == 200
    response = ExportTraceServiceResponse()
    response.ParseFromString(reply.body)
    assert response.partial_success.rejected_spans == 1
    assert response.partial_success.error_message == f"1 spans rejected: {INVALID}"
    assert json_reply.status == 200
    assert json.loads(json_reply.body) == {
        "partialSuccess": {"rejectedSpans": "1", "errorMessage": f"1 spans rejected: {INVALID}"}
    }
    valid = [
        span
        for span in first + second
        if span.context.span_id not in (first[1].context.span_id, second[1].context.span_id)
    ]
    assert serve.span_ids("otel_traces_recent") == keys(valid)


def test_an_unsupported_media_type_is_415_before_the_body_is_read(serve: Serve) -> None:
    with held_request(serve, "text/plain", 10**6) as connection:
        assert head_of_reply(connection).startswith("HTTP/1.1 415 ")
    reply = serve.post(small_body(), "application/protobuf")
    assert reply.status == 415
    assert reply.headers["content-type"] == PROTOBUF  # OTLP's default when the type is unknown
    assert reply.status_message().message == (
        "unsupported media type 'application/protobuf': "
        "send application/x-protobuf or application/json"
    )


def test_an_unsupported_content_encoding_is_415_in_the_request_encoding(serve: Serve) -> None:
    reply = serve.post(b"{}", JSON, content_encoding="br")
    assert (reply.status, reply.headers["content-type"]) == (415, JSON)
    assert reply.status_message().message == (
        "unsupported Content-Encoding 'br': send gzip or identity"
    )


@pytest.mark.parametrize(
    ("body", "content_type", "encoding", "reason"),
    [
        (b"\xff\xff\xff", PROTOBUF, None, "malformed protobuf: "),
        (b'{"resourceSpans": [', JSON, None, "malformed JSON: "),
        (b"[]", JSON, None, "malformed OTLP JSON: the body is a JSON list, not an object"),
        (b'{"resourceSpans": 7}', JSON, None, "malformed OTLP JSON: "),
        (b"not gzip at all", PROTOBUF, "gzip", "bad gzip body: "),
        (gzip.compress(b"{}")[:-9], JSON, "gzip", "bad gzip body: truncated"),
    ],
)
def test_a_malformed_body_is_400_with_the_reason(
    serve: Serve, body: bytes, content_type: str, encoding: str | None, reason: str
) -> None:
    headers = {"content_encoding": encoding} if encoding else {}
    reply = serve.post(body, content_type, **headers)
    assert reply.status == 400
    assert reply.headers["content-type"] == content_type
    status = reply.status_message()
    assert status.code == 3  # INVALID_ARGUMENT, as the collector answers
    assert status.message.startswith(reason), status.message


def test_a_body_over_the_limit_is_413(serve: Serve) -> None:
    over = b"\x00" * (LIMIT + 1)
    declared = serve.post(over, PROTOBUF)
    streamed = serve.post(iter([over[:LIMIT], over[LIMIT:]]), PROTOBUF)  # chunked, no length
    inflated = serve.post(gzip.compress(over), PROTOBUF, content_encoding="gzip")
    for reply in (declared, streamed):
        assert reply.status == 413
        assert reply.status_message().message == f"request body is over the {LIMIT}-byte limit"
    assert inflated.status == 413
    assert inflated.status_message().message == (
        f"decompressed body is over the {LIMIT}-byte limit"
    )
    assert serve.post(small_body(), PROTOBUF).status == 200  # at the limit or under: taken


def test_a_declared_length_over_the_limit_is_413_without_reading(serve: Serve) -> None:
    with held_request(serve, PROTOBUF, LIMIT + 1) as connection:
        assert head_of_reply(connection).startswith("HTTP/1.1 413 ")


def test_other_methods_are_405(serve: Serve) -> None:
    assert serve.request("GET", "/v1/traces").status == 405


def test_a_request_beyond_the_concurrency_bound_is_503_with_retry_after(serve: Serve) -> None:
    with socket.create_connection(("127.0.0.1", serve.port), timeout=60) as slow:
        slow.sendall(
            b"POST /v1/traces HTTP/1.1\r\nHost: serve\r\nContent-Type: application/json\r\n"
            b"Content-Length: 2\r\n\r\n{"
        )
        wait_for(lambda: serve.health()["requests_in_flight"] == 1)
        busy = serve.post(small_body(), JSON)
        slow.sendall(b"}")  # the held request completes: an empty, valid request
        assert head_of_reply(slow).startswith("HTTP/1.1 200 ")
    assert busy.status == 503
    assert busy.headers["retry-after"] == "1"
    assert busy.retry_delay_s() == 1
    assert busy.status_message().code == 14  # UNAVAILABLE
    assert serve.post(small_body(), PROTOBUF).status == 200


def test_a_full_pipeline_is_503_with_retry_after(tmp_path: Path) -> None:
    """A ClickHouse server that is down and no room to spool: acknowledgement is durable
    (inserted or fsynced), so nothing can be held and every request is refused."""
    first, second = traffic(seed=23, plain_traces=2)[3:]
    options = ("--max-queue-spans=1", "--max-spool-bytes=1")
    with running(tmp_path, *options, store_url=dead_store_url()) as serve:
        refused_first = serve.post(protobuf_request(first).SerializeToString(), PROTOBUF)
        refused = serve.post(otlp_json(protobuf_request(second)), JSON)
        pipeline = serve.health()["pipeline"]
        assert serve.stop() == 0

    assert refused_first.status == 503
    assert refused.status == 503
    assert refused.headers["retry-after"] == "5"
    assert refused.headers["content-type"] == JSON
    assert refused.retry_delay_s() == 5
    assert "the store is not keeping up" in refused.status_message().message
    assert pipeline["spans_accepted"] == 0
    assert pipeline["spans_refused"] == len(first) + len(second)
    assert pipeline["sampler"]["traces_received"] == 0  # a refused request never reaches it
    events = [event.get("event") for event in serve.log_events()]
    assert "serve.store.unreachable" in events


def test_the_query_api_of_a_server_store_that_is_down_is_503_not_missing(tmp_path: Path) -> None:
    """serve starts while its ClickHouse server is down (ingestion spools for it); the
    query API is there all along and says the store did not answer, asking it again at
    every request rather than keeping a connection the pipeline gave up."""
    with running(tmp_path, store_url=dead_store_url()) as serve:
        replies = [serve.request("GET", path) for path in ("/api/prompts", "/api/sampling")]
        assert serve.stop() == 0
    for reply in replies:
        assert reply.status == 503
        assert "the store did not answer" in json.loads(reply.body)["error"]
