"""compare_units.sql takes each call's latest signal of each name exactly as the
call_signals view does (tests/server/data/reference_compare_units.sql), on rows written
straight into llm_calls and feedback_signals for the cases generated traffic seldom has:
timestamps tied (the larger feedback span id wins, compared as text), timestamps before
1970, a latest value that is NULL (argMax skips it), feedback on a request span or by
trace id (the trace's latest non-shadow generation, ties by span id), and feedback on an
LLM span that is no generation."""

from __future__ import annotations

import datetime
import json
from typing import Any

import closedloop.store as cs
from closedloop.experiments._compare import query_text
from server.test_query_rewrites import reference_units, same_rows, with_arms

BASE = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0, tzinfo=None)


def _at(seconds: int, nanoseconds: int = 0) -> str:
    """A DateTime64(9) a few seconds after an hour ago (within the tables' TTL)."""
    moment = BASE - datetime.timedelta(hours=1) + datetime.timedelta(seconds=seconds)
    return f"{moment:%Y-%m-%d %H:%M:%S}.{nanoseconds:09d}"


A = _at(0, 500)
CALLS = [
    # trace, span, version, user, timestamp, generation (else an embedding), shadow
    ("t1", "s1", "v1", "u1", _at(0), 1, 0),
    ("t2", "s2", "v2", "u2", _at(0), 1, 0),
    ("t2", "s2-shadow", "v2", "u2", _at(9), 1, 1),
    ("t2", "s2-embedding", "v2", "u2", _at(9), 0, 0),
    ("t3", "s3a", "v1", "u3", _at(0), 1, 0),
    ("t3", "s3b", "v1", "u3", _at(0), 1, 0),
    ("t4", "s4", "v1", "", _at(0), 1, 0),
    ("t5", "s5", "v2", "u1", _at(0), 1, 0),
]
SIGNALS = [
    # trace, target span, feedback span, timestamp, name, value, label
    ("t1", "s1", "z", _at(0, 499), "rating", 2.0, ""),
    ("t1", "s1", "b", A, "rating", 5.0, ""),
    ("t1", "s1", "ab", A, "rating", 1.0, ""),
    ("t1", "s1", "ba", A, "rating", 3.0, ""),  # tied: "ba" sorts last
    ("t1", "s1", "f1", _at(5), "task_succeeded", 1.0, ""),
    ("t1", "s1", "f2", _at(10), "task_succeeded", None, ""),
    ("t1", "s1", "g1", "1950-01-01 00:00:00", "thumbs", 0.0, ""),
    ("t1", "s1", "g0", "1960-01-01 00:00:00", "thumbs", 1.0, ""),
    ("t1", "s1", "e1", "1960-01-01 00:00:00", "edit_ratio", 0.9, ""),
    ("t1", "s1", "e0", _at(0), "edit_ratio", 0.2, ""),
    ("t1", "s1", "x1", A, "safety", None, "none"),
    ("t1", "s1", "x2", A, "safety", None, "high"),
    ("t2", "request", "r1", A, "rating", 4.0, ""),
    ("t2", "", "r2", A, "thumbs", 1.0, ""),
    ("t2", "s2-embedding", "r3", A, "ticket_reopened", 1.0, ""),
    ("t3", "request", "q1", A, "retry", 1.0, ""),
    ("t4", "s4", "w1", A, "escalated", 1.0, ""),
    ("t5", "s5", "w2", A, "abandoned", 1.0, ""),
]


def _insert(store: cs.Store, table: str, rows: list[dict[str, Any]]) -> None:
    lines = "\n".join(json.dumps(row) for row in rows)
    store.execute(f"INSERT INTO {store.database}.{table} FORMAT JSONEachRow\n{lines}")


def _fill(store: cs.Store) -> None:
    _insert(
        store,
        "llm_calls",
        [
            {
                "trace_id": trace,
                "span_id": span,
                "prompt_name": "p",
                "prompt_version": version,
                "user_hash": user,
                "timestamp": timestamp,
                "operation": "chat" if generation else "embeddings",
                "shadow": bool(shadow),
                "latency_ms": 100.0,
            }
            for trace, span, version, user, timestamp, generation, shadow in CALLS
        ],
    )
    _insert(
        store,
        "feedback_signals",
        [
            {
                "trace_id": trace,
                "target_span_id": target,
                "feedback_span_id": feedback,
                "timestamp": timestamp,
                "name": name,
                "value": value,
                "label": label,
            }
            for trace, target, feedback, timestamp, name, value, label in SIGNALS
        ],
    )


def _parameters(by_user: int) -> dict[str, Any]:
    return {
        "prompt": "p",
        "baseline": "v1",
        "candidate": "v2",
        "by_user": by_user,
        "since_ns": 0,
        "until_ns": 2**62,
        "pre_since_ns": 0,
    }


def test_each_calls_latest_signal_is_the_call_signals_views(store: cs.Store) -> None:
    _fill(store)
    for by_user in (0, 1):
        expected = reference_units(store, _parameters(by_user))
        got = store.query(query_text(store.settings), _parameters(by_user))
        assert same_rows([with_arms(row, "v1", "v2") for row in got], expected), by_user
    calls = {row["unit"]: row for row in store.query(query_text(store.settings), _parameters(0))}
    t1 = calls["t1:s1"]
    assert (t1["rating_sum"], t1["tasks_succeeded"], t1["thumbs_up"]) == (3.0, 1, 1)
    assert (t1["edit_ratio_sum"], t1["safety_triggered"]) == (0.2, 1)
    t2 = calls["t2:s2"]
    assert (t2["rating_sum"], t2["thumbs_up"], t2["reopen_outcomes"]) == (4.0, 1, 0)
    assert (calls["t3:s3a"]["retried"], calls["t3:s3b"]["retried"]) == (0, 1)


def test_query_columns_are_the_query_rows_column_by_column(store: cs.Store) -> None:
    _fill(store)
    for by_user in (0, 1):
        rows = store.query(query_text(store.settings), _parameters(by_user))
        columns = store.query_columns(query_text(store.settings), _parameters(by_user))
        assert columns == {name: [row[name] for row in rows] for name in rows[0]}
    assert store.query_columns(f"SELECT 1 AS one FROM {store.database}.llm_calls WHERE 0") == {
        "one": []
    }
