"""Late-feedback rescue on chDB: dropped traces come back once, kept traces copy nothing,
each window of arrivals is rescued once, and every copied span is recorded once."""

from __future__ import annotations

import datetime
import re
import subprocess
import sys

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import format_span_id, format_trace_id

import closedloop.feedback as fb
import closedloop.store as cs
from _support.collector import PRODUCTION_CONFIG
from _support.traffic import generate_traffic
from closedloop.sampling import TailSampler, load
from closedloop.sampling._trace import SpanView
from closedloop.store import rescue
from closedloop.store._schema import query

LATE_AFTER_NS = 60 * 1_000_000_000


def sampled_world(store, *, write_kept=True, sampler_out=None):
    """Every span to the recent tier; the sampled tier gets what the tail sampler keeps
    (unless ``write_kept`` is False: its rows still wait in a spool, say), with feedback
    given more than a minute after its call arriving after the decision. ``sampler_out``
    (a list) receives the sampler."""
    traffic = generate_traffic(300, seed=9, days=1)
    late_ids = {
        f.span_id for f in traffic.feedback if f.timestamp_ns - f.call.start_ns > LATE_AFTER_NS
    }
    views = [SpanView.of(span) for span in traffic.spans]
    kept: list = []
    sampler = TailSampler(load(PRODUCTION_CONFIG), kept.extend)
    sampler.ingest(v for v in views if f"{v.span_id:016x}" not in late_ids)
    sampler.drain()
    sampler.ingest(v for v in views if f"{v.span_id:016x}" in late_ids)
    sampler.drain()
    store.insert_spans(traffic.spans, table="otel_traces_recent")
    if write_kept:
        store.insert_spans([view.source for view in kept], table="otel_traces")
    if sampler_out is not None:
        sampler_out.append(sampler)
    return traffic, {format_trace_id(v.trace_id) for v in kept}


def trace_ids(store, table):
    rows = store.query(f"SELECT DISTINCT TraceId AS t FROM closedloop.{table}")
    return {row["t"] for row in rows}


def recorded(store) -> list[tuple[str, str]]:
    """(trace id, span id) of every row of rescued_spans, sorted, duplicates kept."""
    rows = store.query("SELECT trace_id, span_id FROM closedloop.rescued_spans")
    return sorted((row["trace_id"], row["span_id"]) for row in rows)


def copied(store) -> list[tuple[str, str]]:
    """(trace id, span id) of every row of otel_traces, sorted, duplicates kept."""
    rows = store.query("SELECT TraceId, SpanId FROM closedloop.otel_traces")
    return sorted((row["TraceId"], row["SpanId"]) for row in rows)


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def test_rescue_brings_dropped_traces_with_feedback_back_exactly_once(store):
    traffic, kept = sampled_world(store)
    with_feedback = {f.trace_id for f in traffic.feedback}
    dropped_with_feedback = with_feedback - kept
    assert dropped_with_feedback, "the scenario needs late feedback on dropped traces"
    spans_before = store.query("SELECT count() AS n FROM closedloop.otel_traces")[0]["n"]
    expected_spans = store.query(
        "SELECT count() AS n FROM closedloop.otel_traces_recent "
        "WHERE has({ids:Array(String)}, TraceId)",
        {"ids": sorted(dropped_with_feedback)},
    )[0]["n"]

    first = rescue(store)
    assert first == cs.RescueResult(traces=len(dropped_with_feedback), spans=expected_spans)
    assert trace_ids(store, "otel_traces") == kept | dropped_with_feedback
    after = store.query(
        "SELECT count() AS n, uniqExact(TraceId, SpanId) AS unique_spans "
        "FROM closedloop.otel_traces"
    )[0]
    assert after == {
        "n": spans_before + expected_spans,
        "unique_spans": spans_before + expected_spans,
    }
    rescued_calls = store.query(
        "SELECT count() AS n FROM closedloop.llm_calls WHERE has({ids:Array(String)}, trace_id)",
        {"ids": sorted(dropped_with_feedback)},
    )[0]["n"]
    assert rescued_calls == sum(1 for c in traffic.calls if c.trace_id in dropped_with_feedback)

    rescued = recorded(store)
    assert len(rescued) == expected_spans == len(set(rescued))
    assert {trace for trace, _ in rescued} == dropped_with_feedback

    second = rescue(store)
    assert (second.traces, second.spans) == (0, 0)
    assert store.query("SELECT count() AS n FROM closedloop.otel_traces")[0]["n"] == after["n"]
    assert recorded(store) == rescued


def test_traces_a_sampler_keeps_are_left_to_it_even_before_their_rows_are_stored(store):
    samplers: list[TailSampler] = []
    traffic, kept = sampled_world(store, write_kept=False, sampler_out=samplers)
    [sampler] = samplers
    with_feedback = {f.trace_id for f in traffic.feedback}
    assert kept & with_feedback and with_feedback - kept, "the scenario needs both kinds"
    asked = []

    def sampler_writes(trace_id: str) -> bool:
        asked.append(trace_id)
        return sampler.trace_state(int(trace_id, 16)) in ("pending", "kept")

    result = rescue(store, skip=sampler_writes)
    assert set(asked) == with_feedback  # every candidate, by its hex id
    assert result.traces == len(with_feedback - kept)
    assert trace_ids(store, "otel_traces") == with_feedback - kept
    assert {trace for trace, _ in recorded(store)} == with_feedback - kept


def test_feedback_on_kept_traces_copies_nothing(store):
    _, kept = sampled_world(store)
    store.execute(
        "ALTER TABLE closedloop.otel_traces_recent "
        "DELETE WHERE NOT has({ids:Array(String)}, TraceId) SETTINGS mutations_sync = 1",
        {"ids": sorted(kept)},
    )
    assert rescue(store).spans == 0


def test_since_limits_which_feedback_counts(store):
    sampled_world(store)
    future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=30)
    assert rescue(store, since=future).spans == 0
    with pytest.raises(ValueError, match="since must be timezone-aware"):
        rescue(store, since=datetime.datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="until must be timezone-aware"):
        rescue(store, until=datetime.datetime(2026, 1, 1))
    assert recorded(store) == []


def test_windows_of_arrival_that_follow_each_other_rescue_each_trace_once(store):
    """Sampling dropped every trace. Feedback on half of them arrives, then on the other
    half: each window, [start, middle) then [middle, end), rescues its own half; a window
    ending before an arrival leaves its trace alone (serve's bound for pending decisions)."""
    traffic = generate_traffic(120, seed=13, days=1)
    by_trace: dict[str, list] = {}
    for span in traffic.spans:
        by_trace.setdefault(format_trace_id(span.context.trace_id), []).append(span)
    feedback = {s.context.span_id for s in traffic.spans if s.name == "closedloop.feedback"}
    with_feedback = sorted({format_trace_id(s.context.trace_id) for s in traffic.spans
                            if s.context.span_id in feedback})  # fmt: skip
    assert len(with_feedback) >= 6
    first, second = set(with_feedback[::2]), set(with_feedback[1::2])
    late = [
        s
        for s in traffic.spans
        if s.context.span_id in feedback and format_trace_id(s.context.trace_id) in second
    ]
    start = now()
    store.insert_spans([s for s in traffic.spans if s not in late], table="otel_traces_recent")
    middle = now()
    store.insert_spans(late, table="otel_traces_recent")
    end = now()

    def rescued(traces: set[str]) -> cs.RescueResult:
        return cs.RescueResult(len(traces), sum(len(by_trace[trace]) for trace in traces))

    assert rescue(store, since=start, until=start) == cs.RescueResult(0, 0)
    assert rescue(store, since=start, until=middle) == rescued(first)
    assert trace_ids(store, "otel_traces") == first
    assert rescue(store, since=middle, until=end) == rescued(second)
    assert trace_ids(store, "otel_traces") == first | second
    assert rescue(store) == cs.RescueResult(0, 0)
    stored = copied(store)
    assert len(stored) == len(set(stored)) == rescued(first | second).spans
    assert recorded(store) == stored


def test_a_rescue_stopped_between_its_record_and_its_copy_is_completed_once(store):
    """The record comes first (after the copy nothing is a candidate any more); the next
    rescue copies what is missing without recording it again."""
    sampled_world(store)
    before = copied(store)
    store.execute(
        query("rescue_record.sql", store.settings),
        {"since_ns": 0, "until_ns": 2**62, "skip": []},
    )  # the rescue's first step, then it stopped
    interrupted = recorded(store)
    assert interrupted and copied(store) == before
    assert rescue(store).spans == len(interrupted)
    assert recorded(store) == interrupted
    assert copied(store) == sorted(before + interrupted)


def test_rescue_command_line(tmp_path):
    url = f"chdb://{tmp_path}/store"
    with cs.connect(url) as store:
        sampled_world(store)
    command = [sys.executable, "-m", "closedloop.cli", "rescue", "--store", url, "--since", "30d"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    found = re.search(r"rescued (\d+) trace\(s\), (\d+) span\(s\) copied", result.stdout)
    assert found and int(found.group(2)) > 0, result.stdout
    again = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert "rescued 0 trace(s), 0 span(s) copied" in again.stdout
    with cs.connect(url) as store:  # the command's rescue is recorded, once
        rescued = recorded(store)
    assert (len({trace for trace, _ in rescued}), len(rescued)) == tuple(map(int, found.groups()))


def test_backdated_feedback_is_rescued_by_when_it_arrived(tmp_path, instrument, exporter):
    """Feedback recorded now about a call of three hours ago, with ``timestamp=`` two hours
    ago: the documented cron, ``closedloop rescue --since 1h``, brings the dropped trace
    back, because the window is about when feedback arrived, not the time it names."""
    now = datetime.datetime.now(datetime.timezone.utc)
    call_ns = int((now - datetime.timedelta(hours=3)).timestamp()) * 1_000_000_000
    app = InMemorySpanExporter()
    app_provider = TracerProvider()
    app_provider.add_span_processor(SimpleSpanProcessor(app))
    tracer = app_provider.get_tracer("app")
    root = tracer.start_span("handle_request", start_time=call_ns)
    call = tracer.start_span(
        "chat gpt-4o",
        context=trace.set_span_in_context(root),
        attributes={"gen_ai.operation.name": "chat", "gen_ai.prompt.name": "support"},
        start_time=call_ns + 1_000,
    )
    call.end(end_time=call_ns + 2_000_000)
    root.end(end_time=call_ns + 3_000_000)
    instrument()
    target = f"{format_trace_id(call.context.trace_id)}:{format_span_id(call.context.span_id)}"
    fb.thumbs(target, up=False, timestamp=now - datetime.timedelta(hours=2))
    [feedback] = exporter.get_finished_spans()
    url = f"chdb://{tmp_path}/store"
    with cs.connect(url) as store:
        # sampling dropped the call's trace: its spans reached the recent tier only; the
        # feedback span, kept by the feedback policy, reached both tiers
        store.insert_spans(app.get_finished_spans(), table="otel_traces_recent")
        store.insert_spans([feedback], table="otel_traces_recent")
        store.insert_spans([feedback], table="otel_traces")
    command = [sys.executable, "-m", "closedloop.cli", "rescue", "--store", url, "--since", "1h"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "rescued 1 trace(s), 2 span(s) copied" in result.stdout
    with cs.connect(url) as store:
        assert trace_ids(store, "otel_traces") == {format_trace_id(call.context.trace_id)}
        assert store.query("SELECT count() AS n FROM closedloop.otel_traces")[0]["n"] == 3
