"""App context, user hashing and new users, content privacy, cost, and guarded failures."""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading

import openai
import pytest

import closedloop
from _support.spans import async_client_for, client_for, llm_spans, only_span
from closedloop.instrumentation._context import current_call_context
from closedloop.privacy import RegexRedactor

SECRET_PROMPT = (
    "My card is 4111 1111 1111 1111, call +1 415 555 2671, key sk-proj-abcdefghijklmnopqrstuv"
)


def recorded_text(span) -> str:
    """Everything a span records as data (ids and timestamps left out: they are random)."""
    return json.dumps(
        [
            dict(span.attributes),
            [(event.name, dict(event.attributes)) for event in span.events],
            span.status.description,
        ],
        default=str,
    )


def _ask(client, text="hello"):
    return client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": text}]
    )


def test_context_nests_and_inner_overrides(server, exporter, instrumented):
    client = client_for(server)
    with closedloop.context(prompt_name="triage", prompt_version="v1", user_id="u1"):
        with closedloop.context(prompt_version="v2", turn=2):
            _ask(client)
        _ask(client)
    _ask(client)
    inner, outer, outside = llm_spans(exporter)
    assert inner.attributes["gen_ai.prompt.version"] == "v2"
    assert inner.attributes["gen_ai.prompt.name"] == "triage"
    assert inner.attributes["closedloop.turn"] == 2
    assert outer.attributes["gen_ai.prompt.version"] == "v1"
    assert "closedloop.turn" not in outer.attributes
    assert inner.attributes["user.hash"] == outer.attributes["user.hash"]
    assert not {"gen_ai.prompt.name", "user.hash"} & set(outside.attributes)


def test_context_is_isolated_between_async_tasks(server, exporter, instrumented):
    async def one(client, version):
        with closedloop.context(prompt_version=version):
            await asyncio.sleep(0)
            await client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": version}]
            )

    async def main():
        client = async_client_for(server)
        await asyncio.gather(*(one(client, f"v{i}") for i in range(8)))

    asyncio.run(main())
    for span in llm_spans(exporter):
        message = json.loads(span.attributes["gen_ai.input.messages"])[0]["parts"][0]["content"]
        assert span.attributes["gen_ai.prompt.version"] == message


def test_current_trace_id_names_the_call_for_later_feedback(server, exporter, instrumented):
    from opentelemetry import trace

    client = client_for(server)
    assert closedloop.current_trace_id() is None
    with closedloop.context(user_id="u1"):
        _ask(client)
        trace_id = closedloop.current_trace_id()
    span = only_span(exporter)
    assert trace_id == trace.format_trace_id(span.context.trace_id)
    tracer = instrumented.get_tracer("app")
    with tracer.start_as_current_span("handle-request") as request_span:
        _ask(client)
        app_trace = closedloop.current_trace_id()
    assert app_trace == trace.format_trace_id(request_span.get_span_context().trace_id)
    assert llm_spans(exporter)[-1].parent.span_id == request_span.get_span_context().span_id


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("turn", 0, ValueError),
        ("turn", "3", TypeError),
        ("turn", True, TypeError),
        ("user_id", "", ValueError),
        ("prompt_version", 2, TypeError),
        ("tools", "search", TypeError),
        ("tools", ["search", ""], ValueError),
        ("shadow", "yes", TypeError),
    ],
)
def test_bad_context_values_name_the_field(field, value, error):
    """A wrong type is a TypeError, a wrong value a ValueError; both name the field."""
    with pytest.raises(error, match=f"^{field}"):
        closedloop.context(**{field: value})


def test_new_user_flag_covers_the_first_n_interactions(server, exporter, instrument):
    instrument(new_user_interactions=3)
    client = client_for(server)
    for _ in range(5):
        with closedloop.context(user_id="alice"):
            _ask(client)
    with closedloop.context(user_id="bob"):
        _ask(client)
    spans = llm_spans(exporter)
    assert [s.attributes["closedloop.user.interaction"] for s in spans] == [1, 2, 3, 4, 5, 1]
    assert [s.attributes["closedloop.user.new"] for s in spans] == [
        True,
        True,
        True,
        False,
        False,
        True,
    ]


def test_no_raw_user_id_or_content_leaks_with_capture_off(server, exporter, instrument, user_hash):
    instrument(capture_content=False)
    client = client_for(server)
    with closedloop.context(user_id="alice@example.com"):
        _ask(client, SECRET_PROMPT)
        list(
            client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": SECRET_PROMPT}],
                stream=True,
            )
        )
        with pytest.raises(openai.RateLimitError):
            _ask_error(client)
    spans = llm_spans(exporter)
    assert len(spans) == 3
    for span in spans:
        dumped = recorded_text(span)
        assert "alice" not in dumped
        # "4111 1111", not "4111": digits alone can occur in a latency value
        assert "4111 1111" not in dumped and "Echo" not in dumped and "sk-proj" not in dumped
        assert not {
            "gen_ai.input.messages",
            "gen_ai.output.messages",
            "closedloop.redactions",
        } & set(span.attributes)
        assert span.attributes["user.hash"] == user_hash("alice@example.com")


def _ask_error(client):
    return client.chat.completions.create(
        model="error-429", messages=[{"role": "user", "content": SECRET_PROMPT}]
    )


def test_redaction_on_inputs_outputs_and_errors(server, exporter, instrumented):
    client = client_for(server)
    _ask(client, SECRET_PROMPT)
    with pytest.raises(openai.RateLimitError):
        _ask_error(client)
    plain, failed = llm_spans(exporter)
    for span in (plain, failed):
        assert "4111 1111" not in recorded_text(span) and "sk-proj" not in recorded_text(span)
    assert "<CARD>" in plain.attributes["gen_ai.input.messages"]
    assert "<PHONE>" in plain.attributes["gen_ai.output.messages"]
    assert plain.attributes["closedloop.redactions"] == 6


def test_redaction_off_keeps_content(server, exporter, instrument):
    instrument(redact=False)
    _ask(client_for(server), SECRET_PROMPT)
    span = only_span(exporter)
    assert "4111 1111 1111 1111" in span.attributes["gen_ai.input.messages"]
    assert "closedloop.redactions" not in span.attributes


def test_custom_redactor_is_applied(server, exporter, instrument):
    instrument(redactors=[RegexRedactor(r"EMP-\d{5}", "<EMPLOYEE>")])
    _ask(client_for(server), "I am EMP-12345")
    assert "<EMPLOYEE>" in only_span(exporter).attributes["gen_ai.input.messages"]


def test_a_failing_redactor_leaves_the_call_untouched(make_server, exporter, instrument):
    def broken(text: str) -> tuple[str, int]:
        raise RuntimeError("redactor bug")

    bare = _ask(client_for(make_server()), SECRET_PROMPT)
    instrument(redactors=[broken])
    traced = _ask(client_for(make_server()), SECRET_PROMPT)
    assert traced == bare
    stats = closedloop.stats()
    assert stats["internal_failures"] >= 1
    span = only_span(exporter)
    assert "gen_ai.input.messages" not in span.attributes
    assert "4111 1111" not in recorded_text(span)
    assert span.attributes["gen_ai.usage.output_tokens"] == bare.usage.completion_tokens


def test_unknown_model_has_no_cost_and_overrides_price_it(server, exporter, instrument):
    instrument(prices={"house-model": {"input_per_mtok": 1, "output_per_mtok": 2}})
    client = client_for(server)
    client.chat.completions.create(
        model="mystery-model", messages=[{"role": "user", "content": "x"}]
    )
    reply = client.chat.completions.create(
        model="house-model", messages=[{"role": "user", "content": "x y z"}]
    )
    unknown, priced = llm_spans(exporter)
    assert "closedloop.cost.usd" not in unknown.attributes
    usage = reply.usage
    assert priced.attributes["closedloop.cost.usd"] == pytest.approx(
        (usage.prompt_tokens * 1 + usage.completion_tokens * 2) / 1e6
    )


@pytest.mark.parametrize(
    ("prices", "message"),
    [
        ({"m": {"input_per_mtok": 1}}, "output_per_mtok"),
        ({"m": {"input_per_mtok": -1, "output_per_mtok": 1}}, "non-negative"),
        ({"m": {"input_per_mtok": 1, "output_per_mtok": 1, "bogus": 1}}, "bogus"),
    ],
)
def test_bad_prices_are_clear_errors(instrument, prices, message):
    with pytest.raises(ValueError, match=message):
        instrument(prices=prices)


def test_threads_share_nothing_but_the_counter(server, exporter, instrument):
    instrument(new_user_interactions=1000)
    client = client_for(server)

    def worker(index: int) -> None:
        with closedloop.context(user_id="shared", variant=f"t{index}"):
            for _ in range(5):
                _ask(client)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    spans = llm_spans(exporter)
    assert sorted(s.attributes["closedloop.user.interaction"] for s in spans) == list(range(1, 21))


def test_a_context_block_may_end_in_another_context():
    """A streaming body stepped in a fresh copy_context() per next() (Starlette's
    iterate_in_threadpool), and a block exited from another task: no ValueError."""

    def body():
        with closedloop.context(user_id="u1") as layer:
            yield layer.user_id
            yield layer.user_id

    stream = body()
    assert [contextvars.copy_context().run(next, stream) for _ in range(2)] == ["u1", "u1"]
    with pytest.raises(StopIteration):
        contextvars.copy_context().run(next, stream)

    async def enter_and_exit_in_two_tasks() -> object:
        block = closedloop.context(user_id="u2")

        async def enter() -> None:
            block.__enter__()

        await asyncio.create_task(enter())
        await asyncio.create_task(block.__aexit__(None, None, None))
        return current_call_context()

    assert asyncio.run(enter_and_exit_in_two_tasks()) is None
