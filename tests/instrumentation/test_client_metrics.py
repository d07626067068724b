"""The GenAI client metrics, read through the SDK's in-memory reader after real calls."""

from __future__ import annotations

import asyncio

import openai
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from _support.spans import async_client_for, client_for, only_span
from closedloop.instrumentation._client_metrics import DURATION_BUCKETS, TOKEN_BUCKETS

DURATION = "gen_ai.client.operation.duration"
TOKENS = "gen_ai.client.token.usage"
ASK = [{"role": "user", "content": "Where is my refund?"}]


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def metered(instrument, reader):
    """closedloop instrumented with a MeterProvider of its own (the global one is unset)."""
    meter_provider = MeterProvider(metric_readers=[reader])
    instrument(meter_provider=meter_provider)
    yield
    meter_provider.shutdown()


def points(reader: InMemoryMetricReader, name: str) -> list[HistogramDataPoint]:
    """The histogram's data points, checked to carry the conventions' unit and buckets."""
    data = reader.get_metrics_data()
    found = [
        metric
        for resource in (data.resource_metrics if data else ())
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
    ]
    if not found:
        return []
    [metric] = found
    assert metric.unit == {DURATION: "s", TOKENS: "{token}"}[name]
    buckets = {DURATION: DURATION_BUCKETS, TOKENS: TOKEN_BUCKETS}[name]
    result = list(metric.data.data_points)
    for point in result:
        assert isinstance(point, HistogramDataPoint)
        assert tuple(point.explicit_bounds) == buckets
    return result


def tokens_by_type(reader: InMemoryMetricReader) -> dict[str, tuple[float, dict]]:
    """Each token type's summed count and its attributes without the type."""
    found = {}
    for point in points(reader, TOKENS):
        attributes = dict(point.attributes)
        token_type = attributes.pop("gen_ai.token.type")
        assert point.count == 1
        found[token_type] = (point.sum, attributes)
    return found


def test_a_chat_call_records_its_duration_and_tokens(server, exporter, reader, metered):
    reply = client_for(server).chat.completions.create(model="gpt-4o-mini", messages=ASK)
    span = only_span(exporter).attributes
    expected = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": reply.model,
        "server.address": "127.0.0.1",
        "server.port": server.port,
    }
    [duration] = points(reader, DURATION)
    assert dict(duration.attributes) == expected
    assert duration.count == 1
    assert duration.sum == pytest.approx(span["closedloop.latency.ms"] / 1000, rel=1e-9)
    assert tokens_by_type(reader) == {
        "input": (reply.usage.prompt_tokens, expected),
        "output": (reply.usage.completion_tokens, expected),
    }


def test_a_stream_records_its_duration_when_it_ends(server, exporter, reader, metered):
    stream = client_for(server).chat.completions.create(
        model="gpt-4o-mini", messages=ASK, stream=True
    )
    first = next(stream)
    assert points(reader, DURATION) == []  # still streaming: nothing measured yet
    chunks = [first, *stream]
    span = only_span(exporter).attributes
    [duration] = points(reader, DURATION)
    assert duration.sum == pytest.approx(span["closedloop.latency.ms"] / 1000, rel=1e-9)
    assert dict(duration.attributes)["gen_ai.response.model"] == chunks[0].model
    found = tokens_by_type(reader)
    assert found["input"][0] == span["gen_ai.usage.input_tokens"]
    assert found["output"][0] == span["gen_ai.usage.output_tokens"] > 0


def test_embeddings_record_input_tokens_only(server, reader, metered):
    reply = asyncio.run(
        async_client_for(server).embeddings.create(model="text-embedding-3-small", input="hi")
    )
    [duration] = points(reader, DURATION)
    assert dict(duration.attributes)["gen_ai.operation.name"] == "embeddings"
    assert {key: total for key, (total, _) in tokens_by_type(reader).items()} == {
        "input": reply.usage.prompt_tokens
    }


def test_a_failed_call_records_its_error_type_and_no_tokens(server, reader, metered):
    with pytest.raises(openai.RateLimitError):
        client_for(server).chat.completions.create(model="error-429", messages=ASK)
    [duration] = points(reader, DURATION)
    assert dict(duration.attributes) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "error-429",
        "server.address": "127.0.0.1",
        "server.port": server.port,
        "error.type": "RateLimitError",
    }
    assert points(reader, TOKENS) == []


def test_calls_aggregate_by_their_attributes(server, reader, metered):
    client = client_for(server)
    for _ in range(3):
        client.chat.completions.create(model="gpt-4o-mini", messages=ASK)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="error-500", messages=ASK)
    counts = {
        dict(point.attributes).get("error.type"): point.count for point in points(reader, DURATION)
    }
    assert counts == {None: 3, "InternalServerError": 1}


def test_a_failure_leaves_the_next_calls_metric_attributes_alone(server, reader, metered):
    """Calls with the same model and endpoint share their metric attributes: a failed
    stream's ``error.type`` must not stick to the next call of that model."""
    client = client_for(server)
    with pytest.raises(openai.APIError):
        for _ in client.chat.completions.create(model="error-midstream", messages=ASK, stream=True):
            pass
    client.chat.completions.create(model="error-midstream", messages=ASK)
    client.chat.completions.create(model="error-midstream", messages=ASK)
    counts = {
        dict(point.attributes).get("error.type"): point.count for point in points(reader, DURATION)
    }
    assert counts == {"APIError": 1, None: 2}


# Calls whose span the head sampler drops are measured all the same: with a 10 % sampler
# the metrics must still count every call and every token.


class Witness:
    """A redactor that only notes what it was given: an unsampled call must redact nothing."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, text: str) -> tuple[str, int]:
        self.seen.append(text)
        return text, 0


@pytest.fixture
def witness() -> Witness:
    return Witness()


@pytest.fixture
def unsampled(instrument, exporter, reader, witness):
    """closedloop on a TracerProvider that samples no span, with content capture on."""
    tracer_provider = TracerProvider(sampler=ALWAYS_OFF)
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    meter_provider = MeterProvider(metric_readers=[reader])
    instrument(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        capture_content=True,
        redactors=[witness],
    )
    yield
    meter_provider.shutdown()


def tokens_by_model(reader: InMemoryMetricReader) -> dict[str, dict[str, float]]:
    """Summed token counts by request model, then token type."""
    found: dict[str, dict[str, float]] = {}
    for point in points(reader, TOKENS):
        attributes = dict(point.attributes)
        by_type = found.setdefault(str(attributes["gen_ai.request.model"]), {})
        by_type[str(attributes["gen_ai.token.type"])] = point.sum
    return found


def test_an_unsampled_chat_call_records_its_duration_and_tokens(
    server, exporter, reader, witness, unsampled
):
    reply = client_for(server).chat.completions.create(model="gpt-4o-mini", messages=ASK)
    expected = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": reply.model,
        "server.address": "127.0.0.1",
        "server.port": server.port,
    }
    [duration] = points(reader, DURATION)
    assert dict(duration.attributes) == expected
    assert duration.count == 1
    assert tokens_by_type(reader) == {
        "input": (reply.usage.prompt_tokens, expected),
        "output": (reply.usage.completion_tokens, expected),
    }
    assert exporter.get_finished_spans() == ()
    assert witness.seen == []  # no content captured, so nothing redacted


def test_unsampled_streams_record_the_usage_of_their_final_chunk(
    server, exporter, reader, unsampled
):
    client = client_for(server)
    asked = list(
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=ASK,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    usage = asked[-1].usage
    assert usage is not None
    # Not asked by the caller: closedloop asks for the usage and hides what it asked for.
    not_asked = list(client.chat.completions.create(model="gpt-4o", messages=ASK, stream=True))
    assert server.requests[-1].json["stream_options"] == {"include_usage": True}
    assert all(chunk.choices and "usage" not in chunk.model_fields_set for chunk in not_asked)
    same_usage = {"input": usage.prompt_tokens, "output": usage.completion_tokens}
    assert tokens_by_model(reader) == {"gpt-4o-mini": same_usage, "gpt-4o": same_usage}
    response_models = {
        dict(point.attributes)["gen_ai.request.model"]: (
            point.count,
            dict(point.attributes)["gen_ai.response.model"],
        )
        for point in points(reader, DURATION)
    }
    assert response_models == {
        "gpt-4o-mini": (1, asked[0].model),
        "gpt-4o": (1, not_asked[0].model),
    }
    assert exporter.get_finished_spans() == ()


def test_an_unsampled_responses_stream_records_the_final_responses_usage(
    server, exporter, reader, unsampled
):
    async def stream() -> list:
        events = await async_client_for(server).responses.create(
            model="gpt-4o-mini", input="Where is my refund?", stream=True
        )
        return [event async for event in events]

    final = asyncio.run(stream())[-1].response
    [duration] = points(reader, DURATION)
    assert dict(duration.attributes)["gen_ai.response.model"] == final.model
    assert {key: total for key, (total, _) in tokens_by_type(reader).items()} == {
        "input": final.usage.input_tokens,
        "output": final.usage.output_tokens,
    }
    assert exporter.get_finished_spans() == ()


def test_unsampled_embeddings_record_their_input_tokens(server, reader, unsampled):
    reply = client_for(server).embeddings.create(model="text-embedding-3-small", input="hi")
    [duration] = points(reader, DURATION)
    assert dict(duration.attributes)["gen_ai.response.model"] == reply.model
    assert {key: total for key, (total, _) in tokens_by_type(reader).items()} == {
        "input": reply.usage.prompt_tokens
    }


def test_unsampled_failures_record_their_error_type(server, exporter, reader, witness, unsampled):
    client = client_for(server)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="error-429", messages=ASK)
    stream = client.chat.completions.create(model="error-midstream", messages=ASK, stream=True)
    with pytest.raises(openai.APIError):
        list(stream)
    errors = {
        dict(point.attributes)["gen_ai.request.model"]: (
            point.count,
            dict(point.attributes)["error.type"],
        )
        for point in points(reader, DURATION)
    }
    assert errors == {"error-429": (1, "RateLimitError"), "error-midstream": (1, "APIError")}
    assert points(reader, TOKENS) == []
    assert exporter.get_finished_spans() == ()
    assert witness.seen == []  # the error messages were not redacted for a span
