"""The query API on spans from the real instrumentation: openai calls to the local
OpenAI-compatible server and ``closedloop.feedback``, exported by the real
``ClickHouseSpanExporter`` and read back over Starlette's ASGI routes."""

from __future__ import annotations

import datetime
from typing import Any

import openai
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, format_span_id, format_trace_id
from starlette.applications import Starlette
from starlette.testclient import TestClient

import closedloop
import closedloop.feedback as fb
import closedloop.store as cs
from closedloop.server._query import query_routes
from closedloop.store._rows import attribute_map

ASK = [{"role": "user", "content": "where is my order"}]
UNKNOWN_TRACE = "0af7651916cd43dd8448eb211c80319c"
MOST_PAGES = 20  # these stores hold fewer than 20 feedback rows


def iso(ns: int) -> str:
    seconds, fraction = divmod(ns, 1_000_000_000)
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{fraction:09d}Z"


def hex_ids(span: ReadableSpan) -> tuple[str, str]:
    assert span.context is not None
    return format_trace_id(span.context.trace_id), format_span_id(span.context.span_id)


def api(store: cs.Store) -> TestClient:
    return TestClient(Starlette(routes=query_routes(store, authorize=lambda request: True)))


def export(store: cs.Store, spans: list[ReadableSpan], tables: tuple[str, ...], spool) -> None:
    exporter = cs.ClickHouseSpanExporter(store, spool_dir=spool)
    assert exporter.export_to(spans, tables).name == "SUCCESS"
    assert exporter.force_flush()
    exporter.shutdown()


class App:
    """An instrumented app: its requests, and the spans they (and its feedback) made."""

    def __init__(
        self, provider: TracerProvider, client: openai.OpenAI, spans: InMemorySpanExporter
    ) -> None:
        self.tracer = provider.get_tracer("support-app", "2.1")
        self.client = client
        self.finished = spans

    def request(self, model: str = "gpt-4o-mini") -> str | None:
        """A server span around an instrumented chat call; the call id (None: refused)."""
        with (
            self.tracer.start_as_current_span("POST /chat", kind=SpanKind.SERVER),
            closedloop.context(user_id="u-7", prompt_name="support", prompt_version="v2"),
        ):
            try:
                reply = self.client.chat.completions.create(model=model, messages=ASK)
            except openai.RateLimitError:
                return None
        return fb.call_id(reply)

    def spans(self) -> list[ReadableSpan]:
        return list(self.finished.get_finished_spans())


@pytest.fixture
def app(instrument, provider, client, exporter) -> App:
    instrument()
    return App(provider, client, exporter)


def expected_span(span: ReadableSpan, tier: str) -> dict[str, Any]:
    trace_id, span_id = hex_ids(span)
    start, end = span.start_time or 0, span.end_time or 0
    resource = dict(span.resource.attributes)
    return {
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_span_id": format_span_id(span.parent.span_id) if span.parent else None,
        "name": span.name,
        "kind": span.kind.name.lower(),
        "service_name": resource["service.name"],
        "start": iso(start),
        "end": iso(end),
        "duration_ns": end - start,
        "status": {
            "code": span.status.status_code.name.lower(),
            "message": span.status.description or "",
        },
        "attributes": attribute_map(span.attributes),
        "resource_attributes": attribute_map(resource),
        "scope": {
            "name": span.instrumentation_scope.name if span.instrumentation_scope else "",
            "version": (span.instrumentation_scope.version or "")
            if span.instrumentation_scope
            else "",
        },
        "trace_state": "",
        "events": [
            {
                "timestamp": iso(e.timestamp),
                "name": e.name,
                "attributes": attribute_map(e.attributes),
            }
            for e in span.events
        ],
        "links": [],
        "tier": tier,
    }


def in_trace(spans: list[ReadableSpan], trace_id: str) -> list[ReadableSpan]:
    return sorted(
        (span for span in spans if hex_ids(span)[0] == trace_id),
        key=lambda span: (span.start_time, hex_ids(span)[1]),
    )


def test_trace_has_its_spans_events_status_and_feedback(store, tmp_path, app):
    call = app.request()
    assert call is not None
    trace_id, call_span = call.split(":")
    down = fb.thumbs(call, up=False, comment="wrong order", source="web")
    later = fb.outcome(trace_id, "task_succeeded", True)  # by trace id: about the latest call
    assert app.request(model="error-429") is None
    spans = app.spans()
    export(store, spans, ("otel_traces_recent", "otel_traces"), tmp_path / "spool")

    body = api(store).get(f"/api/traces/{trace_id}").json()
    trace_spans = in_trace(spans, trace_id)
    assert [s.name for s in trace_spans] == ["POST /chat", "chat gpt-4o-mini"] + [
        "closedloop.feedback"
    ] * 2
    assert body["spans"] == [expected_span(span, "sampled") for span in trace_spans]
    chat = body["spans"][1]
    assert (chat["span_id"], chat["kind"]) == (call_span, "client")
    assert chat["attributes"]["gen_ai.prompt.version"] == "v2"
    assert chat["attributes"]["gen_ai.usage.input_tokens"] == "8"  # 4 words + 4 per message
    feedback_spans = {hex_ids(span)[1]: span for span in trace_spans[2:]}
    assert down is not None and later is not None
    assert body["feedback"] == [
        {
            "feedback_span_id": down.span_id,
            "target_span_id": call_span,
            "call_span_id": call_span,
            "timestamp": iso(feedback_spans[down.span_id].start_time or 0),
            "kind": "explicit",
            "name": "thumbs",
            "value": 0,
            "label": "down",
            "explanation": "wrong order",
            "source": "web",
        },
        {
            "feedback_span_id": later.span_id,
            "target_span_id": format_span_id(feedback_spans[later.span_id].parent.span_id),
            "call_span_id": call_span,
            "timestamp": iso(feedback_spans[later.span_id].start_time or 0),
            "kind": "outcome",
            "name": "task_succeeded",
            "value": 1,
            "label": "",
            "explanation": "",
            "source": "",
        },
    ]

    failed = next(s for s in spans if s.name == "chat error-429")
    failed_body = api(store).get(f"/api/traces/{hex_ids(failed)[0]}").json()
    assert failed_body["feedback"] == []
    failed_chat = failed_body["spans"][1]
    assert failed_chat == expected_span(failed, "sampled")
    assert failed_chat["status"]["code"] == "error"
    assert failed_chat["events"][0]["name"] == "exception"


def test_trace_comes_from_the_recent_tier_when_sampling_dropped_it(store, tmp_path, app):
    dropped = app.request()
    partly = app.request()
    assert dropped is not None and partly is not None
    spans = app.spans()
    export(store, spans, ("otel_traces_recent",), tmp_path / "recent")
    partly_spans = in_trace(spans, partly.split(":")[0])
    export(store, partly_spans[:1], ("otel_traces",), tmp_path / "sampled")  # the root only
    http = api(store)

    body = http.get(f"/api/traces/{dropped.split(':')[0]}").json()
    assert body["spans"] == [
        expected_span(span, "recent") for span in in_trace(spans, dropped.split(":")[0])
    ]
    body = http.get(f"/api/traces/{partly.split(':')[0].upper()}").json()  # any case
    assert body["trace_id"] == partly.split(":")[0]
    assert body["spans"] == [
        expected_span(partly_spans[0], "sampled"),
        expected_span(partly_spans[1], "recent"),
    ]


def test_unknown_and_malformed_trace_ids(store):
    http = api(store)
    response = http.get(f"/api/traces/{UNKNOWN_TRACE}")
    assert response.status_code == 404
    assert UNKNOWN_TRACE in response.json()["error"]
    for bad in ("abc", UNKNOWN_TRACE + "0", "g" * 32, "0" * 32, UNKNOWN_TRACE[:-1] + " "):
        response = http.get(f"/api/traces/{bad}")
        assert response.status_code == 400, bad
        assert response.json()["parameter"] == "trace_id"
    response = http.get(f"/api/traces/{UNKNOWN_TRACE}", params={"limit": "1"})
    assert (response.status_code, response.json()["parameter"]) == (400, "limit")


def walk(http: TestClient, limit: int) -> list[dict[str, Any]]:
    """Every page in turn; a cursor that stops advancing fails instead of looping."""
    rows: list[dict[str, Any]] = []
    query: dict[str, Any] = {"limit": limit}
    for _ in range(MOST_PAGES):
        page = http.get("/api/feedback", params=query).json()
        assert len(page["rows"]) <= limit
        rows.extend(page["rows"])
        if page["next_cursor"] is None:
            return rows
        query["cursor"] = page["next_cursor"]
    raise AssertionError(f"more than {MOST_PAGES} pages: the cursor does not advance")


def signal(row: dict[str, Any]) -> tuple[Any, ...]:
    value = row["feedback_value"] or {}
    return (row["metadata"]["span_id"], value.get("name"), value.get("value"), row["timestamp"])


def test_feedback_pages_split_signals_given_at_one_instant_without_loss(store, tmp_path, app):
    """Signals about one call at one timestamp share the whole sort key; some are even
    identical rows. Page boundaries inside such a group repeat and lose nothing."""
    call = app.request()
    quiet = app.request()
    assert call is not None and quiet is not None
    at = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=250_000)
    given: list[tuple[str, float]] = [
        ("task_succeeded", 1),
        ("escalated", 0),
        ("retry", 1),
        ("retry", 1),  # the same row twice: two spans, nothing to tell them apart
        ("rating", 4),
        ("edit_ratio", 0.25),
    ]
    for name, value in given:
        fb.record(call, name, value, kind="implicit", timestamp=at)
    fb.thumbs(call, up=True)  # later: on a page of its own before the group
    export(store, app.spans(), ("otel_traces_recent",), tmp_path / "s")

    call_span, quiet_span = call.split(":")[1], quiet.split(":")[1]
    stamp = iso(int(at.timestamp()) * 1_000_000_000 + 250_000_000)
    group = [(call_span, name, value, stamp) for name, value in given]
    http = api(store)
    everything = sorted(signal(row) for row in walk(http, 100))
    assert len(everything) == len(given) + 2  # the thumbs, and the quiet call's empty row
    assert (quiet_span, None, None) in {s[:3] for s in everything}
    for limit in (1, 2, 4):
        rows = walk(http, limit)
        assert sorted(signal(row) for row in rows) == everything, limit
        assert sorted(s for s in map(signal, rows) if s[3] == stamp) == sorted(group)


def test_a_failing_store_is_a_503_not_a_crash(tmp_path):
    store = cs.connect(f"chdb://{tmp_path}/store")
    http = api(store)
    assert http.get("/api/sampling").status_code == 200
    store.close()
    for path in ("/api/prompts", "/api/feedback", "/api/sampling", f"/api/traces/{UNKNOWN_TRACE}"):
        response = http.get(path)
        assert response.status_code == 503, path
        assert "store" in response.json()["error"]


def test_routes_are_get_only(store):
    http = api(store)
    assert http.post("/api/prompts").status_code == 405
    assert http.head("/api/sampling").status_code == 200
