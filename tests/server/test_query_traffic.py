"""The query API on seeded traffic: every answer checked against the generated truth.

One store per backend for the module (chDB lets a process hold one): every span written to
the recent tier and the traces closedloop's tail sampler keeps to ``otel_traces``, both
through the real ``ClickHouseSpanExporter``, in a database not named ``closedloop`` so the
SQL must take the name from the store's settings. Requests go through Starlette's ASGI
routes with ``TestClient``.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import format_span_id, format_trace_id
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.testclient import TestClient

import closedloop.store as cs
from _support.collector import PRODUCTION_CONFIG
from _support.traffic import DAY_NS, Traffic, batches, generate_traffic
from closedloop.sampling import TailSampler, load
from closedloop.sampling._trace import SpanView
from closedloop.server._query import PAGE_MOST, query_routes
from closedloop.store._schema import SchemaSettings
from closedloop.store._server_store import ClickHouseServerStore
from store.reference_metrics import prompt_version_metrics

DATABASE = "query_api"
SETTINGS = SchemaSettings(database=DATABASE, recent_ttl_days=30)  # no span expires mid-test
API_KEY = "query-test-key"


@dataclass
class World:
    client: TestClient
    traffic: Traffic
    kept: list[ReadableSpan]
    store: cs.Store


def iso(ns: int) -> str:
    seconds, fraction = divmod(ns, 1_000_000_000)
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{fraction:09d}Z"


def span_key(span: ReadableSpan) -> tuple[str, str]:
    assert span.context is not None
    return format_trace_id(span.context.trace_id), format_span_id(span.context.span_id)


def keyed(request: Request) -> bool:
    return request.headers.get("authorization") == f"Bearer {API_KEY}"


@pytest.fixture(scope="module", params=["chdb", "clickhouse-connect"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    directory = tmp_path_factory.mktemp("query-store")
    if request.param == "chdb":
        store: cs.Store = cs.connect(
            f"chdb://{directory}/store?database={DATABASE}&recent_ttl_days=30"
        )
    else:
        store = ClickHouseServerStore(SETTINGS, dsn=f"chdb://{directory}/store")
        store.migrate()
    traffic = generate_traffic(400, seed=23, days=4)
    kept_views: list[SpanView] = []
    sampler = TailSampler(load(PRODUCTION_CONFIG), kept_views.extend)
    sampler.ingest(SpanView.of(span) for span in traffic.spans)
    sampler.drain()
    kept = [view.source for view in kept_views if view.source is not None]
    exporter = cs.ClickHouseSpanExporter(store, spool_dir=directory / "spool")
    for batch in batches(traffic.spans, 250):
        assert exporter.export_to(batch, ("otel_traces_recent",)).name == "SUCCESS"
    assert exporter.export_to(kept, ("otel_traces",)).name == "SUCCESS"
    assert exporter.force_flush()
    exporter.shutdown()
    app = Starlette(routes=query_routes(store, authorize=keyed))
    with TestClient(app, headers={"Authorization": f"Bearer {API_KEY}"}) as client:
        yield World(client, traffic, kept, store)
    store.close()


def get(world: World, path: str, **query: Any) -> Any:
    response = world.client.get(path, params=query)
    assert response.status_code == 200, response.text
    return response.json()


def refused(world: World, path: str, parameter: str, **query: Any) -> str:
    response = world.client.get(path, params=query)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["parameter"] == parameter
    return str(body["error"])


# /api/prompts


def day_of(ns: int) -> str:
    return datetime.datetime.fromtimestamp(ns / 1e9, tz=datetime.timezone.utc).date().isoformat()


def assert_rows_match(rows: list[dict[str, Any]], expected: dict[tuple[str, str, str], Any]):
    assert [(r["prompt_name"], r["prompt_version"], r["day"]) for r in rows] == sorted(
        expected, key=lambda key: (-datetime.date.fromisoformat(key[2]).toordinal(), key[:2])
    )
    for row in rows:
        want = expected[(row["prompt_name"], row["prompt_version"], row["day"])]
        for metric, value in want.items():
            if isinstance(value, float):
                assert row[metric] == pytest.approx(value, rel=1e-9), metric
            else:
                assert row[metric] == value, metric


def test_prompts_are_the_metrics_of_every_call(world):
    rows = get(world, "/api/prompts")["rows"]
    expected = prompt_version_metrics(world.traffic)
    assert len(expected) >= 20  # 5 prompt versions over 4 days
    assert_rows_match(rows, expected)


def test_prompts_filter_by_prompt_version_and_inclusive_days(world):
    days = sorted({day_of(call.start_ns) for call in world.traffic.calls})
    first, last = days[1], days[2]
    rows = get(
        world, "/api/prompts", prompt="support", version="v2", **{"from": first, "to": last}
    )["rows"]
    expected = {
        key: value
        for key, value in prompt_version_metrics(world.traffic).items()
        if key[:2] == ("support", "v2") and first <= key[2] <= last
    }
    assert {row["day"] for row in rows} == {first, last}
    assert_rows_match(rows, expected)
    assert get(world, "/api/prompts", prompt="no-such-prompt")["rows"] == []


def test_prompts_refuse_bad_days_naming_the_parameter(world):
    assert "YYYY-MM-DD" in refused(world, "/api/prompts", "from", **{"from": "2025-02-30"})
    refused(world, "/api/prompts", "to", to="yesterday")
    refused(world, "/api/prompts", "to", to="2025-06-01T10:00:00Z")  # days only here
    refused(world, "/api/prompts", "from", **{"from": "0001-01-01"})
    assert "before" in refused(
        world, "/api/prompts", "to", **{"from": "2025-06-02", "to": "2025-06-01"}
    )
    assert "unknown parameter" in refused(world, "/api/prompts", "promt", promt="support")
    for query in ("prompt=a&prompt=b", "prompt=&prompt=b"):
        response = world.client.get(f"/api/prompts?{query}")
        assert (response.status_code, response.json()["parameter"]) == (400, "prompt")
    unfiltered = get(world, "/api/prompts", prompt="", version="")["rows"]  # empty: not given
    assert_rows_match(unfiltered, prompt_version_metrics(world.traffic))


# /api/feedback


def expected_feedback(traffic: Traffic) -> list[dict[str, Any]]:
    """The feedback view's rows from the truth: one per call and signal, or one per call
    without feedback."""
    by_call: dict[tuple[str, str], list[Any]] = {}
    for item in traffic.feedback:
        by_call.setdefault((item.trace_id, item.call.span_id), []).append(item)
    rows = []
    for call in traffic.calls:
        common = {
            "trace_id": call.trace_id,
            "span_id": call.span_id,
            "prompt_name": call.prompt_name,
            "prompt_version": call.prompt_version,
        }
        items = by_call.get((call.trace_id, call.span_id), [])
        for item in items:
            rows.append(
                {
                    **common,
                    "type": item.kind,
                    "name": item.name,
                    "value": item.value,
                    "label": item.label,
                    "ns": item.timestamp_ns,
                }
            )
        if not items:
            rows.append(
                {
                    **common,
                    "type": None,
                    "name": None,
                    "value": None,
                    "label": None,
                    "ns": call.start_ns,
                }
            )
    return rows


def as_truth(row: dict[str, Any]) -> tuple[Any, ...]:
    value = row["feedback_value"] or {}
    return (
        row["metadata"]["trace_id"],
        row["metadata"]["span_id"],
        row["metadata"]["prompt_name"],
        row["prompt_version"],
        row["feedback_type"],
        value.get("name"),
        value.get("value"),
        value.get("label"),
        row["timestamp"],
    )


def truth_key(row: dict[str, Any]) -> tuple[Any, ...]:
    return (
        row["trace_id"], row["span_id"], row["prompt_name"], row["prompt_version"], row["type"],
        row["name"], row["value"], row["label"], iso(row["ns"]),
    )  # fmt: skip


def walk(world: World, limit: int, **query: Any) -> tuple[list[dict[str, Any]], int]:
    """Every page in turn: the rows, and how many pages it took (a cursor that stops
    advancing fails instead of looping)."""
    rows: list[dict[str, Any]] = []
    cursor = None
    for pages in range(1, len(world.traffic.calls) + len(world.traffic.feedback) + 2):
        extra = {"cursor": cursor} if cursor else {}
        page = get(world, "/api/feedback", limit=limit, **query, **extra)
        assert page["limit"] == limit
        assert len(page["rows"]) <= limit
        rows.extend(page["rows"])
        cursor = page["next_cursor"]
        if cursor is None:
            return rows, pages
    raise AssertionError("more pages than rows: the cursor does not advance")


def test_feedback_pages_cover_the_view_once_newest_first(world):
    expected = sorted(truth_key(row) for row in expected_feedback(world.traffic))
    rows, pages = walk(world, 97)
    assert sorted(as_truth(row) for row in rows) == expected  # none twice, none missed
    assert pages == -(-len(expected) // 97)
    order = [(r["timestamp"], r["metadata"]["trace_id"], r["metadata"]["span_id"]) for r in rows]
    assert order == sorted(order, reverse=True)


def test_feedback_rows_carry_the_calls_and_content_of_kept_traces(world):
    calls = {(c.trace_id, c.span_id): c for c in world.traffic.calls}
    kept_traces = {span_key(span)[0] for span in world.kept}
    rows, _ = walk(world, PAGE_MOST)
    with_content = 0
    for row in rows:
        call = calls[(row["metadata"]["trace_id"], row["metadata"]["span_id"])]
        assert row["request_id"] == f"{call.trace_id}:{call.span_id}"
        assert (row["conversation_id"], row["user_id_hash"]) == (
            call.conversation_id,
            call.user_hash,
        )
        assert row["turn_id"] == call.turn
        assert row["metadata"]["call_timestamp"] == iso(call.start_ns)
        assert row["metadata"]["input_tokens"] == (0 if call.is_error else call.input_tokens)
        assert row["metadata"]["is_error"] is call.is_error
        assert row["metadata"]["shadow"] is call.shadow
        if call.trace_id in kept_traces and call.generation:
            assert json.loads(row["input"]) == json.loads(call.input_text)
            with_content += 1
        elif call.trace_id not in kept_traces:
            assert (row["input"], row["output"]) == ("", "")  # content only when sampled
    assert with_content > 0
    assert len(kept_traces) < len({c.trace_id for c in world.traffic.calls})


@pytest.mark.parametrize(
    ("query", "keep"),
    [
        ({"name": "thumbs"}, lambda row: row["name"] == "thumbs"),
        ({"type": "outcome"}, lambda row: row["type"] == "outcome"),
        (
            {"prompt": "triage", "version": "v1"},
            lambda row: (row["prompt_name"], row["prompt_version"]) == ("triage", "v1"),
        ),
        (
            {"prompt": "support", "name": "safety", "type": "explicit"},
            lambda row: (row["prompt_name"], row["name"]) == ("support", "safety"),
        ),
    ],
)
def test_feedback_filters(world, query, keep):
    expected = sorted(truth_key(row) for row in expected_feedback(world.traffic) if keep(row))
    assert expected
    rows, _ = walk(world, 50, **query)
    assert sorted(as_truth(row) for row in rows) == expected


def test_feedback_time_bounds_are_inclusive_to_the_nanosecond(world):
    truth = expected_feedback(world.traffic)
    times = sorted({row["ns"] for row in truth})
    low, high = times[len(times) // 4], times[len(times) // 2]
    expected = sorted(truth_key(row) for row in truth if low <= row["ns"] <= high)
    rows, _ = walk(world, PAGE_MOST, **{"from": iso(low), "to": iso(high)})
    assert sorted(as_truth(row) for row in rows) == expected
    assert {rows[0]["timestamp"], rows[-1]["timestamp"]} == {iso(low), iso(high)}

    day = day_of(low)
    start = int(
        datetime.datetime.fromisoformat(day).replace(tzinfo=datetime.timezone.utc).timestamp()
    )
    within = [row for row in truth if start * 10**9 <= row["ns"] < start * 10**9 + DAY_NS]
    rows, _ = walk(world, PAGE_MOST, **{"from": day, "to": day})
    assert sorted(as_truth(row) for row in rows) == sorted(truth_key(row) for row in within)


def test_feedback_limit_is_capped(world):
    page = get(world, "/api/feedback", limit=100_000)
    assert page["limit"] == PAGE_MOST
    assert len(page["rows"]) == PAGE_MOST
    assert page["next_cursor"] is not None
    assert len(get(world, "/api/feedback")["rows"]) == 100  # the default


def test_feedback_refuses_bad_parameters(world):
    for bad in ("0", "-3", "ten", "1.5", "٣"):
        refused(world, "/api/feedback", "limit", limit=bad)
    cursor = get(world, "/api/feedback", limit=5)["next_cursor"]
    for bad in ("not-a-cursor", cursor[:-3], "W10", "WzEsImFiIiwiY2QiLDBd"):  # [], skip 0
        assert "next_cursor" in refused(world, "/api/feedback", "cursor", cursor=bad)
    assert "outcome" in refused(world, "/api/feedback", "type", type="opinion")
    refused(world, "/api/feedback", "from", **{"from": "2025-06-01T25:00:00Z"})
    refused(world, "/api/feedback", "to", to="2025-06-01T10:00:00+5")
    refused(world, "/api/feedback", "to", **{"from": "2025-06-02", "to": "2025-06-01T23:00Z"})
    refused(world, "/api/feedback", "page", page="2")


# /api/sampling


def test_sampling_counts_received_kept_and_dropped(world):
    received = {span_key(span) for span in world.traffic.spans}
    kept = {span_key(span) for span in world.kept}
    kept_traces = {trace for trace, _ in kept}
    received_traces = {trace for trace, _ in received}
    assert 0 < len(kept) < len(received)
    body = get(world, "/api/sampling")
    assert body == {
        "from": None,
        "to": None,
        "recent_tier_days": 30,
        "spans": {
            "received": len(received),
            "kept": len(kept),
            "dropped": len(received) - len(kept),
            "rescued": 0,  # no rescue ran on this store
        },
        "traces": {
            "received": len(received_traces),
            "kept": len(kept_traces),
            "dropped": len(received_traces) - len(kept_traces),
            "rescued": 0,
        },
        "by_rule": None,
        "since_start": None,  # routes without a pipeline: nothing counts since a start
        "not_available": {
            "by_rule": body["not_available"]["by_rule"],
            "since_start": body["not_available"]["since_start"],
        },
    }
    assert "does not record which sampling rule" in body["not_available"]["by_rule"]
    assert "running pipeline" in body["not_available"]["since_start"]


def test_sampling_window_is_by_span_start(world):
    starts = sorted({span.start_time or 0 for span in world.traffic.spans})
    low, high = starts[100], starts[-100]

    def count(spans: list[ReadableSpan]) -> int:
        return sum(1 for span in spans if low <= (span.start_time or 0) <= high)

    body = get(world, "/api/sampling", **{"from": iso(low), "to": iso(high)})
    assert (body["from"], body["to"]) == (iso(low), iso(high))
    assert body["spans"] == {
        "received": count(world.traffic.spans),
        "kept": count(world.kept),
        "dropped": count(world.traffic.spans) - count(world.kept),
        "rescued": 0,
    }
    day = day_of(starts[0])
    body = get(world, "/api/sampling", **{"from": day, "to": day})
    assert (body["from"], body["to"]) == (
        f"{day}T00:00:00.000000000Z",
        f"{day}T23:59:59.999999999Z",
    )
    on_day = [span for span in world.traffic.spans if day_of(span.start_time or 0) == day]
    assert body["spans"]["received"] == len(on_day)
    refused(world, "/api/sampling", "from", **{"from": "last week"})


# credentials


@pytest.mark.parametrize(
    ("path", "with_key"),
    [
        ("/api/prompts", 200),
        ("/api/feedback?limit=0", 400),  # without the key, refused before parameters are read
        ("/api/sampling", 200),
        ("/api/traces/0af7651916cd43dd8448eb211c80319c", 404),
    ],
)
def test_every_route_needs_what_authorize_asks(world, path, with_key):
    for headers in ({"Authorization": "Bearer wrong"}, {"Authorization": ""}):
        response = world.client.get(path, headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert "API key" in response.json()["error"]
    assert world.client.get(path).status_code == with_key


# docs/server.md


def documented_answers() -> dict[str, Any]:
    """The example answer under each route's heading of the "Query API" section."""
    text = (Path(__file__).parents[2] / "docs" / "server.md").read_text()
    section = text[text.index("## Query API") :]
    found = re.findall(r"### `GET (/api/\w+)[^`]*`.*?```json\n(.*?)```", section, re.S)
    return {route: json.loads(example) for route, example in found}


def assert_same_shape(documented: Any, real: Any, where: str) -> None:
    """The same keys at every level; attribute maps and "..." (left out) are free."""
    if isinstance(documented, dict):
        assert isinstance(real, dict), where
        keys = set(documented) - {"..."}
        assert keys == set(real) if "..." not in documented else keys <= set(real), where
        for key in keys - {"attributes", "resource_attributes"}:
            assert_same_shape(documented[key], real[key], f"{where}.{key}")
    elif isinstance(documented, list) and documented and real:
        assert_same_shape(documented[0], real[0], f"{where}[0]")


def test_docs_show_each_answer_as_it_is(world):
    documented = documented_answers()
    assert set(documented) == {"/api/prompts", "/api/feedback", "/api/traces", "/api/sampling"}
    with_feedback = world.traffic.feedback[0].trace_id
    failed = next(call for call in world.traffic.calls if call.is_error)
    real = {
        "/api/prompts": get(world, "/api/prompts"),
        "/api/feedback": get(world, "/api/feedback", name="thumbs"),
        "/api/traces": get(world, f"/api/traces/{with_feedback}"),
        "/api/sampling": get(world, "/api/sampling", **{"from": "2025-06-01"}),
    }
    error_span = next(
        span
        for span in get(world, f"/api/traces/{failed.trace_id}")["spans"]
        if span["status"]["code"] == "error"
    )
    real["/api/traces"]["spans"] = [error_span]  # the documented span has an event
    # serve's answer has since_start, these routes (no pipeline) do not: its documented
    # shape is checked on a running serve (test_serve_pipeline.py)
    documented["/api/sampling"]["since_start"] = None
    documented["/api/sampling"]["not_available"]["since_start"] = "..."
    for route, answer in real.items():
        assert_same_shape(documented[route], answer, route)
