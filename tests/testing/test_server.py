"""End-to-end tests of closedloop.testing through the real ``openai`` SDK over a socket."""

from __future__ import annotations

import asyncio
import http.client
import json
import math
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai
import pytest
from openai import AsyncOpenAI, OpenAI

from closedloop.testing import OpenAICompatibleServer, RecordedRequest

USER = {"role": "user", "content": "what is the weather in Paris"}
ECHO = "Echo: what is the weather in Paris"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "search",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
        },
    }
]


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAICompatibleServer]:
    with OpenAICompatibleServer() as running:
        yield running


@pytest.fixture
def fresh_server() -> Iterator[OpenAICompatibleServer]:
    """A private server for tests that assert on recorded requests or connection counts."""
    with OpenAICompatibleServer() as running:
        yield running


def make_client(server: OpenAICompatibleServer, **options: Any) -> OpenAI:
    """An SDK client on ``server``; retries are off unless a test opts back in."""
    return OpenAI(
        **{"base_url": server.base_url, "api_key": "test-key", "max_retries": 0, **options}
    )


@pytest.fixture
def client(server: OpenAICompatibleServer) -> Iterator[OpenAI]:
    with make_client(server) as sdk:
        yield sdk


def test_chat_echoes_last_user_text_and_counts_words(client: OpenAI) -> None:
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "ignored earlier turn"},
        {
            "role": "user",
            "content": [{"type": "text", "text": "hello"}, {"type": "text", "text": "there"}],
        },
    ]
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=messages)

    assert completion.id.startswith("chatcmpl-")
    assert completion.model == "gpt-4o-mini-2024-07-18"
    assert completion.system_fingerprint
    [choice] = completion.choices
    assert choice.message.content == "Echo: hello there"
    assert choice.finish_reason == "stop"
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens == (2 + 4) + (3 + 4) + (2 + 4)
    assert usage.completion_tokens == 3
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details and usage.prompt_tokens_details.cached_tokens == 0
    assert usage.completion_tokens_details
    assert usage.completion_tokens_details.reasoning_tokens == 0


def test_chat_keeps_dated_models_and_honours_n(client: OpenAI) -> None:
    completion = client.chat.completions.create(model="gpt-4o-2024-08-06", messages=[USER], n=3)

    assert completion.model == "gpt-4o-2024-08-06"
    assert [choice.index for choice in completion.choices] == [0, 1, 2]
    assert {choice.message.content for choice in completion.choices} == {ECHO}
    assert completion.usage and completion.usage.completion_tokens == 3 * len(ECHO.split())


@pytest.mark.parametrize("limit_param", ["max_tokens", "max_completion_tokens"])
def test_chat_token_limit_truncates_with_length(client: OpenAI, limit_param: str) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o-mini", messages=[USER], **{limit_param: 3}
    )

    assert completion.choices[0].message.content == "Echo: what is"
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage and completion.usage.completion_tokens == 3


def test_chat_cache_key_and_reasoning_model_usage(client: OpenAI) -> None:
    completion = client.chat.completions.create(
        model="o4-mini", messages=[USER], prompt_cache_key="tenant-1"
    )

    usage = completion.usage
    assert usage and usage.prompt_tokens_details and usage.completion_tokens_details
    assert usage.prompt_tokens_details.cached_tokens == usage.prompt_tokens // 2 > 0
    assert usage.completion_tokens_details.reasoning_tokens == 8
    assert usage.completion_tokens == len(ECHO.split()) + 8


def test_chat_stream_without_usage(client: OpenAI) -> None:
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=[USER], stream=True))

    assert len(chunks) == len(ECHO.split()) + 2
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks) == ECHO
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(chunk.usage is None for chunk in chunks)
    assert len({chunk.id for chunk in chunks}) == 1


def test_chat_stream_with_usage_matches_plain_usage(client: OpenAI) -> None:
    plain = client.chat.completions.create(model="gpt-4o-mini", messages=[USER])
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[USER],
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    assert len(chunks) == len(ECHO.split()) + 3
    *content_chunks, usage_chunk = chunks
    assert usage_chunk.choices == []
    assert usage_chunk.usage == plain.usage
    assert all(chunk.usage is None for chunk in content_chunks)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in content_chunks) == ECHO


def test_tool_call_then_answer_after_tool_result(client: OpenAI) -> None:
    completion = client.chat.completions.create(model="gpt-4o", messages=[USER], tools=TOOLS)

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    [call] = choice.message.tool_calls or []
    assert call.id.startswith("call_") and call.type == "function"
    assert call.function.name == "search"
    assert json.loads(call.function.arguments) == {"query": USER["content"]}

    follow_up = [
        USER,
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    answer = client.chat.completions.create(model="gpt-4o", messages=follow_up, tools=TOOLS)
    assert answer.choices[0].finish_reason == "stop"
    assert answer.choices[0].message.content == ECHO


def test_tool_choice_none_answers_in_text(client: OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o", messages=[USER], tools=TOOLS, tool_choice="none"
    )

    assert completion.choices[0].message.content == ECHO


def test_streamed_tool_call_reassembles(client: OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(model="gpt-4o", messages=[USER], tools=TOOLS, stream=True)
    )

    first = (chunks[0].choices[0].delta.tool_calls or [])[0]
    assert first.index == 0 and first.id and first.type == "function"
    assert first.function and first.function.name == "search" and first.function.arguments == ""
    arguments = "".join(
        call.function.arguments or ""
        for chunk in chunks
        for call in chunk.choices[0].delta.tool_calls or []
        if call.function
    )
    assert json.loads(arguments) == {"query": USER["content"]}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_sdk_stream_helper_accumulates_tool_call(client: OpenAI) -> None:
    with client.chat.completions.stream(model="gpt-4o", messages=[USER], tools=TOOLS) as stream:
        final = stream.get_final_completion()

    [call] = final.choices[0].message.tool_calls or []
    assert json.loads(call.function.arguments) == {"query": USER["content"]}


def test_async_client_streams_and_reuses_connection(fresh_server: OpenAICompatibleServer) -> None:
    async def run() -> list[str]:
        async with AsyncOpenAI(base_url=fresh_server.base_url, api_key="k", max_retries=0) as sdk:
            texts = []
            for _ in range(3):
                stream = await sdk.chat.completions.create(
                    model="gpt-4o-mini", messages=[USER], stream=True
                )
                texts.append("".join([c.choices[0].delta.content or "" async for c in stream]))
            return texts

    assert asyncio.run(run()) == [ECHO] * 3
    assert fresh_server.connections_accepted == 1


def test_responses_plain(client: OpenAI) -> None:
    response = client.responses.create(
        model="gpt-4o-mini", instructions="be brief", input="tell me a joke"
    )

    assert response.id.startswith("resp_")
    assert response.status == "completed"
    assert response.model == "gpt-4o-mini-2024-07-18"
    assert response.output_text == "Echo: tell me a joke"
    usage = response.usage
    assert usage is not None
    assert usage.input_tokens == (2 + 4) + (4 + 4)
    assert usage.output_tokens == 5
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert usage.input_tokens_details.cached_tokens == 0
    assert usage.output_tokens_details.reasoning_tokens == 0


def test_responses_input_items_and_function_call(client: OpenAI) -> None:
    items = [{"role": "user", "content": [{"type": "input_text", "text": "find cats"}]}]
    tools = [{"type": "function", "name": "search", "parameters": {"type": "object"}}]
    call_response = client.responses.create(model="o3", input=items, tools=tools)

    [call] = call_response.output
    assert call.type == "function_call" and call.name == "search"
    assert json.loads(call.arguments) == {"query": "find cats"}
    assert call_response.output_text == ""
    assert call_response.usage and call_response.usage.output_tokens_details.reasoning_tokens == 8

    result = {"type": "function_call_output", "call_id": call.call_id, "output": "two cats"}
    answer = client.responses.create(model="o3", input=[*items, result], tools=tools)
    assert answer.output_text == "Echo: find cats"


def test_responses_stream_event_order_and_usage(client: OpenAI) -> None:
    plain = client.responses.create(model="gpt-4o-mini", input="stream this please")
    events = list(
        client.responses.create(model="gpt-4o-mini", input="stream this please", stream=True)
    )

    words = len(plain.output_text.split())
    assert [event.type for event in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * words,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert type(events[0]).__name__ == "ResponseCreatedEvent"
    assert type(events[4]).__name__ == "ResponseTextDeltaEvent"
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == plain.output_text
    completed = events[-1]
    assert completed.type == "response.completed"
    assert completed.response.output_text == plain.output_text
    assert completed.response.usage == plain.usage


def test_responses_stream_helper(client: OpenAI) -> None:
    with client.responses.stream(model="gpt-4o-mini", input="hi") as stream:
        final = stream.get_final_response()

    assert final.output_text == "Echo: hi"


def test_strict_validation_accepts_every_payload(server: OpenAICompatibleServer) -> None:
    """Payloads must satisfy the SDK's pydantic models, not just its lenient construction."""
    with make_client(server, _strict_response_validation=True) as strict:
        strict.chat.completions.create(model="o1", messages=[USER], tools=TOOLS)
        list(
            strict.chat.completions.create(
                model="gpt-4o",
                messages=[USER],
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        for tools in ([], [{"type": "function", "name": "search", "parameters": {}}]):
            strict.responses.create(model="gpt-4o", input="hi", tools=tools)
            list(strict.responses.create(model="gpt-4o", input="hi", tools=tools, stream=True))
        strict.embeddings.create(
            model="text-embedding-3-small", input="hi", encoding_format="float"
        )


def test_embeddings_float_and_base64_agree(client: OpenAI) -> None:
    default = client.embeddings.create(model="text-embedding-3-small", input=["a cat", "a dog"])
    floats = client.embeddings.create(
        model="text-embedding-3-small", input=["a cat", "a dog"], encoding_format="float"
    )

    assert default.model == "text-embedding-3-small"
    assert [item.index for item in default.data] == [0, 1]
    assert [item.embedding for item in default.data] == [item.embedding for item in floats.data]
    assert default.data[0].embedding != default.data[1].embedding
    assert all(len(item.embedding) == 8 for item in default.data)
    assert math.isclose(math.fsum(v * v for v in default.data[0].embedding), 1.0, rel_tol=1e-5)
    assert default.usage.prompt_tokens == default.usage.total_tokens == 4


def test_embeddings_dimensions_and_token_arrays(client: OpenAI) -> None:
    wide = client.embeddings.create(model="text-embedding-3-large", input="x", dimensions=32)
    tokens = client.embeddings.create(model="text-embedding-3-small", input=[[1, 2, 3], [4]])

    assert len(wide.data[0].embedding) == 32
    assert len(tokens.data) == 2
    assert tokens.usage.prompt_tokens == 4


def test_raw_response_headers(client: OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=[USER])

    assert raw.headers["x-request-id"].startswith("req_")
    assert raw.headers["openai-processing-ms"].isdigit()
    assert raw.request_id == raw.headers["x-request-id"]
    assert raw.parse().choices[0].message.content == ECHO


def test_rate_limit_error(client: OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="error-429", messages=[USER])

    assert caught.value.status_code == 429
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.response.headers["retry-after"] == "0"
    assert caught.value.request_id and caught.value.request_id.startswith("req_")


def test_server_error(client: OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        client.responses.create(model="error-500", input="hi")

    assert caught.value.status_code == 500
    assert caught.value.type == "server_error"


@pytest.mark.parametrize("stream", [False, True])
def test_malformed_json_surfaces_as_decode_error(client: OpenAI, stream: bool) -> None:
    with pytest.raises(json.JSONDecodeError):
        result = client.chat.completions.create(
            model="error-malformed", messages=[USER], stream=stream
        )
        list(result) if stream else None


def test_midstream_error_after_two_content_chunks(client: OpenAI) -> None:
    received: list[str] = []
    with pytest.raises(openai.APIError, match="stream interrupted") as caught:
        for chunk in client.chat.completions.create(
            model="error-midstream", messages=[USER], stream=True
        ):
            received.append(chunk.choices[0].delta.content or "")

    assert "".join(received) == "Echo: what"
    assert not isinstance(caught.value, openai.APIStatusError)


def test_error_models_are_answered_on_every_retry(fresh_server: OpenAICompatibleServer) -> None:
    with (
        make_client(fresh_server, max_retries=2) as retrying,
        pytest.raises(openai.RateLimitError) as raised,
    ):
        retrying.chat.completions.create(model="error-429", messages=[USER])

    # The SDK waits what retry-after-ms says (it reads it before retry-after): 1 ms.
    assert raised.value.response.headers["retry-after-ms"] == "1"
    retry_counts = [r.headers["x-stainless-retry-count"] for r in fresh_server.requests]
    assert retry_counts == ["0", "1", "2"]


def test_not_found_and_bad_json(client: OpenAI, server: OpenAICompatibleServer) -> None:
    with pytest.raises(openai.NotFoundError):
        client.models.list()
    with pytest.raises(openai.NotFoundError):
        client.responses.delete("resp_1")

    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        connection.request("POST", "/v1/chat/completions", body=b"{not json")
        reply = connection.getresponse()
        body = json.loads(reply.read())
    finally:
        connection.close()
    assert reply.status == 400
    assert body["error"]["type"] == "invalid_request_error"


def test_requests_are_recorded(fresh_server: OpenAICompatibleServer) -> None:
    with make_client(fresh_server) as sdk:
        sdk.chat.completions.create(model="gpt-4o-mini", messages=[USER], temperature=0.5)
        sdk.embeddings.create(model="text-embedding-3-small", input="x")

    chat, embedding = fresh_server.requests
    assert isinstance(chat, RecordedRequest)
    assert (chat.method, chat.path) == ("POST", "/v1/chat/completions")
    assert chat.headers["authorization"] == "Bearer test-key"
    assert chat.json == {"model": "gpt-4o-mini", "messages": [USER], "temperature": 0.5}
    assert embedding.path == "/v1/embeddings"
    assert embedding.json and embedding.json["encoding_format"] == "base64"

    fresh_server.clear()
    assert fresh_server.requests == []


def test_keep_alive_reuses_one_connection(fresh_server: OpenAICompatibleServer) -> None:
    with make_client(fresh_server) as sdk:
        sdk.chat.completions.create(model="gpt-4o-mini", messages=[USER])
        sdk.responses.create(model="gpt-4o-mini", input="hi")
        list(sdk.responses.create(model="gpt-4o-mini", input="hi", stream=True))
        sdk.embeddings.create(model="text-embedding-3-small", input="x")

    assert fresh_server.connections_accepted == 1


def test_concurrent_requests(fresh_server: OpenAICompatibleServer) -> None:
    def ask(number: int) -> str | None:
        message = {"role": "user", "content": f"question {number}"}
        completion = sdk.chat.completions.create(model="gpt-4o-mini", messages=[message])
        return completion.choices[0].message.content

    with make_client(fresh_server) as sdk, ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(ask, range(20)))

    assert answers == [f"Echo: question {number}" for number in range(20)]
    assert len(fresh_server.requests) == 20
    assert len({r.headers["x-stainless-retry-count"] for r in fresh_server.requests}) == 1


def test_stream_delays() -> None:
    with (
        OpenAICompatibleServer(first_chunk_delay=0.15, chunk_delay=0.01) as slow,
        make_client(slow) as sdk,
    ):
        started = time.perf_counter()
        stream = sdk.chat.completions.create(model="gpt-4o-mini", messages=[USER], stream=True)
        arrivals = [
            time.perf_counter() - started for chunk in stream if chunk.choices[0].delta.content
        ]

    assert arrivals[0] >= 0.15
    # Sleeps space out the sends; arrival gaps may compress slightly on the client side.
    assert arrivals[-1] - arrivals[0] >= 0.8 * 0.01 * (len(arrivals) - 1)


def test_lifecycle() -> None:
    server = OpenAICompatibleServer()
    with pytest.raises(RuntimeError):
        _ = server.port
    server.start()
    with pytest.raises(RuntimeError):
        server.start()
    port = server.port
    assert server.base_url == f"http://127.0.0.1:{port}/v1"
    with make_client(server) as sdk:
        sdk.chat.completions.create(model="gpt-4o-mini", messages=[USER])
        server.stop()  # closes the client's idle keep-alive connection too
    server.stop()

    with pytest.raises(OSError):
        http.client.HTTPConnection("127.0.0.1", port, timeout=1).connect()
