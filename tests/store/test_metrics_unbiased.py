"""Metrics under sampling, through the real chDB engine.

The typed tables behind the metrics are filled from the recent tier, which receives every
span before sampling; content-bearing spans stay sampled in ``otel_traces``. So the same
traffic gives the same ``prompt_version_metrics`` whether 15 % of plain traces are kept or
all of them, a rescue adds no call twice, and embedding calls made in a prompt's context
neither count as calls nor dilute event rates.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from openai import OpenAI

import closedloop
import closedloop.feedback as fb
import closedloop.store as cs
from _support.collector import PRODUCTION_CONFIG
from _support.traffic import Traffic, batches, generate_traffic
from closedloop.sampling import TailSampler, TailSamplingSpanProcessor, load
from closedloop.sampling._trace import SpanView
from closedloop.store import _ledger as ledger
from closedloop.store import rescue
from closedloop.store._exporter import ClickHouseSpanExporter
from closedloop.store._schema import migrations

from .reference_metrics import prompt_version_metrics

# Feedback given more than a minute after its call arrives after the sampler's decision.
LATE_AFTER_NS = 60 * 1_000_000_000
KEY = ("prompt_name", "prompt_version", "day")


@pytest.fixture(scope="module")
def traffic() -> Traffic:
    return generate_traffic(600, seed=15, days=3)


def metrics(store) -> list[dict[str, Any]]:
    return store.query("SELECT * FROM closedloop.prompt_version_metrics ORDER BY " + ", ".join(KEY))


def count(store, table: str) -> int:
    return store.query(f"SELECT count() AS n FROM closedloop.{table}")[0]["n"]


def empty_every_table(store) -> None:
    """Start the store afresh (chDB lets a process open one store directory only)."""
    tables = store.query(
        "SELECT name FROM system.tables WHERE database = 'closedloop' "
        "AND engine LIKE '%MergeTree' AND name != 'closedloop_migrations'"
    )
    for row in tables:
        store.execute(f"TRUNCATE TABLE closedloop.{row['name']}")


def load_unsampled(store, traffic: Traffic, spool) -> None:
    """Direct mode without sampling: the exporter with its defaults keeps every span."""
    exporter = ClickHouseSpanExporter(store, spool_dir=spool)
    for batch in batches(traffic.spans, 300):
        exporter.export(batch)
    assert exporter.force_flush()
    exporter.shutdown()


def load_sampled(store, traffic: Traffic, spool) -> None:
    """The production policy (errors, feedback, new users, 15 % of the rest) in the app,
    with late feedback arriving after its trace was decided, as in production."""
    processor = TailSamplingSpanProcessor(
        ClickHouseSpanExporter(store, spool_dir=spool), PRODUCTION_CONFIG, tick_seconds=3600
    )
    late = {f.span_id for f in traffic.feedback if f.timestamp_ns - f.call.start_ns > LATE_AFTER_NS}
    for span in traffic.spans:
        if f"{span.context.span_id:016x}" not in late:
            processor.on_end(span)
    processor.sampler.drain()
    for span in traffic.spans:
        if f"{span.context.span_id:016x}" in late:
            processor.on_end(span)
    processor.shutdown()


def assert_row(got: dict[str, Any], want: dict[str, Any]) -> None:
    """Equal column by column; sums of floats may differ in the last bits with the order."""
    for column, value in want.items():
        if isinstance(value, float):
            assert got[column] == pytest.approx(value, rel=1e-9), column
        else:
            assert got[column] == value, column


def assert_same_rows(actual: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    assert [tuple(r[k] for k in KEY) for r in actual] == [
        tuple(r[k] for k in KEY) for r in expected
    ]
    for got, want in zip(actual, expected, strict=True):
        assert list(got) == list(want)
        assert_row(got, want)


def test_sampled_traffic_gives_the_same_metrics_as_unsampled(store, traffic, tmp_path):
    load_unsampled(store, traffic, tmp_path / "spool-all")
    unsampled = metrics(store)
    assert count(store, "otel_traces") == len(traffic.spans)

    empty_every_table(store)
    load_sampled(store, traffic, tmp_path / "spool-sampled")
    sampled = metrics(store)
    assert_same_rows(sampled, unsampled)
    kept_spans = count(store, "otel_traces")
    assert 0 < kept_spans < len(traffic.spans) == count(store, "otel_traces_recent")
    assert (count(store, "llm_calls"), count(store, "feedback_signals")) == (
        len(traffic.calls),
        len(traffic.feedback),
    )
    reference = prompt_version_metrics(traffic)
    assert {tuple(r[k] for k in KEY) for r in sampled} == set(reference)
    for row in sampled:
        assert_row(row, reference[tuple(row[k] for k in KEY)])

    # The rescue copies dropped traces with late feedback into otel_traces: the typed
    # tables, fed by the recent tier only, count nothing twice.
    assert rescue(store).spans > 0
    assert count(store, "otel_traces") > kept_spans
    assert count(store, "llm_calls") == len(traffic.calls)
    assert count(store, "feedback_signals") == len(traffic.feedback)
    assert_same_rows(metrics(store), unsampled)


def test_content_is_kept_for_sampled_traces_only(store, traffic, tmp_path):
    load_sampled(store, traffic, tmp_path / "spool")
    kept = store.query(
        "SELECT count() AS n FROM closedloop.otel_traces "
        "WHERE SpanAttributes['gen_ai.input.messages'] != ''"
    )[0]["n"]
    assert 0 < kept < len(traffic.calls) == count(store, "llm_calls")
    assert count(store, "llm_call_content") == kept
    with_input = store.query(
        "SELECT countIf(input != '') AS n, count() AS calls FROM closedloop.feedback "
        "WHERE feedback_type IS NULL"
    )[0]
    assert 0 < with_input["n"] < with_input["calls"]


def test_direct_mode_fills_both_tiers_by_default(store, tmp_path):
    """``ClickHouseSpanExporter(store)`` is the one call an app needs: every span reaches the
    recent tier (metrics, rescue) and otel_traces, with nothing left to rescue."""
    traffic = generate_traffic(40, seed=5, days=1)
    load_unsampled(store, traffic, tmp_path / "spool")
    assert count(store, "otel_traces_recent") == count(store, "otel_traces") == len(traffic.spans)
    assert count(store, "llm_calls") == len(traffic.calls)
    assert rescue(store).spans == 0


ASK = [{"role": "user", "content": "Where is my refund?"}]


def over_days(store) -> list[dict[str, Any]]:
    """Per prompt and version, the metrics the embeddings test reads, summed over the days
    (calls made just now straddle UTC midnight when the run does); rates from the counts."""
    return store.query(
        "SELECT groupArray(toString(m.day)) AS days, sum(m.calls) AS calls, "
        "sum(m.escalation_rate * m.calls) / calls AS escalation_rate, "
        "sum(m.needs_human_help_rate * m.calls) / calls AS needs_human_help_rate, "
        "sum(m.embedding_calls) AS embedding_calls, "
        "sum(m.embedding_input_tokens) AS embedding_input_tokens, "
        "sum(m.embedding_cost_usd) AS embedding_cost_usd "
        "FROM closedloop.prompt_version_metrics AS m GROUP BY m.prompt_name, m.prompt_version"
    )


def test_embeddings_are_reported_apart_from_generations(tmp_path, provider, server):
    """Embedding calls in a prompt's context: not calls, not in any rate's denominator, not
    the call that feedback given by trace id lands on."""
    store = cs.connect(f"chdb://{tmp_path}/store")
    exporter = ClickHouseSpanExporter(store, spool_dir=tmp_path / "spool")
    instrumented = closedloop.instrument(
        exporter=exporter, tracer_provider=provider, user_hash_key="k"
    )
    tracer = provider.get_tracer("app")
    client = OpenAI(base_url=server.base_url, api_key="k", max_retries=0)
    replies, trace_ids = [], []
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    try:
        with closedloop.context(prompt_name="support", prompt_version="v1"):
            for _ in range(2):
                with tracer.start_as_current_span("handle_request"):
                    client.embeddings.create(model="text-embedding-3-small", input="refund")
                    replies.append(client.chat.completions.create(model="gpt-4o", messages=ASK))
                    # after the answer, e.g. to cache it: the trace's latest LLM call
                    client.embeddings.create(model="text-embedding-3-small", input="cache it")
                    trace_ids.append(closedloop.current_trace_id())
        fb.outcome(replies[0], "escalated", True)
        fb.outcome(trace_ids[1], "needed_human_help", True)  # by trace id only
        instrumented.force_flush()
        assert exporter.force_flush()
        [row] = over_days(store)
        embedded = store.query(
            "SELECT sum(input_tokens) AS tokens, sum(cost_usd) AS cost FROM closedloop.llm_calls "
            "WHERE operation = 'embeddings'"
        )[0]
    finally:
        closedloop.uninstrument()
        exporter.shutdown()
        store.close()
    assert (row["calls"], row["escalation_rate"], row["needs_human_help_rate"]) == (2, 0.5, 0.5)
    assert row["embedding_calls"] == 4
    assert row["embedding_input_tokens"] == embedded["tokens"] > 0
    assert embedded["cost"] > 0
    assert row["embedding_cost_usd"] == pytest.approx(embedded["cost"])
    # the UTC days of the calls, made just now (the run may have crossed midnight)
    assert set(row["days"]) <= {
        today,
        datetime.datetime.now(datetime.timezone.utc).date().isoformat(),
    }


def migrate_up_to(store, version: int) -> None:
    """Bring a new store to the schema of an older release."""
    ledger.prepare(store)
    for migration in migrations(store.settings):
        if migration.version <= version:
            ledger.apply(store, migration)


def test_upgrade_rebuilds_the_typed_tables_from_every_span(tmp_path):
    """A store written before the typed tables moved: a collector's two tiers (typed tables
    from the sampled one) and an app that wrote otel_traces alone. The upgrade refills them
    from every span the recent tier holds plus the otel_traces spans it lacks."""
    tiered, direct = generate_traffic(150, seed=21, days=1), generate_traffic(60, seed=22, days=1)
    store = cs.connect(f"chdb://{tmp_path}/store", migrate=False)
    try:
        migrate_up_to(store, 7)
        late = {
            f.span_id for f in tiered.feedback if f.timestamp_ns - f.call.start_ns > LATE_AFTER_NS
        }
        views = [SpanView.of(span) for span in tiered.spans]
        kept: list[SpanView] = []
        sampler = TailSampler(load(PRODUCTION_CONFIG), kept.extend)
        for arrival in (False, True):  # late feedback comes after its trace was decided
            sampler.ingest(v for v in views if (f"{v.span_id:016x}" in late) == arrival)
            sampler.drain()
        assert 0 < len(kept) < len(views)
        store.insert_spans(tiered.spans, table="otel_traces_recent")
        store.insert_spans([view.source for view in kept], table="otel_traces")
        store.insert_spans(direct.spans, table="otel_traces")

        store.migrate()
        everything = Traffic(
            calls=tiered.calls + direct.calls, feedback=tiered.feedback + direct.feedback
        )
        assert count(store, "llm_calls") == len(everything.calls)
        assert count(store, "feedback_signals") == len(everything.feedback)
        reference = prompt_version_metrics(everything)
        rows = metrics(store)
        assert {tuple(r[k] for k in KEY) for r in rows} == set(reference)
        for row in rows:
            assert_row(row, reference[tuple(row[k] for k in KEY)])
        content = store.query(
            "SELECT count() AS n FROM closedloop.otel_traces "
            "WHERE SpanAttributes['gen_ai.input.messages'] != ''"
        )[0]["n"]
        assert count(store, "llm_call_content") == content
        # feedback already in the recent tier counts as arriving at the upgrade
        recent_feedback = store.query(
            "SELECT count() AS n FROM closedloop.otel_traces_recent "
            "WHERE SpanName = 'closedloop.feedback'"
        )[0]["n"]
        assert count(store, "feedback_arrivals") == recent_feedback
        upgraded = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
        assert rescue(store, since=upgraded).spans > 0
        assert count(store, "llm_calls") == len(everything.calls)
    finally:
        store.close()
