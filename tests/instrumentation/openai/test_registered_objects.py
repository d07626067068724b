"""Every proxy and manager the instrumentation returns is registered with its call's span,
so feedback can be given with whichever object the app holds."""

from __future__ import annotations

import asyncio

import closedloop.feedback as fb
from _support.spans import async_client_for, client_for, llm_spans

ASK = [{"role": "user", "content": "Where is my refund?"}]


def feedback_parents(exporter) -> list[int]:
    return [
        s.parent.span_id for s in exporter.get_finished_spans() if s.name == "closedloop.feedback"
    ]


def test_raw_and_streaming_response_streams_resolve_to_their_call(server, exporter, instrumented):
    client = client_for(server)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=ASK, stream=True
    )
    raw_stream = raw.parse()
    list(raw_stream)
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini", messages=ASK, stream=True
    ) as streaming:
        parsed_stream = streaming.parse()
        list(parsed_stream)
    first, second = llm_spans(exporter)
    targets = [(raw, first), (raw_stream, first), (streaming, second), (parsed_stream, second)]
    for target, _ in targets:
        fb.thumbs(target, up=True)
    assert feedback_parents(exporter) == [call.context.span_id for _, call in targets]


def test_a_stream_helper_and_its_manager_resolve_to_their_call(server, exporter, instrumented):
    manager = client_for(server).chat.completions.stream(model="gpt-4o-mini", messages=ASK)
    with manager as helper:
        helper.until_done()
    fb.thumbs(manager, up=True)
    fb.thumbs(helper, up=False)
    [call] = llm_spans(exporter)
    assert feedback_parents(exporter) == [call.context.span_id] * 2


def test_an_async_streaming_response_resolves_to_its_call(server, exporter, instrumented):
    async def ask():
        client = async_client_for(server)
        async with client.responses.with_streaming_response.create(
            model="gpt-4o-mini", input="hi"
        ) as response:
            await response.parse()
            return response

    response = asyncio.run(ask())
    fb.thumbs(response, up=True)
    [call] = llm_spans(exporter)
    assert feedback_parents(exporter) == [call.context.span_id]
