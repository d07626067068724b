"""The exporter's and the rescue's counters, as OTel metrics read through a real SDK reader.

Each test compares the metrics' growth during the test with ``stats()`` (or the rescue's
result): the metrics are the same counts, summed over exporters, in any OTel backend.
"""

from __future__ import annotations

import time

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import closedloop.store as cs
from _support.metrics import Sums, closedloop_sums, global_metric_reader
from _support.stores import dead_store_url
from _support.traffic import generate_traffic
from closedloop.store import rescue
from closedloop.store._exporter import ClickHouseSpanExporter, ExporterStats
from closedloop.store._instruments import (
    INSERT_FAILURES_METRIC,
    RESCUED_SPANS_METRIC,
    RESCUED_TRACES_METRIC,
    SPANS_METRIC,
)

NS = 1_000_000_000
OUTCOMES = ("exported", "spooled", "adopted", "rejected", "dropped")


@pytest.fixture
def reader():
    return global_metric_reader()


def spans(count: int, start_ns: int | None = None) -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "metrics"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    for n in range(count):
        span = provider.get_tracer("metrics").start_span(f"call {n}", start_time=start_ns)
        span.end(end_time=None if start_ns is None else start_ns + 1000)
    return list(memory.get_finished_spans())


def growth(reader, before: Sums) -> dict[str, int]:
    """How much each store counter grew since ``before``."""
    now, _ = closedloop_sums(reader)
    grown = {
        outcome: now[SPANS_METRIC, (("outcome", outcome),)]
        - before[SPANS_METRIC, (("outcome", outcome),)]
        for outcome in OUTCOMES
    }
    grown["failed_inserts"] = now[INSERT_FAILURES_METRIC, ()] - before[INSERT_FAILURES_METRIC, ()]
    return grown


def as_counted(stats: ExporterStats) -> dict[str, int]:
    return {
        "exported": stats.exported_spans,
        "spooled": stats.spooled_spans_total,
        "adopted": stats.adopted_spans,
        "rejected": stats.rejected_spans,
        "dropped": stats.dropped_spans,
        "failed_inserts": stats.failed_inserts,
    }


def test_exported_and_rejected_spans_are_metrics(tmp_path, reader):
    store = cs.connect(f"chdb://{tmp_path}/store")
    before, _ = closedloop_sums(reader)
    exporter = ClickHouseSpanExporter(store, spool_dir=tmp_path / "spool")
    # a timestamp in milliseconds where seconds belong: the store refuses that row
    bad = spans(1, start_ns=int(time.time() * 1000) * NS)
    try:
        assert exporter.export(spans(7) + bad) is SpanExportResult.SUCCESS
        assert exporter.force_flush(timeout_millis=20_000)
    finally:
        exporter.shutdown()
        store.close()
    counted = as_counted(exporter.stats())
    assert (counted["exported"], counted["rejected"]) == (14, 2)  # both tiers
    assert growth(reader, before) == counted
    _, units = closedloop_sums(reader)
    assert units[SPANS_METRIC] == "{span}"


def test_an_outage_spools_drops_and_fails_inserts_then_a_restart_adopts(tmp_path, reader):
    before, _ = closedloop_sums(reader)
    down = ClickHouseSpanExporter(
        dead_store_url(), tables=("otel_traces",), spool_dir=tmp_path / "spool",
        max_queue_spans=10, max_spool_bytes=4_000, retry_initial_s=0.01, retry_max_s=0.02,
    )  # fmt: skip
    for _ in range(30):
        down.export(spans(2))
    down.shutdown()
    counted = as_counted(down.stats())
    assert counted["spooled"] > 0 and counted["dropped"] > 0 and counted["failed_inserts"] > 0
    assert growth(reader, before) == counted
    assert closedloop_sums(reader)[1][INSERT_FAILURES_METRIC] == "{insert}"

    before, _ = closedloop_sums(reader)
    back = ClickHouseSpanExporter(f"chdb://{tmp_path}/store", spool_dir=tmp_path / "spool")
    assert back.force_flush(timeout_millis=20_000)
    back.shutdown()
    counted = as_counted(back.stats())
    assert counted["adopted"] == counted["exported"] == down.stats().spool_spans > 0
    assert growth(reader, before) == counted


def test_rescued_traces_and_spans_are_metrics(tmp_path, reader):
    traffic = generate_traffic(40, seed=8, days=1)
    with cs.connect(f"chdb://{tmp_path}/store") as store:
        store.insert_spans(traffic.spans, table="otel_traces_recent")  # sampling kept none
        before, _ = closedloop_sums(reader)
        result = rescue(store)
        again = rescue(store)
    now, units = closedloop_sums(reader)
    assert result.traces == len({item.trace_id for item in traffic.feedback}) > 0
    assert again.spans == 0
    assert now[RESCUED_TRACES_METRIC, ()] - before[RESCUED_TRACES_METRIC, ()] == result.traces
    assert now[RESCUED_SPANS_METRIC, ()] - before[RESCUED_SPANS_METRIC, ()] == result.spans
    assert (units[RESCUED_TRACES_METRIC], units[RESCUED_SPANS_METRIC]) == ("{trace}", "{span}")
