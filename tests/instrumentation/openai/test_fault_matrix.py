"""The fault matrix: what the caller sees with closedloop equals what it sees without.

Each case drives the real ``openai`` SDK against the local server, once bare and once
instrumented (fresh servers, so ids match), and compares results object for object and
chunk for chunk; then it checks the span. Servers imitate other providers' quirks.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable
from typing import Any

import openai
import pytest
from opentelemetry.sdk.trace import SpanProcessor
from pydantic import BaseModel

import closedloop
from _support.spans import async_client_for, client_for, llm_spans, only_span
from closedloop.instrumentation.openai._content import TRUNCATION_MARK

MESSAGES_WITH_EMAIL = [
    {"role": "system", "content": "You are a support bot."},
    {"role": "user", "content": "Where is my refund? Mail me at ann@example.com"},
]

Run = Callable[[openai.OpenAI], Any]


def dumps(items: list[Any]) -> list[dict[str, Any]]:
    """Values and set fields: ``exclude_unset`` shows a field closedloop left behind."""
    return [item.model_dump(exclude_unset=True) for item in items]


def bare_and_traced(make_server, instrument, run: Run, server_options=None, **settings):
    """``run`` against a fresh server bare, then instrumented; both results and the servers."""
    options = server_options or {}
    bare_server = make_server(**options)
    bare = run(client_for(bare_server))
    instrument(**settings)
    traced_server = make_server(**options)
    traced = run(client_for(traced_server))
    return bare, traced, bare_server, traced_server


def chat_stream(client: openai.OpenAI, **options: Any) -> list[dict[str, Any]]:
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES_WITH_EMAIL, stream=True, **options
    )
    return dumps(list(stream))


# -- item 2: providers that refuse stream_options -------------------------------------------


def test_a_provider_refusing_stream_options_gets_the_callers_request(
    make_server, exporter, instrument
):
    strict = {"refuse_arguments": ["stream_options"]}
    bare, traced, _, server = bare_and_traced(
        make_server, instrument, lambda c: [chat_stream(c), chat_stream(c)], strict,
        stream_usage="always",
    )  # fmt: skip
    assert traced == bare
    sent = [request.json.get("stream_options") for request in server.requests]
    # Asked once, refused, retried as the caller wrote it; never asked again.
    assert sent == [{"include_usage": True}, None, None]
    assert closedloop.stats()["events"]["stream_usage.refused"] == 1
    first, second = llm_spans(exporter)
    for span in (first, second):
        assert span.status.is_ok
        assert "gen_ai.usage.output_tokens" not in span.attributes
        assert span.attributes["gen_ai.response.finish_reasons"] == ("stop",)


def test_auto_never_asks_an_unknown_endpoint(make_server, exporter, instrument):
    bare, traced, _, server = bare_and_traced(
        make_server, instrument, chat_stream, stream_usage="auto"
    )
    assert traced == bare
    assert "stream_options" not in server.requests[0].json
    assert only_span(exporter).attributes["gen_ai.response.id"] == "chatcmpl-1"


def test_never_asks_even_a_known_endpoint():
    from closedloop.instrumentation.openai._stream_usage import StreamUsagePolicy

    request = {"stream": True}
    assert StreamUsagePolicy("auto").may_ask("api.openai.com", "k", request)
    assert StreamUsagePolicy("auto").may_ask("x.openai.azure.com", "k", request)
    assert not StreamUsagePolicy("auto").may_ask("127.0.0.1", "k", request)
    assert not StreamUsagePolicy("never").may_ask("api.openai.com", "k", request)
    raw = {"stream": True, "extra_headers": {"X-Stainless-Raw-Response": "stream"}}
    assert not StreamUsagePolicy("always").may_ask("api.openai.com", "k", raw)


# -- item 3: hide only what closedloop caused -----------------------------------------------


def test_a_usage_chunk_the_caller_did_not_cause_is_not_hidden(make_server, exporter, instrument):
    """The openai SDK's own fixtures send usage unasked: the caller must still see it.

    Under the default ``"auto"``, closedloop does not ask an endpoint it does not know, so
    it has nothing to hide; the usage the caller got is still recorded."""
    quirk = {"stream_quirks": ["unrequested_usage"]}
    bare, traced, _, _ = bare_and_traced(
        make_server, instrument, chat_stream, quirk, stream_usage="auto"
    )
    assert traced == bare
    assert bare[-1]["choices"] == [] and bare[-1]["usage"]["completion_tokens"] > 0
    assert only_span(exporter).attributes["gen_ai.usage.output_tokens"] > 0


@pytest.mark.parametrize("quirk", ["null_choices", "usage_on_last_chunk"])
def test_usage_closedloop_asked_for_never_reaches_the_caller(
    make_server, exporter, instrument, quirk
):
    bare, traced, _, server = bare_and_traced(
        make_server, instrument, chat_stream, {"stream_quirks": [quirk]}, stream_usage="always"
    )
    assert server.requests[0].json["stream_options"] == {"include_usage": True}
    assert traced == bare
    assert all("usage" not in chunk for chunk in traced)
    assert only_span(exporter).attributes["gen_ai.usage.output_tokens"] > 0
    assert closedloop.stats()["internal_failures"] == 0


def test_the_callers_own_include_usage_false_is_respected(make_server, exporter, instrument):
    def run(client):
        return chat_stream(client, stream_options={"include_usage": False})

    bare, traced, _, server = bare_and_traced(make_server, instrument, run, stream_usage="always")
    assert traced == bare
    assert server.requests[0].json["stream_options"] == {"include_usage": False}


# -- item 4: a raising redactor on a failed call ---------------------------------------------


def test_a_raising_redactor_keeps_the_error_status(server, exporter, instrument):
    def broken(text: str) -> tuple[str, int]:
        raise RuntimeError("redactor bug")

    instrument(redactors=[broken])
    with pytest.raises(openai.InternalServerError):
        client_for(server).chat.completions.create(model="error-500", messages=[])
    span = only_span(exporter)
    assert not span.status.is_ok
    assert span.status.description.startswith("InternalServerError")
    assert span.attributes["error.type"] == "InternalServerError"
    assert closedloop.stats()["internal_failures"] >= 1


# -- item 7: mappings and sequences reach the SDK untouched -----------------------------------


@pytest.mark.parametrize(
    "messages",
    [
        lambda: {"role": "user", "content": "hi"},
        lambda: ({"role": "user", "content": "hi"},),
        lambda: iter([{"role": "user", "content": "hi"}]),
        lambda: map(dict, [{"role": "user", "content": "hi"}]),
    ],
    ids=["dict", "tuple", "iterator", "map"],
)
def test_messages_reach_the_provider_as_the_caller_passed_them(
    make_server, exporter, instrument, messages
):
    def run(client):
        try:
            return client.chat.completions.create(model="gpt-4o-mini", messages=messages()).id
        except openai.APIError as error:
            return type(error).__name__, str(error)

    bare, traced, bare_server, server = bare_and_traced(make_server, instrument, run)
    assert traced == bare
    assert server.requests[0].json == bare_server.requests[0].json


def test_a_one_shot_iterator_is_sent_whole(server, exporter, instrumented):
    reply = client_for(server).chat.completions.create(
        model="gpt-4o-mini", messages=(m for m in [{"role": "user", "content": "hi there"}])
    )
    assert reply.choices[0].message.content == "Echo: hi there"
    assert json.loads(only_span(exporter).attributes["gen_ai.input.messages"])[0]["role"] == "user"


# -- items 1, 9 and 15: bounded content, clean strings, redaction on every path ---------------


def test_content_beyond_the_limit_is_cut_marked_and_redacted(server, exporter, instrument):
    instrument(max_content_chars=1_000)
    prompt = "word " * 198 + " ann@example.com " + "1234567 " * 100_000
    client_for(server).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
    )
    span = only_span(exporter)
    text = json.loads(span.attributes["gen_ai.input.messages"])[0]["parts"][0]["content"]
    assert text.endswith(TRUNCATION_MARK)
    assert len(text) <= 1_000 + len(TRUNCATION_MARK)
    assert "ann@" not in text and "example.com" not in text
    output = json.loads(span.attributes["gen_ai.output.messages"])[0]["parts"][0]["content"]
    assert output.startswith("Echo: word word") and output.endswith(TRUNCATION_MARK)
    assert span.attributes["closedloop.content.truncated"] is True


def test_an_entity_split_by_the_cut_never_leaks_a_part(server, exporter, instrument):
    instrument(max_content_chars=100)
    for at in range(80, 110):
        exporter.clear()
        prompt = "a" * at + " 4111 1111 1111 1111 and ann.lee@example.com " + "b" * 200
        client_for(server).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
        )
        text = json.loads(only_span(exporter).attributes["gen_ai.input.messages"])[0]["parts"]
        content = text[0]["content"]
        assert "1111" not in content and "ann." not in content and "@" not in content, at


def test_a_lone_surrogate_never_reaches_a_span(server, exporter, instrumented):
    messages = [{"role": "user", "content": "bad \ud800 text"}]
    with pytest.raises(UnicodeEncodeError) as bare_error:
        json.dumps(messages, ensure_ascii=False).encode()
    try:
        client_for(server).chat.completions.create(model="gpt-4o-mini", messages=messages)
    except Exception as error:
        assert type(error).__name__ in {"UnicodeEncodeError", "APIConnectionError"}, bare_error
    spans = llm_spans(exporter)
    assert spans
    for span in spans:
        for value in span.attributes.values():
            if isinstance(value, str):
                value.encode("utf-8")


def test_an_email_in_an_image_url_is_redacted(server, exporter, instrumented):
    content = [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": "https://img.test/a.png?u=ann@example.com"}},
    ]
    client_for(server).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": content, "name": "Ann Lee"}]
    )
    recorded = only_span(exporter).attributes["gen_ai.input.messages"]
    assert "ann@example.com" not in recorded
    assert json.loads(recorded)[0]["parts"][1]["uri"] == "https://img.test/a.png?u=<EMAIL>"


# -- item 16: the whole OpenAI surface ------------------------------------------------------


def test_streaming_response_iter_lines_is_traced_and_byte_identical(
    make_server, exporter, instrument
):
    def run(client):
        with client.chat.completions.with_streaming_response.create(
            model="gpt-4o-mini",
            messages=MESSAGES_WITH_EMAIL,
            stream=True,
            stream_options={"include_usage": True},
        ) as response:
            return list(response.iter_lines())

    bare, traced, _, _ = bare_and_traced(make_server, instrument, run, stream_usage="always")
    assert traced == bare
    span = only_span(exporter)
    assert span.attributes["gen_ai.usage.output_tokens"] > 0
    assert span.attributes["gen_ai.response.id"] == "chatcmpl-1"
    output = json.loads(span.attributes["gen_ai.output.messages"])[0]["parts"][0]["content"]
    assert output.startswith("Echo:") and "<EMAIL>" in output
    assert span.attributes["gen_ai.response.time_to_first_chunk"] > 0


@pytest.mark.parametrize("reader", ["parse", "read", "json", "iter_bytes"])
def test_streaming_response_non_stream_is_traced_whichever_way_it_is_read(
    server, exporter, instrumented, reader
):
    client = client_for(server)
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini", messages=MESSAGES_WITH_EMAIL
    ) as response:
        result = getattr(response, reader)()
        if reader == "iter_bytes":
            result = b"".join(result)
    assert result
    span = only_span(exporter)
    assert span.attributes["gen_ai.usage.output_tokens"] > 0
    assert span.attributes["gen_ai.response.id"] == "chatcmpl-1"
    assert "gen_ai.output.messages" in span.attributes


def test_streaming_response_parse_of_a_stream_hides_nothing(make_server, exporter, instrument):
    def run(client):
        with client.chat.completions.with_streaming_response.create(
            model="gpt-4o-mini", messages=MESSAGES_WITH_EMAIL, stream=True
        ) as response:
            return dumps(list(response.parse()))

    bare, traced, _, server = bare_and_traced(make_server, instrument, run, stream_usage="always")
    assert traced == bare
    assert "stream_options" not in server.requests[0].json
    assert only_span(exporter).attributes["gen_ai.response.finish_reasons"] == ("stop",)


def test_a_streaming_response_closed_unread_ends_its_span(server, exporter, instrumented):
    with client_for(server).chat.completions.with_streaming_response.create(
        model="gpt-4o-mini", messages=MESSAGES_WITH_EMAIL, stream=True
    ) as response:
        pass
    span = only_span(exporter)  # ended by close(), while ``response`` is still referenced
    assert span.end_time is not None and span.status.is_ok
    assert response is not None and closedloop.stats()["events"] == {}


class Answer(BaseModel):
    text: str


def test_chat_parse_is_traced(make_server, exporter, instrument):
    def run(client):
        messages = [{"role": "user", "content": '{"text": "hi"}'}]
        return client.chat.completions.parse(model="gpt-4o-mini", messages=messages).id

    bare, traced, _, _ = bare_and_traced(make_server, instrument, run)
    assert traced == bare
    span = only_span(exporter)
    assert span.attributes["gen_ai.response.id"] == traced
    assert span.attributes["gen_ai.usage.input_tokens"] > 0


def test_chat_stream_helper_events_identical_and_span_ends_with_the_block(
    make_server, exporter, instrument
):
    def run(client):
        with client.chat.completions.stream(
            model="gpt-4o-mini", messages=MESSAGES_WITH_EMAIL
        ) as stream:
            events = [event.type for event in stream]
            final = stream.get_final_completion()
        return events, final.model_dump(exclude_unset=True)

    bare, traced, _, _ = bare_and_traced(make_server, instrument, run, stream_usage="always")
    assert traced == bare
    span = only_span(exporter)
    assert span.attributes["gen_ai.usage.output_tokens"] > 0

    exporter.clear()
    with client_for(make_server()).chat.completions.stream(
        model="gpt-4o-mini", messages=MESSAGES_WITH_EMAIL
    ) as stream:
        next(iter(stream))
        assert llm_spans(exporter) == []
    assert only_span(exporter).end_time is not None


def test_responses_stream_helper_and_parse_are_traced(make_server, exporter, instrument):
    def run(client):
        with client.responses.stream(model="gpt-4o-mini", input="hello there") as stream:
            events = [event.type for event in stream]
        parsed = client.responses.parse(model="gpt-4o-mini", input="hello there")
        return events, parsed.output_text

    bare, traced, _, _ = bare_and_traced(make_server, instrument, run)
    assert traced == bare
    streamed, parsed = llm_spans(exporter)
    for span in (streamed, parsed):
        assert span.attributes["openai.api.type"] == "responses"
        assert span.attributes["gen_ai.usage.output_tokens"] > 0


def test_async_surface_is_traced(make_server, exporter, instrument):
    async def run():
        client = async_client_for(make_server())
        async with client.chat.completions.with_streaming_response.create(
            model="gpt-4o-mini", messages=MESSAGES_WITH_EMAIL, stream=True
        ) as response:
            lines = [line async for line in response.iter_lines()]
        parsed = await client.chat.completions.parse(
            model="gpt-4o-mini", messages=MESSAGES_WITH_EMAIL
        )
        async with client.chat.completions.stream(
            model="gpt-4o-mini", messages=MESSAGES_WITH_EMAIL
        ) as stream:
            events = [event.type async for event in stream]
        return lines, parsed.id, events

    instrument()
    lines, parsed_id, events = asyncio.run(run())
    assert any(line.startswith("data: ") for line in lines) and events[-1] == "content.done"
    spans = llm_spans(exporter)
    assert [span.attributes["gen_ai.response.id"] for span in spans] == [
        "chatcmpl-1",
        parsed_id,
        "chatcmpl-3",
    ]
    assert all(span.attributes["gen_ai.response.finish_reasons"] == ("stop",) for span in spans)


def test_streaming_response_failures_and_early_exits_end_the_span_truthfully(
    server, exporter, instrumented
):
    client = client_for(server)
    with (
        client.chat.completions.with_streaming_response.create(
            model="error-malformed", messages=MESSAGES_WITH_EMAIL
        ) as response,
        pytest.raises(ValueError),
    ):
        response.parse()
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini", messages=MESSAGES_WITH_EMAIL, stream=True
    ) as response:
        next(iter(response.parse()))
    with client.chat.completions.with_streaming_response.create(
        model="error-midstream", messages=MESSAGES_WITH_EMAIL, stream=True
    ) as response:
        lines = list(response.iter_lines())
    assert any("stream interrupted" in line for line in lines)
    malformed, partial, interrupted = llm_spans(exporter)
    assert malformed.attributes["error.type"] == "JSONDecodeError"
    assert partial.status.is_ok and partial.attributes["gen_ai.response.id"] == "chatcmpl-1"
    assert interrupted.status.description == "APIError: stream interrupted"
    assert closedloop.stats()["events"] == {}


# -- found by review: the caller's errors stay the caller's; what spans must not keep ---------


def test_the_callers_generator_error_reaches_the_caller_and_nothing_is_sent(
    make_server, exporter, instrument
):
    def messages():
        yield {"role": "user", "content": "hi"}
        raise RuntimeError("app generator failed")

    def run(client):
        try:
            client.chat.completions.create(model="gpt-4o-mini", messages=messages())
        except RuntimeError as error:
            return str(error)

    bare, traced, bare_server, server = bare_and_traced(make_server, instrument, run)
    assert traced == bare == "app generator failed"
    assert server.requests == bare_server.requests == []
    assert closedloop.stats()["internal_failures"] == 0


def test_a_failing_span_processor_never_reaches_the_caller(server, exporter, instrument):
    class Broken(SpanProcessor):
        def on_end(self, span):
            raise RuntimeError("processor bug")

    provider = instrument()
    provider.add_span_processor(Broken())
    client = client_for(server)
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES_WITH_EMAIL)
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES_WITH_EMAIL, stream=True
        )
    )
    assert reply.id == "chatcmpl-1" and chunks[0].id == "chatcmpl-2"
    assert closedloop.stats()["failures_by_site"]["span.end"] == 2


def test_keys_of_tool_arguments_are_redacted_and_bounded(server, exporter, instrument):
    instrument(max_content_chars=1_000)
    arguments = json.dumps({"ann.lee@example.com": "vip", "bob@example.com": "x", "k" * 5_000: 1})
    history = [
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": arguments}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "done"},
    ]
    client_for(server).chat.completions.create(model="gpt-4o-mini", messages=history)
    recorded = only_span(exporter).attributes["gen_ai.input.messages"]
    assert "@" not in recorded and len(recorded) < 2_000
    call = json.loads(recorded)[1]["parts"][0]
    assert call["arguments"] == {"<EMAIL>": "vip", "<EMAIL>#": "x", TRUNCATION_MARK: 1}


def test_a_jwt_split_by_the_cut_is_dropped_whole(server, exporter, instrument):
    instrument(max_content_chars=1_000)
    payload = base64.urlsafe_b64encode(json.dumps({"sub": "u-4711", "pad": "y" * 700}).encode())
    jwt = "eyJhbGciOiJIUzI1NiJ9." + payload.decode().rstrip("=") + ".c2ln"
    for start in (600, 900, 990):
        exporter.clear()
        prompt = "a " * (start // 2) + jwt + " and more words" * 100
        client_for(server).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
        )
        recorded = only_span(exporter).attributes["gen_ai.input.messages"]
        assert "eyJ" not in recorded and "u-4711" not in recorded, start


@pytest.mark.parametrize("form", ["streaming_response", "raw_response"])
def test_raw_stream_latency_runs_to_the_last_chunk(make_server, exporter, instrument, form):
    instrument()
    client = client_for(make_server(first_chunk_delay=0.1, chunk_delay=0.02))
    started = time.perf_counter()
    if form == "streaming_response":
        with client.chat.completions.with_streaming_response.create(
            model="gpt-4o-mini", messages=MESSAGES_WITH_EMAIL, stream=True
        ) as response:
            chunks = list(response.parse())
    else:
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=MESSAGES_WITH_EMAIL, stream=True
        )
        chunks = list(raw.parse())
    wall_ms = (time.perf_counter() - started) * 1000
    attributes = only_span(exporter).attributes
    # The body took at least first_chunk_delay + one chunk_delay per later chunk.
    body_ms = 100 + 20 * (len(chunks) - 2)
    assert body_ms <= attributes["closedloop.latency.ms"] <= wall_ms
    assert attributes["gen_ai.response.time_to_first_chunk"] * 1000 <= wall_ms


def test_the_retry_after_a_refusal_does_not_chain_closedloops_request(
    make_server, exporter, instrument
):
    strict = {"refuse_arguments": ["stream_options", "temperature"]}

    def run(client):
        try:
            client.chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES_WITH_EMAIL, stream=True, temperature=0.5
            )
        except openai.BadRequestError as error:
            chain = []
            while error is not None:
                chain.append(type(error).__name__)
                error = error.__cause__ or error.__context__
            return chain

    bare, traced, _, server = bare_and_traced(
        make_server, instrument, run, strict, stream_usage="always"
    )
    assert traced == bare
    assert [bool(r.json.get("stream_options")) for r in server.requests] == [True, False]


def test_a_caller_who_chose_stream_options_is_never_asked(make_server, exporter, instrument):
    def run(client):
        try:
            return chat_stream(client, stream_options={"include_obfuscation": False})
        except openai.BadRequestError as error:
            return str(error)

    strict = {"refuse_arguments": ["stream_options"]}
    bare, traced, _, server = bare_and_traced(
        make_server, instrument, run, strict, stream_usage="always"
    )
    assert traced == bare
    assert [r.json["stream_options"] for r in server.requests] == [{"include_obfuscation": False}]
