"""Every proxy and manager the instrumentation returns is registered with its call's span,
so feedback can be given with whichever object the app holds."""

from __future__ import annotations

import asyncio

import pytest
from openai.types import CreateEmbeddingResponse
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased

import closedloop.feedback as fb
from _support.spans import async_client_for, client_for, llm_spans

ASK = [{"role": "user", "content": "Where is my refund?"}]


def feedback_parents(exporter) -> list[int]:
    return [
        s.parent.span_id for s in exporter.get_finished_spans() if s.name == "closedloop.feedback"
    ]


def feedback_calls(exporter) -> list[str]:
    """``trace_id:span_id`` of the call each feedback span is about (its parent)."""
    return [
        f"{trace.format_trace_id(s.context.trace_id)}:{trace.format_span_id(s.parent.span_id)}"
        for s in exporter.get_finished_spans()
        if s.name == "closedloop.feedback"
    ]


@pytest.fixture
def unsampled(instrument, exporter):
    """Head sampling drops every call: a parent-based sampler (the shape of the SDK's
    ``parentbased_*`` defaults) whose root decision is always no."""
    provider = TracerProvider(sampler=ParentBased(ALWAYS_OFF))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrument(tracer_provider=provider)


def test_unsampled_calls_are_registered_and_take_feedback_in_their_trace(
    server, exporter, unsampled
):
    """``call = feedback.call_id(reply)`` must not fail on the calls head sampling drops."""
    client = client_for(server)
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=ASK)
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=ASK, stream=True)
    list(stream)
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=ASK)
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini", messages=ASK
    ) as streaming:
        streaming.parse()
    with client.chat.completions.stream(model="gpt-4o-mini", messages=ASK) as helper:
        helper.until_done()
    response = client.responses.create(model="gpt-4o-mini", input="hi")
    embedding = client.embeddings.create(model="text-embedding-3-small", input="hi")
    calls = [
        [reply, reply.model_copy()],
        [stream],
        [raw, raw.parse()],
        [streaming],
        [helper, helper.get_final_completion()],
        [response],
        [embedding],
    ]
    assert llm_spans(exporter) == []  # nothing was sampled
    ids = [[fb.call_id(target) for target in targets] for targets in calls]
    assert all(len(set(same)) == 1 for same in ids)
    assert len({same[0] for same in ids}) == len(calls)
    for targets in calls:
        for target in targets:
            assert fb.thumbs(target, up=True) is not None
    assert feedback_calls(exporter) == [call for same in ids for call in same]


def test_an_embeddings_result_resolves_to_its_call(server, exporter, instrumented):
    embedding = client_for(server).embeddings.create(model="text-embedding-3-small", input="hi")
    [call] = llm_spans(exporter)
    call_id = fb.call_id(embedding)
    fb.thumbs(embedding, up=True)
    assert feedback_calls(exporter) == [call_id]
    assert call_id.endswith(trace.format_span_id(call.context.span_id))


def test_an_embeddings_result_from_elsewhere_is_a_clear_value_error(instrumented):
    elsewhere = CreateEmbeddingResponse(
        data=[],
        model="text-embedding-3-small",
        object="list",
        usage={"prompt_tokens": 1, "total_tokens": 1},
    )
    with pytest.raises(ValueError, match="not returned by an instrumented call"):
        fb.call_id(elsewhere)


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
