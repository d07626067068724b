"""Feedback by call id, end to end: real openai calls, real exporter, real chDB views."""

from __future__ import annotations

import asyncio
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
from _support.otlp_capture import otlp_capture
from _support.spans import async_client_for, client_for, llm_spans

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
        (lambda: fb.record("ab" * 16, "thumbs", 1, kind="praise"), "kind"),
        (lambda: fb.record("ab" * 16, "score", math.nan), "finite"),
        (lambda: fb.record("ab" * 16, "score", math.inf), "finite"),
        (lambda: fb.record("ab" * 16, "score"), "needs a value"),
        (lambda: fb.record("ab" * 16, "", 1), "name"),
        (lambda: fb.safety("ab" * 16, "severe"), "level"),
        (
            lambda: fb.record("ab" * 16, "score", 1, timestamp=datetime.datetime(2026, 1, 1)),
            "timezone-aware",
        ),
    ],
)
def test_bad_feedback_is_a_clear_error(call, message, instrumented):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: fb.thumbs("ab" * 16, "up"), "up=True"),
        (lambda: fb.rating("ab" * 16, 4.0), "stars"),
        (lambda: fb.record(12345, "score", 1), "target"),
        (lambda: fb.record("ab" * 16, 7, 1), "name"),
        (lambda: fb.record("ab" * 16, "score", "1"), "value"),
        (lambda: fb.record("ab" * 16, "score", 1, label=3), "label"),
        (lambda: fb.record("ab" * 16, "score", 1, timestamp="yesterday"), "timestamp"),
        (lambda: fb.outcome("ab" * 16, "ticket_reopened", None), "needs a value"),
        (lambda: fb.thumbs("ab" * 16, True, label="up"), "label"),  # thumbs sets it
        (lambda: fb.outcome("ab" * 16, "escalated", True, kind="judge"), "kind"),
    ],
)
def test_wrong_argument_types_are_type_errors(call, message, instrumented):
    with pytest.raises(TypeError, match=message):
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
        before_calls = datetime.datetime.now(datetime.timezone.utc)
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
        fb.safety({trace_ids[1]!r}, "high", source="moderation")
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
        rows = [r for r in rows if json.loads(r["feedback_value"])["name"] != "safety"]
        assert [(r["prompt_version"], r["feedback_type"], r["trace"]) for r in rows] == [
            ("v1", "explicit", trace_ids[0]),
            ("v2", "outcome", trace_ids[1]),
        ]
        assert json.loads(rows[0]["feedback_value"])["value"] == 0
        assert json.loads(rows[1]["feedback_value"])["name"] == "ticket_reopened"
        assert rows[1]["at"] == int(later)
        metrics = store.query(
            "SELECT prompt_version, calls, thumbs_votes, thumbs_up_rate, reopen_rate, "
            "safety_high_rate, day FROM closedloop.prompt_version_metrics ORDER BY prompt_version"
        )
        assert [
            (
                m["calls"],
                m["thumbs_votes"],
                m["thumbs_up_rate"],
                m["reopen_rate"],
                m["safety_high_rate"],
            )
            for m in metrics
        ] == [
            (1, 1, 0, None, 0),
            (1, 0, None, 1, 1),
        ]
        # The calls' day; a run that crosses midnight UTC may see either date.
        days = {before_calls.date().isoformat(), call_time.date().isoformat()}
        assert {m["day"] for m in metrics} <= days
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
    script = (
        "import closedloop.feedback as fb; "
        "print(fb.thumbs('ab' * 16, up=True), fb.rating('ab' * 16, 3))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "None None"
    assert result.stderr.count("no TracerProvider is configured") == 1  # warned once


def test_raw_responses_resolve_to_their_call(server, exporter, instrumented):
    """Raw responses have no id; the instrumentation registers them (stream variants and
    helpers: tests/instrumentation/openai/test_registered_objects.py)."""
    client = client_for(server)
    legacy = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=ASK)
    legacy.parse()
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini", messages=ASK
    ) as streaming:
        streaming.parse()
        fb.thumbs(streaming, up=True)
    fb.thumbs(legacy, up=True)
    calls = llm_spans(exporter)
    assert len(calls) == 2
    parents = sorted(span.parent.span_id for span in feedback_spans(exporter))
    assert parents == sorted(span.context.span_id for span in calls)


def test_an_async_stream_resolves_to_its_call(server, exporter, instrumented):
    async def ask():
        stream = await async_client_for(server).chat.completions.create(
            model="gpt-4o-mini", messages=ASK, stream=True
        )
        async for _ in stream:
            pass
        return stream

    stream = asyncio.run(ask())
    fb.rating(stream, 2)
    [call] = llm_spans(exporter)
    [feedback] = feedback_spans(exporter)
    assert feedback.parent.span_id == call.context.span_id


def test_an_sdk_object_from_elsewhere_is_a_clear_error(server):
    """Made while closedloop was not instrumenting: nothing registered it."""
    stream = client_for(server).chat.completions.create(
        model="gpt-4o-mini", messages=ASK, stream=True
    )
    list(stream)
    with pytest.raises(ValueError, match="not returned by an instrumented call"):
        fb.thumbs(stream, up=True)


def test_call_id_names_the_call_to_store_with_the_answer(server, exporter, instrumented):
    client = client_for(server)
    assert fb.call_id() is None  # outside any closedloop.context block
    with closedloop.context(user_id="u-1"):
        assert fb.call_id() is None  # no call made yet
        first = client.chat.completions.create(model="gpt-4o-mini", messages=ASK)
        with closedloop.context(prompt_version="v2"):
            second = client.chat.completions.create(model="gpt-4o-mini", messages=ASK)
            inner_latest = fb.call_id()
        outer_latest = fb.call_id()
        with closedloop.context(prompt_version="v3"):
            assert fb.call_id() is None  # a block sees only calls made inside it
    assert fb.call_id() is None
    first_span, second_span = llm_spans(exporter)
    first_id, second_id = (
        f"{trace.format_trace_id(s.context.trace_id)}:{trace.format_span_id(s.context.span_id)}"
        for s in (first_span, second_span)
    )
    assert fb.call_id(first) == first_id
    assert fb.call_id(second) == inner_latest == outer_latest == second_id
    assert fb.call_id(first_span.context) == first_id
    assert fb.call_id(first_id.split(":")[0]) == first_id.split(":")[0]  # a trace id stays one
    fb.thumbs(fb.call_id(first), up=True)
    [feedback] = feedback_spans(exporter)
    assert feedback.parent.span_id == first_span.context.span_id


def test_call_id_in_gathered_tasks_names_each_tasks_own_call(server, instrumented):
    """Tasks gathered in one context block share its layer; each still finds its own call,
    even when every call has ended before any task asks."""

    async def main() -> list[tuple[str, str | None]]:
        client = async_client_for(server)
        every_call_ended = asyncio.Event()
        ended = 0

        async def ask() -> tuple[str, str | None]:
            nonlocal ended
            reply = await client.chat.completions.create(model="gpt-4o-mini", messages=ASK)
            ended += 1
            if ended == 3:
                every_call_ended.set()
            await every_call_ended.wait()
            return fb.call_id(reply), fb.call_id()

        with closedloop.context(user_id="u-1"):
            return await asyncio.gather(*(ask() for _ in range(3)))

    results = asyncio.run(main())
    assert [latest for _, latest in results] == [own for own, _ in results]
    assert len({own for own, _ in results}) == 3


def test_call_id_names_a_stream_from_its_start(server, instrumented):
    client = client_for(server)
    with closedloop.context(user_id="u-1"):
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=ASK)
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=ASK, stream=True)
        latest = fb.call_id()  # the stream is not read yet
        stream.close()
    assert latest == fb.call_id(stream) != fb.call_id(reply)


def test_call_id_and_current_trace_id_skip_embeddings(server, instrumented):
    """Feedback on an embedding enters no metric: the latest call is the latest generation."""
    client = client_for(server)
    with closedloop.context(user_id="u-1"):
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=ASK)
        client.embeddings.create(model="text-embedding-3-small", input="refund policy")
        latest = fb.call_id()
        trace_id = closedloop.current_trace_id()
    assert latest == fb.call_id(reply)
    assert trace_id == latest.split(":")[0]


@pytest.mark.parametrize(
    "call",
    [
        lambda: fb.record("ab" * 16, "safety", 0.7),
        lambda: fb.record("ab" * 16, "safety", comment="looks unsafe"),
        lambda: fb.record("ab" * 16, "safety", 1, label=None),
    ],
)
def test_safety_without_a_level_is_refused(call, exporter, instrumented):
    """Only the latest signal per call counts: a level-less one would cancel a "high"."""
    with pytest.raises(ValueError, match=r"'safety' needs the field label=") as raised:
        call()
    assert "feedback.safety(target, level)" in str(raised.value)
    assert feedback_spans(exporter) == []


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: fb.safety("ab" * 16, 3), "level"),
        (lambda: fb.safety("ab" * 16, None), "level"),
        (lambda: fb.record("ab" * 16, "score", 1, kind=None), "kind"),
        (lambda: fb.record("ab" * 16, "score", 1, kind=1), "kind"),
    ],
)
def test_a_choice_of_the_wrong_type_is_a_type_error(call, name, instrumented):
    with pytest.raises(TypeError, match=rf"^{name}=.* is a .*, not a str; use one of"):
        call()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: fb.record("ab" * 16, "score", 10**400), "finite"),
        (lambda: fb.record("ab" * 16, "score", 1, timestamp=1e300), "in the future"),
        (lambda: fb.record("ab" * 16, "score", 1, timestamp=10**400), "finite"),
    ],
)
def test_numbers_beyond_any_float_are_value_errors(call, message, instrumented):
    with pytest.raises(ValueError, match=message):
        call()


def test_safety_shorthand_records_contract_2_label(exporter, instrumented):
    fb.safety("ab" * 16, "medium", source="moderation", timestamp=1_750_000_000)
    [span] = feedback_spans(exporter)
    assert dict(span.attributes) == {
        "closedloop.feedback.kind": "explicit",
        "closedloop.feedback.name": "safety",
        "closedloop.feedback.label": "medium",
        "closedloop.feedback.source": "moderation",
    }
    assert span.start_time == 1_750_000_000 * 10**9
    assert fb.SAFETY_LEVELS == ("none", "low", "medium", "high")


def test_shorthands_pass_their_options_through(exporter, instrumented):
    target = "ab" * 16
    fb.thumbs(target, False, comment="too long", kind="label", source="review")
    fb.rating(target, 5, label="great", source="web")
    fb.comment(target, "thanks", label="praise", kind="implicit")
    fb.outcome(target, "escalated", False, label="tier-1", comment="no", source="crm")
    thumbs, rating, comment, escalated = (dict(s.attributes) for s in feedback_spans(exporter))
    assert (thumbs["closedloop.feedback.kind"], thumbs["closedloop.feedback.source"]) == (
        "label",
        "review",
    )
    assert rating["closedloop.feedback.label"] == "great"
    assert comment["closedloop.feedback.kind"] == "implicit"
    assert (escalated["closedloop.feedback.kind"], escalated["closedloop.feedback.value"]) == (
        "outcome",
        0.0,
    )


def test_public_names_leave_internals_out():
    assert {"emit", "resolve"}.isdisjoint(fb.__all__)
    assert not hasattr(fb, "emit") and not hasattr(fb, "resolve")
    assert set(fb.__all__) <= set(dir(fb))
    assert fb.KINDS == ("explicit", "implicit", "outcome", "judge", "label")


def test_target_shows_only_its_ids():
    """How a feedback span is parented is the recorder's business, not the public Target's."""
    public = {name for name in dir(fb.Target(0xAB, 0xCD)) if not name.startswith("_")}
    assert public == {"trace_id", "span_id", "trace_id_hex"}
    assert str(fb.Target(0xAB, 0xCD)) == f"{0xAB:032x}:{0xCD:016x}"
