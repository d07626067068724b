"""Feedback by trace id, end to end: real openai calls, real exporter, real chDB views."""

from __future__ import annotations

import datetime
import json
import math
import subprocess
import sys
import textwrap

import openai
import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

import closedloop
import closedloop.feedback as fb
import closedloop.store as cs
from conftest import client_for, llm_spans
from otlp_capture import otlp_capture

ASK = [{"role": "user", "content": "Where is my refund?"}]


def feedback_spans(exporter):
    return [s for s in exporter.get_finished_spans() if s.name == "closedloop.feedback"]


def test_every_target_form_parents_the_feedback_span(server, exporter, instrumented):
    client = client_for(server)
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=ASK)
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=ASK, stream=True)
    list(stream)
    plain_span, stream_span = llm_spans(exporter)
    trace_hex = trace.format_trace_id(plain_span.context.trace_id)
    span_hex = trace.format_span_id(plain_span.context.span_id)
    fb.thumbs(reply, up=True)
    fb.thumbs(stream, up=False)
    fb.rating(f"{trace_hex}:{span_hex}", 4)
    fb.outcome(plain_span.context, "ticket_reopened", True)
    fb.comment(trace_hex.upper(), "Wrong refund policy, mail ann@example.com")
    thumbs_up, thumbs_down, rating, reopened, comment = feedback_spans(exporter)
    for span in (thumbs_up, rating, reopened):
        assert span.parent.span_id == plain_span.context.span_id
        assert span.context.trace_id == plain_span.context.trace_id
    assert thumbs_down.parent.span_id == stream_span.context.span_id
    assert comment.context.trace_id == plain_span.context.trace_id
    assert comment.parent.span_id != plain_span.context.span_id
    assert dict(thumbs_down.attributes) == {
        "closedloop.feedback.kind": "explicit",
        "closedloop.feedback.name": "thumbs",
        "closedloop.feedback.value": 0.0,
        "closedloop.feedback.label": "down",
    }
    [event] = thumbs_down.events
    assert (event.name, dict(event.attributes)) == (
        "gen_ai.evaluation.result",
        {
            "gen_ai.evaluation.name": "thumbs",
            "gen_ai.evaluation.score.value": 0.0,
            "gen_ai.evaluation.score.label": "down",
        },
    )
    assert reopened.attributes["closedloop.feedback.kind"] == "outcome"
    assert comment.events[0].attributes["gen_ai.evaluation.explanation"] == (
        "Wrong refund policy, mail <EMAIL>"
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: fb.thumbs("not-a-trace-id", True), "trace id"),
        (lambda: fb.thumbs("0" * 32, True), "trace id"),
        (lambda: fb.thumbs("ab" * 16 + ":xyz", True), "span id"),
        (lambda: fb.rating("ab" * 16, 6), "1 to 5"),
        (lambda: fb.rating("ab" * 16, 0), "1 to 5"),
        (lambda: fb.thumbs("ab" * 16, "up"), "up=True"),
        (lambda: fb.record("ab" * 16, "thumbs", 1, kind="praise"), "kind"),
        (lambda: fb.record("ab" * 16, "score", math.nan), "finite"),
        (lambda: fb.record("ab" * 16, "score", math.inf), "finite"),
        (lambda: fb.record("ab" * 16, "score"), "needs a value"),
        (lambda: fb.record("ab" * 16, "", 1), "name"),
        (lambda: fb.record(12345, "score", 1), "target"),
        (
            lambda: fb.record("ab" * 16, "score", 1, timestamp=datetime.datetime(2026, 1, 1)),
            "timezone-aware",
        ),
    ],
)
def test_bad_feedback_is_a_clear_error(call, message, instrumented):
    with pytest.raises(ValueError, match=message):
        call()


def test_response_not_traced_here_is_a_clear_error(instrumented):
    reply = openai.types.chat.ChatCompletion(
        id="chatcmpl-elsewhere", choices=[], created=0, model="m", object="chat.completion"
    )
    with pytest.raises(ValueError, match="not traced by closedloop in this process"):
        fb.thumbs(reply, True)


def test_feedback_from_another_process_days_later_joins_the_call(tmp_path, server, provider):
    """Calls in this process; feedback from a separate process, one explicit and one
    'three days later'; both land on the right call in the views."""
    url = f"chdb://{tmp_path}/store"
    store = cs.connect(url)
    exporter = cs.ClickHouseSpanExporter(store, spool_dir=tmp_path / "spool")
    closedloop.instrument(exporter=exporter, tracer_provider=provider, user_hash_key="k")
    try:
        client = client_for(server)
        trace_ids = []
        for version in ("v1", "v2"):
            with closedloop.context(prompt_name="support", prompt_version=version):
                client.chat.completions.create(model="gpt-4o-mini", messages=ASK)
                trace_ids.append(closedloop.current_trace_id())
        provider.force_flush()
        assert exporter.force_flush()
    finally:
        closedloop.uninstrument()
        exporter.shutdown()
        store.close()
    call_time = datetime.datetime.now(datetime.timezone.utc)
    # Within the 1-day clock-skew allowance: feedback timestamps cannot lie further ahead.
    later = (call_time + datetime.timedelta(hours=20)).timestamp()
    script = textwrap.dedent(
        f"""
        import closedloop, closedloop.feedback as fb, closedloop.store as cs
        exporter = cs.ClickHouseSpanExporter({url!r}, spool_dir={str(tmp_path / "spool2")!r})
        provider = closedloop.instrument(service_name="feedback-worker", exporter=exporter)
        fb.thumbs({trace_ids[0]!r}, up=False)
        fb.outcome({trace_ids[1]!r}, "ticket_reopened", True, timestamp={later!r})
        provider.force_flush()
        assert exporter.force_flush()
        exporter.shutdown()
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    store = cs.connect(url)
    try:
        rows = store.query(
            "SELECT prompt_version, feedback_type, feedback_value, "
            "toUnixTimestamp(timestamp) AS at, JSONExtractString(metadata, 'trace_id') AS trace "
            "FROM closedloop.feedback ORDER BY prompt_version"
        )
        assert [(r["prompt_version"], r["feedback_type"], r["trace"]) for r in rows] == [
            ("v1", "explicit", trace_ids[0]),
            ("v2", "outcome", trace_ids[1]),
        ]
        assert json.loads(rows[0]["feedback_value"])["value"] == 0
        assert json.loads(rows[1]["feedback_value"])["name"] == "ticket_reopened"
        assert rows[1]["at"] == int(later)
        metrics = store.query(
            "SELECT prompt_version, calls, thumbs_votes, thumbs_up_rate, reopen_rate, day "
            "FROM closedloop.prompt_version_metrics ORDER BY prompt_version"
        )
        assert [
            (m["calls"], m["thumbs_votes"], m["thumbs_up_rate"], m["reopen_rate"]) for m in metrics
        ] == [
            (1, 1, 0, None),
            (1, 0, None, 1),
        ]
        assert {m["day"] for m in metrics} == {call_time.date().isoformat()}
    finally:
        store.close()


def test_feedback_is_a_span_event_in_the_exported_otlp_payload(instrument):
    with otlp_capture() as receiver:
        otlp_provider = TracerProvider()
        endpoint = f"{receiver.base_url}/v1/traces"
        otlp_provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        instrument(tracer_provider=otlp_provider)
        fb.rating("4bf92f3577b34da6a3ce929d0e0e4736:00f067aa0ba902b7", 2, source="web")
        otlp_provider.shutdown()
        [span] = [s for _, s in receiver.spans() if s.name == "closedloop.feedback"]
    assert span.trace_id.hex() == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert span.parent_span_id.hex() == "00f067aa0ba902b7"
    [event] = span.events
    attributes = {a.key: a.value for a in event.attributes}
    assert event.name == "gen_ai.evaluation.result"
    assert attributes["gen_ai.evaluation.name"].string_value == "rating"
    assert attributes["gen_ai.evaluation.score.value"].double_value == 2.0
    span_attributes = {a.key: a.value for a in span.attributes}
    assert span_attributes["closedloop.feedback.source"].string_value == "web"


def test_without_any_tracer_provider_record_says_nothing_was_emitted():
    script = "import closedloop.feedback as fb; print(fb.thumbs('ab' * 16, up=True))"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "None"
    assert "no TracerProvider is configured" in result.stderr
