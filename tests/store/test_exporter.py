"""ClickHouseSpanExporter: outages spool to disk within the bound, recovery loses nothing."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export import SpanExportResult

import closedloop.store as cs
from _support.traffic import batches, generate_traffic
from _support.waiting import wait_for
from closedloop.store._exporter import ClickHouseSpanExporter

# The default exporter writes each span to both trace tiers; the spool's counters count
# rows, so tests of the spool's arithmetic write one tier.
ONE_TIER = ("otel_traces",)


@pytest.fixture(scope="module")
def spans():
    return generate_traffic(150, seed=3, days=1).spans


def span_counts(store):
    return store.query(
        "SELECT count() AS rows, uniqExact(SpanId) AS unique_spans FROM closedloop.otel_traces"
    )[0]


def test_store_outage_mid_run_spools_then_replays_exactly_once(tmp_path, spans):
    store = cs.connect(f"chdb://{tmp_path}/store")
    exporter = ClickHouseSpanExporter(
        store, tables=ONE_TIER, spool_dir=tmp_path / "spool", retry_initial_s=0.01,
        retry_max_s=0.05,
    )  # fmt: skip
    parts = list(batches(spans, 50))
    try:
        assert exporter.export(parts[0]) is SpanExportResult.SUCCESS
        assert exporter.force_flush()
        store.close()
        for part in parts[1:]:
            assert exporter.export(part) is SpanExportResult.SUCCESS
        wait_for(lambda: exporter.stats().spool_spans == len(spans) - len(parts[0]))
        assert sorted(p.name for p in (tmp_path / "spool").iterdir())[0].startswith("000000000001")
        store.reopen()
        assert exporter.force_flush(timeout_millis=20_000)
        stats = exporter.stats()
        assert (stats.exported_spans, stats.dropped_spans, stats.spool_spans) == (len(spans), 0, 0)
        assert stats.failed_inserts >= 1
        assert span_counts(store) == {"rows": len(spans), "unique_spans": len(spans)}
        assert list((tmp_path / "spool").glob("*.jsonl")) == []
    finally:
        exporter.shutdown()
        store.close()


def test_overflow_beyond_the_bounds_is_refused_and_counted(tmp_path, spans):
    exporter = ClickHouseSpanExporter(
        "clickhouse://default:@127.0.0.1:9/closedloop",
        tables=ONE_TIER,
        spool_dir=tmp_path / "spool",
        max_queue_spans=100,
        max_spool_bytes=60_000,
        retry_initial_s=0.01,
        retry_max_s=0.02,
    )
    try:
        results = [(exporter.export(part), len(part)) for part in batches(spans, 25)]
        wait_for(lambda: exporter.stats().failed_inserts >= 2)
        stats = exporter.stats()
        accepted = sum(n for result, n in results if result is SpanExportResult.SUCCESS)
        refused = sum(n for result, n in results if result is SpanExportResult.FAILURE)
        assert refused > 0 and accepted > 0
        assert stats.dropped_spans == refused
        assert stats.spool_bytes <= 60_000
        assert stats.queued_spans + stats.spool_spans == accepted
        assert stats.queued_spans <= 100
    finally:
        exporter.shutdown()


def test_spool_survives_a_restart(tmp_path, spans):
    spool_dir = tmp_path / "spool"
    down = ClickHouseSpanExporter(
        "clickhouse://default:@127.0.0.1:9/closedloop", tables=ONE_TIER, spool_dir=spool_dir,
        retry_initial_s=0.01, retry_max_s=0.02,
    )  # fmt: skip
    for part in batches(spans, 40):
        assert down.export(part) is SpanExportResult.SUCCESS
    down.shutdown()
    assert down.stats().spool_spans == len(spans)
    url = f"chdb://{tmp_path}/store"
    back = ClickHouseSpanExporter(url, spool_dir=spool_dir)
    assert back.force_flush(timeout_millis=20_000)
    back.shutdown()
    store = cs.connect(url)
    try:
        assert span_counts(store) == {"rows": len(spans), "unique_spans": len(spans)}
    finally:
        store.close()


def test_writes_to_several_trace_tables(tmp_path, spans):
    store = cs.connect(f"chdb://{tmp_path}/store")
    exporter = ClickHouseSpanExporter(
        store, tables=("otel_traces_recent", "otel_traces"), spool_dir=tmp_path / "spool"
    )
    try:
        exporter.export(spans)
        assert exporter.force_flush()
        recent = store.query("SELECT count() AS n FROM closedloop.otel_traces_recent")[0]["n"]
        assert recent == span_counts(store)["rows"] == len(spans)
    finally:
        exporter.shutdown()
        store.close()


def test_bad_options_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="max_queue_spans"):
        ClickHouseSpanExporter("chdb:///x", max_queue_spans=0, spool_dir=tmp_path)
    with pytest.raises(ValueError, match="max_spool_bytes"):
        ClickHouseSpanExporter("chdb:///x", max_spool_bytes=0, spool_dir=tmp_path)


def test_instrument_with_the_exporter_writes_calls_to_the_store(tmp_path, provider, server):
    """Direct mode, no collector: instrumented openai calls land in llm_calls."""
    import openai

    import closedloop

    store = cs.connect(f"chdb://{tmp_path}/store")
    exporter = ClickHouseSpanExporter(store, spool_dir=tmp_path / "spool")
    provider_with_store = closedloop.instrument(
        exporter=exporter, tracer_provider=provider, user_hash_key="k"
    )
    try:
        client = openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0)
        with closedloop.context(prompt_name="support", prompt_version="v9", user_id="u1"):
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "mail a@b.io"}]
            )
        provider_with_store.force_flush()
        assert exporter.force_flush()
        rows = store.query(
            "SELECT prompt_version, input_tokens > 0 AS has_usage, cost_usd > 0 AS priced, "
            "m.input_messages LIKE '%<EMAIL>%' AS redacted FROM closedloop.llm_calls AS c "
            "JOIN closedloop.llm_call_content AS m USING (trace_id, span_id)"
        )
        assert rows == [{"prompt_version": "v9", "has_usage": 1, "priced": 1, "redacted": 1}]
    finally:
        closedloop.uninstrument()
        exporter.shutdown()
        store.close()
