"""Responses API and embeddings spans, sync and async."""

from __future__ import annotations

import asyncio
import json

import openai

from _support.spans import async_client_for, client_for, llm_spans, only_span


def test_responses_plain_span(server, exporter, instrumented):
    reply = client_for(server).responses.create(
        model="gpt-4o-mini",
        instructions="Answer briefly.",
        input="What is the refund window?",
        max_output_tokens=100,
        temperature=0.5,
    )
    attributes = dict(only_span(exporter).attributes)
    usage = reply.usage
    assert {
        key: attributes[key]
        for key in (
            "gen_ai.operation.name",
            "openai.api.type",
            "gen_ai.request.model",
            "gen_ai.request.max_tokens",
            "gen_ai.request.temperature",
            "gen_ai.request.stream",
            "gen_ai.response.id",
            "gen_ai.response.model",
            "gen_ai.response.finish_reasons",
            "gen_ai.usage.input_tokens",
            "gen_ai.usage.output_tokens",
            "gen_ai.usage.cache_read.input_tokens",
            "gen_ai.usage.reasoning.output_tokens",
            "gen_ai.system_instructions",
            "gen_ai.input.messages",
            "gen_ai.output.messages",
        )
    } == {
        "gen_ai.operation.name": "chat",
        "openai.api.type": "responses",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.request.max_tokens": 100,
        "gen_ai.request.temperature": 0.5,
        "gen_ai.request.stream": False,
        "gen_ai.response.id": reply.id,
        "gen_ai.response.model": reply.model,
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": usage.input_tokens,
        "gen_ai.usage.output_tokens": usage.output_tokens,
        "gen_ai.usage.cache_read.input_tokens": usage.input_tokens_details.cached_tokens,
        "gen_ai.usage.reasoning.output_tokens": usage.output_tokens_details.reasoning_tokens,
        "gen_ai.system_instructions": '[{"type":"text","content":"Answer briefly."}]',
        "gen_ai.input.messages": json.dumps(
            [
                {
                    "role": "user",
                    "parts": [{"type": "text", "content": "What is the refund window?"}],
                }
            ],
            separators=(",", ":"),
        ),
        "gen_ai.output.messages": json.dumps(
            [
                {
                    "role": "assistant",
                    "parts": [{"type": "text", "content": reply.output_text}],
                    "finish_reason": "stop",
                }
            ],
            separators=(",", ":"),
        ),
    }
    assert attributes["closedloop.cost.usd"] > 0


def test_responses_stream_events_untouched_and_span_complete(make_server, exporter, instrument):
    def run():
        client = client_for(make_server())
        stream = client.responses.create(model="gpt-4o-mini", input="refund window?", stream=True)
        return [event.model_dump(exclude_unset=True) for event in stream]

    bare = run()
    instrument()
    traced = run()
    assert traced == bare
    final = bare[-1]["response"]
    attributes = only_span(exporter).attributes
    assert attributes["gen_ai.response.id"] == final["id"]
    assert attributes["gen_ai.usage.output_tokens"] == final["usage"]["output_tokens"]
    assert attributes["gen_ai.response.time_to_first_chunk"] > 0
    assert attributes["gen_ai.request.stream"] is True


def test_responses_function_call_and_tool_items(server, exporter, instrumented):
    client = client_for(server)
    tools = [
        {
            "type": "function",
            "name": "lookup_order",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
        }
    ]
    reply = client.responses.create(model="gpt-4o-mini", input="order 77?", tools=tools)
    call = next(item for item in reply.output if item.type == "function_call")
    client.responses.create(
        model="gpt-4o-mini",
        input=[
            {"role": "user", "content": "order 77?"},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": "shipped"},
        ],
    )
    first, second = llm_spans(exporter)
    assert first.attributes["closedloop.tools"] == ("lookup_order",)
    assert first.attributes["closedloop.tools.defined"] == ("lookup_order",)
    assert first.attributes["gen_ai.response.finish_reasons"] == ("tool_calls",)
    inputs = json.loads(second.attributes["gen_ai.input.messages"])
    assert [message["role"] for message in inputs] == ["user", "assistant", "tool"]
    assert inputs[2]["parts"][0] == {
        "type": "tool_call_response",
        "id": call.call_id,
        "response": "shipped",
    }


def test_async_responses_and_raw_form(server, exporter, instrumented):
    async def run():
        client = async_client_for(server)
        plain = await client.responses.create(model="gpt-4o-mini", input="hello there")
        raw = await client.responses.with_raw_response.create(model="gpt-4o-mini", input="hi")
        stream = await client.responses.create(model="gpt-4o-mini", input="hey", stream=True)
        events = [event async for event in stream]
        return plain, raw.parse(), events

    plain, parsed, events = asyncio.run(run())
    spans = llm_spans(exporter)
    assert [s.attributes["gen_ai.response.id"] for s in spans] == [
        plain.id,
        parsed.id,
        events[-1].response.id,
    ]


def test_embeddings_span(server, exporter, instrumented):
    client = client_for(server)
    reply = client.embeddings.create(
        model="text-embedding-3-small", input=["a refund", "a return"], dimensions=16
    )
    attributes = dict(only_span(exporter).attributes)
    attributes.pop("closedloop.latency.ms")
    assert attributes == {
        "gen_ai.operation.name": "embeddings",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "text-embedding-3-small",
        "server.address": "127.0.0.1",
        "server.port": server.port,
        "gen_ai.embeddings.dimension.count": 16,
        "gen_ai.response.model": reply.model,
        "gen_ai.usage.input_tokens": reply.usage.prompt_tokens,
        "gen_ai.usage.output_tokens": 0,
        "gen_ai.usage.cache_read.input_tokens": 0,
        "closedloop.cost.usd": attributes["closedloop.cost.usd"],
        "closedloop.redactions": 0,
        "closedloop.provider.request_id": reply._request_id,
    }
    assert attributes["closedloop.cost.usd"] > 0
    assert len(reply.data[0].embedding) == 16


def test_async_embeddings_error(server, exporter, instrumented):
    async def run():
        await async_client_for(server).embeddings.create(model="error-500", input="x")

    try:
        asyncio.run(run())
    except openai.InternalServerError:
        pass
    else:
        raise AssertionError("expected InternalServerError")
    assert only_span(exporter).attributes["error.type"] == "InternalServerError"
