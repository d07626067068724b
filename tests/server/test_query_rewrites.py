"""The query API's fast SQL answers exactly what the straightforward queries it replaced
did (tests/server/data/reference_*.sql), on generated traffic with the awkward cases:
spans stored twice, late feedback rescued, feedback on a request span or by trace id,
ties at a page boundary, filters and windows, and pages of one row to hundreds (the
feedback route's floor, its deeper tries and none at all). Sums of floats may differ in
their last bits, as the rows reach them in another order: those compare to 1e-12."""

from __future__ import annotations

import datetime
import math
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import format_span_id

import closedloop.store as cs
from _support.collector import PRODUCTION_CONFIG
from _support.traffic import generate_traffic
from closedloop.experiments._compare import query_text
from closedloop.sampling import SpanView, TailSampler, load
from closedloop.server._query import _QueryApi, _sql
from closedloop.store._schema import render

DATA = Path(__file__).with_name("data")
LATE_AFTER_NS = 60 * 1_000_000_000
OPEN = {"from_ns": None, "to_ns": None}
FEEDBACK_OPEN = {
    "prompt": None,
    "version": None,
    "name": None,
    "type": None,
    **OPEN,
    "cursor_ns": None,
    "cursor_trace": "",
    "cursor_span": "",
    "skip": 0,
}


def reference(store: cs.Store, name: str) -> str:
    return render((DATA / f"reference_{name}.sql").read_text(), store.settings)


def filled(store: cs.Store) -> list[ReadableSpan]:
    """Every span in the recent tier (a fifth of them twice), the tail sampler's traces in
    the sampled tier, and a rescue of the late feedback's traces; the spans, by start."""
    traffic = generate_traffic(150, seed=31, days=2)
    late = {
        item.span_id
        for item in traffic.feedback
        if item.timestamp_ns - item.call.start_ns > LATE_AFTER_NS
    }
    kept: list[SpanView] = []
    sampler = TailSampler(load(PRODUCTION_CONFIG), kept.extend)
    for is_late in (False, True):
        sampler.ingest(
            SpanView.of(span)
            for span in traffic.spans
            if (format_span_id(span.context.span_id) in late) is is_late
        )
        sampler.drain()
    store.insert_spans(traffic.spans, table="otel_traces_recent")
    store.insert_spans(traffic.spans[::5], table="otel_traces_recent")  # an exporter's retry
    store.insert_spans([view.source for view in kept if isinstance(view.source, ReadableSpan)])
    assert cs.rescue(store).spans > 0
    return sorted(traffic.spans, key=lambda span: span.start_time or 0)


def windows(spans: list[ReadableSpan]) -> list[dict[str, Any]]:
    starts = [span.start_time or 0 for span in spans]
    third = len(starts) // 3
    return [OPEN, {"from_ns": starts[third], "to_ns": starts[2 * third]}, {"from_ns": starts[-1]}]


def test_sampling_queries_answer_as_the_distinct_and_in_queries(store: cs.Store) -> None:
    spans = filled(store)
    for window in windows(spans):
        parameters = {**OPEN, **window}
        expected = store.query(reference(store, "sampling"), parameters)
        assert store.query(_sql("sampling.sql", store), parameters) == expected
        assert expected[0]["received_spans"] > 0
        for bucket_s in (3_600, 86_400):
            bucketed = {**parameters, "bucket_s": bucket_s}
            expected = store.query(reference(store, "sampling_series"), bucketed)
            assert store.query(_sql("sampling_series.sql", store), bucketed) == expected


def test_feedback_pages_are_the_feedback_views_pages(store: cs.Store) -> None:
    spans = filled(store)
    api = _QueryApi(store, None)
    middle = windows(spans)[1]
    cases: list[dict[str, Any]] = [
        {},
        {"name": "thumbs"},
        {"type": "outcome"},
        {"prompt": "triage", "version": "v1"},
        {"prompt": "support", "name": "safety", "type": "explicit"},
        {"name": "no-such-signal"},
        middle,
        {"to_ns": middle["to_ns"], "prompt": "support"},
    ]
    for case in cases:
        for size in (1, 7, 200):
            parameters = {**FEEDBACK_OPEN, **case, "limit": size + 1}
            pages = 0
            while True:
                expected = store.query(reference(store, "feedback_page"), parameters)
                assert api._feedback_rows(dict(parameters)) == expected, (case, size, pages)
                pages += 1
                if len(expected) <= size or pages == 4:
                    break
                last = expected[size - 1]
                key = (last["timestamp_ns"], last["trace_id"], last["span_id"])
                ties = sum(
                    (row["timestamp_ns"], row["trace_id"], row["span_id"]) == key
                    for row in expected[:size]
                )
                same = (
                    parameters["cursor_ns"] == key[0]
                    and (
                        parameters["cursor_trace"],
                        parameters["cursor_span"],
                    )
                    == key[1:]
                )
                parameters = {
                    **parameters,
                    "cursor_ns": key[0],
                    "cursor_trace": key[1],
                    "cursor_span": key[2],
                    "skip": ties + (parameters["skip"] if same else 0),
                }


def same_rows(got: list[dict[str, Any]], expected: list[dict[str, Any]]) -> bool:
    """Equal rows, floats equal but for the last bits a sum's order changes."""
    if len(got) != len(expected):
        return False
    return all(
        math.isclose(x[1], y[1], rel_tol=1e-12, abs_tol=1e-12) and x[0] == y[0]
        if isinstance(x[1], float) and isinstance(y[1], float)
        else x == y
        for a, b in zip(got, expected, strict=True)
        for x, y in zip(a.items(), b.items(), strict=True)
    )


def test_overview_and_versions_answer_as_the_metrics_view(store: cs.Store) -> None:
    spans = filled(store)
    days = sorted(
        {
            datetime.datetime.fromtimestamp((s.start_time or 0) / 1e9, datetime.UTC).date()
            for s in spans
        }
    )
    assert len(days) >= 2
    cases: list[dict[str, Any]] = [
        {},
        {"prompt": "support"},
        {"prompt": "triage"},
        {"prompt": "no-such-prompt"},
        {"from_day": days[-1]},
        {"to_day": days[0]},
        {"prompt": "support", "from_day": days[0], "to_day": days[0]},
        {"from_day": days[0], "to_day": days[-1]},
    ]
    for case in cases:
        parameters = {"prompt": None, "from_day": None, "to_day": None, **case}
        for name in ("overview", "versions"):
            expected = store.query(reference(store, name), parameters)
            got = store.query(_sql(f"{name}.sql", store), parameters)
            assert same_rows(got, expected), (name, case)
            if not case:
                assert any(row["task_success_rate"] is not None for row in expected)
                assert any(row["thumbs_up_rate"] is not None for row in expected)


def reference_units(store: cs.Store, parameters: dict[str, Any]) -> list[dict[str, Any]]:
    """The reference's per-unit rows, each unit's versions sorted (groupUniqArray's order
    is the hash table's)."""
    rows = store.query(reference(store, "compare_units"), parameters)
    return [{**row, "arms": sorted(row["arms"])} for row in rows]


def with_arms(row: dict[str, Any], baseline: str, candidate: str) -> dict[str, Any]:
    """A compare_units row in the reference's shape: its calls per version become the
    versions it has calls in (sorted), where the reference has them."""
    row = dict(row)
    calls = {baseline: row.pop("baseline_calls"), candidate: row.pop("candidate_calls")}
    arms = sorted(version for version, count in calls.items() if count > 0)
    return {"unit": row.pop("unit"), "arms": arms, **row}


def test_compare_units_answer_as_the_call_signals_view(store: cs.Store) -> None:
    spans = filled(store)
    starts = [span.start_time or 0 for span in spans]
    middle, late = starts[len(starts) // 2], starts[3 * len(starts) // 4]
    cases = [
        ("support", "v1", "v3", 0, 0, 2**62),
        ("support", "v2", "v3", middle, starts[0], 2**62),
        ("triage", "v1", "v2", 0, 0, late),
        ("triage", "v1", "v2", middle, middle, late),
    ]
    text = query_text(store.settings)
    for prompt, baseline, candidate, since, pre_since, until in cases:
        for by_user in (0, 1):
            parameters = {
                "prompt": prompt,
                "baseline": baseline,
                "candidate": candidate,
                "by_user": by_user,
                "since_ns": since,
                "until_ns": until,
                "pre_since_ns": pre_since if by_user else since,
            }
            expected = reference_units(store, parameters)
            got = [with_arms(row, baseline, candidate) for row in store.query(text, parameters)]
            assert same_rows(got, expected), (prompt, baseline, by_user, since)
            assert sum(row["task_outcomes"] + row["thumbs_votes"] for row in expected) > 0
