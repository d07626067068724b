"""/api/sampling counts what rescues copied, from the store: a rescue run on the store (as
``closedloop rescue`` or an app's timer runs it, not only serve's) is counted, on chDB and
through a ClickHouse server client alike (the ``store`` fixture's two backends)."""

from __future__ import annotations

import datetime

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import format_span_id, format_trace_id
from starlette.applications import Starlette
from starlette.testclient import TestClient

import closedloop.store as cs
from _support.collector import PRODUCTION_CONFIG
from _support.traffic import generate_traffic
from closedloop.sampling import SpanView, TailSampler, load
from closedloop.server._query import query_routes

LATE_AFTER_NS = 60 * 1_000_000_000


def span_key(span: ReadableSpan) -> tuple[str, str]:
    assert span.context is not None
    return format_trace_id(span.context.trace_id), format_span_id(span.context.span_id)


def iso(ns: int) -> str:
    seconds, fraction = divmod(ns, 1_000_000_000)
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{fraction:09d}Z"


def test_sampling_counts_what_rescues_copied_in_the_window(store: cs.Store) -> None:
    """Rescued spans are kept spans a rescue copied, counted by their start like the
    others; the traces rescued are those with a rescued span in the window."""
    traffic = generate_traffic(200, seed=29, days=2)
    late_ids = {
        item.span_id
        for item in traffic.feedback
        if item.timestamp_ns - item.call.start_ns > LATE_AFTER_NS
    }
    kept_views: list[SpanView] = []
    sampler = TailSampler(load(PRODUCTION_CONFIG), kept_views.extend)
    for late in (False, True):  # late feedback comes after its trace was decided
        sampler.ingest(
            SpanView.of(span)
            for span in traffic.spans
            if (format_span_id(span.context.span_id) in late_ids) is late
        )
        sampler.drain()
    kept_spans = [view.source for view in kept_views if view.source is not None]
    store.insert_spans(traffic.spans, table="otel_traces_recent")
    store.insert_spans(kept_spans)
    kept_by_sampler = {span_key(span) for span in kept_spans}
    with_feedback = {
        span_key(span)[0] for span in traffic.spans if span.name == "closedloop.feedback"
    }
    rescued = {
        span_key(span)
        for span in traffic.spans
        if span_key(span)[0] in with_feedback and span_key(span) not in kept_by_sampler
    }

    result = cs.rescue(store)
    assert (result.traces, result.spans) == (len({t for t, _ in rescued}), len(rescued)) != (0, 0)
    client = TestClient(Starlette(routes=query_routes(store, authorize=lambda _: True)))
    body = client.get("/api/sampling").json()
    assert (body["spans"]["kept"], body["spans"]["rescued"]) == (
        len(kept_by_sampler | rescued),
        len(rescued),
    )
    assert body["traces"]["rescued"] == result.traces

    starts = sorted(span.start_time or 0 for span in traffic.spans)
    low, high = starts[len(starts) // 3], starts[2 * len(starts) // 3]
    in_window = {span_key(span) for span in traffic.spans if low <= (span.start_time or 0) <= high}
    assert 0 < len(rescued & in_window) < len(rescued)
    body = client.get("/api/sampling", params={"from": iso(low), "to": iso(high)}).json()
    assert body["spans"]["rescued"] == len(rescued & in_window)
    assert body["traces"]["rescued"] == len({trace for trace, _ in rescued & in_window})
    assert cs.rescue(store) == cs.RescueResult(0, 0)
    assert client.get("/api/sampling").json()["spans"]["rescued"] == len(rescued)
