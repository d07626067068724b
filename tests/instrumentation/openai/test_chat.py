"""Chat Completions spans: exact attributes, and the caller's view left untouched."""

from __future__ import annotations

import asyncio
import gc
import json
import os

import openai
import pytest
from genai_prices import Usage, calc_price

import closedloop
from _support.spans import async_client_for, client_for, llm_spans, only_span
from closedloop._runtime import current

MESSAGES = [
    {"role": "system", "content": "You are a support bot."},
    {"role": "user", "content": "Where is my refund? Mail me at ann@example.com"},
]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup_order",
            "description": "Find an order",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
        },
    }
]


def expected_cost(model: str, usage: openai.types.CompletionUsage) -> float:
    cached = usage.prompt_tokens_details.cached_tokens if usage.prompt_tokens_details else 0
    price = calc_price(
        Usage(
            input_tokens=usage.prompt_tokens,
            output_tokens=usage.completion_tokens,
            cache_read_tokens=cached,
        ),
        model,
        provider_id="openai",
    )
    return float(price.total_price)


def test_plain_chat_span_has_exactly_the_contract_attributes(
    server, exporter, instrumented, user_hash
):
    client = client_for(server)
    with closedloop.context(
        user_id="user-42",
        session_id="sess-1",
        conversation_id="conv-9",
        turn=3,
        prompt_name="support",
        prompt_version="v7",
        experiment="tone",
        variant="b",
        tools=["kb_search"],
        request_id="app-req-1",
    ):
        reply = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            temperature=0.2,
            top_p=0.9,
            max_tokens=50,
            seed=7,
            prompt_cache_key="support-v7",
        )
    span = only_span(exporter)
    attributes = dict(span.attributes)
    latency = attributes.pop("closedloop.latency.ms")
    assert 0 < latency < span.end_time / 1e6 - span.start_time / 1e6 + 1
    usage = reply.usage
    assert usage.prompt_tokens_details.cached_tokens > 0
    assert attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "openai.api.type": "chat_completions",
        "gen_ai.request.model": "gpt-4o-mini",
        "server.address": "127.0.0.1",
        "server.port": server.port,
        "gen_ai.request.stream": False,
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.top_p": 0.9,
        "gen_ai.request.max_tokens": 50,
        "gen_ai.request.seed": 7,
        "session.id": "sess-1",
        "gen_ai.conversation.id": "conv-9",
        "closedloop.turn": 3,
        "gen_ai.prompt.name": "support",
        "gen_ai.prompt.version": "v7",
        "closedloop.experiment": "tone",
        "closedloop.variant": "b",
        "closedloop.request.id": "app-req-1",
        "closedloop.tools": ("kb_search",),
        "user.hash": user_hash("user-42"),
        "closedloop.user.interaction": 1,
        "closedloop.user.new": True,
        "gen_ai.input.messages": json.dumps(
            [
                {
                    "role": "system",
                    "parts": [{"type": "text", "content": "You are a support bot."}],
                },
                {
                    "role": "user",
                    "parts": [
                        {"type": "text", "content": "Where is my refund? Mail me at <EMAIL>"}
                    ],
                },
            ],
            separators=(",", ":"),
        ),
        "gen_ai.response.id": reply.id,
        "gen_ai.response.model": reply.model,
        "gen_ai.response.finish_reasons": ("stop",),
        "openai.response.system_fingerprint": reply.system_fingerprint,
        "openai.response.service_tier": reply.service_tier,
        "gen_ai.usage.input_tokens": usage.prompt_tokens,
        "gen_ai.usage.output_tokens": usage.completion_tokens,
        "gen_ai.usage.cache_read.input_tokens": usage.prompt_tokens_details.cached_tokens,
        "gen_ai.usage.reasoning.output_tokens": 0,
        "closedloop.cost.usd": pytest.approx(expected_cost(reply.model, usage), rel=1e-12),
        "gen_ai.output.messages": json.dumps(
            [
                {
                    "role": "assistant",
                    "parts": [
                        {
                            "type": "text",
                            "content": reply.choices[0].message.content.replace(
                                "ann@example.com", "<EMAIL>"
                            ),
                        }
                    ],
                    "finish_reason": "stop",
                }
            ],
            separators=(",", ":"),
        ),
        "closedloop.redactions": 2,
        "closedloop.provider.request_id": reply._request_id,
    }
    assert span.name == "chat gpt-4o-mini"
    assert span.kind.name == "CLIENT"
    assert span.status.status_code.name == "UNSET"


def _dump_chunks(chunks):
    return [chunk.model_dump(exclude_unset=True) for chunk in chunks]


@pytest.mark.parametrize("include_usage", [False, True])
def test_stream_chunks_are_identical_with_and_without_instrumentation(
    make_server, exporter, instrument, include_usage
):
    options = {"stream_options": {"include_usage": True}} if include_usage else {}

    def run():
        client = client_for(make_server())
        stream = client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, **options
        )
        return _dump_chunks(list(stream))

    bare = run()
    instrument()
    traced = run()
    assert traced == bare
    assert (bare[-1]["choices"] == []) is include_usage
    span = only_span(exporter)
    attributes = span.attributes
    assert attributes["gen_ai.request.stream"] is True
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in bare if c["choices"])
    output = json.loads(attributes["gen_ai.output.messages"])[0]["parts"][0]["content"]
    assert output == text.replace("ann@example.com", "<EMAIL>")
    assert attributes["gen_ai.usage.output_tokens"] == len(text.split())
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert attributes["gen_ai.response.time_to_first_chunk"] > 0
    assert attributes["closedloop.cost.usd"] > 0
    assert attributes["closedloop.provider.request_id"].startswith("req_")


def test_time_to_first_chunk_measures_the_first_content_chunk(make_server, exporter, instrumented):
    client = client_for(make_server(first_chunk_delay=0.05, chunk_delay=0.01))
    chunks = list(
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    )
    attributes = only_span(exporter).attributes
    ttft = attributes["gen_ai.response.time_to_first_chunk"]
    total_s = attributes["closedloop.latency.ms"] / 1000
    assert 0.05 <= ttft < total_s
    assert total_s >= 0.05 + 0.01 * (len(chunks) - 2)


def test_stream_is_still_the_sdk_stream(server, exporter, instrumented):
    stream = client_for(server).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True
    )
    assert isinstance(stream, openai.Stream)
    assert stream.response.status_code == 200
    with stream as entered:
        assert entered is stream
        first = next(iter(entered))
    assert first.choices[0].delta.role == "assistant"
    span = only_span(exporter)
    assert span.end_time is not None


@pytest.mark.parametrize("how", ["close", "break_and_gc", "context_manager"])
def test_abandoned_streams_end_their_span_exactly_once(server, exporter, instrumented, how):
    client = client_for(server)
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    if how == "close":
        next(stream)
        stream.close()
        stream.close()
    elif how == "break_and_gc":
        for _ in stream:
            break
        del stream
        assert current().deferred.wait_idle()
    else:
        with stream:
            next(stream)
    spans = llm_spans(exporter)
    assert len(spans) == 1
    assert spans[0].attributes["gen_ai.response.id"].startswith("chatcmpl-")
    if how == "break_and_gc":
        assert closedloop.stats()["events"]["stream.ended_by_gc"] == 1


def test_a_stream_looped_over_unnamed_is_traced_to_its_end(server, exporter, instrumented):
    """``for chunk in create(...)`` keeps only the iterator the loop got, so that must keep
    the proxy alive: collecting the proxy would end the span at the first chunk."""
    client = client_for(server)
    texts = []
    for chunk in client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True
    ):
        gc.collect()
        assert current().deferred.wait_idle()
        assert not llm_spans(exporter), "the span ended before the stream did"
        texts.extend(choice.delta.content or "" for choice in chunk.choices)
    attributes = only_span(exporter).attributes
    output = json.loads(attributes["gen_ai.output.messages"])[0]["parts"][0]["content"]
    assert output == "".join(texts).replace("ann@example.com", "<EMAIL>")
    assert "stream.ended_by_gc" not in closedloop.stats()["events"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_ends_the_spans_of_its_abandoned_streams(server, exporter, instrumented):
    """Threads do not survive fork: the child needs a worker of its own to end the span of a
    stream it abandoned."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child reports through the pipe and never returns into pytest
        try:
            client = client_for(server)
            stream = client.chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, stream=True
            )
            next(stream)
            del stream
            gc.collect()
            idle = current().deferred.wait_idle(5.0)
            names = [span.name for span in llm_spans(exporter)]
            os.write(write_end, json.dumps({"idle": idle, "spans": names}).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as reader:
        report = json.loads(reader.read() or "{}")
    os.waitpid(pid, 0)
    assert report == {"idle": True, "spans": ["chat gpt-4o-mini"]}


def test_tool_calls_plain_and_streamed(server, exporter, instrumented):
    client = client_for(server)
    messages = [{"role": "user", "content": "order 1234 status"}]
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=TOOLS)
    with closedloop.context(tools=["kb_search"]):
        chunks = list(
            client.chat.completions.create(
                model="gpt-4o-mini", messages=messages, tools=TOOLS, stream=True
            )
        )
    assert chunks
    plain, streamed = llm_spans(exporter)
    call = reply.choices[0].message.tool_calls[0]
    for span, expected_tools in (
        (plain, ("lookup_order",)),
        (streamed, ("kb_search", "lookup_order")),
    ):
        attributes = span.attributes
        assert attributes["closedloop.tools.defined"] == ("lookup_order",)
        assert attributes["closedloop.tools"] == expected_tools
        assert attributes["gen_ai.response.finish_reasons"] == ("tool_calls",)
        output = json.loads(attributes["gen_ai.output.messages"])
        assert output[0]["parts"] == [
            {
                "type": "tool_call",
                "id": output[0]["parts"][0]["id"],
                "name": "lookup_order",
                "arguments": json.loads(call.function.arguments),
            }
        ]
    followup = [
        *messages,
        reply.choices[0].message,
        {"role": "tool", "tool_call_id": call.id, "content": "shipped"},
    ]
    client.chat.completions.create(model="gpt-4o-mini", messages=followup, tools=TOOLS)
    last = llm_spans(exporter)[-1]
    inputs = json.loads(last.attributes["gen_ai.input.messages"])
    assert inputs[1]["parts"][0]["type"] == "tool_call"
    assert inputs[2] == {
        "role": "tool",
        "parts": [{"type": "tool_call_response", "id": call.id, "response": "shipped"}],
    }


def test_raw_response_forms_are_traced(server, exporter, instrumented):
    client = client_for(server)
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    parsed = raw.parse()
    raw_stream = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True
    )
    chunks = list(raw_stream.parse())
    # A raw caller may read the bytes, where an added usage chunk could not be hidden:
    # closedloop never asks for usage on a raw stream.
    assert all(chunk.choices for chunk in chunks)
    assert "stream_options" not in server.requests[-1].json
    plain, streamed = llm_spans(exporter)
    assert plain.attributes["gen_ai.response.id"] == parsed.id
    assert plain.attributes["closedloop.provider.request_id"] == raw.request_id
    assert streamed.attributes["gen_ai.response.id"] == chunks[0].id
    assert "gen_ai.usage.output_tokens" not in streamed.attributes


def test_streaming_response_form_passes_through(server, exporter, instrumented):
    client = client_for(server)
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini", messages=MESSAGES
    ) as response:
        body = response.parse()
    assert body.choices[0].message.content.startswith("Echo:")
    assert (
        only_span(exporter).attributes["closedloop.provider.request_id"]
        == response.headers["x-request-id"]
    )


@pytest.mark.parametrize(
    ("model", "error_type"),
    [
        ("error-429", openai.RateLimitError),
        ("error-500", openai.InternalServerError),
    ],
)
def test_http_errors_propagate_unchanged_and_mark_the_span(
    make_server, exporter, instrument, model, error_type
):
    def failure():
        with pytest.raises(error_type) as caught:
            client_for(make_server()).chat.completions.create(model=model, messages=MESSAGES)
        return caught.value

    bare = failure()
    instrument()
    traced = failure()
    assert (type(traced), str(traced), traced.status_code, traced.body) == (
        type(bare),
        str(bare),
        bare.status_code,
        bare.body,
    )
    span = only_span(exporter)
    assert span.status.status_code.name == "ERROR"
    assert span.attributes["error.type"] == error_type.__qualname__
    assert (
        span.attributes["closedloop.provider.request_id"] == traced.response.headers["x-request-id"]
    )
    assert [event.name for event in span.events] == ["exception"]


def test_malformed_body_error_propagates_unchanged(make_server, exporter, instrument):
    def failure():
        with pytest.raises(Exception) as caught:
            client_for(make_server()).chat.completions.create(
                model="error-malformed", messages=MESSAGES
            )
        return caught.value

    bare = failure()
    instrument()
    traced = failure()
    assert (type(traced), str(traced)) == (type(bare), str(bare))
    assert only_span(exporter).attributes["error.type"] == type(bare).__qualname__


def test_midstream_error_reaches_the_caller_and_the_span(server, exporter, instrumented):
    stream = client_for(server).chat.completions.create(
        model="error-midstream", messages=MESSAGES, stream=True
    )
    received = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            received.append(chunk)
    assert received
    span = only_span(exporter)
    assert span.status.status_code.name == "ERROR"
    assert span.attributes["error.type"] == "APIError"


def test_async_plain_and_stream_match_bare_calls(make_server, exporter, instrument):
    async def run():
        client = async_client_for(make_server())
        reply = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        stream = await client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True
        )
        chunks = [chunk async for chunk in stream]
        return reply.model_dump(exclude_unset=True), _dump_chunks(chunks), stream

    bare_reply, bare_chunks, _ = asyncio.run(run())
    instrument()
    reply, chunks, stream = asyncio.run(run())
    assert (reply, chunks) == (bare_reply, bare_chunks)
    assert isinstance(stream, openai.AsyncStream)
    plain, streamed = llm_spans(exporter)
    assert plain.attributes["gen_ai.response.id"] == reply["id"]
    assert (
        streamed.attributes["gen_ai.usage.input_tokens"]
        == plain.attributes["gen_ai.usage.input_tokens"]
    )


def test_async_errors_propagate(server, exporter, instrumented):
    async def run():
        await async_client_for(server).chat.completions.create(model="error-429", messages=MESSAGES)

    with pytest.raises(openai.RateLimitError):
        asyncio.run(run())
    assert only_span(exporter).attributes["error.type"] == "RateLimitError"


def test_plain_results_are_identical_with_and_without_instrumentation(make_server, instrument):
    def run():
        client = client_for(make_server())
        return [
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, n=2),
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, tools=TOOLS),
            client.chat.completions.create(model="o3-mini", messages=MESSAGES, max_tokens=2),
        ]

    bare = run()
    instrument()
    traced = run()
    assert traced == bare
    assert [r.model_dump(exclude_unset=True) for r in traced] == [
        r.model_dump(exclude_unset=True) for r in bare
    ]
    assert [r._request_id for r in traced] == [r._request_id for r in bare]


def test_uninstrument_restores_the_sdk_exactly(server, exporter, instrument):
    from openai.resources.chat.completions import AsyncCompletions, Completions

    originals = (Completions.create, AsyncCompletions.create)
    instrument()
    assert Completions.create is not originals[0]
    assert closedloop.instrument() is closedloop.instrument()
    closedloop.uninstrument()
    assert (Completions.create, AsyncCompletions.create) == originals
    client_for(server).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert llm_spans(exporter) == []


def test_async_stream_keeps_context_manager_close_and_raw_forms(server, exporter, instrumented):
    async def run():
        client = async_client_for(server)
        stream = await client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True
        )
        async with stream as entered:
            assert entered is stream
            first = await entered.__anext__()
        closed = await client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True
        )
        await closed.close()
        await closed.close()
        raw = await client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
        parsed = raw.parse()
        chunks = [chunk async for chunk in parsed]
        return first, parsed, chunks

    first, parsed, chunks = asyncio.run(run())
    assert first.choices[0].delta.role == "assistant"
    assert isinstance(parsed, openai.AsyncStream)
    # The caller asked for usage on the raw stream: its usage chunk is theirs, not hidden.
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    spans = llm_spans(exporter)
    assert len(spans) == 3
    assert spans[2].attributes["gen_ai.usage.output_tokens"] == len(
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).split()
    )


def test_server_address_follows_the_client_called_through(
    make_server, exporter, instrumented, monkeypatch
):
    """The endpoint is read once per client and base URL: a second client, a base URL
    changed in place and the module-level client (which ``openai.base_url`` steers) each
    name the server the request went to."""
    first, second = make_server(), make_server()
    client = client_for(first)
    asked = {"model": "gpt-4o-mini", "messages": MESSAGES}
    client.chat.completions.create(**asked)
    client_for(second).chat.completions.create(**asked)
    client.chat.completions.create(**asked)
    client.base_url = second.base_url
    client.chat.completions.create(**asked)
    monkeypatch.setattr(openai, "api_key", "test-key")
    monkeypatch.setattr(openai, "max_retries", 0)
    for server in (first, second):
        monkeypatch.setattr(openai, "base_url", f"{server.base_url}/")
        openai.chat.completions.create(**asked)
    ports = [span.attributes["server.port"] for span in llm_spans(exporter)]
    assert ports == [first.port, second.port, first.port, second.port, first.port, second.port]
