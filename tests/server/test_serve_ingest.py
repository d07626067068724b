"""closedloop serve takes real OTLP and stores it as the collector's pipelines would: every
span in the recent tier, and in ``otel_traces`` exactly what closedloop's sampler keeps."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from closedloop.sampling import Decision, load
from server.serving import JSON, PROTOBUF, kept_by, keys, running, traffic
from server.support import otlp_json, protobuf_request

SPEC_EXAMPLE = Path(__file__).parent / "data" / "trace.json"
"""opentelemetry-proto's ``examples/trace.json``, verbatim (a span from 2018)."""
LONG_TTL = "recent_ttl_days=20000&traces_ttl_days=20000"
"""Keeps the 2018 example out of reach of the tiers' TTLs while the test reads it (55 years:
more would pass DateTime's end in 2106 and expire it at once)."""


def test_sdk_exporter_spans_fill_the_recent_tier_and_sampled_traces_match_the_sampler(
    tmp_path: Path,
) -> None:
    traces = traffic(seed=11)
    spans = [span for trace in traces for span in trace]
    expected_kept = kept_by(load(), spans)
    with running(tmp_path) as serve:
        for start in range(0, len(traces), 8):  # several requests, each trace whole in one
            serve.export([span for trace in traces[start : start + 8] for span in trace])
        assert serve.health()["pipeline"]["spans_accepted"] == len(spans)
        assert serve.stop() == 0

    assert serve.span_ids("otel_traces_recent") == keys(spans)
    assert serve.span_ids("otel_traces") == expected_kept
    error, feedback, new_user, *plain = traces
    for always_kept in (error, feedback, new_user):
        assert set(keys(always_kept)) <= set(expected_kept)
    plain_kept = [trace for trace in plain if set(keys(trace)) <= set(expected_kept)]
    assert 0 < len(plain_kept) < len(plain), "the probabilistic rule must keep some, not all"

    events = {event.get("event"): event for event in serve.log_events()}
    start, stop = events["serve.start"], events["serve.stop"]
    assert start["port"] == serve.port and start["policy"] == "packaged"
    decided = stop["pipeline"]["sampler"]["traces_decided"]
    assert decided == {
        Decision.SAMPLED.value: 3 + len(plain_kept),
        Decision.NOT_SAMPLED.value: len(plain) - len(plain_kept),
    }
    assert stop["responses"] == {"200": 8}


def test_the_spec_json_example_is_stored(tmp_path: Path) -> None:
    with running(tmp_path, store_url=f"chdb://{tmp_path}/store?{LONG_TTL}") as serve:
        reply = serve.post(SPEC_EXAMPLE.read_bytes(), JSON)
        assert reply.status == 200
        assert reply.headers["content-type"] == JSON
        assert json.loads(reply.body) == {}
        assert serve.stop() == 0

    (row,) = serve.rows(
        "otel_traces_recent",
        "TraceId, SpanId, ParentSpanId, SpanName, SpanKind, ServiceName, ScopeName, "
        "ScopeVersion, SpanAttributes, Duration",
    )
    assert row == {
        "TraceId": "5b8efff798038103d269b633813fc60c",
        "SpanId": "eee19b7ec3c1b174",
        "ParentSpanId": "eee19b7ec3c1b173",
        "SpanName": "I'm a server span",
        "SpanKind": "Server",
        "ServiceName": "my.service",
        "ScopeName": "my.library",
        "ScopeVersion": "1.0.0",
        "SpanAttributes": {"my.span.attr": "some value"},
        "Duration": 1_000_000_000,
    }


def test_gzip_bodies_are_accepted_in_both_encodings(tmp_path: Path) -> None:
    first, second = traffic(seed=12, plain_traces=2)[3:]
    with running(tmp_path) as serve:
        body = protobuf_request(first).SerializeToString()
        reply = serve.post(gzip.compress(body), PROTOBUF, content_encoding="gzip")
        assert (reply.status, reply.body) == (200, b"")
        assert reply.headers["content-type"] == PROTOBUF
        reply = serve.post(
            gzip.compress(otlp_json(protobuf_request(second))), JSON, content_encoding="gzip"
        )
        assert (reply.status, json.loads(reply.body)) == (200, {})
        assert serve.stop() == 0
    assert serve.span_ids("otel_traces_recent") == keys(first + second)
