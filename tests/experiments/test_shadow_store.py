"""Shadow spans as the store sees them: made by real openai calls through closedloop's
instrumentation, written by the real ClickHouseSpanExporter into a chDB store (both store
classes), read back through the shipped views."""

from __future__ import annotations

import json
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, format_span_id, format_trace_id

import closedloop
from _support.spans import client_for, llm_spans
from closedloop.experiments._shadow import ShadowRunner, ShadowVersion
from closedloop.store._exporter import ClickHouseSpanExporter

MODEL = "gpt-4o-mini"


def shadow_of(text: str) -> ShadowVersion:
    return ShadowVersion("triage", "v4", [{"role": "user", "content": f"{text} (v4)"}], MODEL)


def requests_with_shadows(provider: TracerProvider, server, requests: list[list[str]]) -> None:
    """App requests, each a SERVER span with one production call per text under triage v3,
    each call shadowed by v4 (submitted inside the request span, after the call)."""
    client = client_for(server)
    tracer = provider.get_tracer("app")

    def call(messages: list[Any], model: str, parameters: dict[str, Any]) -> Any:
        return client.chat.completions.create(model=model, messages=messages, **parameters)

    with ShadowRunner() as runner:
        for texts in requests:
            with (
                tracer.start_as_current_span("handle_request", kind=SpanKind.SERVER),
                closedloop.context(user_id="u1", prompt_name="triage", prompt_version="v3"),
            ):
                for text in texts:
                    client.chat.completions.create(
                        model=MODEL, messages=[{"role": "user", "content": text}]
                    )
                    assert runner.submit(shadow_of(text), call)
    assert runner.stats().completed == sum(map(len, requests))


def write(store, spans: list[ReadableSpan], tmp_path, tables: tuple[str, ...]) -> None:
    exporter = ClickHouseSpanExporter(store, tables=tables, spool_dir=tmp_path / "spool")
    assert exporter.export(spans).name == "SUCCESS"
    assert exporter.force_flush()
    exporter.shutdown()


def output_text(messages_json: str) -> str:
    [message] = json.loads(messages_json)
    return message["parts"][0]["content"]


def test_shadow_spans_are_marked_linked_and_named_like_production(
    instrumented, server, exporter: InMemorySpanExporter
):
    requests_with_shadows(instrumented, server, [["hello there"]])
    production, shadow = sorted(llm_spans(exporter), key=lambda s: s.start_time or 0)
    assert "closedloop.shadow" not in (production.attributes or {})
    assert shadow.attributes is not None
    assert shadow.attributes["closedloop.shadow"] is True
    assert shadow.attributes["gen_ai.prompt.name"] == "triage"
    assert shadow.attributes["gen_ai.prompt.version"] == "v4"
    assert [link.context for link in shadow.links] == [production.context]
    # the production call's child, in its trace: sampled together
    assert shadow.parent is not None and shadow.parent.span_id == production.context.span_id
    assert shadow.context.trace_id == production.context.trace_id


def test_views_leave_shadow_calls_out_and_pair_them_with_production(
    instrumented, server, exporter: InMemorySpanExporter, store, tmp_path
):
    """Two requests: the first (two calls, so two pairs in one trace) sampled, written to
    both tiers; the second not, recent tier only: its calls are counted, their content not
    kept."""
    requests_with_shadows(instrumented, server, [["first question", "follow-up"], ["second"]])
    spans = sorted(llm_spans(exporter), key=lambda s: s.start_time or 0)
    sampled_trace = spans[0].context.trace_id
    write(store, [s for s in spans if s.context.trace_id == sampled_trace], tmp_path / "a",
          ("otel_traces_recent", "otel_traces"))  # fmt: skip
    write(store, [s for s in spans if s.context.trace_id != sampled_trace], tmp_path / "b",
          ("otel_traces_recent",))  # fmt: skip

    calls = store.query(
        "SELECT prompt_version, shadow, count() AS n FROM closedloop.llm_calls"
        " GROUP BY prompt_version, shadow ORDER BY prompt_version"
    )
    assert calls == [
        {"prompt_version": "v3", "shadow": False, "n": 3},
        {"prompt_version": "v4", "shadow": True, "n": 3},
    ]
    metrics = store.query(
        "SELECT prompt_name, prompt_version, calls FROM closedloop.prompt_version_metrics"
    )
    assert metrics == [{"prompt_name": "triage", "prompt_version": "v3", "calls": 3}]

    pairs = store.query("SELECT * FROM closedloop.shadow_pairs ORDER BY production_timestamp")
    assert len(pairs) == 3
    by_id = {format_span_id(s.context.span_id): s for s in spans}
    for pair in pairs:
        production, shadow = by_id[pair["production_span_id"]], by_id[pair["shadow_span_id"]]
        assert [link.context for link in shadow.links] == [production.context]
        assert pair["trace_id"] == format_trace_id(production.context.trace_id)
        assert (pair["prompt_name"], pair["production_version"], pair["shadow_version"]) == (
            "triage",
            "v3",
            "v4",
        )
        for side, span in (("production", production), ("shadow", shadow)):
            assert span.attributes is not None
            assert pair[f"{side}_latency_ms"] == pytest.approx(
                span.attributes["closedloop.latency.ms"]
            )
            assert pair[f"{side}_cost_usd"] == pytest.approx(span.attributes["closedloop.cost.usd"])
    outputs = [
        (output_text(pair["production_output"]), output_text(pair["shadow_output"]))
        for pair in pairs[:2]
    ]
    assert outputs == [
        ("Echo: first question", "Echo: first question (v4)"),
        ("Echo: follow-up", "Echo: follow-up (v4)"),
    ]
    assert (pairs[2]["production_output"], pairs[2]["shadow_output"]) == ("", "")
