"""Schema and views on the real chDB engine, checked against an independent computation."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

import closedloop.store as cs
from _support.traffic import Traffic, batches, generate_traffic
from closedloop.store._exporter import ClickHouseSpanExporter
from closedloop.store._rows import span_rows

from .reference_metrics import feedback_rows, prompt_version_metrics

CONTRIB_COLUMNS = (
    "Timestamp", "TraceId", "SpanId", "ParentSpanId", "TraceState", "SpanName", "SpanKind",
    "ServiceName", "ResourceAttributes", "ScopeName", "ScopeVersion", "SpanAttributes",
    "Duration", "StatusCode", "StatusMessage", "Events.Timestamp", "Events.Name",
    "Events.Attributes", "Links.TraceId", "Links.SpanId", "Links.TraceState", "Links.Attributes",
)  # fmt: skip


@pytest.fixture(scope="module")
def traffic() -> Traffic:
    return generate_traffic(700, seed=11, days=5)


def load_through_exporter(store, traffic, tmp_path) -> None:
    exporter = ClickHouseSpanExporter(store, spool_dir=tmp_path / "spool")
    for batch in batches(traffic.spans, 300):
        assert exporter.export(batch).name == "SUCCESS"
    assert exporter.force_flush()
    exporter.shutdown()
    # by default every span is written to both tiers: the recent one fills the typed tables
    assert exporter.stats().exported_spans == 2 * len(traffic.spans)


def assert_metrics_match(store, traffic) -> None:
    expected = prompt_version_metrics(traffic)
    rows = store.query("SELECT * FROM closedloop.prompt_version_metrics")
    assert {(r["prompt_name"], r["prompt_version"], r["day"]) for r in rows} == set(expected)
    for row in rows:
        want = expected[(row["prompt_name"], row["prompt_version"], row["day"])]
        for metric, value in want.items():
            if isinstance(value, float):
                assert row[metric] == pytest.approx(value, rel=1e-9), metric
            else:
                assert row[metric] == value, metric


def test_metrics_view_equals_independent_computation(store, traffic, tmp_path):
    load_through_exporter(store, traffic, tmp_path)
    assert_metrics_match(store, traffic)
    calls = store.query("SELECT count() AS n FROM closedloop.llm_calls")[0]["n"]
    signals = store.query("SELECT count() AS n FROM closedloop.feedback_signals")[0]["n"]
    assert (calls, signals) == (len(traffic.calls), len(traffic.feedback))


def test_feedback_view_has_a_row_per_call_and_signal(store, traffic, tmp_path):
    load_through_exporter(store, traffic, tmp_path)
    rows = store.query(
        "SELECT request_id, feedback_type, feedback_value, toUnixTimestamp64Nano(timestamp) AS ns"
        " FROM closedloop.feedback"
    )
    actual = []
    for row in rows:
        value = json.loads(row["feedback_value"]) if row["feedback_value"] else None
        actual.append(
            (
                row["request_id"],
                row["feedback_type"],
                value and value["name"],
                value and value["value"],
                value and value["label"],
                row["ns"],
            )
        )
    assert sorted(actual, key=repr) == feedback_rows(traffic)


def test_feedback_view_columns_follow_the_reference_table(store, traffic, tmp_path):
    load_through_exporter(store, traffic, tmp_path)
    row = store.query("SELECT * FROM closedloop.feedback WHERE feedback_type = 'explicit' LIMIT 1")[
        0
    ]
    assert list(row) == [
        "conversation_id", "turn_id", "request_id", "input", "output", "prompt_version",
        "model", "feedback_type", "feedback_value", "timestamp", "user_id_hash", "metadata",
    ]  # fmt: skip
    metadata = json.loads(row["metadata"])
    call = next(c for c in traffic.calls if c.span_id == metadata["span_id"])
    assert row["user_id_hash"] == call.user_hash
    assert row["conversation_id"] == call.conversation_id
    assert json.loads(row["input"]) == json.loads(call.input_text)


def test_contrib_exporter_rows_give_the_same_results(store, traffic):
    """Rows as the collector writes them: its column order, and the older spellings, every
    span to the recent tier and (unsampled here) to otel_traces, as its two exporters do."""
    old_kinds = {
        "Client": "SPAN_KIND_CLIENT",
        "Server": "SPAN_KIND_SERVER",
        "Internal": "SPAN_KIND_INTERNAL",
    }
    old_status = {
        "Error": "STATUS_CODE_ERROR",
        "Unset": "STATUS_CODE_UNSET",
        "Ok": "STATUS_CODE_OK",
    }
    lines = []
    for row in span_rows(traffic.spans):
        row["SpanKind"] = old_kinds[row["SpanKind"]]
        row["StatusCode"] = old_status[row["StatusCode"]]
        lines.append(json.dumps([row[column] for column in CONTRIB_COLUMNS]))
    for table in ("otel_traces_recent", "otel_traces"):
        store.execute(
            f"INSERT INTO closedloop.{table} ({', '.join(CONTRIB_COLUMNS)}) "
            "FORMAT JSONCompactEachRow\n" + "\n".join(lines)
        )
    assert_metrics_match(store, traffic)


def test_outcomes_view_reports_each_outcome(store, traffic, tmp_path):
    load_through_exporter(store, traffic, tmp_path)
    rows = store.query(
        "SELECT outcome, sum(reported) AS reported, sum(positive) AS positive "
        "FROM closedloop.prompt_version_outcomes GROUP BY outcome ORDER BY outcome"
    )
    assert {r["outcome"] for r in rows} == {
        "escalated", "needed_human_help", "task_succeeded", "ticket_reopened",
    }  # fmt: skip
    reopen = next(r for r in rows if r["outcome"] == "ticket_reopened")
    metrics = store.query(
        "SELECT sum(reopen_outcomes) AS n FROM closedloop.prompt_version_metrics"
    )[0]
    assert reopen["reported"] == metrics["n"]


def test_query_parameters_are_bound_not_formatted(store):
    hostile = "x' OR 1=1; DROP TABLE closedloop.otel_traces; --\\ \t tab \n newline"
    rows = store.query(
        "SELECT {value:String} AS echoed, length({value:String}) AS n", {"value": hostile}
    )
    assert rows == [{"echoed": hostile, "n": len(hostile)}]
    assert store.query("SELECT count() AS n FROM closedloop.otel_traces") == [{"n": 0}]
    listed = store.query("SELECT {ids:Array(String)} AS ids", {"ids": ["a'b", "c\\d", hostile]})
    assert listed == [{"ids": ["a'b", "c\\d", hostile]}]


def test_a_locked_store_names_the_process_holding_it(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, closedloop.store as cs
                store = cs.connect("chdb://{tmp_path}/store")
                print("ready", flush=True)
                sys.stdin.read()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(cs.StoreLockedError, match=f"process {holder.pid}"):
            cs.connect(f"chdb://{tmp_path}/store")
    finally:
        holder.communicate("", timeout=30)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgres://localhost/db", "unknown scheme"),
        ("chdb://", "names no directory"),
        ("chdb:///tmp/x?database=bad-name", "database"),
        ("chdb:///tmp/x?traces_ttl_days=soon", "traces_ttl_days"),
        ("chdb:///tmp/x?colour=blue", "unknown options"),
    ],
)
def test_bad_store_urls_say_what_to_fix(url, message):
    with pytest.raises(ValueError, match=message):
        cs.connect(url)
